"""The ``segcodec convert`` command: masks (folders, COCO, a Hugging Face dataset) → PaliGemma JSONL."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import click

from paligemma_segcodec.cli.base import (
    DIR,
    FILE,
    OUTFILE,
    checkpoint_option,
    clean,
    codec_for,
    detail,
    guard_outputs,
    info,
    label_option,
    output_option,
    progress_enabled,
    threshold_option,
    user_errors,
    verbosity,
    workers_option,
)
from paligemma_segcodec.errors import OutputOverInputError


def _classes(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[int, str] | None:
    from paligemma_segcodec.datasets.files import parse_classes

    try:
        return None if value is None else parse_classes(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


@click.command()
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
@threshold_option
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
@workers_option
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
        "progress": progress_enabled(progress),
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
            info(f"saved a datasets.Dataset of {len(dataset)} rows to {output}")
    _report(report)
    if any(p.severity == "error" for p in report.skipped):
        sys.exit(1)


def _report(report: Any) -> None:
    """The run's summary on stderr: under --quiet only what went wrong (counts, and where the list
    is); under --verbose also every skipped item and warning, one line each."""
    if verbosity() < 0:
        where = report.errors_file
        if report.skipped:
            click.echo(f"warning: skipped {len(report.skipped)} item(s), listed in {clean(where)}", err=True)
        if report.warnings:
            click.echo(f"warning: {len(report.warnings)} warning(s), listed in {clean(where)}", err=True)
        return
    info(report.summary())
    for p in report.skipped:
        detail(f"skipped: {clean(p.file)}: {clean(p.reason)}")
    for p in report.warnings:
        detail(f"warning: {clean(p.file)}: {clean(p.reason)}")


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
