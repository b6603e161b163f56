"""Round-trip properties: a mask survives encode → decode.

Against the trained stand-in checkpoint tests/data/fixture-vae.npz (its tokens are NOT PaliGemma's),
and, marked ``real_checkpoint``, against the real vae-oid.npz when $PALIGEMMA_SEGCODEC_CHECKPOINT
points at it.

Thresholds (fixture): mean IoU ≥ 0.85 over each batch of smooth 64×64 shapes, no single shape
below 0.5; re-encoding a decoded mask gives back ≥ 90 % of the tokens; full size through
encode_mask → decode_tokens: mean IoU ≥ 0.8 and the box within one <loc> step.
Thresholds for the real checkpoint are set to the same values, to be confirmed on a machine with
network (the real file cannot be downloaded where this suite was written).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec import decode_tokens, encode_mask, load_codec
from paligemma_segcodec.codec import Codec

FIXTURE = Path(__file__).parent / "data" / "fixture-vae.npz"

shape_params = st.tuples(
    st.sampled_from(["ellipse", "rect", "ring", "polygon"]),
    st.floats(0.25, 0.75),  # centre y
    st.floats(0.25, 0.75),  # centre x
    st.floats(0.15, 0.45),  # radius y
    st.floats(0.15, 0.45),  # radius x
    st.floats(0, np.pi),  # rotation
    st.integers(0, 2**31 - 1),  # polygon seed
)


def draw(params: tuple, h: int = 64, w: int = 64) -> np.ndarray:  # type: ignore[type-arg]
    """A smooth shape, rendered on an h×w canvas."""
    kind, cy, cx, ry, rx, t, seed = params
    yy, xx = np.mgrid[:h, :w]
    y, x = (yy + 0.5) / h - cy, (xx + 0.5) / w - cx
    u = (y * np.cos(t) + x * np.sin(t)) / ry
    v = (-y * np.sin(t) + x * np.cos(t)) / rx
    if kind == "ellipse":
        return u**2 + v**2 <= 1
    if kind == "rect":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if kind == "ring":
        r = u**2 + v**2
        return (r <= 1) & (r >= 0.35)
    rng = np.random.default_rng(seed)  # a star-shaped polygon with 5..8 vertices
    n = int(rng.integers(5, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.6, 1.0, n)
    theta = np.arctan2(u, v) % (2 * np.pi)
    theta = np.where(theta < ang[0], theta + 2 * np.pi, theta)
    edge = np.interp(theta, np.r_[ang, ang[0] + 2 * np.pi], np.r_[rad, rad[0]])
    return np.hypot(u, v) <= edge


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = (a & b).sum(axis=(-2, -1))
    union = (a | b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _codecs() -> list:  # type: ignore[type-arg]
    params = [pytest.param(FIXTURE, id="fixture")]
    real = os.environ.get("PALIGEMMA_SEGCODEC_CHECKPOINT")
    params.append(
        pytest.param(
            real,
            id="real",
            marks=[
                pytest.mark.real_checkpoint,
                pytest.mark.skipif(not real, reason="set PALIGEMMA_SEGCODEC_CHECKPOINT to the real vae-oid.npz"),
            ],
        )
    )
    return params


@pytest.fixture(scope="module", params=_codecs())
def trained(request: pytest.FixtureRequest) -> Codec:
    return load_codec(request.param)


@settings(max_examples=8, deadline=None)
@given(st.lists(shape_params, min_size=32, max_size=32))
def test_64x64_reconstruction_iou(trained: Codec, shapes: list) -> None:  # type: ignore[type-arg]
    masks = np.stack([draw(p) for p in shapes])
    masks = masks[masks.sum(axis=(1, 2)) > 20]
    decoded = trained.decode_indices(trained.encode_indices(masks)) > 0
    scores = iou(decoded, masks)
    assert scores.mean() >= 0.85, scores
    assert scores.min() >= 0.5, scores


@settings(max_examples=6, deadline=None)
@given(st.lists(shape_params, min_size=32, max_size=32))
def test_reencoding_a_decoded_mask_is_idempotent(trained: Codec, shapes: list) -> None:  # type: ignore[type-arg]
    masks = np.stack([draw(p) for p in shapes])
    tokens = trained.encode_indices(masks)
    again = trained.encode_indices(trained.decode_indices(tokens) > 0)
    assert (again == tokens).mean() >= 0.9


@settings(max_examples=6, deadline=None)
@given(st.lists(st.tuples(shape_params, st.integers(80, 500), st.integers(80, 500)), min_size=8, max_size=8))
def test_full_size_round_trip(trained: Codec, items: list) -> None:  # type: ignore[type-arg]
    scores = []
    for params, h, w in items:
        m = draw(params, h, w)
        if m.sum() < 50:
            continue
        (seg,) = decode_tokens(encode_mask(m, codec=trained), height=h, width=w, codec=trained)
        assert seg.mask is not None
        scores.append(iou(seg.mask, m))
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        true_box = np.array([rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w])
        assert np.abs(np.array(seg.box) - true_box).max() <= 1 / 1023
    assert np.mean(scores) >= 0.8, scores


def test_fixture_is_small_and_loads_like_the_real_one() -> None:
    assert FIXTURE.stat().st_size <= 5 * 1024 * 1024
    with np.load(FIXTURE) as f:
        assert f["encoder.0.weight"].dtype == np.float16  # float16 storage, upcast on load
        assert len(f.files) == 49
    codec = load_codec(FIXTURE)
    assert codec.codebook_size == 128 and codec.config.embedding_dim == 512
