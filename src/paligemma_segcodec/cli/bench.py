"""The ``segcodec bench`` command: throughput on this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from paligemma_segcodec.cli.base import (
    checkpoint_option,
    clean,
    progress_enabled,
    user_errors,
)


@click.command()
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
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="A line per finished stage on stderr (off under --quiet: then only the warnings).",
)
@checkpoint_option
def bench(
    masks: Path | None,
    limit: int,
    batch: int,
    seconds: float,
    stream: int,
    only: str,
    progress: bool,
    checkpoint: Path | None,
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
            progress=sys.stderr if progress_enabled(progress) else None,
            checkpoint=checkpoint,
            masks_dir=masks,
            limit=limit,
            batch=batch,
            seconds=seconds,
            stream=stream,
            only=[s.strip() for s in only.split(",") if s.strip()],
        )
    if not progress_enabled(progress):  # the stage lines (and the warnings among them) were not shown
        for warning in result.get("warnings", []):
            click.echo(f"warning: {clean(warning)}", err=True)
    click.echo(json.dumps(result, indent=2))
