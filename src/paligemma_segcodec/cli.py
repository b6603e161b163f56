"""The ``segcodec`` command line."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from paligemma_segcodec._version import __version__
from paligemma_segcodec.checkpoint import ENV_VAR
from paligemma_segcodec.errors import CheckpointError, CheckpointNotFoundError, SkippedObjectWarning

F = TypeVar("F", bound=Callable[..., Any])


def checkpoint_option(fn: F) -> F:
    """``--checkpoint PATH``, shared by every command that needs the codec."""
    return click.option(
        "--checkpoint",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"vae-oid.npz to use (default: ${ENV_VAR}, else the Hugging Face download).",
    )(fn)


def convention_option(fn: F) -> F:
    """``--convention big_vision|colab``: how <loc> tokens become pixels when masks are pasted."""
    return click.option(
        "--convention",
        type=click.Choice(["big_vision", "colab"]),
        default="big_vision",
        show_default=True,
        help="loc -> pixel rule: int(k/1023*side) (big_vision) or round(k/1024*side) (colab).",
    )(fn)


def label_option(fn: F, *, default: str | None = None, help: str = "Label appended after the tokens.") -> F:
    """``--label TEXT``, checked by `paligemma_segcodec.tokens.check_label` before any work."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        from paligemma_segcodec.tokens import check_label

        try:
            return None if value is None else check_label(value)
        except ValueError as err:
            raise click.BadParameter(str(err), ctx=ctx, param=param) from None

    return click.option("--label", default=default, show_default=default is not None, callback=check, help=help)(fn)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns the library's bad-input and missing-checkpoint errors into clean CLI errors (exit 1)."""
    try:
        yield
    except (CheckpointNotFoundError, CheckpointError, ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err


def codec_for(checkpoint: Path | None) -> Any:
    from paligemma_segcodec.codec import load_codec

    return load_codec(checkpoint)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="segcodec")
def main() -> None:
    """Segmentation masks <-> PaliGemma <loc>/<seg> tokens (big_vision's vae-oid codec)."""


@main.command()
@click.argument("mask", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
    """Print the PaliGemma tokens of one mask image (4 <loc> + 16 <seg> [+ label])."""
    from paligemma_segcodec.api import encode_mask
    from paligemma_segcodec.maskio import read_mask

    with user_errors():
        m = read_mask(mask, threshold=threshold)
        click.echo(encode_mask(m, box, label=label, codec=codec_for(checkpoint)))


@main.command()
@click.argument("text")
@click.option(
    "--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Image the answer is about."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the overlay PNG here.")
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
    """Decode a PaliGemma answer; print its objects as JSON, and draw them over --image into --out.

    TEXT is the answer, e.g. "<loc0174><loc0015><loc0874><loc1008><seg057>... water". Use "-" to
    read it from standard input.
    """
    from PIL import Image

    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.viz import draw_segments

    if out is not None and image is None:
        raise click.UsageError("--out needs --image")
    if fmt == "coco" and image is None:
        raise click.UsageError("--format coco needs --image (for the image size)")
    if text == "-":
        text = sys.stdin.read()
    with user_errors():
        height = width = None
        pil = None
        if image is not None:
            pil = Image.open(image)
            pil.load()
            width, height = pil.size
        codec = codec_for(checkpoint) if "<seg" in text else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SkippedObjectWarning)
            segments = decode_tokens(
                text,
                height=height,
                width=width,
                strict=strict,
                convention=record_convention(convention),
                codec=codec,
            )
        for w in caught:
            click.echo(f"warning: {w.message}", err=True)
        if fmt == "coco" and image is not None:
            from paligemma_segcodec.datasets.coco import segments_to_coco

            info = {"file_name": image.name, "width": width, "height": height}
            click.echo(json.dumps(segments_to_coco([info], [segments])))
            segments = segments if out is not None else []
        for s in segments if fmt == "jsonl" else []:
            record: dict[str, Any] = {"label": s.label, "loc": list(s.loc), "box": list(s.box)}
            record["seg"] = None if s.seg is None else list(s.seg)
            if s.mask is not None:
                record["mask_area_px"] = int(s.mask.sum())
                record["xyxy_px"] = list(
                    s.xyxy(int(width or 0), int(height or 0), convention=record_convention(convention))
                )
            click.echo(json.dumps(record))
        if pil is not None and out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            draw_segments(pil, segments, convention=record_convention(convention)).save(out)
            click.echo(f"wrote {out}", err=True)


def record_convention(name: str) -> Any:
    return "colab" if name == "colab" else "big_vision"


@main.command()
@click.option(
    "--masks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Your masks (default: synthetic).",
)
@click.option("--limit", default=200, show_default=True, help="Masks used for the end-to-end encode benchmark.")
@click.option("--batch", default=256, show_default=True, help="Batch of the encode_indices/decode_indices benchmark.")
@click.option("--seconds", default=3.0, show_default=True, help="Rough time per measurement.")
@click.option(
    "--stream", default=0, show_default=True, help="Also stream this many masks from disk through convert (RSS)."
)
@click.option(
    "--only",
    default="codec,encode_masks,decode_tokens,recompiles,tf",
    show_default=True,
    help="Comma-separated subset ('none' for only --stream). tf: the reference's path rebuilt in TensorFlow, "
    "timed as calibration (needs the [tf] extra; skipped without it).",
)
@checkpoint_option
def bench(
    masks: Path | None, limit: int, batch: int, seconds: float, stream: int, only: str, checkpoint: Path | None
) -> None:
    """Measure throughput; print one JSON object (rates and ratios against batch-1 baselines)."""
    from paligemma_segcodec.bench import run

    with user_errors():
        result = run(
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
    main()
