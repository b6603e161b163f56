"""The ``segcodec decode`` command: one answer → boxes, masks, an overlay."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from paligemma_segcodec.cli.base import (
    RegularFile,
    _one_line,
    checkpoint_option,
    codec_for,
    convention_option,
    guard_outputs,
    info,
    output_option,
    record_convention,
    user_errors,
)
from paligemma_segcodec.errors import SkippedObjectWarning


@click.command()
@click.argument("text")
@click.option("--image", type=RegularFile(), help="Image the answer is about.")
@output_option(type=click.Path(dir_okay=False, path_type=Path), help="Write the overlay PNG here.")
@click.option("--strict", is_flag=True, help="Fail on a malformed object instead of skipping it.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "coco"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON object per decoded object; coco: a COCO instances JSON (needs --image).",
)
@convention_option
@checkpoint_option
def decode(
    text: str,
    image: Path | None,
    out: Path | None,
    strict: bool,
    fmt: str,
    convention: str,
    checkpoint: Path | None,
) -> None:
    """Decode a PaliGemma answer; print its objects as JSON, and draw them over --image into --output.

    TEXT is the answer, e.g. "<loc0174><loc0015><loc0874><loc1008><seg057>... water". Use "-" to
    read it from standard input.

    Example:

    \b
      segcodec decode "<loc0174><loc0015><loc0874><loc1008>... water" --image lake.jpg -o overlay.png
    """
    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.maskio import read_image
    from paligemma_segcodec.safeio import atomic_write
    from paligemma_segcodec.segment import paste_mask_in_box
    from paligemma_segcodec.viz import draw_segments

    if out is not None and image is None:
        raise click.UsageError("--output needs --image")
    if fmt == "coco" and image is None:
        raise click.UsageError("--format coco needs --image (for the image size)")
    guard = guard_outputs([("--output", out)], [image, checkpoint])
    if text == "-":
        text = sys.stdin.read()
    conv = record_convention(convention)
    with user_errors():
        height = width = None
        pil = None
        if image is not None:
            pil = read_image(image)
            width, height = pil.size
        codec = codec_for(checkpoint) if "<seg" in text else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SkippedObjectWarning)
            # Masks stay 64x64 here; each object is pasted inside its own box when needed, so
            # memory grows with the image, not with objects x image.
            segments = decode_tokens(text, strict=strict, convention=conv, codec=codec)
        for w in caught:
            click.echo(f"warning: {_one_line(str(w.message))[:500]}", err=True)
        if fmt == "coco" and image is not None:
            from paligemma_segcodec.datasets.coco import segments_to_coco

            image_info = {"file_name": image.name, "width": width, "height": height}
            click.echo(json.dumps(segments_to_coco([image_info], [segments])))
        for s in segments if fmt == "jsonl" else []:
            record: dict[str, Any] = {"label": s.label, "loc": list(s.loc), "box": list(s.box)}
            record["seg"] = None if s.seg is None else list(s.seg)
            if s.mask64 is not None and height is not None and width is not None:
                _, crop = paste_mask_in_box(s.mask64, s.loc, height, width, convention=conv)
                record["mask_area_px"] = int(crop.sum())
                record["xyxy_px"] = list(s.xyxy(height=height, width=width, convention=conv))
            click.echo(json.dumps(record))
        if pil is not None and out is not None:
            picture = draw_segments(pil, segments, convention=conv)
            with atomic_write(out, "wb", guard=guard) as f:
                picture.save(f, format="PNG")
            info(f"wrote {out}")
