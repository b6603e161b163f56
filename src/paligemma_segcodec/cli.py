"""The ``segcodec`` command line.

One error path for every command (`SegcodecGroup.main`): a bad input or a failed write is one line
on stderr and exit 1; refused usage (bad options, an output over an input) exit 2; SIGINT 130 and
SIGTERM 143, after every temporary output was removed (outputs are atomic: see
`paligemma_segcodec.safeio`). No traceback unless ``--debug`` (or ``SEGCODEC_DEBUG=1``).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from paligemma_segcodec.cli_base import (
    RegularFile,
    _one_line,
    checkpoint_option,
    codec_for,
    convention_option,
    guard_outputs,
    label_option,
    main,
    output_option,
    record_convention,
    user_errors,
)
from paligemma_segcodec.errors import SkippedObjectWarning

__all__ = ["main"]


@main.command()
@click.argument("mask", type=RegularFile())
@click.option("--box", nargs=4, type=float, default=None, help="Normalized y1 x1 y2 x2 (default: the tight box).")
@label_option
@click.option("--threshold", default=127, show_default=True, help="Mask pixels > this are foreground.")
@checkpoint_option
def encode(
    mask: Path,
    box: tuple[float, float, float, float] | None,
    label: str | None,
    threshold: int,
    checkpoint: Path | None,
) -> None:
    """Print the PaliGemma tokens of one mask image (4 <loc> + 16 <seg> [+ label]).

    Example:

    \b
      segcodec encode water/masks/lake.png --label water
    """
    from paligemma_segcodec.checkpoint import resolve_checkpoint

    with user_errors():
        checkpoint = resolve_checkpoint(checkpoint)  # before JAX is imported: a missing file fails at once
    from paligemma_segcodec.api import encode_mask
    from paligemma_segcodec.maskio import read_mask

    with user_errors():
        m = read_mask(mask, threshold=threshold)
        click.echo(encode_mask(m, box, label=label, codec=codec_for(checkpoint)))


@main.command()
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

            info = {"file_name": image.name, "width": width, "height": height}
            click.echo(json.dumps(segments_to_coco([info], [segments])))
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
            click.echo(f"wrote {out}", err=True)


@main.command()
@click.option(
    "--masks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of mask images for the end-to-end benchmarks (default: 200 synthetic masks of mixed sizes).",
)
@click.option(
    "--limit",
    default=200,
    show_default=True,
    help="Masks used for the end-to-end encode benchmarks (fewer than 200: the run warns its ratios are unstable).",
)
@click.option("--batch", default=256, show_default=True, help="Batch of the encode_indices/decode_indices benchmark.")
@click.option("--seconds", default=3.0, show_default=True, help="Rough time per measurement.")
@click.option(
    "--stream", default=0, show_default=True, help="Also stream this many masks from disk through convert (RSS)."
)
@click.option(
    "--only",
    default="codec,encode_masks,numpy_fallback,decode_tokens,recompiles,tf",
    show_default=True,
    help="Comma-separated subset ('none' for only --stream). numpy_fallback: encode_masks again in a child "
    "process with PALIGEMMA_SEGCODEC_NUMBA=0. tf: the reference's path rebuilt in TensorFlow, timed as "
    "calibration (needs the [tf] extra; skipped without it).",
)
@checkpoint_option
def bench(
    masks: Path | None, limit: int, batch: int, seconds: float, stream: int, only: str, checkpoint: Path | None
) -> None:
    """Measure throughput; print one JSON object (rates and ratios against batch-1 baselines).

    Each stage prints a line to stderr as it finishes (name, rate, spread of its repeats, seconds);
    stdout is the JSON alone. The JSON records the machine, versions, install flavour, the XLA matmul
    yardstick, every same-run baseline, and warnings (a sample under 200 masks, a spread over 10 %).

    Example:

    \b
      segcodec bench --masks water/masks --limit 300 > bench.json
    """
    from paligemma_segcodec.bench import run

    with user_errors():
        result = run(
            progress=sys.stderr,
            checkpoint=checkpoint,
            masks_dir=masks,
            limit=limit,
            batch=batch,
            seconds=seconds,
            stream=stream,
            only=[s.strip() for s in only.split(",") if s.strip()],
        )
    click.echo(json.dumps(result, indent=2))


# The dataset commands (convert, lint, audit, show, eval, export) register themselves on `main`.
from paligemma_segcodec.datasets import cli as _datasets_cli  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    # `python -m paligemma_segcodec.cli`: run the package module's group, on which the dataset
    # commands registered themselves (this file also runs as a second module named __main__).
    from paligemma_segcodec.cli import main as _main

    _main()
