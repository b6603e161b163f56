"""The ``segcodec encode`` command: one mask → one PaliGemma object."""

from __future__ import annotations

from pathlib import Path

import click

from paligemma_segcodec.cli.base import (
    RegularFile,
    checkpoint_option,
    codec_for,
    label_option,
    user_errors,
)


@click.command()
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
