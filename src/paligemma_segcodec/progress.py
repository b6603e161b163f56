"""Progress of long loops: a tqdm bar on a terminal, a plain line every few seconds in a log.

`track` is what `segcodec convert`, `lint`, `audit`, `show`, `export` (and the library functions
behind them) wrap their loops in. When the stream (stderr by default) is a terminal it is a tqdm
bar; otherwise (a log file, a pipe, CI) no carriage-return bars are written, only a line such as
``convert: 120/300 img (40%), 35.2 img/s`` every `interval` seconds (env var
``SEGCODEC_PROGRESS_INTERVAL``, default 10 s). This module imports nothing of the package.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

__all__ = ["ENV_INTERVAL", "Progress", "interval", "track"]

T = TypeVar("T")

ENV_INTERVAL = "SEGCODEC_PROGRESS_INTERVAL"
"""Seconds between two plain progress lines when the stream is not a terminal (default 10)."""

DEFAULT_INTERVAL = 10.0

Progress = bool | Callable[..., Iterable[Any]]
"""What the ``progress=`` argument of the dataset functions takes: True (`track`), False (none),
or a callable with `track`'s signature ``(items, *, total, desc, unit) -> iterable``."""


def interval() -> float:
    """`ENV_INTERVAL` in seconds (a bad or negative value: the default)."""
    try:
        value = float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def track(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "img",
    enabled: bool = True,
    stream: IO[str] | None = None,
) -> Iterator[T]:
    """``items``, with progress reported on ``stream`` (default ``sys.stderr``) while they are consumed.

    Nothing is reported when ``enabled`` is false or there are fewer than two items. On a
    terminal: a tqdm bar. Elsewhere: ``desc: done/total unit (pct%), rate unit/s`` once every
    `interval` seconds (none for a loop shorter than that).
    """
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    out = sys.stderr if stream is None else stream
    if not enabled or (total is not None and total < 2):
        yield from items
        return
    if _is_tty(out):
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit=unit, file=out) as bar:
            for item in items:
                yield item
                bar.update(1)
        return
    every = interval()
    start = last = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= every:
            last = now
            print(_line(desc, done, total, unit, now - start), file=out, flush=True)


def _line(desc: str, done: int, total: int | None, unit: str, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f"{done}/{total} {unit} ({100 * done / total:.0f}%)" if total else f"{done} {unit}"
    return f"{desc + ': ' if desc else ''}{count}, {rate:.1f} {unit}/s"


def wrap(progress: Progress, items: Iterable[T], *, total: int | None = None, desc: str, unit: str = "img") -> Any:
    """``items`` under a dataset function's ``progress=`` argument (see `Progress`)."""
    if callable(progress):
        return progress(items, total=total, desc=desc, unit=unit)
    return track(items, total=total, desc=desc, unit=unit, enabled=bool(progress))
