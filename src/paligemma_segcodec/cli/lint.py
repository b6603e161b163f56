"""The ``segcodec lint`` command: check a mask folder before converting it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from paligemma_segcodec.cli.base import (
    DIR,
    OUTFILE,
    clean,
    guard_outputs,
    progress_enabled,
    threshold_option,
    user_errors,
    workers_option,
)


class _HiddenArgument(click.Argument):
    """A positional argument left out of the usage line (a deprecated form still accepted)."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


@click.command()
@click.argument("folder", type=DIR, required=False, cls=_HiddenArgument)
@click.option("--images", type=DIR, default=None, help="Folder of images.  [required]")
@click.option("--masks", type=DIR, default=None, help="Folder of masks, matched to images by file stem.  [required]")
@threshold_option
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
@workers_option
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
      segcodec lint --images water/images --masks water/masks
    """
    from paligemma_segcodec.datasets.lint import lint_folder
    from paligemma_segcodec.safeio import atomic_write

    if folder is not None:
        click.echo(
            f"warning: 'segcodec lint FOLDER' is deprecated and goes away in the next release: use "
            f"--images {clean(folder / 'images')} --masks {clean(folder / 'masks')}",
            err=True,
        )
        images = images or folder / "images"
        masks = masks or folder / "masks"
        for what, path in (("--images", images), ("--masks", masks)):
            if not path.is_dir():
                raise click.UsageError(f"{what}: folder '{clean(path)}' does not exist (give an existing folder)")
    if images is None or masks is None:
        raise click.UsageError("give --images DIR and --masks DIR (the folders of images and of masks)")
    guard = guard_outputs([("--json", json_out)], [], [images, masks])
    with user_errors():
        report = lint_folder(
            images,
            masks,
            threshold=threshold,
            min_area=min_area,
            full_fraction=full_fraction,
            progress=progress_enabled(progress),
            workers=workers,
        )
    click.echo(report.table())
    if json_out is not None:
        with atomic_write(json_out, guard=guard) as f:
            f.write(json.dumps(report.to_json(), indent=2) + "\n")
    if (fail_on == "error" and report.errors) or (fail_on == "warning" and report.problems):
        sys.exit(1)
