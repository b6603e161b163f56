"""Box conventions and helpers (NumPy only, no JAX).

Formats used throughout the library:

- **box**: normalized ``(y1, x1, y2, x2)`` floats in [0, 1], top-left inclusive, bottom-right
  exclusive, ``y`` first as in PaliGemma's output.
- **loc**: four ints in 0..1023, ``round(v * 1023)`` of a box coordinate (round half to even, float32,
  clipped), the numbers in ``<locNNNN>`` tokens. ``k`` means ``k / 1023`` of the image side.
- **xyxy**: ``(x1, y1, x2, y2)``, the order most other libraries (COCO tools, supervision) use.
- **COCO xywh**: ``[x, y, w, h]`` in pixels (floats), COCO's ``bbox``: see `to_coco_xywh` and
  `from_coco_xywh`.
- **pixel crop**: ``(top, left, bottom, right)`` ints, the rows/columns the reference encoder cuts
  out of a mask: ``round(H * y1)`` … in float32 with round half to even, as ``tf.round``.

Decoding (loc → pixels) has two conventions, see `loc_to_pixels`:
``"big_vision"`` (default, big_vision's evaluator: ``int(k / 1023 * side)``) and ``"colab"``
(the PaliGemma demo colab: ``round(k / 1024 * side)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "LOC_MAX",
    "Convention",
    "box_to_loc",
    "crop_pixels",
    "from_coco_xywh",
    "loc_to_box",
    "loc_to_pixels",
    "pixels_to_box",
    "tight_box",
    "to_coco_xywh",
    "validate_box",
    "xyxy_to_yxyx",
    "yxyx_to_xyxy",
]

LOC_MAX = 1023
"""Largest ``<loc>`` index; coordinate ``k`` means ``k / LOC_MAX`` of the image side."""

Convention = Literal["big_vision", "colab"]
Box = tuple[float, float, float, float]


def validate_box(box: Sequence[float] | npt.ArrayLike, *, where: str = "box") -> Box:
    """Checks a normalized ``(y1, x1, y2, x2)`` box and returns it as a tuple of floats.

    Args:
      box: 4 numbers ``(y1, x1, y2, x2)`` (a sequence or an array).
      where: what the error message calls the box.

    Returns:
      The box as 4 Python floats.

    Raises:
      ValueError: not 4 finite numbers, outside [0, 1], or ``y2 <= y1`` / ``x2 <= x1``.

    Example:
        >>> validate_box([0, 0.25, 1, 0.75])
        (0.0, 0.25, 1.0, 0.75)
    """
    if isinstance(box, (tuple, list)) and len(box) == 4 and all(type(v) in (float, int) for v in box):
        values = [float(v) for v in box]  # the common case, without a NumPy round trip
    else:
        arr = np.asarray(box, dtype=np.float64)
        if arr.shape != (4,):
            raise ValueError(f"{where} must be 4 numbers (y1, x1, y2, x2), got shape {arr.shape}")
        values = arr.tolist()
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where} must be finite, got {values}")
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"{where} must be normalized to [0, 1] (y1, x1, y2, x2), got {values}")
    y1, x1, y2, x2 = values
    if y2 <= y1 or x2 <= x1:
        raise ValueError(f"{where} has zero or negative area (need y2 > y1 and x2 > x1), got {values}")
    return (y1, x1, y2, x2)


def box_to_loc(box: Sequence[float] | npt.ArrayLike) -> tuple[int, int, int, int]:
    """Normalized box → four ``<loc>`` indices: ``clip(round(v * 1023), 0, 1023)`` in float32.

    Round half to even, as the reference (``tf.round``). Values outside [0, 1] are clipped, not
    rejected: use `validate_box` first if you want that check.

    Args:
      box: normalized ``(y1, x1, y2, x2)``.

    Returns:
      The 4 ``<loc>`` indices ``(y1, x1, y2, x2)`` in 0..1023.

    Raises:
      ValueError: not 4 numbers, or a value that is NaN or infinite.

    Example:
        >>> box_to_loc((0.0, 0.25, 0.5, 1.0))
        (0, 256, 512, 1023)
    """
    arr = np.asarray(box, dtype=np.float32)
    if arr.shape != (4,):
        raise ValueError(f"box must be 4 numbers (y1, x1, y2, x2), got shape {arr.shape}")
    if not all(math.isfinite(v) for v in arr.tolist()):
        raise ValueError(f"box must be finite, got {arr.tolist()}")
    y1, x1, y2, x2 = (_loc(v) for v in arr.tolist())
    return (y1, x1, y2, x2)


def _loc(v: float) -> int:
    """``clip(round(float32(v) * 1023), 0, 1023)`` for a float32 value ``v`` (as a Python float)."""
    if v <= 0.0:
        return 0
    if v >= 1.0:
        return LOC_MAX
    # v * 1023 is exact in float64 (24 + 10 significant bits); np.float32 rounds it as a float32
    # multiply would, and round() is half to even like tf.round.
    return round(float(np.float32(v * LOC_MAX)))


def loc_to_box(loc: Sequence[int] | npt.ArrayLike) -> Box:
    """Four ``<loc>`` indices → normalized box ``k / 1023``.

    Args:
      loc: 4 integers in 0..1023 ``(y1, x1, y2, x2)``.

    Returns:
      The normalized box ``(y1, x1, y2, x2)``.

    Raises:
      ValueError: not 4 integers, or a value outside 0..1023.

    Example:
        >>> loc_to_box((0, 0, 1023, 1023))
        (0.0, 0.0, 1.0, 1.0)
    """
    arr = np.asarray(loc)
    if arr.shape != (4,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"loc must be 4 integers, got {arr.tolist()!r}")
    if np.any(arr < 0) or np.any(arr > LOC_MAX):
        raise ValueError(f"loc values must be in 0..{LOC_MAX}, got {arr.tolist()}")
    y1, x1, y2, x2 = (int(v) / LOC_MAX for v in arr)
    return (y1, x1, y2, x2)


def loc_to_pixels(
    loc: Sequence[int], height: int, width: int, *, convention: Convention = "big_vision"
) -> tuple[int, int, int, int]:
    """Four ``<loc>`` indices → pixel rows/columns ``(top, left, bottom, right)``, bottom/right exclusive.

    - ``"big_vision"`` (default): ``int(k / 1023 * side)`` as big_vision's segmentation evaluator.
    - ``"colab"``: ``round(k / 1024 * side)`` as the PaliGemma demo colab.

    Args:
      loc: the 4 ``<loc>`` indices ``(y1, x1, y2, x2)``.
      height: the image height in pixels.
      width: the image width in pixels.
      convention: ``"big_vision"`` (default) or ``"colab"``.

    Returns:
      ``(top, left, bottom, right)`` pixel ints.

    Raises:
      ValueError: an unknown ``convention``.

    Example:
        >>> loc_to_pixels((0, 0, 1023, 1023), 480, 640)
        (0, 0, 480, 640)
        >>> loc_to_pixels((0, 0, 1023, 1023), 480, 640, convention="colab")
        (0, 0, 480, 639)
    """
    y1, x1, y2, x2 = (int(v) for v in loc)
    if convention == "big_vision":
        return (
            int(y1 / LOC_MAX * height),
            int(x1 / LOC_MAX * width),
            int(y2 / LOC_MAX * height),
            int(x2 / LOC_MAX * width),
        )
    if convention == "colab":
        return (
            round(y1 / 1024 * height),
            round(x1 / 1024 * width),
            round(y2 / 1024 * height),
            round(x2 / 1024 * width),
        )
    raise ValueError(f"convention must be 'big_vision' or 'colab', got {convention!r}")


def yxyx_to_xyxy(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(y1, x1, y2, x2)`` → ``(x1, y1, x2, y2)`` (the inverse is `xyxy_to_yxyx`).

    Args:
      box: ``(y1, x1, y2, x2)``, in any unit.

    Returns:
      ``(x1, y1, x2, y2)``.

    Raises:
      ValueError: ``box`` does not hold exactly 4 values.

    Example:
        >>> yxyx_to_xyxy((1, 2, 3, 4))
        (2, 1, 4, 3)
    """
    y1, x1, y2, x2 = box
    return (x1, y1, x2, y2)


def xyxy_to_yxyx(box: Sequence[float]) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` → ``(y1, x1, y2, x2)`` (the inverse is `yxyx_to_xyxy`).

    Args:
      box: ``(x1, y1, x2, y2)``, in any unit.

    Returns:
      ``(y1, x1, y2, x2)``.

    Raises:
      ValueError: ``box`` does not hold exactly 4 values.

    Example:
        >>> xyxy_to_yxyx((2, 1, 4, 3))
        (1, 2, 3, 4)
    """
    x1, y1, x2, y2 = box
    return (y1, x1, y2, x2)


def pixels_to_box(pixels: Sequence[float], height: int, width: int) -> Box:
    """Pixel ``(top, left, bottom, right)`` → normalized box (divide by the image side).

    Args:
      pixels: ``(top, left, bottom, right)`` in pixels.
      height: the image height in pixels.
      width: the image width in pixels.

    Returns:
      ``(top / height, left / width, bottom / height, right / width)`` (not clipped, not checked).

    Raises:
      ValueError: ``height`` or ``width`` is not positive.

    Example:
        >>> pixels_to_box((24, 2, 312, 196), 318, 208)[2]
        0.9811320754716981
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    t, left, b, r = pixels
    return (t / height, left / width, b / height, r / width)


def tight_box(mask: npt.ArrayLike) -> Box:
    """The tightest normalized box around the non-zero pixels of a 2-D mask.

    ``(ymin / H, xmin / W, (ymax + 1) / H, (xmax + 1) / W)``: the crop it gives is exactly the
    mask's bounding rectangle.

    Args:
      mask: ``(H, W)``; non-zero pixels are the mask.

    Returns:
      The normalized box ``(y1, x1, y2, x2)``.

    Raises:
      ValueError: the mask is not 2-D or has no non-zero pixel (an empty mask has no box).

    Example:
        >>> m = np.zeros((4, 8), bool); m[1:3, 2:6] = True
        >>> tight_box(m)
        (0.25, 0.25, 0.75, 0.75)
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {arr.shape}")
    rows = np.flatnonzero(arr.any(axis=1))
    if rows.size == 0:
        raise ValueError("mask is empty (no non-zero pixel): it has no box; pass box= explicitly")
    cols = np.flatnonzero(arr.any(axis=0))
    h, w = arr.shape
    return (int(rows[0]) / h, int(cols[0]) / w, (int(rows[-1]) + 1) / h, (int(cols[-1]) + 1) / w)


def crop_pixels(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """The reference encoder's crop of a normalized box: ``(top, left, bottom, right)`` pixels.

    ``round(H * y1), round(W * x1), round(H * y2), round(W * x2)`` in float32, round half to even
    (``tf.round``). The crop may be empty (``bottom <= top``) for a box thinner than a pixel: the
    caller decides whether that is an error.

    Args:
      box: normalized ``(y1, x1, y2, x2)``.
      height: the mask height in pixels.
      width: the mask width in pixels.

    Returns:
      ``(top, left, bottom, right)`` pixel ints (bottom/right exclusive).

    Raises:
      ValueError: ``box`` is not 4 numbers.

    Example:
        >>> crop_pixels((0.1, 0.1, 0.9, 0.9), 300, 500)
        (30, 50, 270, 450)
    """
    b = np.asarray(box, dtype=np.float32)
    hw = np.array([height, width, height, width], dtype=np.float32)
    # float32 products, exactly as Python floats; round() is half to even like tf.round
    t, left, bot, r = (round(v) for v in (hw * b).tolist())
    return (t, left, bot, r)


def _side(name: str, v: object) -> int:
    """A positive integer image side (an int, or a float holding one), or ValueError."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer, float, np.floating)):
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(v, (float, np.floating)) and not (math.isfinite(v) and float(v).is_integer()):
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if int(v) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def to_coco_xywh(box: Sequence[float] | npt.ArrayLike, height: int, width: int) -> tuple[float, float, float, float]:
    """Normalized ``(y1, x1, y2, x2)`` → COCO ``bbox`` ``[x, y, w, h]`` in pixels, without rounding.

    Exactly, in float64: ``x = x1 * width``, ``y = y1 * height``, ``w = (x2 - x1) * width``,
    ``h = (y2 - y1) * height``. Nothing is rounded (COCO's ``bbox`` holds floats); round the
    result yourself for integer pixels. `from_coco_xywh` is the inverse (up to float rounding).

    Args:
      box: normalized ``(y1, x1, y2, x2)``, checked by `validate_box`.
      height: the image height in pixels.
      width: the image width in pixels.

    Returns:
      ``(x, y, w, h)`` floats in pixels.

    Raises:
      ValueError: a bad box (not 4 finite numbers in [0, 1] with ``y2 > y1`` and ``x2 > x1``), or a
        height or width that is not a positive integer.

    Example:
        >>> to_coco_xywh((0.25, 0.5, 0.75, 1.0), height=200, width=100)
        (50.0, 50.0, 50.0, 100.0)
    """
    h, w = _side("height", height), _side("width", width)
    y1, x1, y2, x2 = validate_box(box)
    return (x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h)


def from_coco_xywh(xywh: Sequence[float] | npt.ArrayLike, height: int, width: int) -> Box:
    """COCO ``bbox`` ``[x, y, w, h]`` in pixels → normalized ``(y1, x1, y2, x2)``, without rounding.

    Exactly, in float64: ``y1 = y / height``, ``x1 = x / width``, ``y2 = (y + h) / height``,
    ``x2 = (x + w) / width``, then each value clipped to [0, 1] (a box reaching past the image edge,
    as exporters' rounding gives, is cut at the edge). Nothing is rounded to ``<loc>`` bins here:
    `box_to_loc` does that (``round(v * 1023)``). The inverse of `to_coco_xywh` up to float rounding.

    Args:
      xywh: ``[x, y, w, h]``: the top-left corner and the size in pixels.
      height: the image height in pixels.
      width: the image width in pixels.

    Returns:
      The normalized box ``(y1, x1, y2, x2)``.

    Raises:
      ValueError: not 4 finite numbers, a negative width or height, a box with no area inside the
        image (after clipping), or a height or width that is not a positive integer.

    Example:
        >>> from_coco_xywh([50, 50, 50, 100], height=200, width=100)
        (0.25, 0.5, 0.75, 1.0)
    """
    h, w = _side("height", height), _side("width", width)
    arr = np.asarray(xywh, dtype=np.float64)
    if arr.shape != (4,):
        raise ValueError(f"xywh must be 4 numbers [x, y, w, h], got shape {arr.shape}")
    x, y, bw, bh = arr.tolist()
    if not all(math.isfinite(v) for v in (x, y, bw, bh)):
        raise ValueError(f"xywh must be finite, got {[x, y, bw, bh]}")
    if bw < 0 or bh < 0:
        raise ValueError(f"xywh has a negative width or height, got {[x, y, bw, bh]}")
    y1, x1, y2, x2 = (min(max(v, 0.0), 1.0) for v in (y / h, x / w, (y + bh) / h, (x + bw) / w))
    if y2 <= y1 or x2 <= x1:
        raise ValueError(f"xywh {[x, y, bw, bh]} has no area inside the {w}x{h} image (need w > 0 and h > 0 within it)")
    return (y1, x1, y2, x2)
