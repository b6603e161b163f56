"""What `show`, `eval` and `export` share: reading a predictions file and decoding each answer
for its image (names kept under ``--images``; unreadable images listed, never fatal)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from paligemma_segcodec.cli.base import (
    clean,
    progress_bar,
    record_convention,
)
from paligemma_segcodec.errors import SkippedObjectWarning


def predictions_of(path: Path) -> dict[str, str]:
    from paligemma_segcodec.datasets.evaluate import read_predictions

    return read_predictions(path)


def decoded(
    jobs: list[tuple[str, Path, Any]], codec: Any, convention: str, progress: bool, desc: str, skipped: list[Any]
) -> Iterator[tuple[Any, Any, list[Any]]]:
    """``(answer, image, key)`` jobs → ``(key, image as PIL, segments)``; an image that cannot be
    read goes to ``skipped`` (as a `Problem`) and the loop goes on."""
    from paligemma_segcodec.datasets.files import unreadable
    from paligemma_segcodec.safeio import check_stop

    for answer, image, key in progress_bar(jobs, desc, progress):
        check_stop()
        try:
            pil, segs = decode_for_image(answer, image, codec, convention)
        except (OSError, ValueError) as err:
            skipped.append(unreadable("image", str(image), err))
            continue
        yield key, pil, segs


def exit_if_skipped(skipped: list[Any]) -> None:
    """Lists the skipped items on stderr and exits with 1 when there are any."""
    if skipped:
        click.echo(f"skipped {len(skipped)} image(s):", err=True)
        for p in skipped:
            click.echo(f"  {clean(p.file)}: {clean(p.reason)}", err=True)
        raise SystemExit(1)


def decode_for_image(text: str, image: Path, codec: Any, convention: str) -> tuple[Any, list[Any]]:
    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.maskio import read_image

    pil = read_image(image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedObjectWarning)
        # 64x64 masks only: drawing and export paste each object inside its box.
        segs = decode_tokens(text, codec=codec, convention=record_convention(convention))
    for warning in caught:
        message = " ".join(str(warning.message).split())
        click.echo(f"warning: {clean(image.name)}: {clean(message[:500])}", err=True)
    return pil, segs


def image_jobs(
    preds: dict[str, str], images: Path, skipped: list[Any], option: str = "--predictions"
) -> list[tuple[str, Path, str]]:
    """``(answer, image path, name)`` for each prediction whose image name stays inside ``images``;
    a name that escapes it (absolute, ``..``, a symlink out) is listed in ``skipped``, never read."""
    from paligemma_segcodec.datasets.files import Problem
    from paligemma_segcodec.errors import UnsafePathError
    from paligemma_segcodec.safeio import resolve_under

    jobs = []
    for name, answer in preds.items():
        try:
            jobs.append((answer, resolve_under(images, name, what=f"{option} image"), name))
        except UnsafePathError as err:
            skipped.append(Problem(name, f"refused: {err}"))
    return jobs
