"""The VQ-VAE encoder and decoder in Flax, with the reference's math.

- Encoder (big_vision ``pp/proj/paligemma/segmentation.py``): input float ``[B, 64, 64, 1]`` in
  [0, 1], mapped to [-1, 1] by ``2x - 1``; stride-2 convs with TensorFlow 'SAME' padding
  (asymmetric when the kernel is odd) + ReLU; residual blocks (3×3 conv, ReLU, 3×3 conv, ReLU,
  1×1 conv, + input); a 1×1 conv to ``[B, 4, 4, D]``.
- Quantizer: the codebook index with the smallest squared L2 distance (first on ties).
- Decoder (big_vision ``evaluators/proj/paligemma/transfers/segmentation.py``): codebook vectors
  ``[B, 4, 4, D]`` → 1×1 conv + ReLU, residual blocks, stride-2 transposed convs + ReLU
  (PyTorch ``ConvTranspose2d`` semantics, output twice the input: 'SAME'), 1×1 conv →
  ``[B, 64, 64, 1]`` raw logits (threshold at 0 for a mask).

The transposed convs run as sub-pixel convolutions: one ordinary conv computes the four output
phases of a stride-2 transposed conv, then they are interleaved. This is the same arithmetic as
the transposed conv without multiplying the inserted zeros (XLA's CPU transposed conv does).

Every array in `params_from_checkpoint` is computed from the PyTorch layout in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from paligemma_segcodec.checkpoint import Checkpoint, ConvWeights

__all__ = [
    "Decoder",
    "Encoder",
    "ModelConfig",
    "PointwiseConv",
    "SpaceToDepthConv",
    "SubpixelPlan",
    "interleave_phases",
    "params_from_checkpoint",
    "quantize",
    "strided_conv_s2d",
    "subpixel_plan",
]

HIGHEST = jax.lax.Precision.HIGHEST
Kernel = tuple[int, int]
Params = dict[str, Any]


@dataclass(frozen=True)
class SubpixelPlan:
    """How a 1-D stride-2 'SAME' transposed conv of kernel size ``k`` splits into two phases.

    Output ``2m + r`` (phase ``r``) is a correlation of the input window starting at ``m + start[r]``
    with ``taps`` weights; ``tap_index[r][j]`` is the transposed-conv tap used at window position
    ``j`` (-1: zero). The input is padded by ``pad`` = (lo, hi) before the correlation.
    """

    taps: int
    start: tuple[int, int]
    tap_index: tuple[tuple[int, ...], tuple[int, ...]]
    pad: tuple[int, int]


def subpixel_plan(k: int) -> SubpixelPlan:
    """The `SubpixelPlan` of a stride-2 transposed conv with kernel ``k`` and 'SAME' output (2× input).

    PyTorch/TF semantics: ``out[2i - p + t] += x[i] * w[t]``, where ``p = k - 1 - pad_a`` and
    ``pad_a`` is the left padding ``lax.conv_transpose(..., padding="SAME")`` puts on the dilated input.
    """
    s = 2
    pad_a = k - 1 if s > k - 1 else -(-(k + s - 2) // 2)
    p = k - 1 - pad_a
    offsets: list[dict[int, int]] = []
    for r in range(s):
        # o = 2m + r = 2i - p + t  =>  i = m + (r + p - t) / 2 for taps t of matching parity.
        offsets.append({(r + p - t) // 2: t for t in range(k) if (r + p - t) % 2 == 0})
    starts = [min(o) if o else 0 for o in offsets]
    taps = max((max(o) - min(o) + 1) if o else 1 for o in offsets)
    tap_index = tuple(
        tuple(o.get(start + j, -1) for j in range(taps)) for o, start in zip(offsets, starts, strict=True)
    )
    pad_lo = max(0, -min(starts))
    pad_hi = max(0, max(start + taps - 1 for start in starts))
    return SubpixelPlan(
        taps=taps,
        start=(starts[0], starts[1]),
        tap_index=(tap_index[0], tap_index[1]),
        pad=(pad_lo, pad_hi),
    )


def _subpixel_kernel(conv: ConvWeights) -> npt.NDArray[np.float32]:
    """PyTorch transposed-conv weight ``(in, out, k, k)`` → sub-pixel kernel ``(T, T, in, 4 * out)``.

    Output channel block ``2 * ry + rx`` holds phase ``(ry, rx)``.
    """
    k = conv.kernel_size[0]
    plan = subpixel_plan(k)
    cin, cout = conv.in_channels, conv.out_channels
    kernel = np.zeros((plan.taps, plan.taps, cin, 4 * cout), np.float32)
    for ry in range(2):
        for rx in range(2):
            block = slice((2 * ry + rx) * cout, (2 * ry + rx + 1) * cout)
            for jy, ty in enumerate(plan.tap_index[ry]):
                for jx, tx in enumerate(plan.tap_index[rx]):
                    if ty >= 0 and tx >= 0:
                        kernel[jy, jx, :, block] = conv.weight[:, :, ty, tx]
    return kernel


@dataclass(frozen=True)
class ModelConfig:
    """Layer shapes read from a checkpoint: (features, (kh, kw)) per conv."""

    enc_down: tuple[tuple[int, Kernel], ...]
    enc_res: tuple[tuple[tuple[int, Kernel], ...], ...]
    enc_out: tuple[int, Kernel]
    dec_in: tuple[int, Kernel]
    dec_res: tuple[tuple[tuple[int, Kernel], ...], ...]
    dec_up: tuple[tuple[int, int], ...]  # (features, k) of each stride-2 transposed conv
    dec_out: tuple[int, Kernel]
    codebook_size: int
    embedding_dim: int


def _conv_params(conv: ConvWeights) -> dict[str, npt.NDArray[np.float32]]:
    # PyTorch (out, in, kh, kw) -> Flax (kh, kw, in, out)
    return {"kernel": np.ascontiguousarray(conv.weight.transpose(2, 3, 1, 0)), "bias": conv.bias}


def _spec(conv: ConvWeights) -> tuple[int, Kernel]:
    return (conv.out_channels, conv.kernel_size)


def params_from_checkpoint(ckpt: Checkpoint) -> tuple[ModelConfig, Params]:
    """The one conversion from the checkpoint's PyTorch layout to the Flax modules' parameters.

    Returns ``(config, params)`` with ``params = {"encoder": …, "decoder": …, "codebook": (K, D)}``
    (NumPy float32; the codec moves them to the device).
    """
    enc, dec = ckpt.encoder, ckpt.decoder
    down = [layer[0] for layer in enc if len(layer) == 1][:-1]
    enc_res = [layer for layer in enc if len(layer) == 3]
    enc_params: Params = {f"down_{i}": _conv_params(c) for i, c in enumerate(down)}
    for i, block in enumerate(enc_res):
        enc_params[f"res_{i}"] = {f"conv_{j}": _conv_params(c) for j, c in enumerate(block)}
    enc_params["out"] = _conv_params(enc[-1][0])

    dec_res = [layer for layer in dec if len(layer) == 3]
    ups = [layer[0] for layer in dec if len(layer) == 1 and layer[0].transposed]
    dec_params: Params = {"in": _conv_params(dec[0][0])}
    for i, block in enumerate(dec_res):
        dec_params[f"res_{i}"] = {f"conv_{j}": _conv_params(c) for j, c in enumerate(block)}
    for i, up in enumerate(ups):
        dec_params[f"up_{i}"] = {"kernel": _subpixel_kernel(up), "bias": np.tile(up.bias, 4)}
    dec_params["out"] = _conv_params(dec[-1][0])

    config = ModelConfig(
        enc_down=tuple(_spec(c) for c in down),
        enc_res=tuple(tuple(_spec(c) for c in block) for block in enc_res),
        enc_out=_spec(enc[-1][0]),
        dec_in=_spec(dec[0][0]),
        dec_res=tuple(tuple(_spec(c) for c in block) for block in dec_res),
        dec_up=tuple((u.out_channels, u.kernel_size[0]) for u in ups),
        dec_out=_spec(dec[-1][0]),
        codebook_size=int(ckpt.codebook.shape[0]),
        embedding_dim=int(ckpt.codebook.shape[1]),
    )
    return config, {"encoder": enc_params, "decoder": dec_params, "codebook": ckpt.codebook}


class PointwiseConv(nn.Module):
    """A 1×1 stride-1 conv as one matmul over the channels; same parameters as `nn.Conv`
    (``kernel`` ``(1, 1, C, F)``, ``bias`` ``(F,)``). ``[..., C]`` → ``[..., F]``.

    Same sums as the conv; XLA's CPU backend runs the matmul about twice as fast.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.zeros, (1, 1, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        y = jnp.dot(x.reshape(-1, x.shape[-1]), kernel[0, 0], precision=HIGHEST)
        return y.reshape(*x.shape[:-1], self.features) + bias


def _conv(spec: tuple[int, Kernel], name: str, strides: int = 1) -> nn.Module:
    if spec[1] == (1, 1) and strides == 1:
        return PointwiseConv(spec[0], name=name)
    return nn.Conv(spec[0], spec[1], strides=strides, padding="SAME", precision=HIGHEST, name=name)


class ResBlock(nn.Module):
    """``x + conv(relu(conv(relu(conv(x)))))``, all 'SAME', stride 1."""

    convs: tuple[tuple[int, Kernel], ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for j, spec in enumerate(self.convs):
            h = _conv(spec, f"conv_{j}")(h)
            if j < len(self.convs) - 1:
                h = nn.relu(h)
        return x + h


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, bias: jax.Array, k: int) -> jax.Array:
    """Applies a stride-2 'SAME' transposed conv given as a sub-pixel kernel (see `SubpixelConvTranspose`).

    ``x`` ``[B, n, n, C_in]``, ``kernel`` ``(T, T, C_in, 4 * F)``, ``bias`` ``(4 * F,)`` → ``[B, 2n, 2n, F]``.
    """
    plan = subpixel_plan(k)
    f = kernel.shape[-1] // 4
    y = jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1, 1),
        padding=(plan.pad, plan.pad),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=HIGHEST,
    )
    return interleave_phases(y + bias, plan, x.shape[1], f)


def interleave_phases(y: jax.Array, plan: SubpixelPlan, n: int, f: int) -> jax.Array:
    """The sub-pixel conv's output ``[B, n + …, n + …, 4 * f]`` → ``[B, 2n, 2n, f]``: phase ``(ry, rx)``
    (channel block ``2 * ry + rx``, window offset ``plan.start``) fills pixels ``(2m + ry, 2q + rx)``."""
    lo = plan.pad[0]
    rows = []
    for ry in range(2):
        cols = []
        for rx in range(2):
            p = 2 * ry + rx
            oy, ox = plan.start[ry] + lo, plan.start[rx] + lo
            cols.append(y[:, oy : oy + n, ox : ox + n, p * f : (p + 1) * f])
        rows.append(jnp.stack(cols, axis=3))  # [B, n, n, 2(rx), f]
    z = jnp.stack(rows, axis=2)  # [B, n(m), 2(ry), n(q), 2(rx), f]
    return z.reshape(y.shape[0], 2 * n, 2 * n, f)


class SubpixelConvTranspose(nn.Module):
    """Stride-2 'SAME' transposed conv (PyTorch ``ConvTranspose2d`` semantics) as a sub-pixel conv.

    ``[B, n, n, C_in]`` → ``[B, 2n, 2n, features]``. Parameters: ``kernel`` ``(T, T, C_in, 4 * features)``
    (see `subpixel_plan`) and ``bias`` ``(4 * features,)``.
    """

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        plan = subpixel_plan(self.kernel_size)
        t, f = plan.taps, self.features
        kernel = self.param("kernel", nn.initializers.zeros, (t, t, x.shape[-1], 4 * f))
        bias = self.param("bias", nn.initializers.zeros, (4 * f,))
        return subpixel_conv_transpose(x, kernel, bias, self.kernel_size)


def strided_conv_s2d(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """A stride-2 conv with TF 'SAME' padding, as a space-to-depth + stride-1 'VALID' conv.

    ``x`` ``[B, H, W, C]``, ``kernel`` ``(kh, kw, C, F)``, ``bias`` ``(F,)`` → ``[B, ⌈H/2⌉, ⌈W/2⌉, F]``:
    the padded input's 2×2 pixel blocks become ``4C`` channels and the kernel, zero-padded to even
    size, ``(⌈kh/2⌉, ⌈kw/2⌉, 4C, F)``. Same sums as the strided conv; XLA's CPU convolution is much
    faster this way when ``C`` is 1 (the encoder's first layer).
    """
    b, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    pads, blocks = [], []
    for size, k in ((h, kh), (w, kw)):
        out, kb = -(-size // 2), -(-k // 2)
        lo = max((out - 1) * 2 + k - size, 0) // 2
        pads.append((lo, 2 * (out + kb - 1) - size - lo))
        blocks.append(kb)
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    hb, wb = xp.shape[1] // 2, xp.shape[2] // 2
    xs = xp.reshape(b, hb, 2, wb, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, hb, wb, 4 * c)
    kp = jnp.pad(kernel, ((0, 2 * blocks[0] - kh), (0, 2 * blocks[1] - kw), (0, 0), (0, 0)))
    ks = (
        kp.reshape(blocks[0], 2, blocks[1], 2, c, f).transpose(0, 2, 1, 3, 4, 5).reshape(blocks[0], blocks[1], 4 * c, f)
    )
    y = jax.lax.conv_general_dilated(
        xs, ks, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST
    )
    return y + bias


class SpaceToDepthConv(nn.Module):
    """`nn.Conv` (stride 2, 'SAME') computed by `strided_conv_s2d`; same parameters (``kernel``, ``bias``)."""

    features: int
    kernel_size: Kernel

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.zeros, (*self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return strided_conv_s2d(x, kernel, bias)


class Encoder(nn.Module):
    """float ``[B, 64, 64, 1]`` in [0, 1] → float32 ``[B, 4, 4, D]`` (before quantization).

    ``space_to_depth``: run the first layer (1 input channel) as `SpaceToDepthConv` (faster on XLA's
    CPU backend; a plain strided conv is as fast on a GPU). Same parameters and sums either way.
    """

    config: ModelConfig
    space_to_depth: bool = True

    @nn.compact
    def __call__(self, masks: jax.Array) -> jax.Array:
        x = 2.0 * masks - 1.0
        for i, spec in enumerate(self.config.enc_down):
            name = f"down_{i}"
            if self.space_to_depth and x.shape[-1] == 1:
                conv: nn.Module = SpaceToDepthConv(*spec, name=name)
            else:
                conv = _conv(spec, name, strides=2)
            x = nn.relu(conv(x))
        for i, block in enumerate(self.config.enc_res):
            x = ResBlock(block, name=f"res_{i}")(x)
        z: jax.Array = _conv(self.config.enc_out, "out")(x)
        return z


class Decoder(nn.Module):
    """float32 codebook vectors ``[B, 4, 4, D]`` → raw float32 ``[B, 64, 64, 1]`` (mask = output > 0).

    ``part`` runs a piece of it with the same parameters: ``"trunk"`` (the input conv and the
    residual blocks, → ``[B, 4, 4, C]``) or ``"head"`` (the upsampling convs and the output conv,
    from the trunk's output), so a caller can run the two at different batch sizes.
    """

    config: ModelConfig
    part: Literal["all", "trunk", "head"] = "all"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z
        if self.part != "head":
            x = nn.relu(_conv(self.config.dec_in, "in")(x))
            for i, block in enumerate(self.config.dec_res):
                x = ResBlock(block, name=f"res_{i}")(x)
            if self.part == "trunk":
                return x
        for i, (features, k) in enumerate(self.config.dec_up):
            x = nn.relu(SubpixelConvTranspose(features, k, name=f"up_{i}")(x))
        logits: jax.Array = _conv(self.config.dec_out, "out")(x)
        return logits


def quantize(z: jax.Array, codebook: jax.Array) -> jax.Array:
    """Nearest codebook entry by squared L2: ``z`` ``[..., D]``, ``codebook`` ``(K, D)`` → int32 ``[...]``.

    ``|z|² - 2 z·e + |e|²`` with one matmul; ties go to the lowest index (``argmin``).
    """
    dots = jnp.einsum("...d,kd->...k", z, codebook, precision=HIGHEST)
    dist = jnp.sum(z * z, axis=-1, keepdims=True) - 2.0 * dots + jnp.sum(codebook * codebook, axis=-1)
    return jnp.argmin(dist, axis=-1).astype(jnp.int32)
