"""Pinned cases for `paligemma_segcodec.boxes`: the float32 contract, error branches and messages.

These complement tests/test_boxes.py; each case is here because a mutation of boxes.py survived
the other tests (see docs/contributing.md, "Mutation testing").

Equivalent mutants (mutmut 3 names, ``paligemma_segcodec.boxes.x_<function>__mutmut_<n>``): no test
can kill them because the mutated code computes the same result for every input.

- ``validate_box`` 8 (``type(None) in (float, int)`` in the fast-path test): it only sends a
  4-number tuple/list down the NumPy path instead of the plain-float one, and
  ``np.asarray(box, float64).tolist()`` gives the same floats as ``[float(v) for v in box]``
  (an int too large for a float raises OverflowError on both paths).
- ``_loc`` 1 (``v < 0.0`` instead of ``v <= 0.0``), 4 (``v > 1.0`` instead of ``v >= 1.0``):
  at exactly 0.0 / 1.0 the general branch gives ``round(0.0) == 0`` / ``round(1023.0) == 1023``,
  the same as the early returns (and ``round(-0.0) == 0``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paligemma_segcodec.boxes import (
    LOC_MAX,
    box_to_loc,
    crop_pixels,
    loc_to_box,
    loc_to_pixels,
    pixels_to_box,
    tight_box,
    validate_box,
)

# --- box_to_loc: round(v * 1023) in float32, half to even -------------------------------------


@pytest.mark.parametrize(
    ("box", "loc"),
    [
        # float32(v) * 1023 is exactly 33.5 in float32 -> 34 (half to even); in float64 it is
        # 33.49999693 -> 33: computing in float64 changes the token.
        ((0.032746820069403715, 0.0, 1.0, 1.0), (34, 0, 1023, 1023)),
        ((0.0, 0.0, 1.0, 1.0), (0, 0, 1023, 1023)),  # the exact ends
        ((-0.0, -5.0, 7.0, 1.0), (0, 0, 1023, 1023)),  # clipped, not rejected
        ((0.5 / 1023, 1.5 / 1023, 2.5 / 1023, 3.5 / 1023), (0, 2, 2, 4)),  # ties to even
        ((1 / 1023, 2 / 1023, 1021 / 1023, 1022 / 1023), (1, 2, 1021, 1022)),  # one step inside each end
    ],
)
def test_box_to_loc_pinned(box: tuple[float, float, float, float], loc: tuple[int, int, int, int]) -> None:
    assert box_to_loc(box) == loc
    assert box_to_loc(np.asarray(box, np.float64)) == loc  # a float64 array is rounded to float32 first too
    assert all(type(k) is int for k in box_to_loc(box))


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ((0.1, 0.2, 0.3), r"^box must be 4 numbers \(y1, x1, y2, x2\), got shape \(3,\)$"),  # too short
        ((0.1, 0.2, 0.3, 0.4, 0.5), r"^box must be 4 numbers .*got shape \(5,\)$"),  # too long
        (((0.1, 0.2), (0.3, 0.4)), r"^box must be 4 numbers .*got shape \(2, 2\)$"),  # 2-D
        ((0.1, 0.2, 0.3, math.nan), r"^box must be finite, got \[0\.1"),  # NaN
        ((0.1, 0.2, math.inf, 0.4), r"^box must be finite, got "),  # inf: would clip to 1023 otherwise
    ],
)
def test_box_to_loc_rejects(box: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        box_to_loc(box)  # type: ignore[arg-type]


# --- crop_pixels: round(side * v) in float32, half to even ------------------------------------


@pytest.mark.parametrize(
    ("box", "height", "width", "crop"),
    [
        # float32(45) * float32(0.7) rounds to exactly 31.5 in float32 -> 32 (even); with the box in
        # float64, 45 * 0.7 = 31.499999999999996 -> 31.
        ((0.0, 0.7, 1.0, 1.0), 10, 45, (0, 32, 10, 45)),
        # float32(0.1) * 5 rounds to exactly 0.5 in float32 -> 0; with the sides in float64 (an int
        # array times float32 is float64) it is 0.50000001 -> 1.
        ((0.1, 0.0, 1.0, 1.0), 5, 7, (0, 0, 5, 7)),
        # same for 10 * float32(0.35) = 3.5 -> 4 (float64: 3.49999999 -> 3) and 10 * 0.85 = 8.5 -> 8
        ((0.35, 0.0, 0.85, 1.0), 10, 3, (4, 0, 8, 3)),
        ((0.1, 0.1, 0.9, 0.9), 300, 500, (30, 50, 270, 450)),  # the docstring's
        ((0.5, 0.5, 0.5, 0.5), 3, 5, (2, 2, 2, 2)),  # 1.5 -> 2, 2.5 -> 2: half to even; an empty crop is returned
    ],
)
def test_crop_pixels_pinned(
    box: tuple[float, float, float, float], height: int, width: int, crop: tuple[int, int, int, int]
) -> None:
    assert crop_pixels(box, height, width) == crop
    assert all(type(k) is int for k in crop_pixels(box, height, width))


# --- loc_to_box --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "box"),
    [
        ((0, 0, 1023, 1023), (0.0, 0.0, 1.0, 1.0)),
        ((1, 2, 511, 1022), (1 / 1023, 2 / 1023, 511 / 1023, 1022 / 1023)),
        (np.array([10, 20, 30, 40], np.int16), (10 / 1023, 20 / 1023, 30 / 1023, 40 / 1023)),  # any integer dtype
        ((7, 7, 7, 7), (7 / 1023,) * 4),  # an empty box is not loc_to_box's business
    ],
)
def test_loc_to_box_pinned(loc: tuple[int, int, int, int], box: tuple[float, float, float, float]) -> None:
    got = loc_to_box(loc)
    assert got == box
    assert all(type(v) is float for v in got)


@pytest.mark.parametrize(
    ("loc", "match"),
    [
        ((1, 2, 3), r"^loc must be 4 integers, got \[1, 2, 3\]$"),  # 3 integers
        ((1, 2, 3, 4, 5), r"^loc must be 4 integers, got \[1, 2, 3, 4, 5\]$"),  # 5 integers
        ((0.0, 0.0, 1.0, 1.0), r"^loc must be 4 integers, got \[0\.0, 0\.0, 1\.0, 1\.0\]$"),  # floats, right shape
        ((-1, 0, 5, 5), r"^loc values must be in 0\.\.1023, got \[-1, 0, 5, 5\]$"),  # only one below 0
        ((0, 0, 5, 1024), r"^loc values must be in 0\.\.1023, got \[0, 0, 5, 1024\]$"),  # only one above 1023
    ],
)
def test_loc_to_box_rejects(loc: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        loc_to_box(loc)


# --- loc_to_pixels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "height", "width", "convention", "pixels"),
    [
        # big_vision: int(k / 1023 * side), every corner non-zero
        ((100, 200, 800, 900), 480, 640, "big_vision", (46, 125, 375, 563)),
        ((700, 800, 900, 1000), 1000, 1500, "big_vision", (684, 1173, 879, 1466)),
        # colab: round(k / 1024 * side); 1024, not 1025, not 1023, and a multiplication
        ((100, 200, 800, 900), 480, 640, "colab", (47, 125, 375, 562)),
        ((700, 800, 900, 1000), 1000, 1500, "colab", (684, 1172, 879, 1465)),
        ((512, 256, 768, 1023), 1000, 2000, "colab", (500, 500, 750, 1998)),  # 500.0, 500.0, 750.0, 1998.05
    ],
)
def test_loc_to_pixels_pinned(
    loc: tuple[int, int, int, int], height: int, width: int, convention: str, pixels: tuple[int, int, int, int]
) -> None:
    assert loc_to_pixels(loc, height, width, convention=convention) == pixels  # type: ignore[arg-type]


@given(st.tuples(*[st.integers(0, LOC_MAX)] * 4), st.integers(1, 5000), st.integers(1, 5000))
def test_loc_to_pixels_is_the_documented_formula(loc: tuple[int, int, int, int], height: int, width: int) -> None:
    y1, x1, y2, x2 = loc
    big_vision = (int(y1 / 1023 * height), int(x1 / 1023 * width), int(y2 / 1023 * height), int(x2 / 1023 * width))
    colab = (round(y1 / 1024 * height), round(x1 / 1024 * width), round(y2 / 1024 * height), round(x2 / 1024 * width))
    assert loc_to_pixels(loc, height, width) == big_vision
    assert loc_to_pixels(np.asarray(loc), height, width, convention="colab") == colab


def test_loc_to_pixels_rejects_an_unknown_convention() -> None:
    with pytest.raises(ValueError, match=r"^convention must be 'big_vision' or 'colab', got 'pil'$"):
        loc_to_pixels((0, 0, 1, 1), 4, 4, convention="pil")  # type: ignore[arg-type]


# --- pixels_to_box -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pixels", "height", "width", "box"),
    [
        ((0, 0, 1, 1), 1, 1, (0.0, 0.0, 1.0, 1.0)),  # a 1x1 image is a valid image
        ((1, 2, 3, 4), 4, 8, (0.25, 0.25, 0.75, 0.5)),
        ((0, 0, 2, 1), 2, 1, (0.0, 0.0, 1.0, 1.0)),  # width 1
    ],
)
def test_pixels_to_box_pinned(
    pixels: tuple[int, int, int, int], height: int, width: int, box: tuple[float, float, float, float]
) -> None:
    assert pixels_to_box(pixels, height, width) == box


@pytest.mark.parametrize(("height", "width"), [(0, 5), (5, 0), (-1, 5), (5, -3)])
def test_pixels_to_box_rejects_a_non_positive_side(height: int, width: int) -> None:
    with pytest.raises(ValueError, match=rf"^height and width must be positive, got {height}x{width}$"):
        pixels_to_box((0, 0, 1, 1), height, width)


# --- tight_box ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (np.ones((2, 2, 2), bool), r"^mask must be 2-D \(H, W\), got shape \(2, 2, 2\)$"),  # 3-D
        (np.ones(4, bool), r"^mask must be 2-D \(H, W\), got shape \(4,\)$"),  # 1-D
        (np.zeros((3, 4), bool), r"^mask is empty \(no non-zero pixel\): it has no box"),  # no pixel set
    ],
)
def test_tight_box_rejects(mask: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tight_box(mask)


def test_tight_box_pinned() -> None:
    m = np.zeros((5, 10), np.uint8)
    m[4, 9] = 3  # any non-zero value counts; the last row/column is included
    assert tight_box(m) == (0.8, 0.9, 1.0, 1.0)


# --- validate_box ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ((0.1, 0.2, 0.3, 0.4, 0.5), r"^box must be 4 numbers \(y1, x1, y2, x2\), got shape \(5,\)$"),  # 5 floats
        ([[0], [0], [1], [1]], r"^box must be 4 numbers .*got shape \(4, 1\)$"),  # 4 items, not numbers
        ([None] * 4, r"^box must be finite, got \[nan, nan, nan, nan\]$"),  # None -> NaN in NumPy
        ((0.1, 0.2, math.inf, 0.4), r"^box must be finite, got \[0\.1, 0\.2, inf, 0\.4\]$"),
        ((0.1, -0.5, 0.3, 0.4), r"^box must be normalized to \[0, 1\] \(y1, x1, y2, x2\), got "),
        ((0.1, 0.5, 0.6, 0.5), r"^box has zero or negative area \(need y2 > y1 and x2 > x1\), got "),  # x2 == x1
        ((0.5, 0.1, 0.5, 0.6), r"^box has zero or negative area"),  # y2 == y1
        (np.array([0.1, 0.5, 0.6, 0.5]), r"^box has zero or negative area"),  # x2 == x1, NumPy path
    ],
)
def test_validate_box_rejects_with_message(box: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_box(box)  # type: ignore[arg-type]


def test_validate_box_names_where() -> None:
    with pytest.raises(ValueError, match=r"^boxes\[2\] has zero or negative area"):
        validate_box((0.5, 0.1, 0.5, 0.6), where="boxes[2]")
    with pytest.raises(ValueError, match=r"^boxes\[2\] must be 4 numbers"):
        validate_box((0.5, 0.1), where="boxes[2]")


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, 1, 1),  # Python ints
        np.array([0, 0, 1, 1]),  # an int array: still floats out
        np.array([0, 0, 1, 1], np.float32),
        [np.int64(0), np.float32(0), np.uint8(1), 1.0],  # NumPy scalars in a list
        (0.0, 0.0, 1.0, 1.0),  # the edges are inside [0, 1]
    ],
)
def test_validate_box_returns_a_tuple_of_floats(box: object) -> None:
    got = validate_box(box)  # type: ignore[arg-type]
    assert got == (0.0, 0.0, 1.0, 1.0)
    assert type(got) is tuple and all(type(v) is float for v in got)
