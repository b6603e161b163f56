"""The VQ-VAE encoder and quantizer in float64 NumPy (host only, no JAX).

Used by `Codec` to settle near ties of the codebook argmin (see ``Codec.encode_indices``): float32
on a device sums in an order that depends on the batch shape, so where the best two codebook entries
are within float32 rounding of each other the answer would depend on the batch. float64 moves the
rounding ~9 orders of magnitude further away, and the host computes it the same way whatever the
batch, device or thread count.

Same math as `paligemma_segcodec.model.Encoder` (TF 'SAME' stride-2 convs + ReLU, residual blocks,
a final conv; input ``2x - 1``) read straight from the checkpoint's PyTorch layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.checkpoint import ConvWeights

__all__ = ["conv_same_f64", "distances_f64", "encode_latents_f64"]

F64 = npt.NDArray[np.float64]


def conv_same_f64(x: F64, conv: ConvWeights, stride: int) -> F64:
    """A conv with TensorFlow 'SAME' padding (the extra pixel at the bottom/right), float64.

    ``x`` ``[N, H, W, C]``, ``conv.weight`` PyTorch ``(O, C, kh, kw)`` → ``[N, ⌈H/s⌉, ⌈W/s⌉, O]``.
    """
    w = conv.weight.astype(np.float64)
    kh, kw = w.shape[2:]
    pads = [(0, 0)]
    for size, k in ((x.shape[1], kh), (x.shape[2], kw)):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    pads.append((0, 0))
    xp = np.pad(x, pads)
    # [N, oh', ow', C, kh, kw] windows, then every stride-th one
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    y = np.tensordot(win, w, axes=([3, 4, 5], [1, 2, 3]))
    return np.asarray(y + conv.bias.astype(np.float64), dtype=np.float64)


def encode_latents_f64(encoder: Sequence[tuple[ConvWeights, ...]], masks64: npt.ArrayLike) -> F64:
    """float ``[N, 64, 64]`` in [0, 1] → float64 latents ``[N, 16, D]`` (row-major over the 4×4 grid).

    ``encoder`` is `Checkpoint.encoder`: one tuple per layer, 1 conv (stride-2 + ReLU, or the last,
    plain) or 3 convs (a residual block).
    """
    h = 2.0 * np.asarray(masks64, dtype=np.float64)[..., None] - 1.0
    for n, layer in enumerate(encoder):
        if len(layer) == 3:
            r = np.maximum(conv_same_f64(h, layer[0], 1), 0.0)
            r = np.maximum(conv_same_f64(r, layer[1], 1), 0.0)
            h = h + conv_same_f64(r, layer[2], 1)
        elif n == len(encoder) - 1:
            h = conv_same_f64(h, layer[0], 1)
        else:
            h = np.maximum(conv_same_f64(h, layer[0], 2), 0.0)
    return h.reshape(h.shape[0], -1, h.shape[-1])


def distances_f64(z: npt.ArrayLike, codebook: npt.ArrayLike) -> F64:
    """Squared L2 distances ``[..., K]`` of latents ``[..., D]`` to codebook ``(K, D)``, float64.

    ``|z|² - 2 z·e + |e|²``, the reference's formula (its argmin, first on ties, is the index).
    """
    zz = np.asarray(z, dtype=np.float64)
    e = np.asarray(codebook, dtype=np.float64)
    return np.asarray(
        np.sum(zz * zz, axis=-1, keepdims=True) - 2.0 * (zz @ e.T) + np.sum(e * e, axis=-1), dtype=np.float64
    )
