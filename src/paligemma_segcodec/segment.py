"""`Segment`, one decoded object, and `paste_mask` (NumPy only, no JAX)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.boxes import LOC_MAX, Box, Convention, loc_to_box, loc_to_pixels
from paligemma_segcodec.coco_masks import _polygons, mask_to_rle
from paligemma_segcodec.resize import resize
from paligemma_segcodec.tokens import NUM_SEG, SEG_MAX, format_object

__all__ = ["Segment", "paste_mask", "paste_mask_in_box"]


MAX_PASTE_PIXELS = 2**28
"""Largest ``height × width`` a mask is pasted onto (the COCO reader's image cap, above Pillow's
decompression-bomb limit): one full-size bool mask is at most 256 MiB."""


def check_size(height: object, width: object) -> tuple[int, int]:
    """An image size, checked: ``(height, width)`` as positive Python ints.

    Args:
      height: the height in pixels (an int, or a float holding an integer).
      width: the width in pixels (likewise).

    Returns:
      ``(height, width)`` as ints.

    Raises:
      ValueError: not an integer, not finite, not positive, or more than `MAX_PASTE_PIXELS` pixels.

    Example:
        >>> check_size(480, 640.0)
        (480, 640)
    """
    sizes = []
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer, float, np.floating)):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(v, (float, np.floating)) and not (np.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
        sizes.append(int(v))
    h, w = sizes
    if h <= 0 or w <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if h * w > MAX_PASTE_PIXELS:
        raise ValueError(f"height x width = {h}x{w} is more than {MAX_PASTE_PIXELS} pixels (MAX_PASTE_PIXELS)")
    return h, w


def paste_mask(
    mask64: npt.ArrayLike,
    loc: tuple[int, int, int, int],
    height: int,
    width: int,
    *,
    convention: Convention = "big_vision",
) -> npt.NDArray[np.bool_]:
    """Pastes a decoded 64×64 mask into its box on a ``height × width`` canvas.

    The box corners are `loc_to_pixels` of ``loc`` (``convention``), the raw 64×64 output is resized
    to the box with bilinear interpolation (antialiased when the box is smaller than 64, as
    ``jax.image.resize``), and thresholded at 0. A box that rounds to no pixel gives an empty mask.

    Args:
      mask64: float ``[64, 64]``, the decoder's raw output (logits).
      loc: the 4 ``<loc>`` indices (y1, x1, y2, x2).
      height: the image height in pixels.
      width: the image width in pixels.
      convention: loc → pixel rule (`loc_to_pixels`): ``"big_vision"`` or ``"colab"``.

    Returns:
      bool ``[height, width]``.

    Raises:
      ValueError: ``mask64`` is not 2-D, a bad size (`check_size`), or an unknown ``convention``.

    Example:
        >>> m = paste_mask(np.ones((64, 64)), (0, 0, 512, 1023), 4, 6)
        >>> m.astype(int)
        array([[1, 1, 1, 1, 1, 1],
               [1, 1, 1, 1, 1, 1],
               [0, 0, 0, 0, 0, 0],
               [0, 0, 0, 0, 0, 0]])
    """
    m = np.asarray(mask64, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"mask64 must be 2-D, got shape {m.shape}")
    height, width = check_size(height, width)
    out = np.zeros((int(height), int(width)), dtype=bool)
    y1, x1, y2, x2 = loc_to_pixels(loc, int(height), int(width), convention=convention)
    y1, x1 = max(y1, 0), max(x1, 0)
    y2, x2 = min(y2, int(height)), min(x2, int(width))
    if y2 > y1 and x2 > x1:
        out[y1:y2, x1:x2] = resize(m, y2 - y1, x2 - x1) > 0
    return out


def paste_mask_in_box(
    mask64: npt.ArrayLike,
    loc: tuple[int, int, int, int],
    height: int,
    width: int,
    *,
    convention: Convention = "big_vision",
) -> tuple[tuple[int, int, int, int], npt.NDArray[np.bool_]]:
    """`paste_mask` restricted to the box: its pixel rectangle and the bool pixels inside it.

    ``paste_mask(...)`` is ``crop`` at ``[top:bottom, left:right]`` and False everywhere else, so a
    caller that needs one object at a time holds box-sized arrays instead of image-sized ones.

    Args:
      mask64: the decoder's 64×64 output (as `paste_mask`).
      loc: the object's ``<loc>`` values (as `paste_mask`).
      height: the image height (as `paste_mask`).
      width: the image width (as `paste_mask`).
      convention: loc → pixel rule (as `paste_mask`).

    Returns:
      ``((top, left, bottom, right), crop)``: the box clipped to the canvas (bottom/right exclusive;
      ``bottom == top`` or ``right == left`` for a box that rounds to no pixel) and bool
      ``[bottom - top, right - left]``.

    Raises:
      ValueError: ``mask64`` is not 2-D, a bad size (`check_size`), or an unknown ``convention``.

    Example:
        >>> (t, left, b, r), crop = paste_mask_in_box(np.ones((64, 64)), (0, 0, 512, 1023), 10, 20)
        >>> (t, left, b, r), crop.shape, bool(crop.all())
        ((0, 0, 5, 20), (5, 20), True)
    """
    m = np.asarray(mask64, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"mask64 must be 2-D, got shape {m.shape}")
    height, width = check_size(height, width)
    y1, x1, y2, x2 = loc_to_pixels(loc, int(height), int(width), convention=convention)
    y1, x1 = min(max(y1, 0), int(height)), min(max(x1, 0), int(width))
    y2, x2 = max(min(y2, int(height)), y1), max(min(x2, int(width)), x1)
    if y2 > y1 and x2 > x1:
        return (y1, x1, y2, x2), resize(m, y2 - y1, x2 - x1) > 0
    return (y1, x1, y2, x2), np.zeros((y2 - y1, x2 - x1), dtype=bool)


@dataclass(frozen=True)
class Segment:
    """One object of a PaliGemma answer.

    Attributes:
      label: the object's label ("" when the model gave none).
      loc: the 4 ``<loc>`` indices (y1, x1, y2, x2) in 0..1023, y2 > y1 and x2 > x1.
      seg: the 16 ``<seg>`` indices in 0..127, or None for a detection-only object.
      mask64: float32 ``[64, 64]`` raw decoder output (logits; > 0 is the mask) or None.
      mask: bool ``[H, W]`` full-size mask (when decoded with height/width) or None.

    ``box`` (normalized, ``k / 1023``) is derived from ``loc``. Two segments compare equal when
    label, loc and seg are equal (masks are not compared). `to_rle` and `to_polygons` give the mask
    as COCO segmentations, `to_text` as PaliGemma text.

    Raises:
      TypeError: ``label`` is not a str.
      ValueError: ``loc`` is not 4 ints in 0..1023 with ``y2 > y1`` and ``x2 > x1``; ``seg`` is not
        16 ints in 0..127 (or None); ``mask64`` is not 64×64; ``mask`` is not 2-D.

    Example:
        >>> s = Segment(label="cat", loc=(0, 0, 512, 1023))
        >>> s.box[2], s.to_text()
        (0.5004887585532747, '<loc0000><loc0000><loc0512><loc1023> cat')
    """

    label: str
    loc: tuple[int, int, int, int]
    seg: tuple[int, ...] | None = None
    mask64: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)
    mask: npt.NDArray[np.bool_] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str):
            raise TypeError(f"label must be a str, got {type(self.label).__name__}")
        loc = tuple(int(v) for v in self.loc)
        if len(loc) != 4 or any(not 0 <= v <= LOC_MAX for v in loc):
            raise ValueError(f"loc must be 4 ints in 0..{LOC_MAX}, got {self.loc!r}")
        if loc[2] <= loc[0] or loc[3] <= loc[1]:
            raise ValueError(f"loc must have y2 > y1 and x2 > x1, got {loc}")
        object.__setattr__(self, "loc", loc)
        if self.seg is not None:
            seg = tuple(int(v) for v in self.seg)
            if len(seg) != NUM_SEG or any(not 0 <= v <= SEG_MAX for v in seg):
                raise ValueError(f"seg must be {NUM_SEG} ints in 0..{SEG_MAX} or None, got {self.seg!r}")
            object.__setattr__(self, "seg", seg)
        if self.mask64 is not None and np.shape(self.mask64) != (64, 64):
            raise ValueError(f"mask64 must have shape (64, 64), got {np.shape(self.mask64)}")
        if self.mask is not None and np.ndim(self.mask) != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {np.shape(self.mask)}")

    @property
    def box(self) -> Box:
        """Normalized ``(y1, x1, y2, x2)``: ``loc / 1023``.

        Example:
            >>> Segment(label="", loc=(0, 0, 1023, 1023)).box
            (0.0, 0.0, 1.0, 1.0)
        """
        return loc_to_box(self.loc)

    def xyxy(
        self,
        *args: int,
        height: int | None = None,
        width: int | None = None,
        convention: Convention = "big_vision",
    ) -> tuple[int, int, int, int]:
        """The box in pixels as ``(x1, y1, x2, y2)`` (x2, y2 exclusive), see `loc_to_pixels`.

        ``height`` and ``width`` are keyword-only, as everywhere in the library (height first). The
        old positional form ``xyxy(width, height)`` still works for one release, with a
        DeprecationWarning.

        Args:
          *args: the deprecated positional ``(width, height)``.
          height: the image height in pixels.
          width: the image width in pixels.
          convention: loc → pixel rule (`loc_to_pixels`).

        Returns:
          ``(x1, y1, x2, y2)`` pixel ints.

        Raises:
          TypeError: no ``height``/``width``, or positional arguments mixed with them.
          ValueError: an unknown ``convention``.

        Example:
            >>> Segment(label="", loc=(0, 0, 1023, 1023)).xyxy(height=480, width=640)
            (0, 0, 640, 480)
        """
        if args:
            if len(args) != 2 or height is not None or width is not None:
                raise TypeError("xyxy takes the keyword arguments height= and width=")
            warnings.warn(
                "Segment.xyxy(width, height) is deprecated: use xyxy(height=..., width=...)",
                DeprecationWarning,
                stacklevel=2,
            )
            width, height = args
        if height is None or width is None:
            raise TypeError("xyxy needs height= and width= (the image size in pixels)")
        y1, x1, y2, x2 = loc_to_pixels(self.loc, height, width, convention=convention)
        return (x1, y1, x2, y2)

    def to_text(self) -> str:
        """The object as PaliGemma text: 4 ``<loc>`` (+ 16 ``<seg>``) + ``" " + label`` if any.

        Returns:
          The object's tokens and label, e.g. ``"<loc0000><loc0000><loc0512><loc1023> cat"``.

        Raises:
          ValueError: the label cannot be written (see `paligemma_segcodec.tokens.check_label`).

        Example:
            >>> Segment(label="cat", loc=(0, 0, 512, 1023)).to_text()
            '<loc0000><loc0000><loc0512><loc1023> cat'
        """
        return format_object(self.loc, self.seg, self.label or None)

    def _full_mask(
        self, height: int | None, width: int | None, convention: Convention
    ) -> tuple[int, int, npt.NDArray[np.bool_]] | None:
        """``(top, left, crop)``: the pixels of the full-size mask inside the object's box (the mask
        is False elsewhere), from ``mask`` (its size checked against ``height``/``width`` when given)
        or pasted from ``mask64``; None for a detection-only segment."""
        if (height is None) != (width is None):
            raise ValueError("give both height and width, or neither")
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if height is not None and mask.shape != check_size(height, width):
                raise ValueError(f"the segment's mask is {mask.shape}, but height={height}, width={width} were given")
            return 0, 0, mask
        if self.mask64 is None:
            return None
        if height is None or width is None:
            raise ValueError(
                "the segment was decoded without the image size: pass height= and width= to paste its mask"
            )
        (top, left, _, _), crop = paste_mask_in_box(self.mask64, self.loc, height, width, convention=convention)
        return top, left, crop

    def to_rle(
        self, *, height: int | None = None, width: int | None = None, convention: Convention = "big_vision"
    ) -> dict[str, Any]:
        """The full-size mask as a pycocotools RLE ``{"size": [H, W], "counts": str}``.

        ``counts`` is pycocotools' compressed string as a ``str`` (pycocotools' ``encode`` gives
        ``bytes``), so the dict is JSON-serialisable as it is and pycocotools' ``decode``, ``area``
        and ``iou`` accept it. The mask is ``mask`` (decoded with ``height``/``width``), or, for a
        segment decoded without a size, ``mask64`` pasted into its box as `paste_mask` does.

        Args:
          height: the image height in pixels: needed when the segment has no full-size ``mask``;
            otherwise checked against it.
          width: the image width in pixels (give both or neither).
          convention: loc → pixel rule for pasting ``mask64`` (`paste_mask`).

        Returns:
          ``{"size": [height, width], "counts": str}``.

        Raises:
          ValueError: a detection-only segment (no mask), no ``height``/``width`` for a segment
            without a full-size mask, a size other than its mask's, or a bad size.

        Example:
            >>> s = Segment(label="cat", loc=(0, 0, 512, 1023), mask64=np.ones((64, 64), np.float32))
            >>> s.to_rle(height=4, width=3)
            {'size': [4, 3], 'counts': '0220000'}
        """
        found = self._full_mask(height, width, convention)
        if found is None:
            raise ValueError("a detection-only segment (no <seg> tokens) has no mask")
        top, left, crop = found
        if self.mask is not None:
            return mask_to_rle(crop)  # the mask itself
        full = np.zeros(check_size(height, width), dtype=bool)
        full[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
        return mask_to_rle(full)

    def to_polygons(
        self, *, height: int | None = None, width: int | None = None, convention: Convention = "big_vision"
    ) -> list[list[float]]:
        """The full-size mask as COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` in pixels.

        Exact boundary tracing of the pixel squares (scipy, no OpenCV; see
        `paligemma_segcodec.coco_masks.mask_to_polygons`): one polygon per 8-connected component,
        along its outer boundary, with vertices at pixel corners (pixel ``(y, x)`` spans
        ``x..x+1``, ``y..y+1``). Holes are not represented: use `to_rle` for an exact mask.

        Args:
          height: the image height in pixels: needed when the segment has no full-size ``mask``;
            otherwise checked against it.
          width: the image width in pixels (give both or neither).
          convention: loc → pixel rule for pasting ``mask64`` (`paste_mask`).

        Returns:
          One flat ``[x0, y0, x1, y1, ...]`` list of floats per component; ``[]`` for an empty mask.

        Raises:
          ValueError: a detection-only segment (no mask), no ``height``/``width`` for a segment
            without a full-size mask, a size other than its mask's, or a bad size.

        Example:
            >>> s = Segment(label="cat", loc=(0, 0, 512, 1023), mask64=np.ones((64, 64), np.float32))
            >>> s.to_polygons(height=4, width=3)
            [[0.0, 0.0, 3.0, 0.0, 3.0, 2.0, 0.0, 2.0]]
        """
        found = self._full_mask(height, width, convention)
        if found is None:
            raise ValueError("a detection-only segment (no <seg> tokens) has no mask")
        top, left, crop = found
        return _polygons(crop, top, left)
