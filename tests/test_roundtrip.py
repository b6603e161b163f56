"""Round-trip properties: a mask survives encode → decode.

Against the trained stand-in checkpoint tests/data/fixture-vae.npz (its tokens are NOT PaliGemma's),
and, marked ``real_checkpoint``, against the real vae-oid.npz when $PALIGEMMA_SEGCODEC_CHECKPOINT
points at it.

Thresholds (fixture), per batch of 240 shapes at 64×64 (see CASES):
- smooth shapes (ellipses, rounded rectangles, wavy blobs): mean IoU ≥ 0.85, every shape ≥ 0.70,
  re-encoding the decoded mask gives back ≥ 90 % of the tokens;
- shapes with corners or holes (rectangles, star polygons, rings): mean IoU ≥ 0.80, every shape
  ≥ 0.30, ≥ 85 % of the tokens back (measured: rings are the hardest, mean IoU ≈ 0.78);
- full size through encode_mask → decode_tokens: mean IoU ≥ 0.8 and the box within one <loc> step.
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

SMOOTH = ("ellipse", "superellipse", "blob")
CORNERS_AND_HOLES = ("rect", "star", "ring")


def draw(kind: str, rng: np.random.Generator, h: int = 64, w: int = 64) -> np.ndarray:
    """A random shape of ``kind`` on an h×w canvas (centre in the middle 40 %, radii 15..45 %)."""
    cy, cx = rng.uniform(0.3, 0.7, 2)
    ry, rx = rng.uniform(0.15, 0.45, 2)
    t = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[:h, :w]
    y, x = (yy + 0.5) / h - cy, (xx + 0.5) / w - cx
    u = (y * np.cos(t) + x * np.sin(t)) / ry
    v = (-y * np.sin(t) + x * np.cos(t)) / rx
    if kind == "ellipse":
        return u**2 + v**2 <= 1
    if kind == "superellipse":  # a rounded rectangle
        return np.abs(u) ** 4 + np.abs(v) ** 4 <= 1
    if kind == "blob":  # a smooth, wavy outline
        th = np.arctan2(u, v)
        r = 1 + sum(rng.uniform(0, 0.15) * np.cos(k * th + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4))
        return np.hypot(u, v) <= r
    if kind == "rect":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if kind == "ring":
        r = u**2 + v**2
        return (r <= 1) & (r >= 0.35)
    n = int(rng.integers(5, 9))  # star-shaped polygon
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.6, 1.0, n)
    theta = np.arctan2(u, v) % (2 * np.pi)
    theta = np.where(theta < ang[0], theta + 2 * np.pi, theta)
    edge = np.interp(theta, np.r_[ang, ang[0] + 2 * np.pi], np.r_[rad, rad[0]])
    return np.hypot(u, v) <= edge


def batch(kinds: tuple[str, ...], seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([draw(kinds[i % len(kinds)], rng) for i in range(n)])


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


# (kinds, minimum mean IoU, per-shape IoU floor, minimum share of tokens unchanged by re-encoding)
CASES = [
    pytest.param(SMOOTH, 0.85, 0.70, 0.90, id="smooth"),
    pytest.param(CORNERS_AND_HOLES, 0.80, 0.30, 0.85, id="corners-and-holes"),
]


@pytest.mark.parametrize(("kinds", "mean_iou", "floor", "same_tokens"), CASES)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_64x64_round_trip_and_idempotence(
    trained: Codec, kinds: tuple[str, ...], mean_iou: float, floor: float, same_tokens: float, seed: int
) -> None:
    masks = batch(kinds, seed, 240)  # large batches: the means are stable to about ±0.01
    tokens = trained.encode_indices(masks)
    decoded = trained.decode_indices(tokens) > 0
    scores = iou(decoded, masks)
    assert scores.mean() >= mean_iou, scores.mean()
    assert scores.min() >= floor, scores.min()
    again = trained.encode_indices(decoded)
    assert (again == tokens).mean() >= same_tokens, (again == tokens).mean()


@settings(max_examples=5, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.tuples(st.integers(80, 500), st.integers(80, 500)), min_size=12, max_size=12),
)
def test_full_size_round_trip(trained: Codec, seed: int, sizes: list[tuple[int, int]]) -> None:
    rng = np.random.default_rng(seed)
    scores = []
    for i, (h, w) in enumerate(sizes):
        m = draw(SMOOTH[i % len(SMOOTH)], rng, h, w)
        (seg,) = decode_tokens(encode_mask(m, codec=trained), height=h, width=w, codec=trained)
        assert seg.mask is not None
        scores.append(iou(seg.mask, m))
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        true_box = np.array([rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w])
        assert np.abs(np.array(seg.box) - true_box).max() <= 1 / 1023  # within one <loc> step
    assert np.mean(scores) >= 0.8, scores


def test_fixture_is_small_and_loads_like_the_real_one() -> None:
    assert FIXTURE.stat().st_size <= 5 * 1024 * 1024
    with np.load(FIXTURE) as f:
        assert f["encoder.0.weight"].dtype == np.float16  # float16 storage, upcast on load
        assert len(f.files) == 49
    codec = load_codec(FIXTURE)
    assert codec.codebook_size == 128 and codec.config.embedding_dim == 512
