"""``segcodec eval --protocol big_vision``: the numbers of big_vision's PaliGemma segmentation evaluator.

big_vision scores refcoco fine-tunes with ``big_vision/evaluators/proj/paligemma/transfers/segmentation.py``.
This module reproduces its per-example arithmetic on answer *text* (no code of it is used here):

- **Reading an answer.** Only the first 4 + 16 tokens count; the rest (a label, further objects) is
  ignored. The answer is *read* when those are exactly 4 ``<locNNNN>`` tokens (0..1023) followed by 16
  ``<segNNN>`` tokens (0..127), nothing in between (a space or any other character is a token of its
  own), with ``y2 > y1`` and ``x2 > x1`` on the token values. See `read_bv_answer`.
- **Box IoU** in normalized coordinates: the answer's box is ``tokens / 1023`` (float64); the
  ground-truth box is float32 ``(y1, x1, y2, x2)`` (see `bv_ground_truth_box`). An answer that is not
  read has the all-zero box, so its box IoU is 0 (NaN when the ground-truth box is empty as well).
  ``boxacc/<t>`` is the share of images with ``t <= box IoU``, one entry per threshold in ``det_ious``
  (default `BV_DET_IOUS`, the evaluator's default).
- **Mask IoU.** The box in pixels is ``int(y1 * h), int(x1 * w), int(y2 * h), int(x2 * w)``; the
  decoder's raw 64×64 float32 output is resized to the box with Pillow (mode ``F``, bilinear) and
  thresholded ``> 0``; the IoU is taken against the whole ground-truth mask:
  ``inter / (gt_area + pred_area - inter)``.
- **Invalid**: an answer that is not read (empty, detection-only, malformed, degenerate box, no
  prediction at all), or one whose pixel box is empty after ``int()``. Its mask IoU is 0 and it is
  counted in ``invalid``; its box IoU is computed all the same (from the all-zero box when not read).
- Metrics: ``miou`` (mean of per-image mask IoUs), ``boxacc/<t>``, ``invalid``, ``total``.

One ground-truth "object" per image: big_vision evaluates one referring expression (one object) per
example. Here an image's ground truth is its mask file (all foreground pixels), or the union of its
non-crowd COCO annotations; give one mask per object to get per-object numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "BV_DET_IOUS",
    "bv_box_iou",
    "bv_ground_truth_box",
    "bv_metrics",
    "check_det_ious",
    "read_bv_answer",
]

BV_DET_IOUS: tuple[float, ...] = (0.5, 0.75)
"""The evaluator's default ``det_ious``: box-accuracy thresholds (``boxacc/0.5``, ``boxacc/0.75``)."""

_LOC_LAST = 1023
_SEG_LAST = 127
# The first 20 tokens: 4 loc then 16 seg tokens back to back (ASCII digits only: "<loc١٢٣٤>" is
# not a PaliGemma token). A value out of range (<loc1024>, <seg128>) is not a token either.
_HEAD_RE = re.compile(r"<loc([0-9]{4})>" * 4 + r"<seg([0-9]{3})>" * 16, re.ASCII)


def read_bv_answer(text: str) -> tuple[tuple[int, int, int, int], tuple[int, ...]] | None:
    """The box and mask tokens that big_vision's evaluator reads from an answer, or None (invalid).

    Only the first 4 + 16 tokens count; everything after them is ignored.

    Args:
      text: the model's answer, as generated (no leading space or ``<bos>``: those are tokens too).

    Returns:
      ``((y1, x1, y2, x2), seg)`` with the 16 ``<seg>`` values, or None when the answer does not start
      with 4 ``<loc>`` + 16 ``<seg>`` tokens with ``y2 > y1`` and ``x2 > x1``.

    Raises:
      TypeError: ``text`` is not a ``str``.

    Example:
        >>> head = "<loc0100><loc0200><loc0300><loc0400>" + "<seg005>" * 16
        >>> read_bv_answer(head + " cat ; <loc0000>…")[0]
        (100, 200, 300, 400)
        >>> read_bv_answer("<loc0100><loc0200><loc0300><loc0400> cat") is None  # detection only
        True
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    m = _HEAD_RE.match(text)
    if m is None:
        return None
    values = [int(g) for g in m.groups()]
    y1, x1, y2, x2 = values[:4]
    seg = tuple(values[4:])
    if max(y1, x1, y2, x2) > _LOC_LAST or max(seg) > _SEG_LAST or not (y2 > y1 and x2 > x1):
        return None
    return (y1, x1, y2, x2), seg


def bv_ground_truth_box(mask: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The ground-truth box of a mask, as big_vision's refcoco data stores it.

    ``(y1 / h, x1 / w, y2 / h, x2 / w)`` in float32 (TFDS ``BBoxFeature``), where ``y1, x1`` are the
    first foreground row and column and ``y2, x2`` one past the last (pixel edges, as COCO's
    ``bbox`` of a mask); all zeros for an empty mask.

    Args:
      mask: bool ``(H, W)`` ground truth.

    Returns:
      float32 ``[4]``.

    Raises:
      ValueError: ``mask`` is not 2-D or has no pixels.

    Example:
        >>> m = np.zeros((4, 8), bool)
        >>> m[1:3, 2:8] = True
        >>> bv_ground_truth_box(m).tolist()
        [0.25, 0.25, 0.75, 1.0]
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {m.shape}")
    h, w = m.shape
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if rows.size == 0:
        return np.zeros(4, np.float32)
    # float64 quotients, then float32: what TFDS stores for a Python-float bbox
    box = [int(rows[0]) / h, int(cols[0]) / w, (int(rows[-1]) + 1) / h, (int(cols[-1]) + 1) / w]
    return np.array(box, dtype=np.float32)


def _area(y1: float, x1: float, y2: float, x2: float) -> float:
    """Box area, a side below 0 counting as 0.0 (NumPy scalar types kept as they come)."""
    width = x2 - x1
    height = y2 - y1
    return (width if width >= 0.0 else 0.0) * (height if height >= 0.0 else 0.0)


def bv_box_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU of two normalized ``(y1, x1, y2, x2)`` boxes with the evaluator's arithmetic.

    The NumPy scalar types of the inputs are kept through the sums as in the evaluator (the answer's
    box is float64 ``tokens / 1023``, the ground truth's float32), so the result is its float64,
    bit for bit.

    Args:
      pred: the answer's box (float64 ``tokens / 1023``; all zeros for an invalid answer).
      gt: the ground-truth box (float32, see `bv_ground_truth_box`).

    Returns:
      The IoU; NaN when both boxes are empty (0 / 0, as the evaluator).

    Raises:
      ValueError: a box without 4 values.

    Example:
        >>> pred = np.array([0, 0, 512, 1023]) / 1023
        >>> round(bv_box_iou(list(pred), list(np.array([0, 0, 1, 1], np.float32))), 4)
        0.5005
    """
    if len(pred) != 4 or len(gt) != 4:
        raise ValueError("boxes must have 4 values (y1, x1, y2, x2)")
    y1 = pred[0] if pred[0] >= gt[0] else gt[0]
    x1 = pred[1] if pred[1] >= gt[1] else gt[1]
    y2 = pred[2] if pred[2] <= gt[2] else gt[2]
    x2 = pred[3] if pred[3] <= gt[3] else gt[3]
    inter = _area(y1, x1, y2, x2)
    denominator = _area(*pred) + _area(*gt) - inter
    # the denominator holds the float64 area of ``pred``: a float64 division, 0 / 0 = NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(inter) / np.float64(denominator))


def check_det_ious(det_ious: Sequence[float]) -> tuple[float, ...]:
    """Box-accuracy thresholds, checked: at least one, each a number in [0, 1], no repeats.

    Args:
      det_ious: the thresholds, e.g. ``(0.5, 0.75)``.

    Returns:
      The thresholds as a tuple of floats, in the order given.

    Raises:
      ValueError: none given, a repeat, or one that is not a number in [0, 1].

    Example:
        >>> check_det_ious([0.5, 0.9])
        (0.5, 0.9)
    """
    out: list[float] = []
    for t in det_ious:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 <= t <= 1.0:
            raise ValueError(f"box IoU thresholds must be numbers in [0, 1], got {t!r}")
        if float(t) in out:
            raise ValueError(f"box IoU threshold {t!r} given twice")
        out.append(float(t))
    if not out:
        raise ValueError("give at least one box IoU threshold")
    return tuple(out)


class _Score(Protocol):
    @property
    def iou(self) -> float: ...
    @property
    def box_iou(self) -> float: ...
    @property
    def invalid(self) -> bool: ...


def bv_metrics(scores: Sequence[_Score], det_ious: Sequence[float] = BV_DET_IOUS) -> dict[str, float | int]:
    """big_vision's metrics over per-image scores: ``miou``, ``boxacc/<t>`` per threshold, ``invalid``, ``total``.

    The names are the evaluator's (``f"boxacc/{t}"``, so ``0.5`` gives ``boxacc/0.5``); the sums are
    taken in the same order, so the numbers are the evaluator's to the last bit.

    Args:
      scores: per-image scores with ``iou``, ``box_iou`` and ``invalid`` (`evaluate.score_image_bv`).
      det_ious: box-accuracy thresholds (see `check_det_ious`).

    Returns:
      ``{"miou": …, "boxacc/0.5": …, "boxacc/0.75": …, "invalid": n, "total": n}``; only
      ``{"total": 0}`` without scores.

    Raises:
      ValueError: bad ``det_ious`` (see `check_det_ious`).

    Example:
        >>> from types import SimpleNamespace
        >>> s = SimpleNamespace(iou=0.5, box_iou=0.8, invalid=False)
        >>> bv_metrics([s, s])
        {'miou': 0.5, 'boxacc/0.5': 1.0, 'boxacc/0.75': 1.0, 'invalid': 0, 'total': 2}
    """
    thresholds = check_det_ious(det_ious)
    if not scores:
        return {"total": 0}
    n = len(scores)
    out: dict[str, float | int] = {"miou": float(sum(s.iou for s in scores) / n)}
    for t in thresholds:
        out[f"boxacc/{t}"] = float(sum(t <= s.box_iou for s in scores) / n)
    out["invalid"] = int(sum(s.invalid for s in scores))
    out["total"] = n
    return out
