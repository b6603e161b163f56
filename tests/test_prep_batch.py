"""`prep.prepare_batch` (the host prep `encode_masks` runs per chunk) equals `prepare_mask` mask by mask,
on the compiled path and on the NumPy fallback; numba missing gives one clear notice."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import paligemma_segcodec
from paligemma_segcodec import resize as resize_mod
from paligemma_segcodec.errors import SlowPathWarning
from paligemma_segcodec.maskio import binarize, read_mask_values
from paligemma_segcodec.prep import prepare_batch, prepare_mask

WATER = Path(__file__).parent / "data" / "water" / "masks"


def _same_as_one_by_one(masks: list[np.ndarray], boxes: list[tuple[float, ...] | None] | None = None) -> None:
    locs, out = prepare_batch(masks, boxes)
    assert out.dtype == np.float32 and out.shape == (len(masks), 64, 64)
    for i, m in enumerate(masks):
        one = prepare_mask(m, None if boxes is None else boxes[i])
        assert locs[i] == one.loc, i
        assert np.array_equal(out[i], one.mask64), i  # bit-identical, not just close


masks_st = hnp.arrays(bool, st.tuples(st.integers(1, 90), st.integers(1, 90))).filter(lambda m: bool(m.any()))


@settings(max_examples=80, deadline=None)
@given(st.lists(masks_st, min_size=1, max_size=6))
def test_batch_equals_prepare_mask(masks: list[np.ndarray]) -> None:
    _same_as_one_by_one(masks)


@settings(max_examples=40, deadline=None)
@given(masks_st, st.integers(0, 3), st.integers(0, 3), st.sampled_from(["C", "F", "view"]))
def test_tight_box_scan_on_any_layout(mask: np.ndarray, pad_y: int, pad_x: int, layout: str) -> None:
    """The compiled bounds scan sees the same box on padded, Fortran-ordered and strided views."""
    big = np.zeros((mask.shape[0] + 2 * pad_y, mask.shape[1] + 2 * pad_x), bool)
    big[pad_y : pad_y + mask.shape[0], pad_x : pad_x + mask.shape[1]] = mask
    if layout == "F":
        big = np.asfortranarray(big)
    elif layout == "view":
        big = np.repeat(big, 2, axis=1)[:, ::2]
    _same_as_one_by_one([big])


def test_single_pixel_corners_and_value_kinds() -> None:
    masks: list[np.ndarray] = []
    for y, x in [(0, 0), (0, 39), (29, 0), (29, 39), (13, 17)]:
        m = np.zeros((30, 40), bool)
        m[y, x] = True
        masks.append(m)
    water = binarize(read_mask_values(sorted(WATER.iterdir())[0]), 127)
    masks += [water, water.astype(np.uint8) * 255, water.astype(np.uint8), water.astype(np.float32) * 0.5]
    _same_as_one_by_one(masks)
    _same_as_one_by_one(masks, [(0.1, 0.2, 0.9, 0.95)] * len(masks))


def test_numpy_fallback_gives_the_same_values() -> None:
    rng = np.random.default_rng(4)
    masks = [rng.random((int(h), int(w))) < 0.3 for h, w in rng.integers(5, 300, (12, 2))]
    fast = prepare_batch(masks)
    saved = list(resize_mod._NUMBA)
    resize_mod._NUMBA[:] = [None]
    try:
        slow = prepare_batch(masks)
    finally:
        resize_mod._NUMBA[:] = saved
    assert fast[0] == slow[0]
    np.testing.assert_allclose(fast[1], slow[1], atol=2e-6)  # float64 sums in another order


def test_errors_name_the_mask() -> None:
    good = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match=r"mask 7 is empty"):
        prepare_batch([good, np.zeros((4, 4), bool)], start=6)
    with pytest.raises(ValueError, match=r"box of mask 1"):
        prepare_batch([good, good], [None, (0.5, 0.5, 0.2, 0.9)])
    with pytest.raises(ValueError, match="got 2 masks but 1 boxes"):
        prepare_batch([good, good], [None])


def test_missing_numba_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PALIGEMMA_SEGCODEC_NUMBA", raising=False)
    monkeypatch.setattr(resize_mod, "_NUMBA", [])
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.delitem(sys.modules, "paligemma_segcodec._resize_numba", raising=False)
    monkeypatch.delattr(paligemma_segcodec, "_resize_numba", raising=False)  # else `from ... import` finds it
    m = np.ones((50, 60), bool)
    with pytest.warns(SlowPathWarning, match="numba could not be imported"):
        first = prepare_batch([m])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = prepare_batch([m])  # no second notice
    assert resize_mod._NUMBA == [None]
    np.testing.assert_array_equal(first[1], second[1])


def test_switching_off_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALIGEMMA_SEGCODEC_NUMBA", "0")
    monkeypatch.setattr(resize_mod, "_NUMBA", [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_batch([np.ones((9, 9), bool)])
    assert resize_mod._NUMBA == [None]


def test_first_bad_mask_in_index_order_raises() -> None:
    """Validation errors and empty crops are found in two passes; the lower index still wins."""
    good = np.ones((40, 40), bool)
    thin = (0.5, 0.1, 0.501, 0.9)  # rounds to rows 20:20 on a 40-pixel side: an empty crop
    with pytest.raises(ValueError, match=r"on the 40x40 mask 1 rounds to an empty crop"):
        prepare_batch([good, good, good], [None, thin, (0.9, 0.1, 0.2, 0.5)])
    with pytest.raises(ValueError, match=r"box of mask 1 has zero or negative area"):
        prepare_batch([good, good, good], [None, (0.9, 0.1, 0.2, 0.5), thin])
    with pytest.raises(TypeError, match=r"mask 0 must be bool, integer or float"):
        prepare_batch([np.array([["a"]]), good], [None, thin])
