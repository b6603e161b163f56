"""Box conventions: loc ↔ box, yxyx ↔ xyxy, pixels, tight boxes, crops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from paligemma_segcodec.boxes import (
    box_to_loc,
    crop_pixels,
    loc_to_box,
    loc_to_pixels,
    pixels_to_box,
    tight_box,
    validate_box,
    xyxy_to_yxyx,
    yxyx_to_xyxy,
)

unit = st.floats(0, 1, allow_nan=False)


@given(st.tuples(unit, unit, unit, unit))
def test_box_loc_box_within_one_step(box: tuple[float, float, float, float]) -> None:
    back = loc_to_box(box_to_loc(box))
    assert np.all(np.abs(np.array(back) - np.array(box)) <= 0.5 / 1023 + 1e-6)


@given(st.tuples(*[st.integers(0, 1023)] * 4))
def test_loc_box_loc_is_identity(loc: tuple[int, int, int, int]) -> None:
    assert box_to_loc(loc_to_box(loc)) == loc


@given(st.tuples(unit, unit, unit, unit))
def test_xyxy_round_trip(box: tuple[float, float, float, float]) -> None:
    assert xyxy_to_yxyx(yxyx_to_xyxy(box)) == box
    assert yxyx_to_xyxy(box)[0] == box[1]


def test_box_to_loc_rounds_half_to_even_and_clips() -> None:
    assert box_to_loc((0.0, 1.0, 0.5, 1.5)) == (0, 1023, 512, 1023)  # 511.5 -> 512 (even), 1.5 clipped
    assert box_to_loc((-0.2, 0.0, 0.5 / 1023, 2.5 / 1023)) == (0, 0, 0, 2)  # half to even: 0.5 -> 0, 2.5 -> 2


@given(st.integers(1, 4000), st.integers(1, 4000), st.tuples(*[st.integers(0, 1023)] * 4))
def test_loc_to_pixels_in_range(h: int, w: int, loc: tuple[int, int, int, int]) -> None:
    for conv in ("big_vision", "colab"):
        y1, x1, y2, x2 = loc_to_pixels(loc, h, w, convention=conv)  # type: ignore[arg-type]
        assert 0 <= y1 <= h and 0 <= y2 <= h and 0 <= x1 <= w and 0 <= x2 <= w


def test_conventions_differ_as_documented() -> None:
    assert loc_to_pixels((0, 0, 1023, 1023), 480, 640) == (0, 0, 480, 640)
    assert loc_to_pixels((0, 0, 1023, 1023), 480, 640, convention="colab") == (0, 0, 480, 639)
    with pytest.raises(ValueError, match="convention"):
        loc_to_pixels((0, 0, 1, 1), 4, 4, convention="pil")  # type: ignore[arg-type]


@given(hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)))
def test_tight_box_crop_is_the_bounding_rectangle(mask: np.ndarray) -> None:
    if not mask.any():
        with pytest.raises(ValueError, match="empty"):
            tight_box(mask)
        return
    h, w = mask.shape
    t, l, b, r = crop_pixels(tight_box(mask), h, w)
    ys, xs = np.nonzero(mask)
    assert (t, l, b, r) == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)


def test_pixels_to_box() -> None:
    assert pixels_to_box((24, 2, 312, 196), 318, 208) == (24 / 318, 2 / 208, 312 / 318, 196 / 208)
    with pytest.raises(ValueError, match="positive"):
        pixels_to_box((0, 0, 1, 1), 0, 5)


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ((0.1, 0.2, 0.3), "4 numbers"),  # too short
        ((0.1, 0.2, 0.3, float("nan")), "finite"),  # NaN
        ((-0.1, 0.0, 0.5, 0.5), r"\[0, 1\]"),  # negative
        ((0.0, 0.0, 1.2, 0.5), r"\[0, 1\]"),  # above 1
        ((0.5, 0.0, 0.5, 0.5), "zero or negative area"),  # y2 == y1
        ((0.1, 0.6, 0.5, 0.5), "zero or negative area"),  # x2 < x1
    ],
)
def test_validate_box_rejects(box, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        validate_box(box)


any_float = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(st.tuples(any_float, any_float, any_float, any_float))
def test_box_to_loc_equals_the_float32_numpy_formula(box: tuple[float, float, float, float]) -> None:
    """The scalar implementation equals ``clip(round(float32(v) * 1023), 0, 1023)`` done in NumPy."""
    with np.errstate(over="ignore"):  # float32 max * 1023 overflows to inf, which clips to 1023
        want = np.clip(np.round(np.asarray(box, np.float32) * np.float32(1023)), 0, 1023).astype(int)
    assert box_to_loc(box) == tuple(want.tolist())


@given(st.integers(1, 100_000), st.integers(1, 100_000), st.tuples(unit, unit, unit, unit))
def test_crop_pixels_equals_the_float32_numpy_formula(h: int, w: int, box: tuple[float, float, float, float]) -> None:
    hw = np.array([h, w, h, w], np.float32)
    want = np.round(hw * np.asarray(box, np.float32)).astype(int)
    assert crop_pixels(box, h, w) == tuple(want.tolist())


@pytest.mark.parametrize("box", [(0, 0, 1, 1), [0.0, 0.0, 1.0, 1.0], np.array([0, 0, 1, 1]), (np.float32(0), 0, 1, 1)])
def test_validate_box_accepts_any_sequence_of_four_numbers(box) -> None:  # type: ignore[no-untyped-def]
    assert validate_box(box) == (0.0, 0.0, 1.0, 1.0)
