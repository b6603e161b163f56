"""``segcodec bench --stream``: masks streamed from disk through the converter, in a child process
(its peak RSS is the converter's alone).

The masks are read, their objects extracted and prepared for the encoder on ``workers`` threads
(`paligemma_segcodec.datasets.parallel.ordered_map`, as ``segcodec convert`` does), and encoded and
written in the child's main thread.
"""

from __future__ import annotations

import functools
import json
import resource
import subprocess
import sys
import time
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from paligemma_segcodec.bench_masks import synthetic_masks

__all__ = ["bench_stream"]


def _stream_item(job: tuple[int, Path], threshold: int) -> Any:
    """One mask's item, on a reading thread: `example_for_pair` (no image) and `prepare_example`,
    the per-item work of ``segcodec convert``."""
    from paligemma_segcodec.datasets.convert import Example, example_for_pair, prepare_example

    i, p = job
    item, _ = example_for_pair(
        None, p, labels=("water",), name=f"{i:06d}_{p.name}", label="water", threshold=threshold, instances="whole"
    )
    # image_path: the mask itself (nothing is placed in an images/ folder; None would mean in-memory)
    return prepare_example(replace(item, image_path=p)) if isinstance(item, Example) else item


def _stream_items(masks_dir: Path, total: int, threshold: int, workers: int = 1) -> Generator[Any, None, None]:
    """``total`` items cycling through the masks of ``masks_dir``, read on ``workers`` threads, in order."""
    from paligemma_segcodec.datasets.files import IMAGE_EXTENSIONS
    from paligemma_segcodec.datasets.parallel import ordered_map

    files = [p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    jobs = ((i, files[i % len(files)]) for i in range(total))
    return ordered_map(functools.partial(_stream_item, threshold=threshold), jobs, workers=workers)


def bench_stream(
    checkpoint: str | None, masks_dir: str | None, total: int, workers: int | None = None
) -> dict[str, Any]:
    """Streams ``total`` masks from disk through the converter in a child process; rate and peak RSS.

    ``workers``: reading threads (None: the CPU count, `default_workers`; 1: none).
    """
    from paligemma_segcodec.datasets.parallel import resolve_workers

    code = (
        "import json, sys; from paligemma_segcodec.bench_stream import _stream_child as f; "
        "print(json.dumps(f(*sys.argv[1:])))"
    )
    n_workers = resolve_workers(workers)
    args = [sys.executable, "-c", code, str(checkpoint or ""), str(masks_dir or ""), str(total), str(n_workers)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _stream_child(checkpoint: str, masks_dir: str, total: str, workers: str = "1") -> dict[str, Any]:
    import tempfile
    from contextlib import closing

    from paligemma_segcodec.codec import load_codec
    from paligemma_segcodec.datasets.convert import write_examples

    codec = load_codec(checkpoint or None)
    folder = Path(masks_dir) if masks_dir else None
    with tempfile.TemporaryDirectory() as tmp:
        if folder is None:
            from PIL import Image

            folder = Path(tmp) / "masks"
            folder.mkdir()
            for i, m in enumerate(synthetic_masks(200, seed=3)):
                Image.fromarray(m.astype(np.uint8) * 255).save(folder / f"m{i:04d}.png")
        n, n_workers = int(total), int(workers)
        t0 = time.perf_counter()
        with closing(_stream_items(folder, n, 127, n_workers)) as items:
            report = write_examples(items, Path(tmp) / "out.jsonl", codec=codec, progress=False)
        dt = time.perf_counter() - t0
    return {
        "workers": n_workers,
        "masks": n,
        "objects": report.objects,
        "masks_per_s": n / dt,
        "seconds": dt,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
