"""Mask sources of the benchmarks: `synthetic_masks` and `load_masks` (used by `paligemma_segcodec.bench`
and `paligemma_segcodec.bench_stream`, which both import them from here)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["load_masks", "synthetic_masks"]


def synthetic_masks(n: int, seed: int = 0, *, max_side: int = 1200) -> list[npt.NDArray[np.bool_]]:
    """``n`` bool masks of mixed sizes (60..max_side per side): ellipses, rings and noisy blobs."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(60, max_side, 2))
        yy, xx = np.ogrid[:h, :w]
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.1, 0.45) * h, rng.uniform(0.1, 0.45) * w
        r = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        m = r < 1
        if rng.random() < 0.3:
            m &= r > 0.4
        out.append(m)
    return out


def load_masks(
    folder: str | os.PathLike[str], limit: int | None = None, threshold: int = 127
) -> list[npt.NDArray[np.bool_]]:
    """The non-empty masks of a folder (sorted by name), thresholded ``> threshold``."""
    from paligemma_segcodec.datasets.files import IMAGE_EXTENSIONS
    from paligemma_segcodec.maskio import binarize, read_mask_values

    out = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            m = binarize(read_mask_values(p), threshold)
            if m.any():
                out.append(m)
        if limit and len(out) >= limit:
            break
    return out
