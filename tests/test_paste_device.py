"""Decode + paste on the device (`paste_in_boxes_async`) against the host (`paste_mask_in_box` on
`Codec.decode_indices`): the same boxes, the same float32 weights bit for bit, the same bits except
where the host's value is within `PARITY_EPSILON` of 0, and no compilation after the warm-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec import load_codec, paste_device
from paligemma_segcodec.boxes import loc_to_pixels
from paligemma_segcodec.codec import Codec
from paligemma_segcodec.paste_device import (
    BOX_BUCKETS,
    PARITY_EPSILON,
    PastedBox,
    _paste,
    batch_buckets,
    batch_pieces,
    device_resize_weights,
    host_unpack_us,
    paste_in_boxes_async,
    pixel_boxes,
    warm_up,
)
from paligemma_segcodec.resize import resize, resize_weights
from paligemma_segcodec.segment import paste_mask, paste_mask_in_box

CKPT = Path(__file__).parent / "data" / "fixture-vae.npz"


@pytest.fixture(scope="module")
def small_codec() -> Codec:
    """fixture-vae with ``max_batch=2``: batch buckets {1, 2} in every box bucket (14 programs)."""
    return load_codec(CKPT, max_batch=2)


@pytest.fixture(scope="module")
def warm_codec(small_codec: Codec) -> Codec:
    """`small_codec` with every (box bucket, batch bucket) program compiled by `warm_up`."""
    compiled = warm_up(small_codec)
    assert compiled <= sum(len(batch_buckets(small_codec, size)) for size in BOX_BUCKETS)
    assert warm_up(small_codec) == 0
    return small_codec


def _host(
    masks64: np.ndarray, locs: list[tuple[int, int, int, int]], h: int, w: int, convention: Any
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    return [paste_mask_in_box(m, loc, h, w, convention=convention) for m, loc in zip(masks64, locs, strict=True)]


def _assert_decoded(codec: Codec, idx: np.ndarray, masks64: np.ndarray) -> None:
    """``masks64`` is `Codec.decode_indices`, up to the decoder's own rounding across batch shapes (a
    batch of 1 and a batch of 256 can differ by an ulp or so: measured <= 3e-7 of max|mask64|)."""
    assert masks64.dtype == np.float32 and masks64.shape == (len(idx), 64, 64)
    want = codec.decode_indices(idx)
    scale = np.abs(want).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(masks64 - want) <= 1e-5 * scale)


def _compare(
    masks64: np.ndarray, host: list[tuple[tuple[int, int, int, int], np.ndarray]], device: list[PastedBox]
) -> tuple[int, float]:
    """Asserts equal boxes and shapes; returns (pixel mismatches, max |host value| / max|mask64| at one)."""
    mismatches, worst = 0, 0.0
    assert len(host) == len(device)
    for m64, (box, crop), got in zip(masks64, host, device, strict=True):
        assert (got.top, got.left, got.bottom, got.right) == box
        assert all(type(v) is int for v in got[:4])
        assert got.mask.dtype == np.bool_ and got.mask.shape == crop.shape
        diff = got.mask != crop
        if diff.any():
            value = resize(m64, crop.shape[0], crop.shape[1])
            mismatches += int(diff.sum())
            worst = max(worst, float(np.abs(value[diff]).max() / np.abs(m64).max()))
    return mismatches, worst


# --- weights ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", BOX_BUCKETS)
def test_weights_bit_for_bit(size: int) -> None:
    """Every box side of the small buckets, and a sample (with the edges) of the large ones."""
    if size <= 256:
        sides = np.arange(0, size + 1)
    else:
        rng = np.random.default_rng(size)
        sides = np.unique(
            np.r_[0, 1, 2, 63, 64, 65, size // 2, size // 2 + 1, size - 1, size, rng.integers(1, size, 40)]
        )
    got = device_resize_weights(sides, size)
    assert got.shape == (len(sides), size, 64) and got.dtype == np.float32
    for n, w in zip(sides.tolist(), got, strict=True):
        want = np.zeros((size, 64), np.float32)
        if n:
            want[:n] = resize_weights(64, n)
        np.testing.assert_array_equal(w.view(np.uint32), want.view(np.uint32), err_msg=f"side {n}")


@pytest.mark.slow
@pytest.mark.parametrize("size", [512, 1024])
def test_weights_bit_for_bit_every_side(size: int) -> None:
    for lo in range(0, size + 1, 128):
        sides = np.arange(lo, min(lo + 128, size + 1))
        got = device_resize_weights(sides, size)
        for n, w in zip(sides.tolist(), got, strict=True):
            want = np.zeros((size, 64), np.float32)
            if n:
                want[:n] = resize_weights(64, n)
            np.testing.assert_array_equal(w.view(np.uint32), want.view(np.uint32), err_msg=f"side {n}")


# --- boxes ------------------------------------------------------------------------------------------

coords = st.one_of(st.integers(0, 1023), st.sampled_from([0, 1, 2, 511, 512, 1021, 1022, 1023]))
sides = st.one_of(st.integers(1, 8), st.integers(9, 1100), st.integers(1025, 5000))
conventions = st.sampled_from(["big_vision", "colab"])


@given(st.lists(st.tuples(coords, coords, coords, coords), max_size=20), sides, sides, conventions)
def test_pixel_boxes_match_loc_to_pixels(locs: list[tuple[int, int, int, int]], h: int, w: int, conv: Any) -> None:
    got = pixel_boxes(locs, h, w, convention=conv)
    assert got.shape == (len(locs), 4)
    for loc, row in zip(locs, got.tolist(), strict=True):
        y1, x1, y2, x2 = loc_to_pixels(loc, h, w, convention=conv)
        y1, x1 = min(max(y1, 0), h), min(max(x1, 0), w)
        assert row == [y1, x1, max(min(y2, h), y1), max(min(x2, w), x1)]


def test_pixel_boxes_refuses_bad_locs() -> None:
    with pytest.raises(ValueError, match="shape"):
        pixel_boxes([(0, 0, 1)], 10, 10)
    with pytest.raises(ValueError, match=r"0\.\.1023"):
        pixel_boxes([(0, 0, 1024, 5)], 10, 10)
    with pytest.raises(TypeError, match="integers"):
        pixel_boxes([(0.5, 0, 10, 5)], 10, 10)
    with pytest.raises(ValueError, match="convention"):
        pixel_boxes([(0, 0, 10, 5)], 10, 10, convention="pixels")  # type: ignore[arg-type]


# --- parity with the host ----------------------------------------------------------------------------


@st.composite
def objects(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    idx = np.random.default_rng(seed).integers(0, 128, (n, 16)).astype(np.int32)
    locs = []
    for _ in range(n):
        kind = draw(st.sampled_from(["any", "one_bin", "degenerate", "full", "edge"]))
        y1, x1, y2, x2 = (draw(coords) for _ in range(4))
        if kind == "one_bin":  # often a 1-pixel box (or an empty one) after rounding
            y1, x1 = min(y1, 1022), min(x1, 1022)
            y2, x2 = y1 + 1, x1 + 1
        elif kind == "degenerate":
            y2 = draw(st.integers(0, y1))
        elif kind == "full":
            y1, x1, y2, x2 = 0, 0, 1023, 1023
        elif kind == "edge":
            y2, x2 = 1023, 1023
        locs.append((y1, x1, y2, x2))
    return idx, locs


@settings(max_examples=50)
@given(objects(), sides, sides, conventions)
def test_device_paste_matches_host(
    warm_codec: Codec, objs: tuple[np.ndarray, list[tuple[int, int, int, int]]], h: int, w: int, conv: Any
) -> None:
    codec = warm_codec
    before = codec.compile_count
    idx, locs = objs
    masks64, got = paste_in_boxes_async(codec, idx, locs, h, w, convention=conv)()
    assert codec.compile_count == before  # every bucket was compiled by the warm-up
    _assert_decoded(codec, idx, masks64)
    mismatches, worst = _compare(masks64, _host(masks64, locs, h, w, conv), got)
    assert worst <= PARITY_EPSILON, (mismatches, worst)


def test_full_mask_equals_paste_mask(warm_codec: Codec) -> None:
    """The crop placed on a False image is `paste_mask`'s full-size mask (boxes over the edge too)."""
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 128, (2, 16)).astype(np.int32)
    locs = [(900, 10, 1023, 700), (0, 0, 1023, 1023)]
    masks64, got = paste_in_boxes_async(warm_codec, idx, locs, 300, 200)()
    for m64, loc, b in zip(masks64, locs, got, strict=True):
        full = np.zeros((300, 200), bool)
        full[b.top : b.bottom, b.left : b.right] = b.mask
        np.testing.assert_array_equal(full, paste_mask(m64, loc, 300, 200))


def test_large_box_falls_back_to_host(warm_codec: Codec) -> None:
    """A box over the biggest bucket is resized on the host: exactly `paste_mask_in_box`."""
    idx = np.random.default_rng(4).integers(0, 128, (2, 16)).astype(np.int32)
    locs = [(0, 0, 1023, 1023), (100, 200, 300, 400)]
    h, w = BOX_BUCKETS[-1] + 37, 700
    masks64, got = paste_in_boxes_async(warm_codec, idx, locs, h, w)()
    (box, crop) = paste_mask_in_box(masks64[0], locs[0], h, w)
    assert got[0][:4] == box and got[0].mask.shape == (h, w)
    np.testing.assert_array_equal(got[0].mask, crop)


def test_empty_and_invalid(warm_codec: Codec) -> None:
    masks64, got = paste_in_boxes_async(warm_codec, np.zeros((0, 16), np.int32), [], 10, 10)()
    assert masks64.shape == (0, 64, 64) and got == []
    idx = np.zeros((1, 16), np.int32)
    with pytest.raises(ValueError, match="locs"):
        paste_in_boxes_async(warm_codec, idx, [(0, 0, 5, 5), (0, 0, 5, 5)], 10, 10)
    with pytest.raises(ValueError, match="indices must be in"):
        paste_in_boxes_async(warm_codec, idx + 128, [(0, 0, 5, 5)], 10, 10)
    with pytest.raises(ValueError, match="shape"):
        paste_in_boxes_async(warm_codec, np.zeros((1, 15), np.int32), [(0, 0, 5, 5)], 10, 10)
    with pytest.raises(ValueError, match="positive"):
        paste_in_boxes_async(warm_codec, idx, [(0, 0, 5, 5)], 0, 10)


def test_empty_boxes_decode_and_give_empty_crops(warm_codec: Codec) -> None:
    """Degenerate ``<loc>`` (y2 <= y1) and boxes that round to no pixel: the clipped empty shape."""
    idx = np.random.default_rng(5).integers(0, 128, (3, 16)).astype(np.int32)
    locs = [(500, 10, 400, 700), (10, 10, 11, 11), (1023, 0, 1023, 1023)]
    masks64, got = paste_in_boxes_async(warm_codec, idx, locs, 20, 30)()
    _assert_decoded(warm_codec, idx, masks64)
    for m64, loc, b in zip(masks64, locs, got, strict=True):
        box, crop = paste_mask_in_box(m64, loc, 20, 30)
        assert b[:4] == box and b.mask.shape == crop.shape and not b.mask.any()


def test_near_zero_values_bound() -> None:
    """Crafted 64×64 outputs that cross 0 along whole rows/columns (linear ramps, saddles, tiny noise):
    the device bits differ from ``resize(...) > 0`` only where ``|value| <= PARITY_EPSILON * max|m|``."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    mismatches, worst = 0, 0.0
    for size in (16, 64, 256):
        ms = []
        for k in range(16):
            a, c = rng.normal(size=2).astype(np.float32)
            ramps = [(xx - 31.5) * a, (yy - 31.5) * a + (xx - 31.5) * c, (xx - 31.5) * (yy - 31.5) * a]
            noise = rng.normal(size=(64, 64)).astype(np.float32) * 1e-3 + np.float32(rng.normal() * 1e-3)
            ms.append([*ramps, noise][k % 4])
        m = np.stack(ms).astype(np.float32)
        hw = rng.integers(1, size + 1, (16, 2)).astype(np.int32)
        packed, _ = jax.jit(_paste(size))(jnp.asarray(m), jnp.asarray(hw))
        bits = np.asarray(packed)
        for k, (h, w) in enumerate(hw.tolist()):
            dev = np.unpackbits(bits[k, :h, : (w + 7) // 8], axis=1, count=w).view(np.bool_)
            value = resize(m[k], h, w)
            diff = dev != (value > 0)
            if diff.any():
                mismatches += int(diff.sum())
                worst = max(worst, float(np.abs(value[diff]).max() / np.abs(m[k]).max()))
    assert worst <= PARITY_EPSILON, (mismatches, worst)


# --- recompiles and larger runs --------------------------------------------------------------------


def test_no_recompile_after_warmup(warm_codec: Codec) -> None:
    codec = warm_codec
    before = codec.compile_count
    rng = np.random.default_rng(6)
    for n in (1, 2, 3, 5, 9):
        idx = rng.integers(0, 128, (n, 16)).astype(np.int32)
        y1 = rng.integers(0, 900, n)
        x1 = rng.integers(0, 900, n)
        locs = [
            (int(a), int(b), int(a) + int(e), int(b) + int(f))
            for a, b, e, f in zip(y1, x1, rng.integers(0, 124, n), rng.integers(0, 124, n), strict=True)
        ]
        for h, w in ((512, 512), (7, 3), (1024, 1024), (1400, 900)):
            paste_in_boxes_async(codec, idx, locs, h, w)()
    assert codec.compile_count == before


@pytest.mark.slow
def test_no_recompile_default_buckets() -> None:
    """The default batch cap (256 on a CPU): `warm_up` compiles every (box bucket, batch bucket) up to
    128-px boxes, then none while N, boxes and image sizes vary (boxes stay under 128 px here: on
    300x300 images a box spans at most 400/1023 of a side; all buckets: CI time, see test_warm_up_max_side)."""
    codec = load_codec(CKPT, max_batch=None)
    rng = np.random.default_rng(7)
    warm_up(codec, max_side=128)
    before = codec.compile_count
    for n in (1, 7, 100, 300, 1000):
        idx = rng.integers(0, 128, (n, 16)).astype(np.int32)
        y1, x1 = rng.integers(0, 1000, (2, n))
        locs = [
            (int(a), int(b), min(int(a) + int(e), 1023), min(int(b) + int(f), 1023))
            for a, b, e, f in zip(y1, x1, *rng.integers(0, 400, (2, n)), strict=True)
        ]
        for h, w in ((300, 300), (250, 120), (3, 4)):
            paste_in_boxes_async(codec, idx, locs, h, w)()
    assert codec.compile_count == before


def test_warm_up_max_side() -> None:
    """``max_side`` compiles the buckets up to the first one that holds it (and nothing twice)."""
    codec = load_codec(CKPT, max_batch=1)
    assert warm_up(codec, max_side=20) <= 2  # buckets 16 and 32, batch 1
    assert warm_up(codec, max_side=32) == 0
    before = codec.compile_count
    paste_in_boxes_async(codec, np.zeros((1, 16), np.int32), [(0, 0, 1023, 1023)], 30, 30)()
    paste_in_boxes_async(codec, np.zeros((1, 16), np.int32), [(0, 0, 1023, 1023)], 3000, 3000)()  # host resize
    assert codec.compile_count == before


@given(st.integers(0, 5000), st.sampled_from([1, 2, 16, 64, 256, 1024]), st.sampled_from([1, 4, 64]))
def test_batch_pieces(n: int, cap: int, smallest: int) -> None:
    pieces = batch_pieces(n, cap, smallest)
    assert sum(count for count, _ in pieces) == n
    buckets = [min(smallest, cap)]
    while buckets[-1] < cap:
        buckets.append(min(buckets[-1] * 2, cap))
    for count, padded in pieces:
        assert 0 < count <= padded <= cap and padded in buckets
        assert padded - count <= max(padded // 8, 31, smallest - 1)


def test_min_batch_on_an_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a minimum batch (64 on accelerators), every call pads to a bucket that `warm_up` compiled."""
    monkeypatch.setattr(paste_device, "_MIN_BATCH", {})
    monkeypatch.setattr(paste_device, "_MIN_BATCH_DEFAULT", 4)
    codec = load_codec(CKPT, max_batch=8)
    assert batch_buckets(codec, 16) == [4, 8]
    assert warm_up(codec, max_side=16) == 2
    before = codec.compile_count
    idx = np.random.default_rng(9).integers(0, 128, (11, 16)).astype(np.int32)
    masks64, got = paste_in_boxes_async(codec, idx, [(0, 0, 1023, 1023)] * 11, 12, 16)()
    assert codec.compile_count == before
    _assert_decoded(codec, idx, masks64)
    assert _compare(masks64, _host(masks64, [(0, 0, 1023, 1023)] * 11, 12, 16, "big_vision"), got)[1] <= PARITY_EPSILON


def test_host_unpack_us_runs() -> None:
    us = host_unpack_us([(100, 90), (1, 1), (1024, 3)], repeats=1)
    assert us > 0
    with pytest.raises(ValueError, match="box_sides"):
        host_unpack_us([(0, 5)])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("h", "w", "conv"), [(512, 512, "big_vision"), (1333, 800, "colab"), (2000, 1500, "big_vision"), (9, 5, "colab")]
)
def test_many_objects_match_host(h: int, w: int, conv: Any) -> None:
    """2,000 random objects per image size with the default buckets: bits equal but near 0."""
    codec = load_codec(CKPT, max_batch=None)
    rng = np.random.default_rng(8)
    n = 2000
    idx = rng.integers(0, 128, (n, 16)).astype(np.int32)
    y1, x1 = rng.integers(0, 1023, (2, n))
    dy, dx = rng.integers(0, 500, (2, n))
    locs = [
        (int(a), int(b), min(int(a + c), 1023), min(int(b + d), 1023))
        for a, b, c, d in zip(y1, x1, dy, dx, strict=True)
    ]
    masks64, got = paste_in_boxes_async(codec, idx, locs, h, w, convention=conv)()
    _assert_decoded(codec, idx, masks64)
    mismatches, worst = _compare(masks64, _host(masks64, locs, h, w, conv), got)
    assert worst <= PARITY_EPSILON, (mismatches, worst)
