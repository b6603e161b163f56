"""The ``segcodec export`` command: decoded answers → COCO instances JSON."""

from __future__ import annotations

import json
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
    OUTFILE,
    checkpoint_option,
    codec_for,
    convention_option,
    guard_outputs,
    info,
    output_option,
    user_errors,
)


@click.command()
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
        preds = predictions_of(predictions)
        codec = codec_for(checkpoint) if any("<seg" in t for t in preds.values()) else None
        infos, all_segs = [], []
        jobs = image_jobs(preds, images, skipped)
        for name, pil, segs in decoded(jobs, codec, convention, progress, "export", skipped):
            infos.append({"file_name": name, "width": pil.size[0], "height": pil.size[1]})
            all_segs.append(segs)
        document = segments_to_coco(infos, all_segs, polygons=polygons)
        with atomic_write(out, guard=guard) as f:
            f.write(json.dumps(document) + "\n")
    info(f"wrote {out}: {len(infos)} images")
    exit_if_skipped(skipped)
