"""The compiled loops of the host prep: `resize.resize_binary`'s row loop and the tight-box scan (numba).

Same arithmetic as the NumPy path in `resize`, fused into one pass over the bit-packed rows:
for each row, the integer prefix sums S0 (set pixels) and S1 (their column positions) at the
column cut points, from per-byte popcount / position-sum tables; then the row is added, with its
float64 row weights, into the (at most a few) output rows whose span covers it. Only this module
imports numba; `resize` falls back to NumPy (with one `SlowPathWarning`) when it cannot be imported.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

# The per-byte tables of `resize` (MSB first, as np.packbits): numba freezes them into the code.
from paligemma_segcodec._bit_tables import _HEAD_POP, _HEAD_POS, _POP, _POS


@numba.njit(cache=True, nogil=True)
def _row_sums(
    row: npt.NDArray[np.uint8],
    nb: int,
    points: npt.NDArray[np.int64],
    n_points: int,
    cum0: npt.NDArray[np.int64],
    cum1: npt.NDArray[np.int64],
    sums: npt.NDArray[np.float64],
) -> None:  # pragma: no cover - compiled
    """S0 and S1 of one packed row at the cut points, into ``sums`` (``[S0 | S1]``)."""
    a0 = 0
    a1 = 0
    for k in range(nb):
        b = row[k]
        c = _POP[b]
        a0 += c
        a1 += 8 * k * c + _POS[b]
        cum0[k + 1] = a0
        cum1[k + 1] = a1
    for j in range(n_points):
        p = points[j]
        byte = p >> 3
        rem = p & 7
        v0 = cum0[byte]
        v1 = cum1[byte]
        if rem:
            f = np.int64(row[byte]) * 8 + rem
            hp = _HEAD_POP[f]
            v0 += hp
            v1 += _HEAD_POS[f] + 8 * byte * hp
        sums[j] = v0
        sums[n_points + j] = v1


@numba.njit(cache=True, nogil=True)
def resize_packed(
    packed: npt.NDArray[np.uint8],
    points: npt.NDArray[np.int64],
    index: npt.NDArray[np.int64],
    coef: npt.NDArray[np.float64],
    wy: npt.NDArray[np.float64],
    ystart: npt.NDArray[np.int64],
    ystop: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:  # pragma: no cover - compiled; checked against the NumPy path in tests
    """The resized mask, float64 ``(out_h, out_w)``, from its packed ``(h, nb)`` rows.

    ``Wy @ [S0 | S1]`` at the sorted column cut ``points`` ``(P,)``, then each output column ``k``
    combines cut points ``index[k]`` (span start, split, span end) with ``coef[k]`` (see
    ``resize._linear_plan``).
    Output row ``i`` takes input rows ``ystart[i]:ystop[i]`` (both non-decreasing in ``i``) with
    weights ``wy[i, r - ystart[i]]`` (``wy`` ``(out_h, span)``).
    """
    h, nb = packed.shape
    n_points = points.shape[0]
    out_h = wy.shape[0]
    out = np.zeros((out_h, 2 * n_points))
    sums = np.zeros(2 * n_points)
    cum0 = np.zeros(nb + 1, np.int64)
    cum1 = np.zeros(nb + 1, np.int64)
    first = 0
    for r in range(h):
        row = packed[r]
        same = r > 0
        if same:  # masks repeat rows often (a fifth of the water masks' rows): reuse the sums
            prev = packed[r - 1]
            for k in range(nb):
                if row[k] != prev[k]:
                    same = False
                    break
        if not same:
            _row_sums(row, nb, points, n_points, cum0, cum1, sums)
        while first < out_h and ystop[first] <= r:
            first += 1
        i = first
        while i < out_h and ystart[i] <= r:
            if r >= ystop[i]:
                i += 1
                continue
            weight = wy[i, r - ystart[i]]
            if weight != 0.0:
                for k in range(2 * n_points):
                    out[i, k] += weight * sums[k]
            i += 1
    result = np.empty((out_h, index.shape[0]))
    for i in range(out_h):
        for k in range(index.shape[0]):
            a = index[k, 0]
            m = index[k, 1]
            e = index[k, 2]
            left0 = out[i, m] - out[i, a]
            left1 = out[i, n_points + m] - out[i, n_points + a]
            right0 = out[i, e] - out[i, m]
            right1 = out[i, n_points + e] - out[i, n_points + m]
            result[i, k] = coef[k, 0] * left0 + coef[k, 1] * left1 + coef[k, 2] * right0 + coef[k, 3] * right1
    return result


@numba.njit(cache=True, nogil=True)
def nonzero_bounds(mask: npt.NDArray[np.bool_]) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """``(top, left, bottom, right)`` (inclusive) of the non-zero pixels of a bool ``(h, w)`` array,
    ``(-1, -1, -1, -1)`` when there is none. Scans with early exits: the first and last non-empty
    rows from each end, then per row in between only the columns outside the bounds found so far
    (about the area outside the box, instead of two full passes)."""
    h, w = mask.shape
    top = -1
    left = w
    right = -1
    for r in range(h):
        for c in range(w):
            if mask[r, c]:
                top = r
                left = c
                break
        if top >= 0:
            break
    if top < 0:
        return -1, -1, -1, -1
    bottom = top
    for r in range(h - 1, top - 1, -1):
        found = False
        for c in range(w - 1, -1, -1):
            if mask[r, c]:
                right = max(right, c)
                found = True
                break
        if found:
            bottom = r
            break
    for r in range(top, bottom + 1):
        for c in range(left):
            if mask[r, c]:
                left = c
                break
        for c in range(w - 1, right, -1):
            if mask[r, c]:
                right = c
                break
    return top, left, bottom, right
