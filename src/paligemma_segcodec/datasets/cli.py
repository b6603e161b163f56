"""``segcodec`` dataset commands: convert, lint, audit, show, eval, export."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from paligemma_segcodec.cli_base import (
    RegularFile,
    checkpoint_option,
    clean,
    codec_for,
    convention_option,
    guard_outputs,
    label_option,
    main,
    output_option,
    record_convention,
    user_errors,
)
from paligemma_segcodec.errors import OutputOverInputError, SkippedObjectWarning

DIR = click.Path(exists=True, file_okay=False, path_type=Path)
FILE = RegularFile()
OUTFILE = click.Path(dir_okay=False, path_type=Path)
AUDIT_FILES = ("audit.csv", "summary.json", "histogram.png", "worst.png")


def _classes(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[int, str] | None:
    from paligemma_segcodec.datasets.files import parse_classes

    try:
        return None if value is None else parse_classes(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


def _threshold(fn: Any) -> Any:
    return click.option(
        "--threshold", default=127, show_default=True, help="Mask pixels > this are foreground (0/1 masks: > 0)."
    )(fn)


def _workers(fn: Any) -> Any:
    from paligemma_segcodec.datasets.parallel import WORKERS_HELP

    return click.option("--workers", type=click.IntRange(min=1), default=None, help=WORKERS_HELP)(fn)


@main.command()
@click.option("--images", type=DIR, default=None, help="Folder of images.")
@click.option("--masks", type=DIR, default=None, help="Folder of masks, matched to images by file stem.")
@click.option("--coco", type=FILE, default=None, help="COCO instances JSON instead of --masks (polygons or RLE).")
@click.option("--hf-dataset", default=None, help="A Hugging Face datasets folder or hub name with image+mask columns.")
@click.option("--hf-split", default="train", show_default=True, help="Split of --hf-dataset.")
@click.option("--image-column", default="image", show_default=True, help="Image column of --hf-dataset.")
@click.option("--mask-column", default="mask", show_default=True, help="Mask column of --hf-dataset.")
@functools.partial(label_option, help="Label of the objects of binary masks.")
@click.option(
    "--classes", default=None, callback=_classes, help="Semantic masks: value=label pairs, e.g. 1=water,2=road."
)
@output_option(
    type=click.Path(path_type=Path),
    required=True,
    dest="output",
    help="Output JSONL (errors: OUT.errors.jsonl), or DIR.",
)
@click.option(
    "--errors",
    "errors_file",
    type=OUTFILE,
    default=None,
    help="Where to write the list of skipped items and warnings (default: OUT.errors.jsonl).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "hf"]),
    default="jsonl",
    show_default=True,
    help="hf: also save a datasets.Dataset (image, prefix, suffix) to --output DIR (JSONL beside it: DIR.jsonl).",
)
@_threshold
@click.option(
    "--instances",
    type=click.Choice(["components", "whole"]),
    default="components",
    show_default=True,
    help="One object per connected component (8-connected), or per mask/class.",
)
@click.option(
    "--min-area", default=16, show_default=True, help="Drop components with fewer pixels (counted in the summary)."
)
@click.option(
    "--widen-thin-boxes",
    is_flag=True,
    help="Keep objects thinner than one <loc> step (1/1023 of a side), their boxes widened by one bin "
    "(default: drop them, listed as warnings; the reference's tokens for them do not parse).",
)
@click.option(
    "--crowd", type=click.Choice(["skip", "include"]), default="skip", show_default=True, help="COCO iscrowd=1."
)
@click.option(
    "--split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Train fraction, e.g. 0.9: also write train.jsonl/val.jsonl.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of --split.")
@click.option("--train-list", type=FILE, default=None, help="File of image names for train.jsonl.")
@click.option("--val-list", type=FILE, default=None, help="File of image names for val.jsonl.")
@click.option("--copy-images", "images_mode", flag_value="copy", default=None, help="Copy images to OUT_DIR/images/.")
@click.option("--link-images", "images_mode", flag_value="link", help="Symlink images into OUT_DIR/images/.")
@click.option(
    "--image-size", type=click.Choice(["224", "448", "896"]), default=None, help="Write resized copies (NxN) instead."
)
@click.option("--batch-size", default=512, show_default=True, help="Objects per device call.")
@_workers
@click.option("--progress/--no-progress", default=True, show_default=True)
@checkpoint_option
def convert(
    images: Path | None,
    masks: Path | None,
    coco: Path | None,
    hf_dataset: str | None,
    hf_split: str,
    image_column: str,
    mask_column: str,
    label: str | None,
    classes: dict[int, str] | None,
    output: Path,
    errors_file: Path | None,
    fmt: str,
    threshold: int,
    instances: str,
    min_area: int,
    widen_thin_boxes: bool,
    crowd: str,
    split: float | None,
    seed: int,
    train_list: Path | None,
    val_list: Path | None,
    images_mode: str | None,
    image_size: str | None,
    batch_size: int,
    workers: int | None,
    progress: bool,
    checkpoint: Path | None,
) -> None:
    """Convert images + masks (or COCO) into PaliGemma fine-tuning JSONL.

    Each line is {"image", "prefix": "segment LABEL", "suffix": "<loc>x4<seg>x16 LABEL ; ..."}.
    Images without objects get an empty suffix. Bad items are listed in OUT.errors.jsonl and the
    exit code is 1 when anything was skipped.

    Example:

    \b
      segcodec convert --images water/images --masks water/masks --label water -o data/water.jsonl --split 0.9
    """
    from paligemma_segcodec.datasets.convert import convert_coco, convert_folder, errors_path, write_examples

    if sum(x is not None for x in (masks, coco, hf_dataset)) != 1:
        raise click.UsageError(
            "give one input: --masks DIR (with --images), --coco FILE (with --images) or --hf-dataset"
        )
    if (masks is not None or coco is not None) and images is None:
        raise click.UsageError("--masks and --coco need --images DIR")
    if masks is not None and (label is None) == (classes is None):
        raise click.UsageError("with --masks give --label LABEL (binary masks) or --classes 1=a,2=b (semantic masks)")
    if hf_dataset is not None and label is None:
        raise click.UsageError("with --hf-dataset give --label LABEL")
    if split is not None and (train_list or val_list):
        raise click.UsageError("use either --split or --train-list/--val-list, not both")
    if (fmt == "hf" or hf_dataset is not None) and importlib.util.find_spec("datasets") is None:
        raise click.UsageError(
            "--format hf and --hf-dataset need the datasets package: pip install 'paligemma-segcodec[hf]'"
        )
    if output.name in ("", ".", "..") or (fmt == "jsonl" and output.is_dir()):
        raise OutputOverInputError(f"--output {output} is a folder; give a file name such as {output / 'train.jsonl'}")
    jsonl = output.with_name(output.name + ".jsonl") if fmt == "hf" else output
    split_files = [(f"{n}.jsonl (--split)", jsonl.parent / f"{n}.jsonl") for n in ("train", "val")]
    guard = guard_outputs(
        [("--output", jsonl), ("--errors", errors_file or errors_path(jsonl))]
        + (split_files if split is not None or train_list or val_list else []),
        [coco, train_list, val_list, checkpoint],
        [images, masks],
    )
    if fmt == "hf":
        _check_dataset_folder(output, guard)
    if images_mode or image_size:
        out_images = jsonl.parent / "images"
        for folder, what in ((masks, "--masks"), (images, "--images")):
            same = folder is not None and out_images.is_dir() and os.path.samefile(folder, out_images)
            if same and (what == "--masks" or image_size):
                raise OutputOverInputError(
                    f"{'resized' if image_size else 'copied'} images would be written into {out_images}, "
                    f"the {what} folder, over its files; choose an --output in another folder"
                )
    write: dict[str, Any] = {
        "split": split,
        "seed": seed,
        "train_list": train_list,
        "val_list": val_list,
        "images": images_mode,
        "image_size": int(image_size) if image_size else None,
        "batch_size": batch_size,
        "progress": progress,
        "guard": guard,
        "errors_file": errors_file,
    }
    with user_errors():
        codec = codec_for(checkpoint)
        if hf_dataset is not None:
            from paligemma_segcodec.hf import examples_from_dataset, load_hf_dataset

            ds = load_hf_dataset(hf_dataset, split=hf_split)
            items = examples_from_dataset(
                ds,
                image_column=image_column,
                mask_column=mask_column,
                label=str(label),
                threshold=threshold,
                instances="whole" if instances == "whole" else "components",
                min_area=min_area,
                widen_thin_boxes=widen_thin_boxes,
            )
            names = [f"{i:06d}.png" for i in range(len(ds))]
            report = write_examples(
                items, jsonl, codec=codec, total=len(ds), names=names, min_loc_extent=int(widen_thin_boxes), **write
            )
        elif coco is not None:
            assert images is not None
            report = convert_coco(
                coco, images, jsonl, crowd=crowd, min_area=min_area, codec=codec, workers=workers, **write
            )
        else:
            assert masks is not None and images is not None
            report = convert_folder(
                images,
                masks,
                jsonl,
                label=label,
                classes=classes,
                threshold=threshold,
                instances="whole" if instances == "whole" else "components",
                min_area=min_area,
                widen_thin_boxes=widen_thin_boxes,
                codec=codec,
                workers=workers,
                **write,
            )
        if fmt == "hf":
            from paligemma_segcodec.hf import jsonl_to_dataset

            in_memory = hf_dataset is not None or images_mode is not None or image_size is not None
            dataset = jsonl_to_dataset(jsonl, jsonl.parent / "images" if in_memory or images is None else images)
            _save_dataset(dataset, output)
            click.echo(f"saved a datasets.Dataset of {len(dataset)} rows to {output}", err=True)
    click.echo(report.summary(), err=True)
    if any(p.severity == "error" for p in report.skipped):
        sys.exit(1)


@main.command()
@click.argument("folder", type=DIR, required=False)
@click.option("--images", type=DIR, default=None, help="Folder of images (default: FOLDER/images).")
@click.option("--masks", type=DIR, default=None, help="Folder of masks (default: FOLDER/masks).")
@_threshold
@click.option("--min-area", default=16, show_default=True, help="Components under this many pixels are 'tiny'.")
@click.option("--full-fraction", default=0.98, show_default=True, help="Masks above this fraction are 'near-full'.")
@click.option("--json", "json_out", type=OUTFILE, default=None, help="Also write the findings as JSON here.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "never"]),
    default="error",
    show_default=True,
    help="Exit 1 when there is a finding of this severity (or worse).",
)
@_workers
@click.option("--progress/--no-progress", default=True, show_default=True)
def lint(
    folder: Path | None,
    images: Path | None,
    masks: Path | None,
    threshold: int,
    min_area: int,
    full_fraction: float,
    json_out: Path | None,
    fail_on: str,
    workers: int | None,
    progress: bool,
) -> None:
    """Check image/mask pairs: empty, near-full, tiny, non-binary, border-wedge masks, mismatches.

    Example:

    \b
      segcodec lint water/
    """
    from paligemma_segcodec.datasets.lint import lint_folder
    from paligemma_segcodec.safeio import atomic_write

    images = images or (folder / "images" if folder else None)
    masks = masks or (folder / "masks" if folder else None)
    if images is None or masks is None:
        raise click.UsageError("give FOLDER (with images/ and masks/) or --images and --masks")
    guard = guard_outputs([("--json", json_out)], [], [images, masks])
    with user_errors():
        report = lint_folder(
            images,
            masks,
            threshold=threshold,
            min_area=min_area,
            full_fraction=full_fraction,
            progress=progress,
            workers=workers,
        )
    click.echo(report.table())
    if json_out is not None:
        with atomic_write(json_out, guard=guard) as f:
            f.write(json.dumps(report.to_json(), indent=2) + "\n")
    if (fail_on == "error" and report.errors) or (fail_on == "warning" and report.problems):
        sys.exit(1)


@main.command()
@click.option("--images", type=DIR, required=True, help="Folder of images.")
@click.option("--masks", type=DIR, required=True, help="Folder of masks, matched by stem.")
@output_option(type=click.Path(file_okay=False, path_type=Path), required=True, dest="out_dir", help="Report folder.")
@functools.partial(label_option, default="object", help="Label of the objects.")
@_threshold
@click.option("--instances", type=click.Choice(["components", "whole"]), default="components", show_default=True)
@click.option("--min-area", default=16, show_default=True, help="Skip components with fewer pixels.")
@click.option("--worst", default=16, show_default=True, help="Objects in the contact sheet of the worst.")
@_workers
@click.option("--progress/--no-progress", default=True, show_default=True)
@checkpoint_option
def audit(
    images: Path,
    masks: Path,
    out_dir: Path,
    label: str,
    threshold: int,
    instances: str,
    min_area: int,
    worst: int,
    workers: int | None,
    progress: bool,
    checkpoint: Path | None,
) -> None:
    """IoU of each object after encode -> decode -> paste: the ceiling of the 16-token format.

    Writes audit.csv, summary.json, histogram.png and worst.png into --output. Unreadable pairs are
    skipped and listed; the exit code is then 1.

    Example:

    \b
      segcodec audit --images water/images --masks water/masks --label water -o audit/
    """
    from paligemma_segcodec.datasets.audit import audit_folder

    guard_outputs([("--output", out_dir / name) for name in AUDIT_FILES], [checkpoint], [images, masks])
    with user_errors():
        report = audit_folder(
            images,
            masks,
            out_dir,
            label=label,
            threshold=threshold,
            instances="whole" if instances == "whole" else "components",
            min_area=min_area,
            worst=worst,
            codec=codec_for(checkpoint),
            progress=progress,
            workers=workers,
        )
    click.echo(f"{'label':<12} {'count':>6} {'mean':>6} {'median':>6} {'q10':>6} {'q90':>6}")
    for name, s in report.summary().items():
        click.echo(
            f"{name:<12} {int(s['count']):>6} {s['mean']:>6.3f} {s['median']:>6.3f} {s['q10']:>6.3f} {s['q90']:>6.3f}"
        )
    for p in report.skipped:
        click.echo(f"skipped {clean(p.file)}: {clean(p.reason)}", err=True)
    click.echo(f"wrote {out_dir}/audit.csv, summary.json, histogram.png, worst.png", err=True)
    if any(p.severity == "error" for p in report.skipped):
        raise SystemExit(1)


def _check_dataset_folder(output: Path, guard: Any) -> None:
    """``--format hf --output DIR``: DIR is replaced when the run ends, so it must not be, or hold,
    an input, and an existing DIR must be a dataset an earlier run saved (never a user's folder)."""
    if guard.holds_input(output) or guard.is_input(output):
        raise OutputOverInputError(
            f"--output {output} is, or holds, this run's input files; a saved dataset would replace it "
            "(choose a new folder)"
        )
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise OutputOverInputError(f"--output {output} exists and is not a folder; give a new folder for --format hf")
    if output.is_dir() and any(output.iterdir()) and not (output / "dataset_info.json").is_file():
        raise OutputOverInputError(
            f"--output {output} is a folder that is not a saved dataset; refusing to replace it (choose a new folder)"
        )


def _save_dataset(dataset: Any, output: Path) -> None:
    """``dataset.save_to_disk(output)`` all or nothing: saved into a hidden folder beside
    ``output``, then renamed into place (a previous dataset folder is replaced only then)."""
    import shutil
    import tempfile

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    old: Path | None = None
    try:
        dataset.save_to_disk(str(tmp / "ds"))
        if output.exists():
            old = tmp / "previous"
            os.replace(output, old)
        os.replace(tmp / "ds", output)
    except BaseException:
        if old is not None and not output.exists():
            os.replace(old, output)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _predictions(path: Path) -> dict[str, str]:
    from paligemma_segcodec.datasets.evaluate import read_predictions

    return read_predictions(path)


def _progress(items: list[Any], desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=not enabled or len(items) < 2, file=sys.stderr)


def _decoded(
    jobs: list[tuple[str, Path, Any]], codec: Any, convention: str, progress: bool, desc: str, skipped: list[Any]
) -> Iterator[tuple[Any, Any, list[Any]]]:
    """``(answer, image, key)`` jobs → ``(key, image as PIL, segments)``; an image that cannot be
    read goes to ``skipped`` (as a `Problem`) and the loop goes on."""
    from paligemma_segcodec.datasets.files import unreadable
    from paligemma_segcodec.safeio import check_stop

    for answer, image, key in _progress(jobs, desc, progress):
        check_stop()
        try:
            pil, segs = _decode_for_image(answer, image, codec, convention)
        except (OSError, ValueError) as err:
            skipped.append(unreadable("image", str(image), err))
            continue
        yield key, pil, segs


def _exit_if_skipped(skipped: list[Any]) -> None:
    """Lists the skipped items on stderr and exits with 1 when there are any."""
    if skipped:
        click.echo(f"skipped {len(skipped)} image(s):", err=True)
        for p in skipped:
            click.echo(f"  {clean(p.file)}: {clean(p.reason)}", err=True)
        raise SystemExit(1)


def _decode_for_image(text: str, image: Path, codec: Any, convention: str) -> tuple[Any, list[Any]]:
    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.maskio import read_image

    pil = read_image(image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedObjectWarning)
        # 64x64 masks only: drawing and export paste each object inside its box.
        segs = decode_tokens(text, codec=codec, convention=record_convention(convention))
    for warning in caught:
        message = " ".join(str(warning.message).split())
        click.echo(f"warning: {clean(image.name)}: {clean(message[:500])}", err=True)
    return pil, segs


def _image_jobs(
    preds: dict[str, str], images: Path, skipped: list[Any], option: str = "--predictions"
) -> list[tuple[str, Path, str]]:
    """``(answer, image path, name)`` for each prediction whose image name stays inside ``images``;
    a name that escapes it (absolute, ``..``, a symlink out) is listed in ``skipped``, never read."""
    from paligemma_segcodec.datasets.files import Problem
    from paligemma_segcodec.errors import UnsafePathError
    from paligemma_segcodec.safeio import resolve_under

    jobs = []
    for name, answer in preds.items():
        try:
            jobs.append((answer, resolve_under(images, name, what=f"{option} image"), name))
        except UnsafePathError as err:
            skipped.append(Problem(name, f"refused: {err}"))
    return jobs


def _overlay_names(names: list[str]) -> dict[str, str]:
    """Image name → overlay file name (relative): ``sub/a.jpg`` → ``sub/a.png``; when two images
    would get the same overlay name (``a.jpg`` and ``a.png``), each keeps its extension
    (``a.jpg.png``, ``a.png.png``) so that neither overwrites the other."""

    def plain(n: str) -> str:
        return str(Path(n).with_suffix(".png"))

    counts: dict[str, int] = {}
    for n in names:
        key = os.path.normcase(os.path.normpath(plain(n)))
        counts[key] = counts.get(key, 0) + 1
    out = {}
    for n in names:
        key = os.path.normcase(os.path.normpath(plain(n)))
        out[n] = plain(n) if counts[key] == 1 else n + ".png"
    if len({os.path.normcase(os.path.normpath(v)) for v in out.values()}) != len(out):
        raise click.UsageError("two predictions would be drawn to the same overlay file; rename one image")
    return out


@main.command()
@click.option("--predictions", type=FILE, default=None, help="JSONL with image + prediction (or suffix) per line.")
@click.option("--images", type=DIR, default=None, help="Folder of the images named in --predictions.")
@click.option("--text", default=None, help="One answer (with --image) instead of --predictions.")
@click.option("--image", type=FILE, default=None, help="The image of --text.")
@output_option(type=click.Path(path_type=Path), required=True, help="Output folder (or PNG file with --text).")
@convention_option
@checkpoint_option
@click.option("--progress/--no-progress", default=True, show_default=True)
def show(
    predictions: Path | None,
    images: Path | None,
    text: str | None,
    image: Path | None,
    out: Path,
    convention: str,
    checkpoint: Path | None,
    progress: bool,
) -> None:
    """Draw decoded answers (boxes, filled masks, labels) over their images as PNG.

    An image that cannot be read is skipped and listed; the others are drawn; the exit code is 1.
    Two images that would give the same PNG name (a.jpg, a.png) are drawn to a.jpg.png, a.png.png.

    Example:

    \b
      segcodec show --predictions preds.jsonl --images water/images -o overlays/
    """
    from paligemma_segcodec.errors import UnsafePathError
    from paligemma_segcodec.safeio import atomic_write, resolve_under
    from paligemma_segcodec.viz import draw_segments

    skipped: list[Any] = []
    jobs: list[tuple[str, Path, Path]] = []
    if text is not None and image is not None:
        jobs.append((text, image, out if out.suffix.lower() == ".png" else out / (image.stem + ".png")))
        guard = guard_outputs([("--output", jobs[0][2])], [image, checkpoint])
    elif predictions is not None and images is not None:
        with user_errors():
            found = _image_jobs(_predictions(predictions), images, skipped)
        dests = _overlay_names([name for _, _, name in found])
        guard = guard_outputs([], [predictions, checkpoint], [images])
        if out.exists() and not out.is_dir():
            guard.check_output(out, "--output")
            raise click.UsageError(f"--output {out} is a file; with --predictions give a folder for the overlays")
        for answer, path, name in found:
            try:
                dest = resolve_under(out, dests[name], what="overlay name")
            except UnsafePathError as err:
                from paligemma_segcodec.datasets.files import Problem

                skipped.append(Problem(name, f"refused: {err}"))
                continue
            if guard.is_input(dest):
                raise OutputOverInputError(
                    f"--output {out}: the overlay of {name} would overwrite the input file {dest}; "
                    "choose another --output folder"
                )
            jobs.append((answer, path, dest))
    else:
        raise click.UsageError("give --predictions with --images, or --text with --image")
    with user_errors():
        codec = codec_for(checkpoint) if any("<seg" in t for t, _, _ in jobs) else None
        written = 0
        for dest, pil, segs in _decoded(jobs, codec, convention, progress, "show", skipped):
            picture = draw_segments(pil, segs, convention=record_convention(convention))
            with atomic_write(dest, "wb", guard=guard) as f:
                picture.save(f, format="PNG")
            written += 1
    click.echo(f"wrote {written} image(s) to {out}", err=True)
    _exit_if_skipped(skipped)


@main.command(name="eval")
@click.option("--predictions", type=FILE, required=True, help="JSONL with image + prediction (or suffix).")
@click.option("--masks", type=DIR, default=None, help="Ground-truth masks folder (matched by stem).")
@click.option("--coco", type=FILE, default=None, help="Ground-truth COCO instances JSON instead.")
@_threshold
@click.option("--csv", "csv_out", type=OUTFILE, default=None, help="Per-image scores CSV.")
@click.option("--json", "json_out", type=OUTFILE, default=None, help="Metrics JSON.")
@_workers
@checkpoint_option
def eval_(
    predictions: Path,
    masks: Path | None,
    coco: Path | None,
    threshold: int,
    csv_out: Path | None,
    json_out: Path | None,
    workers: int | None,
    checkpoint: Path | None,
) -> None:
    """Score answers: mIoU, cIoU, box accuracy @0.5/@0.75, invalid answers (big_vision's definitions).

    Example:

    \b
      segcodec eval --predictions preds.jsonl --masks water/masks
    """
    from paligemma_segcodec.datasets.evaluate import evaluate
    from paligemma_segcodec.safeio import atomic_write

    if (masks is None) == (coco is None):
        raise click.UsageError("give --masks DIR or --coco FILE")
    guard = guard_outputs([("--csv", csv_out), ("--json", json_out)], [predictions, coco, checkpoint], [masks])
    with user_errors():
        preds = _predictions(predictions)
        stems: dict[str, str] = {}
        for name in preds:
            stem = Path(name).stem
            if stem in stems:
                raise ValueError(
                    f"{predictions}: predictions for {stems[stem]!r} and {name!r} match the same ground truth "
                    f"(stem {stem!r}); keep one"
                )
            stems[stem] = name
        codec = codec_for(checkpoint) if any("<seg" in t for t in preds.values()) else None
        report = evaluate(preds, masks_dir=masks, coco=coco, threshold=threshold, codec=codec, workers=workers)
        metrics = report.metrics()
        if csv_out is not None:
            guard.check_output(csv_out, "--csv")
            report.write_csv(csv_out)
        if json_out is not None:
            with atomic_write(json_out, guard=guard) as f:
                f.write(json.dumps(metrics, indent=2) + "\n")
    click.echo(json.dumps(metrics, indent=2))
    errors = [p for p in report.skipped if p.severity == "error"]
    for p in report.skipped:
        click.echo(f"{'skipped' if p.severity == 'error' else 'warning'}: {clean(p.file)}: {clean(p.reason)}", err=True)
    if errors:
        click.echo(f"{len(errors)} ground-truth item(s) could not be used (listed above); exit 1", err=True)
        raise SystemExit(1)


@main.command()
@click.option("--predictions", type=FILE, required=True, help="JSONL with image + prediction (or suffix).")
@click.option("--images", type=DIR, required=True, help="Folder of the images named in --predictions.")
@output_option(type=OUTFILE, required=True, help="COCO JSON to write.")
@click.option("--polygons", is_flag=True, help="Polygons (contour tracing) instead of RLE.")
@convention_option
@checkpoint_option
@click.option("--progress/--no-progress", default=True, show_default=True)
def export(
    predictions: Path,
    images: Path,
    out: Path,
    polygons: bool,
    convention: str,
    checkpoint: Path | None,
    progress: bool,
) -> None:
    """Decoded answers -> COCO instances JSON (for CVAT, Label Studio, pycocotools).

    An image that cannot be read is left out and listed; the file is still written; the exit code
    is 1.

    Example:

    \b
      segcodec export --predictions preds.jsonl --images water/images -o preds_coco.json
    """
    from paligemma_segcodec.datasets.coco import segments_to_coco
    from paligemma_segcodec.safeio import atomic_write

    guard = guard_outputs([("--output", out)], [predictions, checkpoint], [images])
    skipped: list[Any] = []
    with user_errors():
        preds = _predictions(predictions)
        codec = codec_for(checkpoint) if any("<seg" in t for t in preds.values()) else None
        infos, all_segs = [], []
        jobs = _image_jobs(preds, images, skipped)
        for name, pil, segs in _decoded(jobs, codec, convention, progress, "export", skipped):
            infos.append({"file_name": name, "width": pil.size[0], "height": pil.size[1]})
            all_segs.append(segs)
        document = segments_to_coco(infos, all_segs, polygons=polygons)
        with atomic_write(out, guard=guard) as f:
            f.write(json.dumps(document) + "\n")
    click.echo(f"wrote {out}: {len(infos)} images", err=True)
    _exit_if_skipped(skipped)
