"""``segcodec bench --stream``: masks streamed from disk through the converter, in a child process
(its peak RSS is the converter's alone)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from paligemma_segcodec.bench import synthetic_masks

__all__ = ["bench_stream"]


def _stream_items(masks_dir: Path, total: int, threshold: int) -> Iterator[Any]:
    from paligemma_segcodec.datasets.convert import Example
    from paligemma_segcodec.datasets.files import IMAGE_EXTENSIONS, extract_objects
    from paligemma_segcodec.maskio import read_mask_values

    files = [p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    for i in range(total):
        p = files[i % len(files)]
        objs, _ = extract_objects(read_mask_values(p), label="water", threshold=threshold, instances="whole")
        yield Example(f"{i:06d}_{p.name}", p, ("water",), tuple(objs))


def bench_stream(checkpoint: str | None, masks_dir: str | None, total: int) -> dict[str, Any]:
    """Streams ``total`` masks from disk through the converter in a child process; rate and peak RSS."""
    code = (
        "import json, sys; from paligemma_segcodec.bench_stream import _stream_child as f; "
        "print(json.dumps(f(*sys.argv[1:])))"
    )
    args = [sys.executable, "-c", code, str(checkpoint or ""), str(masks_dir or ""), str(total)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _stream_child(checkpoint: str, masks_dir: str, total: str) -> dict[str, Any]:
    import tempfile

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
        n = int(total)
        t0 = time.perf_counter()
        report = write_examples(_stream_items(folder, n, 127), Path(tmp) / "out.jsonl", codec=codec, progress=False)
        dt = time.perf_counter() - t0
    return {
        "masks": n,
        "objects": report.objects,
        "masks_per_s": n / dt,
        "seconds": dt,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
