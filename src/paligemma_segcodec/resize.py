"""Crop and antialiased bilinear resize, exactly as the reference (NumPy only, no JAX).

The reference encoder resizes the cropped mask to 64×64 with
``tf.image.resize(method="bilinear", antialias=True)``, i.e. TensorFlow's ``ScaleAndTranslate``
with a triangle kernel widened by the downscale factor. The same kernel (``jax.image.resize``'s
bilinear) pastes decoded 64×64 masks back into a box. Both are separable: a resize is
``Wy @ image @ Wx.T`` with two banded weight matrices that depend only on the sizes and are cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["resize", "resize_weights"]


@lru_cache(maxsize=4096)
def _resize_weights_cached(in_size: int, out_size: int) -> npt.NDArray[np.float32]:
    f32 = np.float32
    scale = f32(out_size) / f32(in_size)
    inv_scale = f32(1.0) / scale
    kernel_scale = max(inv_scale, f32(1.0))  # antialias: widen the kernel when downscaling
    x = np.arange(out_size, dtype=f32)
    sample = (x + f32(0.5)) * inv_scale
    start = np.clip(np.ceil(sample - kernel_scale - f32(0.5)), 0, in_size - 1).astype(np.int64)
    stop = np.clip(np.floor(sample + kernel_scale - f32(0.5)), 0, in_size - 1).astype(np.int64) + 1
    weights = np.zeros((out_size, in_size), dtype=f32)
    inv_kernel_scale = f32(1.0) / kernel_scale
    for j in range(out_size):
        if sample[j] < 0 or sample[j] > in_size:  # never true for a plain resize; kept as TF has it
            continue
        src = np.arange(start[j], stop[j], dtype=f32)
        w = np.maximum(f32(0.0), f32(1.0) - np.abs((src + f32(0.5) - sample[j]) * inv_kernel_scale))
        total = w.sum(dtype=f32)
        if abs(total) >= 1000.0 * np.finfo(f32).tiny:
            w = w * (f32(1.0) / total)
        weights[j, start[j] : stop[j]] = w
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
