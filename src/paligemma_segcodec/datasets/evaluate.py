"""``segcodec eval``: score a model's answers against ground-truth masks.

Definitions (as big_vision's PaliGemma segmentation evaluator, extended to several objects per image):

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
from collections.abc import Generator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.datasets.files import IMAGE_EXTENSIONS, Problem, non_utf8_name, unreadable
from paligemma_segcodec.datasets.parallel import ordered_map, resolve_workers
from paligemma_segcodec.errors import SkippedObjectWarning
from paligemma_segcodec.maskio import binarize, read_mask_values
from paligemma_segcodec.safeio import atomic_write, open_regular
from paligemma_segcodec.segment import paste_mask_in_box

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["EvalReport", "ImageScore", "evaluate", "read_predictions"]


@dataclass(frozen=True)
class ImageScore:
    image: str
    iou: float
    box_iou: float
    intersection: int
    union: int
    predicted: int
    ground_truth: int
    invalid: bool
    skipped_objects: int


@dataclass
class EvalReport:
    """Per-image scores, and the ground-truth files or records that could not be used."""

    scores: list[ImageScore] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)

    def metrics(self) -> dict[str, float | int]:
        if not self.scores:
            return {"images": 0}
        ious = np.array([s.iou for s in self.scores])
        with_gt = [s for s in self.scores if s.ground_truth > 0]
        union = sum(s.union for s in self.scores)
        return {
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

    Raises:
      ValueError: a line that is not a JSON object with those string fields, or a second line for
        the same image (``FILE:LINE`` and what is wrong), a file that is not UTF-8.
      OSError: the file cannot be read, or is not a regular file (a FIFO is never opened for a
        blocking read).
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


def _gt_from_masks(
    masks_dir: Path, threshold: int, skipped: list[Problem], workers: int = 1
) -> Generator[tuple[str, npt.NDArray[np.bool_]], None, None]:
    """Each mask file's pixels (read on ``workers`` threads, in file-name order); an unreadable or
    special file (FIFO, folder, broken link) goes to ``skipped`` and is never opened for a blocking
    read."""
    files = [
        p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    ]
    work = functools.partial(_read_gt_mask, threshold=threshold)
    with closing(ordered_map(work, files, workers=workers)) as found:
        for item in found:
            if isinstance(item, Problem):
                skipped.append(item)
            else:
                yield item


def _gt_from_coco(annotations: Path, workers: int = 1) -> Generator[tuple[str, npt.NDArray[np.bool_]], None, None]:
    """Each image's merged non-crowd annotations (decoded on ``workers`` threads, in order). Records
    that fail `coco.read_coco`'s checks and annotations that `coco.annotation_mask` refuses are
    skipped, one warning each (``FILE: reason``), warned in the caller's thread in file order."""
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
    with closing(ordered_map(image_mask, images, workers=workers)) as found:
        for stem, mask, messages in found:
            for message in messages:
                warnings.warn(message, UserWarning, stacklevel=2)
            yield stem, mask


def evaluate(
    predictions: Mapping[str, str],
    *,
    masks_dir: str | os.PathLike[str] | None = None,
    coco: str | os.PathLike[str] | None = None,
    threshold: int = 127,
    codec: Codec | None = None,
    workers: int | None = None,
) -> EvalReport:
    """Scores predictions (image name → answer text) against a masks folder or a COCO file.

    Images are matched by file stem; every ground-truth image is scored (a missing prediction is
    invalid). Predictions for images without ground truth raise ValueError (naming them), unless
    some ground truth could not be used: unreadable or special mask files and refused COCO records
    are listed in ``EvalReport.skipped`` (never opened for a blocking read), and then so are the
    predictions left without ground truth.

    ``workers``: threads reading the ground truth (None: the CPU count; 1: no threads); the report
    is the same, in the same order, whatever the number.
    """
    if (masks_dir is None) == (coco is None):
        raise ValueError("give exactly one of masks_dir or coco")
    n_workers = resolve_workers(workers)
    report = EvalReport()
    by_stem = {Path(k).stem: v for k, v in predictions.items()}
    seen = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        # score_image ignores these too; here as well, because warnings' filters are process-wide:
        # a reading thread's own catch_warnings (Pillow's bomb warning) can restore them mid-image
        warnings.simplefilter("ignore", SkippedObjectWarning)
        gt = (
            _gt_from_masks(Path(masks_dir), threshold, report.skipped, n_workers)
            if masks_dir is not None
            else _gt_from_coco(Path(str(coco)), n_workers)
        )
        with closing(gt):
            for stem, mask in gt:
                seen.add(stem)
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
