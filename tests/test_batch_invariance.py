"""A mask's tokens do not depend on the batch: size, position, order, jit or eager. Near ties of the
codebook argmin are settled to the float64 model's answer (codec.TIE_EPSILON, codec.GAP_EPSILON)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec.api import encode_mask, encode_masks
from paligemma_segcodec.checkpoint import read_checkpoint
from paligemma_segcodec.codec import Codec, _quantize_settle_ties, _spread
from paligemma_segcodec.model import Encoder
from paligemma_segcodec.model_numpy import distances_f64, encode_latents_f64

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
NEAR_TIE_CASE = "water/water_body_1690.jpg"  # relative gap 2.2e-5 at one position (golden.json)


def _golden_cases() -> list[tuple[dict[str, Any], np.ndarray, np.ndarray]]:
    meta = json.loads((GOLDEN / "golden.json").read_text())
    with np.load(GOLDEN / "encode_inputs.npz") as f:
        return [(c, f[c["key"]], f[c["key"] + "_resized64"].reshape(64, 64).astype(np.float32)) for c in meta["encode"]]


CASES = _golden_cases()
MASKS64 = np.stack([m64 for _, _, m64 in CASES])
NEAR_TIE = next(m64 for c, _, m64 in CASES if c["name"] == NEAR_TIE_CASE)


def _f64_argmin(ckpt_path: Path, masks64: np.ndarray) -> np.ndarray:
    ckpt = read_checkpoint(ckpt_path)
    return distances_f64(encode_latents_f64(ckpt.encoder, masks64), ckpt.codebook).argmin(-1)


def _tie_checkpoint(tmp_path: Path, mask64: np.ndarray, kind: str, size: float) -> tuple[Path, int, int]:
    """The golden checkpoint with one codebook entry replaced by the entry ``e_a`` that ``mask64``'s
    position 0 is nearest to, moved by ``size`` along ``z - e_a`` ("along": nearer to ``z`` for a
    positive size, farther for a negative one; inside the tie window) or at right angles to it
    ("across"; size 0 is an exact tie).
    Returns (path, a, index of the copy)."""
    with np.load(GOLDEN / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    ckpt = read_checkpoint(GOLDEN / "checkpoint.npz")
    z = encode_latents_f64(ckpt.encoder, mask64[None])[0, 0]
    book = arrays["_vq_vae._embedding"].copy()
    a = int(distances_f64(z, book).argmin())
    toward = (z - book[a]) / np.linalg.norm(z - book[a])
    if kind == "along":
        step = toward
    else:
        r = np.random.default_rng(0).normal(size=z.shape)
        step = r - (r @ toward) * toward
        step /= np.linalg.norm(step)
    copy = (a + 37) % book.shape[0]
    book[copy] = (book[a] + size * step).astype(np.float32)
    arrays["_vq_vae._embedding"] = book
    path = tmp_path / f"tie-{kind}{size}.npz"
    np.savez(path, **arrays)
    return path, a, copy


def _all_ways(codec: Codec, masks64: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """``masks64``'s indices computed alone, in batches of 3 at every position, in one big shuffled
    batch, and eagerly."""
    n = len(masks64)
    alone = np.concatenate([codec.encode_indices(m[None]) for m in masks64])
    out = [alone, codec.encode_indices(masks64), codec.encode_indices(masks64, jit=False)]
    for pos in range(3):
        filler = MASKS64[rng.choice(len(MASKS64), size=(n, 2))]
        batch = np.insert(filler, pos, masks64, axis=1).reshape(-1, 64, 64)
        out.append(codec.encode_indices(batch).reshape(n, 3, 16)[:, pos])
    big = np.concatenate([masks64, MASKS64[rng.integers(0, len(MASKS64), 200)]])
    perm = rng.permutation(len(big))
    got = np.empty((len(big), 16), np.int32)
    got[perm] = codec.encode_indices(big[perm])
    out.append(got[:n])
    return out


def test_float64_encoder_matches_flax(codec) -> None:  # type: ignore[no-untyped-def]
    ckpt = read_checkpoint(GOLDEN / "checkpoint.npz")
    z = Encoder(codec.config).apply({"params": codec._params["encoder"]}, MASKS64[:4, ..., None])
    z = np.asarray(z).reshape(4, 16, -1)
    np.testing.assert_allclose(z, encode_latents_f64(ckpt.encoder, MASKS64[:4]), rtol=1e-4, atol=1e-4)


def test_float64_argmin_is_the_references_on_every_golden_case() -> None:
    """The float64 answer the near-tie rule falls back to is big_vision's (float32 TF) on every case,
    incl. its near tie."""
    got = _f64_argmin(GOLDEN / "checkpoint.npz", MASKS64)
    for (case, _, _), row in zip(CASES, got, strict=True):
        assert row.tolist() == [int(v) for v in re.findall(r"<seg(\d{3})>", case["suffix"])], case["name"]


def test_golden_near_tie_same_every_way(codec) -> None:  # type: ignore[no-untyped-def]
    want = _f64_argmin(GOLDEN / "checkpoint.npz", NEAR_TIE[None])
    for got in _all_ways(codec, NEAR_TIE[None], np.random.default_rng(0)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("kind", "size", "float64"),
    [
        ("across", 0.0, True),
        ("along", 1e-6, False),
        ("along", -1e-6, False),
        ("along", 3e-4, False),
    ],
)
def test_crafted_ties_same_every_way(tmp_path: Path, kind: str, size: float, float64: bool) -> None:
    """Two codebook entries (nearly) equal: the float64 nearest wins (the lower index on an exact
    tie), whatever the batch; only ties float32 cannot settle reach the float64 encoder."""
    path, a, copy = _tie_checkpoint(tmp_path, NEAR_TIE, kind, size)
    codec = Codec(read_checkpoint(path))
    calls: list[int] = []
    f64 = codec._argmin_f64
    codec._argmin_f64 = lambda m: calls.append(len(m)) or f64(m)  # type: ignore[method-assign]
    want = _f64_argmin(path, NEAR_TIE[None])
    assert want[0, 0] == (min(a, copy) if size == 0 else copy if size > 0 else a)
    for got in _all_ways(codec, NEAR_TIE[None], np.random.default_rng(1)):
        np.testing.assert_array_equal(got, want)
    assert bool(calls) == float64


@pytest.mark.parametrize(
    ("second", "index", "float64"),
    [
        ((0.0, 1.0, 0.0, 0.0), 0, True),  # an exact tie
        ((0.0, 1.0 + 2.0**-20, 0.0, 0.0), 0, True),  # gap 2e-6 of the scale: within float32 error
        ((0.0, 1.0 - 2.0**-12, 0.0, 0.0), 1, False),  # in the window, settled by the accurate gap
        ((0.0, 1.01, 0.0, 0.0), 0, False),  # outside the window
    ],
)
def test_tie_rule(second: tuple[float, ...], index: int, float64: bool) -> None:
    z = jnp.zeros((1, 4), jnp.float32)
    book = jnp.asarray([(1.0, 0.0, 0.0, 0.0), second, (5.0, 5.0, 5.0, 5.0)], jnp.float32)
    indices, fallback = _quantize_settle_ties(z, book, jnp.asarray(_spread(np.asarray(book))))
    assert (int(indices[0]), bool(fallback[0])) == (index, float64)


@st.composite
def _mask(draw: st.DrawFn) -> np.ndarray:
    kind = draw(st.sampled_from(["random", "blob", "golden", "near_tie"]))
    if kind == "golden":
        return CASES[draw(st.integers(0, len(CASES) - 1))][1]
    if kind == "near_tie":
        return next(m for c, m, _ in CASES if c["name"] == NEAR_TIE_CASE)
    h, w = draw(st.integers(1, 90)), draw(st.integers(1, 90))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "random":
        m = rng.random((h, w)) < rng.random()
    else:
        yy, xx = np.mgrid[:h, :w]
        m = (yy - rng.random() * h) ** 2 / h**2 + (xx - rng.random() * w) ** 2 / w**2 < rng.random()
    m[rng.integers(h), rng.integers(w)] = True
    return m


@settings(max_examples=15)
@given(st.lists(_mask(), min_size=1, max_size=9), st.randoms(use_true_random=False))
def test_encode_masks_is_per_mask(codec, masks, random) -> None:  # type: ignore[no-untyped-def]
    texts = encode_masks(masks, codec=codec)
    assert texts == [encode_mask(m, codec=codec) for m in masks]
    order = list(range(len(masks)))
    random.shuffle(order)
    assert encode_masks([masks[i] for i in order], codec=codec) == [texts[i] for i in order]


def test_encode_masks_with_the_near_tie_anywhere(codec) -> None:  # type: ignore[no-untyped-def]
    mask = next(m for c, m, _ in CASES if c["name"] == NEAR_TIE_CASE)
    alone = encode_mask(mask, codec=codec)
    others = [m for _, m, _ in CASES[:6]]
    for pos in range(len(others) + 1):
        batch = [*others[:pos], mask, *others[pos:]]
        assert encode_masks(batch, codec=codec)[pos] == alone
