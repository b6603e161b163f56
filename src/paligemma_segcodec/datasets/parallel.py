"""Reading and decoding files on a pool of threads, results in input order (no JAX).

The dataset tools (``convert``, ``lint``, ``audit``, ``eval``) spend most of their time in Pillow's
decoders, NumPy reductions and the compiled resize, all of which release the GIL; `ordered_map`
runs that per-item work on a few threads while the caller's thread encodes and writes. Results
come back in input order, so every output is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from paligemma_segcodec.safeio import check_stop

__all__ = ["WORKERS_HELP", "default_workers", "ordered_map", "resolve_workers"]

T = TypeVar("T")
R = TypeVar("R")

WORKERS_HELP = "Threads reading and decoding files (default: CPU count; 1 = no threads)."

_POLL_S = 0.25
"""How often a wait for a worker's result looks at the stop flag (`check_stop`)."""


def default_workers() -> int:
    """The number of CPUs this process may run on (its affinity mask where the OS has one, e.g.
    a container limited with ``taskset`` or cgroup cpusets), at least 1.

    The dataset tools use it when ``workers`` is None (``--workers`` not given).

    Returns:
      The CPU count (``os.sched_getaffinity``, else ``os.cpu_count()``), at least 1.

    Examples:
        >>> n = default_workers()
        >>> isinstance(n, int) and n >= 1
        True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None) -> int:
    """``workers`` checked (an int >= 1), or `default_workers` for None."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 (or None for the CPU count), got {workers!r}")
    return workers


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, prefetch: int | None = None
) -> Generator[R, None, None]:
    """``fn(item)`` for each item, computed on ``workers`` threads, yielded in input order.

    - ``items`` is consumed lazily (it may be a generator), in the caller's thread; at most
      ``prefetch`` items (default ``3 * workers``) are submitted and not yet yielded, so memory is
      bounded by that many results whatever the length of ``items``.
    - ``workers == 1`` runs ``fn`` in the caller's thread, no pool, no threads.
    - The stop flag (`paligemma_segcodec.safeio.check_stop`) is checked before each item is
      submitted and while waiting for a result; a worker does not start an item once a stop was
      requested. A stop raises ``KeyboardInterrupt`` / `Interrupted` in the caller.
    - An exception raised by ``fn`` (or by ``items``) is raised in the caller at that item's
      position: every earlier result is yielded first.
    - Closing the iterator early (``close()``, ``break`` then garbage collection, an exception in the
      consumer) cancels the items not started and waits for the running ones: no thread outlives it.

    ``fn`` runs concurrently with the caller and with itself: it must not touch shared mutable
    state (return what it found instead; the caller applies it in order).

    Args:
      fn: the per-item work (reading, decoding); it runs on the pool's threads.
      items: the inputs, any iterable (consumed lazily, in the caller's thread).
      workers: the number of threads, an int >= 1 (1: ``fn`` runs in the caller's thread).
      prefetch: the most items submitted and not yet yielded (default ``3 * workers``).

    Returns:
      A generator of ``fn(item)`` in input order. Nothing runs until it is iterated; close it
      (``contextlib.closing``) when stopping early.

    Raises:
      ValueError: ``workers`` or ``prefetch`` is not an int >= 1 (raised at the call, before
        anything runs). What ``fn`` or ``items`` raise comes out of the iteration, at that
        item's position.

    Examples:
        >>> from paligemma_segcodec.datasets.parallel import ordered_map
        >>> list(ordered_map(lambda n: n * n, range(6), workers=3))
        [0, 1, 4, 9, 16, 25]
        >>> from contextlib import closing
        >>> with closing(ordered_map(str.upper, iter(["a", "b", "c"]), workers=2, prefetch=1)) as results:
        ...     next(results)
        'A'
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if prefetch is not None and (isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1):
        raise ValueError(f"prefetch must be an int >= 1, got {prefetch!r}")
    if workers == 1:
        return _serial(fn, items)
    return _threaded(fn, items, workers, prefetch if prefetch is not None else 3 * workers)


def _serial(fn: Callable[[T], R], items: Iterable[T]) -> Generator[R, None, None]:
    for item in items:
        check_stop()
        yield fn(item)


def _run(fn: Callable[[T], R], item: T) -> R:
    check_stop()  # a stop was requested while this item waited: it is not started
    return fn(item)


def _result(future: Future[R]) -> R:
    while True:
        check_stop()
        try:
            return future.result(timeout=_POLL_S)
        except FutureTimeout:
            continue


def _threaded(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int) -> Generator[R, None, None]:
    source = iter(items)
    pending: deque[Future[R]] = deque()
    exhausted = False
    failed: Exception | None = None  # what ``items`` raised: raised after the results before it
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segcodec-read")
    try:
        while True:
            while not exhausted and len(pending) < window:
                check_stop()
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                except Exception as err:
                    failed, exhausted = err, True
                    break
                pending.append(pool.submit(_run, fn, item))
            if not pending:
                break
            yield _result(pending.popleft())
        if failed is not None:
            raise failed
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
