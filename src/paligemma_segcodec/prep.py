"""Host-side preparation: a mask (or its crop) → its box's ``<loc>`` indices and the 64×64 encoder input.

No JAX: the crop and the reference's antialiased resize (`paligemma_segcodec.resize`) in NumPy, or
compiled with numba where it is installed. `paligemma_segcodec.api` feeds the results to the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.boxes import Box, box_to_loc, crop_pixels, tight_box, validate_box
from paligemma_segcodec.resize import _numba_module, resize, resize_binary

__all__ = ["MASK_SIZE", "PreparedMask", "prepare_batch", "prepare_crop", "prepare_mask"]

MASK_SIZE = 64
"""Side of the square masks the VQ-VAE encodes and decodes."""


def _as_mask(mask: npt.ArrayLike, where: str) -> npt.NDArray[np.bool_] | npt.NDArray[np.float32]:
    """Validates a mask: bool ``(H, W)`` for binary input (bool, integer 0/1 or 0/255), else float32 in [0, 1]."""
    if isinstance(mask, (str, bytes)):
        raise TypeError(f"{where} must be an array, got {type(mask).__name__}")
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"{where} must be 2-D (H, W), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{where} has no pixels (shape {arr.shape})")
    if arr.dtype == np.bool_:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        hi, lo = int(arr.max()), int(arr.min())
        if lo >= 0 and hi <= 1:
            return np.asarray(arr != 0)
        if lo >= 0 and hi == 255:
            binary: npt.NDArray[np.bool_] = np.asarray(arr == 255)
            if np.count_nonzero(binary) == np.count_nonzero(arr):
                return binary
        raise ValueError(
            f"{where} is an integer mask with values other than 0/1 or 0/255 (range {lo}..{hi}): "
            "threshold it first, e.g. mask > 127"
        )
    if np.issubdtype(arr.dtype, np.floating):
        out: npt.NDArray[np.float32] = arr.astype(np.float32, copy=False)
        lo_f, hi_f = float(out.min()), float(out.max())
        if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
            raise ValueError(f"{where} contains NaN or inf")
        if lo_f < 0 or hi_f > 1:
            raise ValueError(f"{where} is a float mask with values outside [0, 1] (range {lo_f}..{hi_f})")
        return out
    raise TypeError(f"{where} must be bool, integer or float, got dtype {arr.dtype}")


@dataclass(frozen=True)
class PreparedMask:
    """A mask ready for the encoder: its box's loc tokens and the 64×64 crop.

    Attributes:
      loc: the 4 ``<loc>`` indices of the box.
      mask64: float32 ``[64, 64]`` in [0, 1], the crop after the reference's antialiased resize.
    """

    loc: tuple[int, int, int, int]
    mask64: npt.NDArray[np.float32]


def prepare_mask(mask: npt.ArrayLike, box: Sequence[float] | None = None, *, where: str = "mask") -> PreparedMask:
    """Crops and resizes a mask exactly like the reference encoder (host side, NumPy).

    Args:
      mask: ``(H, W)`` (or ``(H, W, 1)``) bool, integer 0/1 or 0/255, or float in [0, 1].
      box: normalized ``(y1, x1, y2, x2)``; None = the tight box of the mask's non-zero pixels.

    Raises:
      ValueError: bad shape/values, an empty mask without a box, a box outside [0, 1] or of zero
        area, or a box whose crop rounds to zero pixels.
      TypeError: a non-numeric mask.

    Returns:
        `PreparedMask`: ``loc``, the 4 ``<loc>`` indices, and ``mask64``, the float32 ``[64, 64]``
        encoder input in [0, 1].

    Examples:
        >>> import numpy as np
        >>> mask = np.zeros((480, 640), bool)
        >>> mask[100:300, 200:500] = True
        >>> prepared = prepare_mask(mask)
        >>> prepared.loc, prepared.mask64.shape, round(float(prepared.mask64.min()), 4)
        ((213, 320, 639, 799), (64, 64), 1.0)
    """
    m = _as_mask(mask, where)
    h, w = m.shape
    if box is None and not m.any():
        raise ValueError(f"{where} is empty (no non-zero pixel): it has no tight box; pass box= explicitly")
    the_box: Box = tight_box(m) if box is None else validate_box(box, where=f"box of {where}")
    top, left, bottom, right = crop_pixels(the_box, h, w)
    if bottom <= top or right <= left:
        raise ValueError(
            f"box {the_box} on the {h}x{w} {where} rounds to an empty crop "
            f"(rows {top}:{bottom}, columns {left}:{right}); make the box at least a pixel wide"
        )
    return prepare_crop(m[top:bottom, left:right], the_box)


def prepare_crop(crop: npt.ArrayLike, box: Sequence[float]) -> PreparedMask:
    """`PreparedMask` from a crop that was already cut out (``crop == mask[crop_pixels(box, H, W)]``).

    For callers that hold only the pixels inside the box, e.g. one connected component's bounding
    slice with its tight box. ``crop`` is bool, or float in [0, 1] ``(h, w)`` (not re-validated).
    Bool crops take the bit-packed fast path (`resize_binary`), others the separable float resize.
    """
    arr = np.asarray(crop)
    if arr.dtype == np.bool_:
        mask64 = resize_binary(arr, MASK_SIZE, MASK_SIZE)
    else:
        mask64 = resize(arr.astype(np.float32, copy=False), MASK_SIZE, MASK_SIZE)
    return PreparedMask(loc=box_to_loc(box), mask64=mask64)


def prepare_batch(
    masks: Sequence[npt.ArrayLike],
    boxes: Sequence[Sequence[float] | None] | None = None,
    *,
    start: int = 0,
) -> tuple[list[tuple[int, int, int, int]], npt.NDArray[np.float32]]:
    """Many masks → their ``<loc>`` indices and one float32 ``[N, 64, 64]`` encoder input.

    The same values as ``[prepare_mask(m, b) for m, b in zip(masks, boxes)]``, with less work per
    mask: for bool (and 0/1, 0/255 integer) masks without a box, the tight box comes from a compiled
    scan that stops at the object (instead of two full passes), and every crop is resized straight
    into the output array. The compiled parts release the GIL.

    Args:
      masks: 2-D masks as `prepare_mask` takes them.
      boxes: None, or one normalized box (or None for the tight box) per mask.
      start: index of ``masks[0]`` in the caller's list, for error messages (``"mask {start + i}"``).

    Returns:
      ``(locs, masks64)``: ``locs[i]`` the 4 ``<loc>`` indices, ``masks64`` float32 ``[N, 64, 64]``.

    Raises:
      ValueError / TypeError: as `prepare_mask`, naming the mask's index.

    Examples:
    >>> import numpy as np
    >>> a = np.zeros((480, 640), bool)
    >>> a[100:300, 200:500] = True
    >>> locs, masks64 = prepare_batch([a, a.T])
    >>> locs[0], masks64.shape
    ((213, 320, 639, 799), (2, 64, 64))
    """
    n = len(masks)
    if boxes is not None and len(boxes) != n:
        raise ValueError(f"got {n} masks but {len(boxes)} boxes")
    return _prepare(masks, boxes, start, single=False)


def _prepare(
    masks: Sequence[npt.ArrayLike], boxes: Sequence[Sequence[float] | None] | None, start: int, *, single: bool
) -> tuple[list[tuple[int, int, int, int]], npt.NDArray[np.float32]]:
    """`prepare_batch`; ``single``: error messages say "mask" (one mask) instead of "mask {i}"."""
    locs, crops = _crops(masks, boxes, start, single=single)
    out = np.empty((len(crops), MASK_SIZE, MASK_SIZE), np.float32)
    for i, crop in enumerate(crops):
        out[i] = (
            resize_binary(crop, MASK_SIZE, MASK_SIZE) if crop.dtype == np.bool_ else resize(crop, MASK_SIZE, MASK_SIZE)
        )
    return locs, out


def _crops(
    masks: Sequence[npt.ArrayLike], boxes: Sequence[Sequence[float] | None] | None, start: int, *, single: bool
) -> tuple[list[tuple[int, int, int, int]], list[npt.NDArray[np.bool_] | npt.NDArray[np.float32]]]:
    """Each mask validated, its box (given, or the tight box) → its ``<loc>`` indices and its crop
    (a view: bool for binary masks, else float32), exactly as `prepare_mask` cuts it.

    Per mask only the validation and the box run in Python; the crop rectangles and ``<loc>`` indices
    of the whole list are computed at once (the float32 arithmetic of `crop_pixels` and `box_to_loc`,
    vectorized). The first bad mask in index order raises, as `prepare_mask` would.
    """
    n = len(masks)
    arrays: list[npt.NDArray[np.bool_] | npt.NDArray[np.float32]] = []
    the_boxes = np.empty((n, 4), np.float64)
    sizes = np.empty((n, 4), np.float32)
    numba_mod = _numba_module()
    failed: Exception | None = None
    for i in range(n):
        where = "mask" if single else f"mask {start + i}"
        try:
            m = _as_mask(masks[i], where)
            box = None if boxes is None else boxes[i]
            h, w = m.shape
            if box is None and numba_mod is not None and m.dtype == np.bool_:
                top, left, bottom, right = numba_mod.nonzero_bounds(m)
                if top < 0:
                    raise ValueError(f"{where} is empty (no non-zero pixel): it has no tight box; pass box= explicitly")
                the_box: Box = (top / h, left / w, (bottom + 1) / h, (right + 1) / w)  # as boxes.tight_box
            elif box is None:
                if not m.any():
                    raise ValueError(f"{where} is empty (no non-zero pixel): it has no tight box; pass box= explicitly")
                the_box = tight_box(m)
            else:
                the_box = validate_box(box, where=f"box of {where}")
        except (ValueError, TypeError) as err:
            failed = err
            n = i
            break
        arrays.append(m)
        the_boxes[i] = the_box
        sizes[i] = (h, w, h, w)
    # crop_pixels and box_to_loc for all boxes at once: float32 products, round half to even
    b32 = the_boxes[:n].astype(np.float32)
    pixels = np.rint(sizes[:n] * b32).astype(np.int64)
    locs_arr = np.clip(np.rint((b32.astype(np.float64) * 1023).astype(np.float32)), 0, 1023).astype(np.int64)
    empty = (pixels[:, 2] <= pixels[:, 0]) | (pixels[:, 3] <= pixels[:, 1])
    if empty.any():
        i = int(np.argmax(empty))
        h, w = arrays[i].shape
        t, left_, b, r = pixels[i].tolist()
        where = "mask" if single else f"mask {start + i}"
        raise ValueError(
            f"box {tuple(the_boxes[i].tolist())} on the {h}x{w} {where} rounds to an empty crop "
            f"(rows {t}:{b}, columns {left_}:{r}); make the box at least a pixel wide"
        )
    if failed is not None:
        raise failed
    crops = [m[t:b, left_:r] for m, (t, left_, b, r) in zip(arrays, pixels.tolist(), strict=True)]
    return [tuple(loc) for loc in locs_arr.tolist()], crops
