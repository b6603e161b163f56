"""The model against independent implementations: TF 'SAME' strided convs (any kernel size) and the
sub-pixel transposed conv against lax.conv_transpose."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paligemma_segcodec.checkpoint import ConvWeights, read_checkpoint
from paligemma_segcodec.codec import Codec
from paligemma_segcodec.model import SubpixelConvTranspose, _subpixel_kernel, strided_conv_s2d

GOLDEN_CKPT = Path(__file__).parent / "data" / "golden" / "checkpoint.npz"


def _np_conv_same(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """Plain NumPy conv, TF 'SAME' padding (extra pixel at the bottom/right). x [H,W,C], w PyTorch (O,I,kh,kw)."""
    h, _, _ = x.shape
    k = w.shape[2]
    out = -(-h // stride)
    total = max((out - 1) * stride + k - h, 0)
    lo = total // 2
    xp = np.pad(x, ((lo, total - lo), (lo, total - lo), (0, 0)))
    y = np.zeros((out, out, w.shape[0]))
    for i in range(out):
        for j in range(out):
            patch = xp[i * stride : i * stride + k, j * stride : j * stride + k, :]
            y[i, j] = np.einsum("hwc,ochw->o", patch, w) + b
    return y


def _np_encoder(ckpt, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    h = 2 * x.astype(np.float64)[..., None] - 1
    for layer in ckpt.encoder:
        if len(layer) == 3:
            r = np.maximum(_np_conv_same(h, layer[0].weight, layer[0].bias, 1), 0)
            r = np.maximum(_np_conv_same(r, layer[1].weight, layer[1].bias, 1), 0)
            h = h + _np_conv_same(r, layer[2].weight, layer[2].bias, 1)
        elif layer is ckpt.encoder[-1]:
            h = _np_conv_same(h, layer[0].weight, layer[0].bias, 1)
        else:
            h = np.maximum(_np_conv_same(h, layer[0].weight, layer[0].bias, 2), 0)
    return h.reshape(16, -1)


@pytest.mark.parametrize(
    ("kernel", "layers"),
    [
        (3, ("encoder.0", "encoder.2", "encoder.4", "encoder.6")),
        (4, ("encoder.0", "encoder.2", "encoder.4", "encoder.6")),
        (5, ("encoder.0", "encoder.2", "encoder.4", "encoder.6")),
        (1, ("encoder.0", "encoder.2", "encoder.4", "encoder.6")),  # 1×1 stride 2: not a pointwise matmul
        (3, ("encoder.8.net.4", "encoder.9.net.4", "encoder.10")),  # the usual 1×1 convs as 3×3
    ],
)
def test_encoder_any_kernel_matches_numpy_tf_same(tmp_path: Path, kernel: int, layers: tuple[str, ...]) -> None:
    """A checkpoint whose encoder convs are k×k (e.g. 3×3 stride 2: asymmetric 'SAME' padding)."""
    rng = np.random.default_rng(kernel)
    with np.load(GOLDEN_CKPT) as f:
        arrays = {k: f[k] for k in f.files}
    for name in layers:
        o, i = arrays[name + ".weight"].shape[:2]
        arrays[name + ".weight"] = (rng.normal(size=(o, i, kernel, kernel)) / np.sqrt(i * kernel * kernel)).astype(
            np.float32
        )
    path = tmp_path / f"k{kernel}.npz"
    np.savez(path, **arrays)
    ckpt = read_checkpoint(path)
    codec = Codec(ckpt)
    assert codec.config.enc_out[1] == ((kernel, kernel) if "encoder.10" in layers else (1, 1))
    x = (rng.random((2, 64, 64)) > 0.5).astype(np.float32)
    from paligemma_segcodec.model import Encoder

    z = np.asarray(Encoder(codec.config).apply({"params": codec._params["encoder"]}, x[..., None]))
    for n in range(2):
        np.testing.assert_allclose(z[n].reshape(16, -1), _np_encoder(ckpt, x[n]), atol=2e-4, rtol=1e-4)
    ref = _np_encoder(ckpt, x[0])
    d = (ref**2).sum(1)[:, None] - 2 * ref @ ckpt.codebook.T + (ckpt.codebook.astype(np.float64) ** 2).sum(1)
    np.testing.assert_array_equal(codec.encode_indices(x[:1])[0], d.argmin(1))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_subpixel_equals_transposed_conv(k: int) -> None:
    rng = np.random.default_rng(k)
    cin, cout, n = 3, 5, 6
    w = rng.normal(size=(cin, cout, k, k)).astype(np.float32)  # PyTorch ConvTranspose2d layout
    b = rng.normal(size=(cout,)).astype(np.float32)
    x = rng.normal(size=(2, n, n, cin)).astype(np.float32)
    ref = (
        jax.lax.conv_transpose(
            x,
            jnp.transpose(w, (2, 3, 1, 0)),
            (2, 2),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            transpose_kernel=True,
            precision=jax.lax.Precision.HIGHEST,
        )
        + b
    )
    conv = ConvWeights("up", w, b, transposed=True)
    params = {"kernel": _subpixel_kernel(conv), "bias": np.tile(b, 4)}
    got = SubpixelConvTranspose(cout, k).apply({"params": params}, x)
    assert got.shape == (2, 2 * n, 2 * n, cout)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=1e-4)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("size", [(8, 8), (7, 10)])
def test_space_to_depth_conv_equals_strided_conv(k: int, size: tuple[int, int]) -> None:
    """The encoder's first layer (1 input channel) runs as space-to-depth + VALID conv: same as TF 'SAME'."""
    rng = np.random.default_rng(k)
    for cin in (1, 3):
        x = rng.normal(size=(2, *size, cin)).astype(np.float32)
        w = rng.normal(size=(k, k, cin, 5)).astype(np.float32)
        b = rng.normal(size=(5,)).astype(np.float32)
        ref = jax.lax.conv_general_dilated(
            x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST
        )
        got = strided_conv_s2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
        assert got.shape == ref.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref) + b, atol=1e-4)
        if size[0] == size[1]:  # and against the plain NumPy TF-'SAME' conv (square inputs)
            y = np.stack([_np_conv_same(xi.astype(np.float64), w.transpose(3, 2, 0, 1), b, 2) for xi in x])
            np.testing.assert_allclose(np.asarray(got), y, atol=1e-4)


def test_encoder_first_layer_forms_agree() -> None:
    """Space-to-depth (CPU default) and plain strided first conv: same latents, same tokens."""
    from paligemma_segcodec.model import Encoder, quantize

    codec = Codec(read_checkpoint(GOLDEN_CKPT))
    x = jnp.asarray((np.random.default_rng(0).random((8, 64, 64, 1)) > 0.5).astype(np.float32))
    p = codec._params
    encoders = [Encoder(codec.config, space_to_depth=s2d) for s2d in (True, False)]
    z = [np.asarray(enc.apply({"params": p["encoder"]}, x)) for enc in encoders]
    np.testing.assert_allclose(z[0], z[1], atol=1e-5)
    tokens = [np.asarray(quantize(jnp.asarray(zi).reshape(8, 16, -1), p["codebook"])) for zi in z]
    np.testing.assert_array_equal(tokens[0], tokens[1])


@pytest.mark.parametrize("shape", [(2, 4, 4, 128), (3, 5, 7, 16), (1, 64, 64, 16)])
def test_pointwise_conv_equals_1x1_conv(shape: tuple[int, ...]) -> None:
    """`PointwiseConv` (the 1×1 convs as one matmul) equals Flax's 1×1 `nn.Conv` with the same parameters."""
    import flax.linen as nn

    from paligemma_segcodec.model import PointwiseConv

    rng = np.random.default_rng(sum(shape))
    x = jnp.asarray(rng.standard_normal(shape, dtype=np.float32))
    features = 3 if shape[-1] == 16 else 64
    params = {
        "kernel": jnp.asarray(rng.standard_normal((1, 1, shape[-1], features), dtype=np.float32)),
        "bias": jnp.asarray(rng.standard_normal(features, dtype=np.float32)),
    }
    conv = nn.Conv(features, (1, 1), padding="SAME", precision=jax.lax.Precision.HIGHEST)
    ref = np.asarray(conv.apply({"params": params}, x))
    got = np.asarray(PointwiseConv(features).apply({"params": params}, x))
    assert got.shape == ref.shape == (*shape[:-1], features)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-5)
