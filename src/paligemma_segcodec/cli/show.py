"""The ``segcodec show`` command: answers drawn over their images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from paligemma_segcodec.cli.answers import (
    decoded,
    exit_if_skipped,
    image_jobs,
    predictions_of,
)
from paligemma_segcodec.cli.base import (
    DIR,
    FILE,
    checkpoint_option,
    codec_for,
    convention_option,
    guard_outputs,
    info,
    output_option,
    record_convention,
    user_errors,
)
from paligemma_segcodec.errors import OutputOverInputError


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


@click.command()
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
            found = image_jobs(predictions_of(predictions), images, skipped)
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
        for dest, pil, segs in decoded(jobs, codec, convention, progress, "show", skipped):
            picture = draw_segments(pil, segs, convention=record_convention(convention))
            with atomic_write(dest, "wb", guard=guard) as f:
                picture.save(f, format="PNG")
            written += 1
    info(f"wrote {written} image(s) to {out}")
    exit_if_skipped(skipped)
