"""Per-byte lookup tables of the bit-packed binary resize (``np.packbits`` order: MSB first).

Shared by `paligemma_segcodec.resize` (NumPy path) and `paligemma_segcodec._resize_numba` (compiled
path), which both import them from here, so neither imports the other at module level.
"""

from __future__ import annotations

import numpy as np

_POP = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)
# bit t (MSB first, as np.packbits) of byte b sits at pixel 8k + t: position sum within the byte
_POS = np.array([sum(t for t in range(8) if b >> (7 - t) & 1) for b in range(256)], dtype=np.int64)
_POP8 = _POP.astype(np.uint8)
_POS8 = _POS.astype(np.uint8)
_HEAD = np.array([[(b >> (8 - r)) << (8 - r) if r else 0 for r in range(8)] for b in range(256)], dtype=np.int64)
_HEAD_POP = _POP[_HEAD].astype(np.int32).reshape(-1)  # [byte * 8 + r]: popcount of the first r bits
_HEAD_POS = _POS[_HEAD].astype(np.int32).reshape(-1)  # [byte * 8 + r]: their position sum within the byte
