"""Crop and antialiased bilinear resize, exactly as the reference (NumPy only, no JAX).

The reference encoder resizes the cropped mask to 64×64 with
``tf.image.resize(method="bilinear", antialias=True)``, i.e. TensorFlow's ``ScaleAndTranslate``
with a triangle kernel widened by the downscale factor. The same kernel (``jax.image.resize``'s
bilinear) pastes decoded 64×64 masks back into a box. Both are separable: a resize is
``Wy @ image @ Wx.T`` with two banded weight matrices that depend only on the sizes and are cached.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType

import numpy as np
import numpy.typing as npt

from paligemma_segcodec._bit_tables import _HEAD_POP, _HEAD_POS, _POP8, _POS8
from paligemma_segcodec.errors import SlowPathWarning

__all__ = ["resize", "resize_weights"]


@lru_cache(maxsize=512)
def _spans(
    in_size: int, out_size: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """TF's ComputeSpans, vectorized over outputs: sample points (float32), each output's first input
    index, the normalized triangle weights ``(out_size, span)`` (float32; zero past the span's end)
    and the float32 factor each row was normalized by (1 where TF leaves it)."""
    f32 = np.float32
    scale = f32(out_size) / f32(in_size)
    inv_scale = f32(1.0) / scale
    kernel_scale = max(inv_scale, f32(1.0))  # antialias: widen the kernel when downscaling
    sample = (np.arange(out_size, dtype=f32) + f32(0.5)) * inv_scale
    start = np.clip(np.ceil(sample - kernel_scale - f32(0.5)), 0, in_size - 1).astype(np.int64)
    stop = np.clip(np.floor(sample + kernel_scale - f32(0.5)), 0, in_size - 1).astype(np.int64) + 1
    src = start[:, None] + np.arange(int((stop - start).max()))[None, :]
    inside = (src < stop[:, None]) & ((sample >= 0) & (sample <= in_size))[:, None]  # TF skips samples outside
    w = np.maximum(
        f32(0.0), f32(1.0) - np.abs((src.astype(f32) + f32(0.5) - sample[:, None]) * (f32(1.0) / kernel_scale))
    )
    w = np.where(inside, w, f32(0.0))
    total = np.cumsum(w, axis=1, dtype=f32)[:, -1]  # sequential float32 sum, as TF's loop
    norm = np.abs(total) >= 1000.0 * np.finfo(f32).tiny
    factor = np.ones(out_size, f32)
    factor[norm] = f32(1.0) / total[norm]
    w *= factor[:, None]
    for a in (sample, start, w, factor):
        a.setflags(write=False)
    return sample, start, w, factor


@lru_cache(maxsize=256)
def _resize_weights_cached(in_size: int, out_size: int) -> npt.NDArray[np.float32]:
    _, start, w, _ = _spans(in_size, out_size)
    weights = np.zeros((out_size, in_size), dtype=np.float32)
    src = start[:, None] + np.arange(w.shape[1])[None, :]
    keep = src < in_size
    rows = np.broadcast_to(np.arange(out_size)[:, None], src.shape)
    weights[rows[keep], src[keep]] = w[keep]
    weights.setflags(write=False)
    return weights


def resize_weights(in_size: int, out_size: int) -> npt.NDArray[np.float32]:
    """The ``(out_size, in_size)`` float32 weight matrix of TF's antialiased bilinear resize along one axis.

    Row ``j`` holds the normalized triangle-kernel weights of output sample ``j``; each row has
    about ``2 * max(1, in_size / out_size)`` non-zeros. Cached; the returned array is read-only.
    """
    if in_size <= 0 or out_size <= 0:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    return _resize_weights_cached(int(in_size), int(out_size))


def resize(image: npt.ArrayLike, height: int, width: int) -> npt.NDArray[np.float32]:
    """Antialiased bilinear resize of a 2-D array to ``(height, width)``, float32.

    Matches ``tf.image.resize(x, (height, width), "bilinear", antialias=True)`` (and
    ``jax.image.resize(x, shape, "bilinear")``) to float32 rounding.

    Examples:
        >>> resize(np.ones((5, 7)), 3, 2).round(6).tolist()
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {img.shape}")
    h, w = img.shape
    wy = resize_weights(h, height)
    wx = resize_weights(w, width)
    img32 = img.astype(np.float32, copy=False)
    # Reduce the larger side first so the intermediate is small.
    if h * width <= w * height:
        return np.asarray(wy @ (img32 @ wx.T), dtype=np.float32)
    return np.asarray((wy @ img32) @ wx.T, dtype=np.float32)


# --- Fast path for binary masks -------------------------------------------------------------------
#
# Along one axis, output j of the triangle-kernel resize is sum_x w_j(x) m(x) over its span, where
# w_j(x) = (1 - |x + 0.5 - s_j| / k) * f_j (f_j: TF's float32 normalization factor) is linear in x
# on each side of the sample point s_j. So output j needs only the prefix sums
# S0(X) = sum_{x<X} m(x) and S1(X) = sum_{x<X} x m(x) at three cut points (span start, first x right
# of s_j, span end). For a binary mask both sums are exact integers, computed on 8-pixel bytes
# (np.packbits) with per-byte lookup tables: a fraction of a pass over the mask. Everything is
# linear, so the rows are reduced first (each row, with its row weights, into the few output rows
# whose span covers it), and the column cut points are combined last, on the (64, 2P) result.


@lru_cache(maxsize=256)
def _linear_plan(in_size: int, out_size: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Cut points ``(out, 3)`` (span start, split, span end) and coefficients ``(out, 4)`` such that
    ``out_j = a_l * S0[l:m] + b_l * S1[l:m] + a_r * S0[m:e] + b_r * S1[m:e]`` (float64)."""
    sample32, first, w, factor = _spans(in_size, out_size)
    k = float(max(np.float32(1.0) / (np.float32(out_size) / np.float32(in_size)), np.float32(1.0)))
    s = sample32.astype(np.float64)
    nonzero = w != 0
    has = nonzero.any(axis=1)
    start = np.where(has, first + nonzero.argmax(axis=1), 0)
    stop = np.where(has, first + w.shape[1] - nonzero[:, ::-1].argmax(axis=1), 0)
    # TF's weights are the triangle times its float32 normalization factor (1 / the float32 sum of
    # the triangle): use that factor, so the exact-sum path rounds like the reference does.
    scale = factor.astype(np.float64)
    split = np.clip(np.ceil(s - 0.5), start, stop).astype(np.int64)
    # left of s_j: 1 - (s - x - 0.5)/k = (1 - (s - 0.5)/k) + x/k ; right: 1 - (x + 0.5 - s)/k = (1 + (s - 0.5)/k) - x/k
    cuts = np.stack([start, split, stop], axis=1).astype(np.int64)
    coef = np.stack([(1 - (s - 0.5) / k) * scale, scale / k, (1 + (s - 0.5) / k) * scale, -scale / k], axis=1)
    return cuts, coef


def _apply_plan(
    s0: npt.NDArray[np.float64], s1: npt.NDArray[np.float64], cuts: npt.NDArray[np.int64], coef: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Combines prefix sums (``(..., n + 1)``, last axis) at the cut points → ``(..., out)``."""
    a, m, e = cuts[:, 0], cuts[:, 1], cuts[:, 2]
    left0, left1 = s0[..., m] - s0[..., a], s1[..., m] - s1[..., a]
    right0, right1 = s0[..., e] - s0[..., m], s1[..., e] - s1[..., m]
    return coef[:, 0] * left0 + coef[:, 1] * left1 + coef[:, 2] * right0 + coef[:, 3] * right1


def _binary_prefix_sums(
    mask: npt.NDArray[np.bool_], points: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """S0, S1 of each row of a bool ``(h, w)`` array at the sorted cut ``points``: ``(h, P)`` each."""
    packed = np.packbits(mask, axis=1)  # (h, ceil(w / 8)), MSB first
    h, nb = packed.shape
    acc = np.int32 if mask.shape[1] < 46000 else np.int64  # S1 <= w^2 / 2 must fit
    pop = _POP8[packed]
    c0 = np.zeros((h, nb + 1), acc)
    np.cumsum(pop, axis=1, dtype=acc, out=c0[:, 1:])
    weighted = np.multiply(pop, np.arange(0, 8 * nb, 8, dtype=acc), dtype=acc)
    weighted += _POS8[packed]
    c1 = np.zeros((h, nb + 1), acc)
    np.cumsum(weighted, axis=1, out=c1[:, 1:])
    byte, rem = points // 8, points % 8
    s0 = c0[:, byte]
    s1 = c1[:, byte]
    partial = rem > 0
    if partial.any():  # add the first `rem` bits of each cut byte, through one flat table lookup each
        bp = byte[partial]
        flat = packed[:, np.minimum(bp, nb - 1)].astype(np.int32) * 8 + rem[partial].astype(np.int32)
        head0 = _HEAD_POP[flat]
        s0[:, partial] += head0
        s1[:, partial] += _HEAD_POS[flat] + (8 * bp).astype(acc) * head0
    return s0.astype(np.float64), s1.astype(np.float64)


def resize_binary(mask: npt.ArrayLike, height: int, width: int) -> npt.NDArray[np.float32]:
    """`resize` for a bool mask, in a fraction of a pass over its pixels (same result to ~1e-6).

    Prefix sums along each row come from the bit-packed mask (exact integers, on 8-pixel bytes);
    they are reduced over rows with the cached row weights, then combined at the column cut points.
    The row loop runs compiled (numba, a dependency), or in NumPy when numba cannot be imported or
    ``PALIGEMMA_SEGCODEC_NUMBA=0``; both give the same float64 sums up to summation order.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {m.shape}")
    h, w = m.shape
    points, index, coef_x = _column_plan(w, width)
    kernel = _numba_kernel()
    if kernel is None:
        reduced = _row_reduce_numpy(m, points, h, height)
        n = len(points)
        out = _apply_plan(reduced[:, :n], reduced[:, n:], index, coef_x)
    else:
        wy, ystart, ystop = _row_plan(h, height)  # compact: wy[i, r - ystart[i]]
        packed = np.packbits(m, axis=1)
        out = kernel(packed, points, index, coef_x, wy, ystart, ystop)
    return np.ascontiguousarray(out, dtype=np.float32)


def _row_reduce_numpy(
    m: npt.NDArray[np.bool_], points: npt.NDArray[np.int64], h: int, height: int
) -> npt.NDArray[np.float64]:
    """``Wy @ [S0 | S1]`` in NumPy: ``(height, 2P)`` float64."""
    s0, s1 = _binary_prefix_sums(m, points)  # (h, P) each
    # Everything is linear: reduce the rows first, then the caller combines the column cut points.
    # Each output row takes only its span of input rows (compact weights, zero past the span's end):
    # one gather and einsum's own loops, not a BLAS matmul, whose thread pool collapses on a busy
    # machine (30 ms instead of 1 ms per mask measured with OpenBLAS's default threads).
    wy, ystart, _ = _row_plan(h, height)
    rows = np.minimum(ystart[:, None] + np.arange(wy.shape[1]), h - 1)
    sums = np.concatenate([s0, s1], axis=1)
    out: npt.NDArray[np.float64] = np.einsum("is,isp->ip", wy, sums[rows])
    return out


_NUMBA: list[ModuleType | None] = []


def _numba_module() -> ModuleType | None:
    """`paligemma_segcodec._resize_numba` (the compiled loops), or None with ``PALIGEMMA_SEGCODEC_NUMBA=0``
    or when numba cannot be imported (then once a `SlowPathWarning` says so)."""
    if not _NUMBA:
        module: ModuleType | None = None
        if os.environ.get("PALIGEMMA_SEGCODEC_NUMBA", "1") != "0":
            try:
                from paligemma_segcodec import _resize_numba
            except ImportError as err:  # numba is a dependency: a broken or unsupported install
                warnings.warn(
                    f"numba could not be imported ({err}): the host-side resize runs in NumPy, about 3-5x "
                    "slower (same tokens); reinstall numba (pip install numba) to get the compiled path, "
                    "or set PALIGEMMA_SEGCODEC_NUMBA=0 to choose the NumPy path without this notice",
                    SlowPathWarning,
                    stacklevel=3,
                )
            else:
                module = _resize_numba
        _NUMBA.append(module)
    return _NUMBA[0]


def _numba_kernel() -> Callable[..., npt.NDArray[np.float64]] | None:
    """The compiled resize loop, or None (see `_numba_module`)."""
    module = _numba_module()
    return None if module is None else module.resize_packed


@lru_cache(maxsize=256)
def _row_plan(
    in_size: int, out_size: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Compact row weights for the compiled loop: output row ``i`` takes input rows
    ``start[i]:stop[i]`` with weights ``w[i, :stop[i] - start[i]]`` (float64; both bounds non-decreasing)."""
    _, start, w, _ = _spans(in_size, out_size)
    stop = np.minimum(start + w.shape[1], in_size)
    return w.astype(np.float64), start.copy(), stop


@lru_cache(maxsize=256)
def _column_plan(
    in_size: int, out_size: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """`_linear_plan` with its sorted unique cut points and each cut's index among them."""
    cuts, coef = _linear_plan(in_size, out_size)
    points = np.unique(cuts)
    return points, np.searchsorted(points, cuts).astype(np.int64), coef
