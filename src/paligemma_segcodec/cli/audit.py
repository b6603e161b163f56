"""The ``segcodec audit`` command: how well the codec reproduces each mask."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from paligemma_segcodec.cli.base import (
    DIR,
    checkpoint_option,
    clean,
    codec_for,
    guard_outputs,
    info,
    label_option,
    output_option,
    progress_enabled,
    threshold_option,
    user_errors,
    workers_option,
)

AUDIT_FILES = ("audit.csv", "summary.json", "histogram.png", "worst.png")


@click.command()
@click.option("--images", type=DIR, required=True, help="Folder of images.")
@click.option("--masks", type=DIR, required=True, help="Folder of masks, matched by stem.")
@output_option(type=click.Path(file_okay=False, path_type=Path), required=True, dest="out_dir", help="Report folder.")
@functools.partial(label_option, default="object", help="Label of the objects.")
@threshold_option
@click.option("--instances", type=click.Choice(["components", "whole"]), default="components", show_default=True)
@click.option("--min-area", default=16, show_default=True, help="Skip components with fewer pixels.")
@click.option("--worst", default=16, show_default=True, help="Objects in the contact sheet of the worst.")
@workers_option
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
            progress=progress_enabled(progress),
            workers=workers,
        )
    click.echo(f"{'label':<12} {'count':>6} {'mean':>6} {'median':>6} {'q10':>6} {'q90':>6}")
    for name, s in report.summary().items():
        click.echo(
            f"{name:<12} {int(s['count']):>6} {s['mean']:>6.3f} {s['median']:>6.3f} {s['q10']:>6.3f} {s['q90']:>6.3f}"
        )
    for p in report.skipped:
        click.echo(f"skipped {clean(p.file)}: {clean(p.reason)}", err=True)
    info(f"wrote {out_dir}/audit.csv, summary.json, histogram.png, worst.png")
    if any(p.severity == "error" for p in report.skipped):
        raise SystemExit(1)
