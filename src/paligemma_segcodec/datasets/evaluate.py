"""``segcodec eval``: score a model's answers against ground-truth masks.

Two protocols (``evaluate(protocol=...)``, ``segcodec eval --protocol``; docs/evaluation.md sets them
side by side):

- ``"big_vision"``: big_vision's PaliGemma segmentation evaluator, number for number: the first
  object of each answer only, ``miou``, ``boxacc/<t>``, ``invalid``, ``total`` (see
  `paligemma_segcodec.datasets.bv_protocol`).
- ``"segcodec"`` (the default): every object of an answer, defined below.

The ``"segcodec"`` protocol (big_vision's paste, extended to several objects per image):

- Each prediction is decoded at the ground truth's size (``convention="big_vision"`` paste) and the
  predicted objects are merged into one mask (each pasted inside its box, so memory is one
  image-sized mask, not one per object); so is the ground truth. Per-image IoU of the two;
  when both are empty the IoU is 1.
- An answer is **invalid** when it is not empty but no object in it parses (malformed tokens); an
  invalid answer scores IoU 0 (and box IoU 0). Images without a prediction line count as invalid.
- **mIoU**: the mean of per-image IoUs. **cIoU**: total intersection / total union over all images.
- **Box accuracy @0.5 / @0.75**: over images with ground-truth objects, the share whose predicted box
  (the box around all predicted objects, in pixels) has IoU ≥ 0.5 / 0.75 with the ground truth's box.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import warnings
from collections.abc import Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from paligemma_segcodec.boxes import LOC_MAX
from paligemma_segcodec.datasets.bv_protocol import (
    BV_DET_IOUS,
    bv_box_iou,
    bv_ground_truth_box,
    bv_metrics,
    check_det_ious,
    read_bv_answer,
)
from paligemma_segcodec.datasets.files import IMAGE_EXTENSIONS, Problem, non_utf8_name, unreadable
from paligemma_segcodec.datasets.parallel import ordered_map, resolve_workers
from paligemma_segcodec.errors import SkippedObjectWarning
from paligemma_segcodec.maskio import binarize, read_mask_values
from paligemma_segcodec.progress import Progress
from paligemma_segcodec.progress import wrap as wrap_progress
from paligemma_segcodec.safeio import atomic_write, open_regular
from paligemma_segcodec.segment import paste_mask_in_box

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["PROTOCOLS", "EvalReport", "ImageScore", "evaluate", "read_predictions", "score_image_bv"]

PROTOCOLS = ("segcodec", "big_vision")
"""The scoring protocols of `evaluate`: ours (every object) and big_vision's evaluator's (first object)."""


@dataclass(frozen=True)
class ImageScore:
    """One image's score (one CSV row); ``protocol`` says which definitions produced it."""

    image: str
    iou: float
    box_iou: float
    intersection: int
    union: int
    predicted: int
    ground_truth: int
    invalid: bool
    skipped_objects: int
    protocol: str = "segcodec"


@dataclass
class EvalReport:
    """Per-image scores, and the ground-truth files or records that could not be used.

    ``protocol`` and ``det_ious`` (the ``"big_vision"`` protocol's box-accuracy thresholds) say how
    `metrics` summarizes the scores.

    Attributes:
      scores (list[ImageScore]): one score per scored image, in ground-truth order.
      skipped (list[Problem]): ground-truth files or records that could not be used (``severity``
        ``"error"``) and warnings.
      protocol (str): ``"segcodec"`` or ``"big_vision"``.
      det_ious (tuple[float, ...]): the ``boxacc/<t>`` thresholds of the ``"big_vision"`` protocol.

    Examples:
        >>> report = EvalReport()
        >>> report.metrics()
        {'protocol': 'segcodec', 'images': 0}
    """

    scores: list[ImageScore] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    protocol: str = "segcodec"
    det_ious: tuple[float, ...] = BV_DET_IOUS

    def metrics(self) -> dict[str, float | int | str]:
        """The protocol's metrics, ``{"protocol": name, …}`` (see the module docstring).

        ``"segcodec"``: ``images``, ``miou``, ``ciou``, ``box_acc@0.5``, ``box_acc@0.75``, ``invalid``,
        ``skipped_objects``. ``"big_vision"``: ``miou``, ``boxacc/<t>`` per threshold, ``invalid``,
        ``total`` (`paligemma_segcodec.datasets.bv_protocol.bv_metrics`).
        """
        if self.protocol == "big_vision":
            return {"protocol": self.protocol, **bv_metrics(self.scores, self.det_ious)}
        if not self.scores:
            return {"protocol": self.protocol, "images": 0}
        ious = np.array([s.iou for s in self.scores])
        with_gt = [s for s in self.scores if s.ground_truth > 0]
        union = sum(s.union for s in self.scores)
        return {
            "protocol": self.protocol,
            "images": len(self.scores),
            "miou": float(ious.mean()),
            "ciou": float(sum(s.intersection for s in self.scores) / union) if union else 1.0,
            "box_acc@0.5": float(np.mean([s.box_iou >= 0.5 for s in with_gt])) if with_gt else float("nan"),
            "box_acc@0.75": float(np.mean([s.box_iou >= 0.75 for s in with_gt])) if with_gt else float("nan"),
            "invalid": int(sum(s.invalid for s in self.scores)),
            "skipped_objects": int(sum(s.skipped_objects for s in self.scores)),
        }

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per image (`ImageScore` fields), written atomically (see `atomic_write`)."""
        with atomic_write(path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=list(ImageScore.__dataclass_fields__))
            writer.writeheader()
            for s in self.scores:
                writer.writerow(asdict(s))


def read_predictions(path: str | os.PathLike[str]) -> dict[str, str]:
    """JSONL with ``image`` and ``prediction`` (or ``suffix``) per line → {image name: text}.

    Args:
      path: the predictions file (UTF-8 JSONL; a byte-order mark is accepted; blank lines skipped).

    Returns:
      ``{image name: answer text}`` in file order.

    Raises:
      ValueError: a line that is not a JSON object with those string fields, or a second line for
        the same image (``FILE:LINE`` and what is wrong), a file that is not UTF-8.
      OSError: the file cannot be read, or is not a regular file (a FIFO is never opened for a
        blocking read).

    Examples:
        >>> import json, tempfile
        >>> path = tempfile.mkdtemp() + "/preds.jsonl"
        >>> with open(path, "w") as f:
        ...     _ = f.write(json.dumps({"image": "a.jpg", "prediction": "<loc0000><loc0000><loc1023><loc1023> water"}))
        >>> read_predictions(path)
        {'a.jpg': '<loc0000><loc0000><loc1023><loc1023> water'}
    """
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    with open_regular(path) as f:
        raw = f.read()
    try:
        text_all = raw.decode("utf-8-sig")  # a byte-order mark is accepted
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}); save the predictions as UTF-8 JSONL") from None
    for n, line in enumerate(text_all.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError) as err:  # bad JSON, nested too deep, a 5000-digit number…
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)[:200]
            raise ValueError(f"{path}:{n}: not JSON ({reason})") from None
        text = rec.get("prediction", rec.get("suffix")) if isinstance(rec, dict) else None
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str) or not isinstance(text, str):
            fields = "string fields 'image' and 'prediction' (or 'suffix')"
            raise ValueError(f"{path}:{n}: need a JSON object with {fields}")
        image = rec["image"]
        if image in first:
            raise ValueError(f"{path}:{n}: a second prediction for {image!r} (the first is on line {first[image]})")
        first[image] = n
        out[image] = text
    return out


def _box(mask: npt.NDArray[np.bool_]) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def _box_iou(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> float:
    if a is None or b is None:
        return 1.0 if a is None and b is None else 0.0
    ih = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


def score_image(image: str, text: str | None, gt: npt.NDArray[np.bool_], *, codec: Codec | None = None) -> ImageScore:
    """One image's score (see the module docstring)."""
    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.tokens import parse_objects

    h, w = gt.shape
    n_gt = int(gt.any())
    if text is None:
        return ImageScore(image, 0.0, 0.0, 0, int(gt.sum()), 0, n_gt, True, 0)
    parsed = parse_objects(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedObjectWarning)
        segs = decode_tokens(text, codec=codec) if parsed.objects else []  # 64×64 masks only
    invalid = bool(text.strip()) and not parsed.objects
    # one image-sized union; each object is pasted inside its box only (as paste_mask, big_vision)
    pred = np.zeros((h, w), bool)
    pred_box = None
    for s in segs:
        if s.mask64 is not None:
            (top, left, bottom, right), crop = paste_mask_in_box(s.mask64, s.loc, h, w)
            pred[top:bottom, left:right] |= crop
        x1, y1, x2, y2 = s.xyxy(height=h, width=w)
        if x2 > x1 and y2 > y1:
            b = (y1, x1, y2, x2)
            pred_box = (
                b
                if pred_box is None
                else (min(pred_box[0], y1), min(pred_box[1], x1), max(pred_box[2], y2), max(pred_box[3], x2))
            )
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred | gt))
    iou = 0.0 if invalid else (1.0 if union == 0 else inter / union)
    box_iou = 0.0 if invalid else _box_iou(pred_box, _box(gt))
    return ImageScore(image, iou, box_iou, inter, union, len(segs), n_gt, invalid, len(parsed.skipped))


def score_image_bv(
    image: str,
    text: str | None,
    gt: npt.NDArray[np.bool_],
    *,
    gt_box: npt.ArrayLike | None = None,
    codec: Codec | None = None,
) -> ImageScore:
    """One image's score under big_vision's protocol (see `paligemma_segcodec.datasets.bv_protocol`).

    Args:
      image: the image's name (kept in the score).
      text: the answer, or None when there is no prediction for the image (invalid).
      gt: bool ``(H, W)`` ground-truth mask at the image's full size.
      gt_box: normalized ``(y1, x1, y2, x2)`` ground-truth box; None = `bv_ground_truth_box` of ``gt``.
      codec: decodes the ``<seg>`` tokens; None = the shared default (loaded only for a read answer).

    Returns:
      An `ImageScore` with ``protocol="big_vision"``: ``iou`` (mask IoU, 0 when invalid; NaN when the
      mask and the prediction are both empty), ``box_iou``, ``intersection`` and ``union`` (pixels;
      0 and the ground truth's area when invalid), ``predicted`` (1 when the answer is read),
      ``ground_truth`` (1 when the mask is not empty), ``invalid``, ``skipped_objects`` (the objects
      of the answer that the protocol ignores: all but the first, or all of them when invalid).

    Raises:
      ValueError: ``gt`` is not a non-empty 2-D mask, or ``gt_box`` does not have 4 values.

    Example:
        >>> gt = np.ones((10, 10), bool)
        >>> s = score_image_bv("a.png", "<loc0000><loc0000><loc1023> cat", gt)  # malformed: invalid
        >>> s.iou, s.box_iou, s.invalid
        (0.0, 0.0, True)
    """
    from paligemma_segcodec.tokens import parse_objects

    gt = np.asarray(gt, dtype=bool)
    gt_b = bv_ground_truth_box(gt) if gt_box is None else np.asarray(gt_box)
    if gt_b.shape != (4,):
        raise ValueError(f"gt_box must have 4 values (y1, x1, y2, x2), got shape {gt_b.shape}")
    h, w = gt.shape
    gt_area = int(np.count_nonzero(gt))
    n_gt = int(gt_area > 0)
    read = None if text is None else read_bv_answer(text)
    n_objects = 0 if text is None else len(parse_objects(text).objects)
    ignored = max(n_objects - 1, 0) if read is not None else n_objects

    tokens = np.zeros(4, np.int32) if read is None else np.array(read[0], np.int32)
    box = tokens / LOC_MAX  # float64 in [0, 1], as the evaluator: tokens / 1023
    box_iou = bv_box_iou(list(box), list(gt_b))
    y1, x1, y2, x2 = int(box[0] * h), int(box[1] * w), int(box[2] * h), int(box[3] * w)
    if read is None or x2 <= x1 or y2 <= y1:  # the pixel box can still be empty after int()
        return ImageScore(image, 0.0, box_iou, 0, gt_area, int(read is not None), n_gt, True, ignored, "big_vision")
    if codec is None:
        from paligemma_segcodec.api import default_codec

        codec = default_codec()
    logits = codec.decode_indices(np.array([read[1]], np.int32))[0]
    resized = Image.fromarray(np.ascontiguousarray(logits, dtype=np.float32)).resize(
        (x2 - x1, y2 - y1), resample=Image.Resampling.BILINEAR
    )
    pred = np.asarray(resized) > 0.0
    inter = int(np.count_nonzero(gt[y1:y2, x1:x2] & pred))
    union = gt_area + int(np.count_nonzero(pred)) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = float(np.int64(inter) / np.int64(union))  # 0 / 0 = NaN, as the evaluator
    return ImageScore(image, iou, box_iou, inter, union, 1, n_gt, False, ignored, "big_vision")


def _read_gt_mask(p: Path, threshold: int) -> tuple[str, npt.NDArray[np.bool_]] | Problem:
    """A reading thread's work for one mask file: ``(stem, pixels)``, or the `Problem`."""
    problem = non_utf8_name(p, "mask")
    if problem is not None:
        return problem
    try:
        values = read_mask_values(p)
    except (OSError, ValueError) as err:
        return unreadable("mask", str(p), err)
    return p.stem, binarize(values, threshold)


def _mask_files(masks_dir: Path) -> list[Path]:
    """The mask files of a folder, in file-name order."""
    return [
        p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    ]


def _gt_from_masks(
    files: list[Path], threshold: int, skipped: list[Problem], workers: int = 1
) -> Generator[tuple[str, npt.NDArray[np.bool_]], None, None]:
    """Each mask file's pixels (read on ``workers`` threads, in file-name order); an unreadable or
    special file (FIFO, folder, broken link) goes to ``skipped`` and is never opened for a blocking
    read."""
    work = functools.partial(_read_gt_mask, threshold=threshold)
    with closing(ordered_map(work, files, workers=workers)) as found:
        for item in found:
            if isinstance(item, Problem):
                skipped.append(item)
            else:
                yield item


def _gt_from_coco(
    annotations: Path, workers: int = 1
) -> tuple[int, Generator[tuple[str, npt.NDArray[np.bool_]], None, None], dict[str, npt.NDArray[np.float32]]]:
    """``(number of images, each image's merged non-crowd annotations, {stem: box})`` (decoded on
    ``workers`` threads, in order). Records that fail `coco.read_coco`'s checks and annotations that
    `coco.annotation_mask` refuses are skipped, one warning each (``FILE: reason``), warned in the
    caller's thread in file order. The boxes (`_coco_gt_box`) are filled in as the masks are read."""
    from paligemma_segcodec.datasets.coco import CocoAnnotation, CocoImage, annotation_mask, read_coco

    coco = read_coco(annotations, need_size=True)
    for p in coco.problems:
        warnings.warn(f"{p.file}: {p.reason} (skipped)", UserWarning, stacklevel=2)
    known = {im.id for im in coco.images} | coco.refused_images
    anns_of: dict[int, list[CocoAnnotation]] = {}
    for ann in coco.annotations:
        if ann.image_id not in known:
            warnings.warn(f"{annotations}#annotation {ann.id}: unknown image id {ann.image_id} (skipped)", stacklevel=2)
        anns_of.setdefault(ann.image_id, []).append(ann)

    def image_mask(info: CocoImage) -> tuple[str, npt.NDArray[np.bool_], list[str]]:
        """``(stem, merged mask, warnings)`` of one image (on a reading thread: it warns nothing itself)."""
        h, w = int(info.height or 0), int(info.width or 0)  # need_size: checked positive, within MAX_PIXELS
        mask = np.zeros((h, w), bool)
        messages = []
        for ann in anns_of.get(info.id, []):
            if ann.iscrowd:
                continue
            try:
                mask |= annotation_mask({"segmentation": ann.segmentation}, h, w)
            except ValueError as err:
                messages.append(f"{annotations}#annotation {ann.id} ({info.file_name}): {err} (skipped)")
        return Path(info.file_name).stem, mask, messages

    images = sorted(coco.images, key=lambda im: (im.file_name, im.id))
    boxes: dict[str, npt.NDArray[np.float32]] = {}
    for info in images:
        box = _coco_gt_box([a for a in anns_of.get(info.id, []) if not a.iscrowd], info)
        if box is not None:
            boxes[Path(info.file_name).stem] = box

    def masks() -> Generator[tuple[str, npt.NDArray[np.bool_]], None, None]:
        with closing(ordered_map(image_mask, images, workers=workers)) as found:
            for stem, mask, messages in found:
                for message in messages:
                    warnings.warn(message, UserWarning, stacklevel=2)
                yield stem, mask

    return len(images), masks(), boxes


def _coco_gt_box(anns: list[Any], info: Any) -> npt.NDArray[np.float32] | None:
    """big_vision's ground-truth box of an image from its non-crowd annotations' ``bbox`` fields:
    their union ``[x, y, x + w, y + h]`` as ``(y1 / h, x1 / w, y2 / h, x2 / w)`` (float64 quotients,
    clipped to [0, 1], then float32: as TFDS stores refcoco's boxes). None when an annotation has no
    valid ``bbox`` (the mask's tight box is used then) or there is no annotation."""
    if not anns or any(a.bbox is None for a in anns):
        return None
    h, w = int(info.height), int(info.width)
    x1 = min(a.bbox[0] for a in anns)
    y1 = min(a.bbox[1] for a in anns)
    x2 = max(a.bbox[0] + a.bbox[2] for a in anns)
    y2 = max(a.bbox[1] + a.bbox[3] for a in anns)
    box = np.clip(np.array([y1 / h, x1 / w, y2 / h, x2 / w], np.float64), 0.0, 1.0)
    return box.astype(np.float32)


def evaluate(
    predictions: Mapping[str, str],
    *,
    masks_dir: str | os.PathLike[str] | None = None,
    coco: str | os.PathLike[str] | None = None,
    threshold: int = 127,
    codec: Codec | None = None,
    workers: int | None = None,
    protocol: str = "segcodec",
    det_ious: Sequence[float] | None = None,
    progress: Progress = True,
) -> EvalReport:
    """Scores predictions (image name → answer text) against a masks folder or a COCO file.

    Images are matched by file stem; every ground-truth image is scored (a missing prediction is
    invalid). Predictions for images without ground truth raise ValueError (naming them), unless
    some ground truth could not be used: unreadable or special mask files and refused COCO records
    are listed in ``EvalReport.skipped`` (never opened for a blocking read), and then so are the
    predictions left without ground truth.

    An image's ground truth is one mask: the mask file's foreground pixels (``> threshold``, see
    `paligemma_segcodec.maskio.binarize`), or the union of the image's non-crowd COCO annotations.
    Under ``protocol="big_vision"`` its box is, with ``coco``, the union of the image's non-crowd
    annotations' ``bbox`` fields (what big_vision's refcoco data holds), or the mask's tight box
    (`bv_protocol.bv_ground_truth_box`) with ``masks_dir`` or when an annotation has no valid ``bbox``.

    Args:
      predictions: image name (or path; matched by stem) → the model's answer.
      masks_dir: the ground-truth masks folder (give this or ``coco``).
      coco: a COCO instances JSON with the ground truth (needs image sizes).
      threshold: mask files: pixels ``> threshold`` are the object (a 0/1 mask: ``> 0``).
      codec: decodes ``<seg>`` tokens; None = the shared default, loaded when needed.
      workers: threads reading the ground truth (None: the CPU count; 1: no threads); the report
        is the same, in the same order, whatever the number.
      protocol: ``"segcodec"`` (every object of an answer; the default) or ``"big_vision"``
        (big_vision's evaluator: the first object only; see `paligemma_segcodec.datasets.bv_protocol`).
      det_ious: ``"big_vision"`` only: box-accuracy thresholds (default ``(0.5, 0.75)``, the
        evaluator's), one ``boxacc/<t>`` metric each.
      progress: report progress on stderr, one step per ground-truth image: True (a bar on a
        terminal, a line every few seconds elsewhere; see `paligemma_segcodec.progress.track`), False,
        or a callable with `track`'s signature.

    Returns:
      The `EvalReport` (``report.metrics()`` for the numbers, ``report.write_csv`` per image).

    Raises:
      ValueError: not exactly one of ``masks_dir`` / ``coco``, an unknown ``protocol``, ``det_ious``
        with the ``"segcodec"`` protocol or bad thresholds, predictions without ground truth (see
        above), an unusable COCO file.
      OSError: the masks folder or COCO file cannot be read.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.full((4, 4), 255, np.uint8)).save(folder / "a.png")
        >>> report = evaluate({"a.jpg": "<loc0000><loc0000><loc1023> oops"}, masks_dir=folder, protocol="big_vision")
        >>> report.metrics()
        {'protocol': 'big_vision', 'miou': 0.0, 'boxacc/0.5': 0.0, 'boxacc/0.75': 0.0, 'invalid': 1, 'total': 1}
    """
    if (masks_dir is None) == (coco is None):
        raise ValueError("give exactly one of masks_dir or coco")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(map(repr, PROTOCOLS))}, got {protocol!r}")
    if det_ious is not None and protocol != "big_vision":
        raise ValueError("det_ious (box IoU thresholds) apply to protocol='big_vision' only")
    thresholds = check_det_ious(BV_DET_IOUS if det_ious is None else det_ious)
    n_workers = resolve_workers(workers)
    report = EvalReport(protocol=protocol, det_ious=thresholds)
    by_stem = {Path(k).stem: v for k, v in predictions.items()}
    seen = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        # score_image ignores these too; here as well, because warnings' filters are process-wide:
        # a reading thread's own catch_warnings (Pillow's bomb warning) can restore them mid-image
        warnings.simplefilter("ignore", SkippedObjectWarning)
        gt_boxes: dict[str, npt.NDArray[np.float32]] = {}
        if masks_dir is not None:
            files = _mask_files(Path(masks_dir))
            total, gt = len(files), _gt_from_masks(files, threshold, report.skipped, n_workers)
        else:
            total, gt, gt_boxes = _gt_from_coco(Path(str(coco)), n_workers)
        with closing(gt):
            for stem, mask in wrap_progress(progress, gt, total=total, desc="eval"):
                seen.add(stem)
                if protocol == "big_vision":
                    box = gt_boxes.get(stem)
                    report.scores.append(score_image_bv(stem, by_stem.get(stem), mask, gt_box=box, codec=codec))
                else:
                    report.scores.append(score_image(stem, by_stem.get(stem), mask, codec=codec))
    for w in caught:
        if issubclass(w.category, SkippedObjectWarning):
            warnings.warn(w.message, w.category, stacklevel=2)  # the answers' own warnings: passed on
        else:
            report.skipped.append(Problem(str(coco if coco is not None else masks_dir), str(w.message)))
    extra = sorted(set(by_stem) - seen)
    if extra and not report.skipped:
        raise ValueError(f"{len(extra)} prediction(s) have no ground truth, e.g. {extra[:3]}")
    for stem in extra:  # most likely the ground truth that was skipped: listed, not fatal
        report.skipped.append(Problem(stem, "prediction without usable ground truth (not scored)", "warning"))
    return report
