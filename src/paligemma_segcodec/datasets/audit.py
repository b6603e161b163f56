"""``segcodec audit``: how much of each mask survives the 16-token format.

For every object: encode (crop, resize, quantize) → decode → paste back at full resolution → IoU
with the original object mask. That IoU is the ceiling a PaliGemma model can reach on the object
through its 16 ``<seg>`` tokens, whatever it learns: thin rivers and ragged shorelines score low.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from paligemma_segcodec.datasets.files import Instances, MaskObject, Problem, extract_objects, match_pairs, unreadable
from paligemma_segcodec.maskio import read_mask_values

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["AuditRecord", "AuditReport", "audit_folder", "audit_objects", "iou"]


def iou(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Intersection over union of two bool masks of the same shape; 1.0 when both are empty."""
    x, y = np.asarray(a, bool), np.asarray(b, bool)
    if x.shape != y.shape:
        raise ValueError(f"masks have different shapes {x.shape} and {y.shape}")
    union = int(np.count_nonzero(x | y))
    return 1.0 if union == 0 else int(np.count_nonzero(x & y)) / union


@dataclass(frozen=True)
class AuditRecord:
    """One object's round trip: which image, its label, box, area and IoU."""

    image: str
    index: int
    label: str
    loc: tuple[int, int, int, int]
    area: int
    iou: float


@dataclass
class AuditReport:
    records: list[AuditRecord] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per label (and ``"all"``): count, mean, median and the 10/25/75/90 % quantiles of IoU."""
        groups: dict[str, list[float]] = defaultdict(list)
        for r in self.records:
            groups[r.label].append(r.iou)
            groups["all"].append(r.iou)
        out = {}
        for label, values in sorted(groups.items()):
            v = np.asarray(values)
            out[label] = {
                "count": float(len(v)),
                "mean": float(v.mean()),
                "median": float(np.median(v)),
                **{f"q{int(q * 100):02d}": float(np.quantile(v, q)) for q in (0.1, 0.25, 0.75, 0.9)},
            }
        return out


def audit_objects(
    objects: Sequence[MaskObject], shapes: Sequence[tuple[int, int]], *, codec: Codec | None = None
) -> list[tuple[float, npt.NDArray[np.bool_], tuple[int, int, int, int]]]:
    """For each object (with its full mask shape): ``(iou, round-tripped crop, loc)``.

    The IoU is computed at full resolution over the union of the object's box and the pasted box.
    """
    from paligemma_segcodec.api import default_codec, prepare_crop
    from paligemma_segcodec.boxes import crop_pixels
    from paligemma_segcodec.segment import paste_mask

    codec = codec or default_codec()
    prepared = [prepare_crop(o.crop, o.box) for o in objects]
    if not prepared:
        return []
    indices = codec.encode_indices(np.stack([p.mask64 for p in prepared]))
    decoded = codec.decode_indices(indices)
    out = []
    for o, p, m64, (h, w) in zip(objects, prepared, decoded, shapes, strict=True):
        pasted = paste_mask(m64, p.loc, h, w)
        t, left, b, r = crop_pixels(o.box, h, w)
        original = np.zeros((h, w), bool)
        original[t:b, left:r] = o.crop
        out.append((iou(original, pasted), pasted[t:b, left:r], p.loc))
    return out


def audit_folder(
    images_dir: str | os.PathLike[str],
    masks_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    label: str = "object",
    threshold: int = 127,
    instances: Instances = "components",
    min_area: int = 16,
    worst: int = 16,
    codec: Codec | None = None,
    progress: bool = True,
) -> AuditReport:
    """Audits every object of a folder pair; writes ``audit.csv``, ``summary.json``,
    ``histogram.png`` and ``worst.png`` (contact sheet of the ``worst`` objects) to ``out_dir``."""
    import json

    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs, problems = match_pairs(images_dir, masks_dir)
    report = AuditReport(skipped=list(problems))
    keep: list[tuple[float, Path, MaskObject, npt.NDArray[np.bool_]]] = []
    for pair in tqdm(pairs, desc="audit", unit="img", disable=not progress):
        try:
            values = read_mask_values(pair.mask)
        except Exception as err:
            report.skipped.append(unreadable("mask", str(pair.mask), err))
            continue
        objects, _ = extract_objects(values, label=label, threshold=threshold, instances=instances, min_area=min_area)
        results = audit_objects(objects, [values.shape] * len(objects), codec=codec)
        for i, (o, (score, rt, loc)) in enumerate(zip(objects, results, strict=True)):
            report.records.append(AuditRecord(pair.image.name, i, o.label, loc, o.area, score))
            keep.append((score, pair.image, o, rt))
            keep.sort(key=lambda k: k[0])
            del keep[worst:]
    with (out / "audit.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "object", "label", "y1", "x1", "y2", "x2", "area_px", "iou"])
        for r in report.records:
            writer.writerow([r.image, r.index, r.label, *r.loc, r.area, f"{r.iou:.6f}"])
    (out / "summary.json").write_text(json.dumps(report.summary(), indent=2) + "\n")
    histogram([r.iou for r in report.records]).save(out / "histogram.png")
    contact_sheet(keep).save(out / "worst.png")
    return report


def histogram(values: Sequence[float], *, bins: int = 20, size: tuple[int, int] = (640, 360)) -> Image.Image:
    """A bar chart of IoU values in [0, 1] (Pillow only)."""
    w, h = size
    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(0.0, 1.0))
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    left, bottom, top = 40, h - 30, 30
    peak = max(int(counts.max()) if len(counts) else 0, 1)
    bw = (w - left - 10) / bins
    for i, c in enumerate(counts):
        y = bottom - (bottom - top) * c / peak
        d.rectangle([left + i * bw + 1, y, left + (i + 1) * bw - 1, bottom], fill=(0, 110, 200))
    d.line([left, bottom, w - 10, bottom], fill="black")
    d.line([left, top, left, bottom], fill="black")
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + t * (w - left - 10)
        d.text((x - 8, bottom + 6), f"{t:.2f}", fill="black")
    d.text((left, 8), f"IoU after encode -> decode, {len(values)} objects (max bar {peak})", fill="black")
    return img


def contact_sheet(
    items: Sequence[tuple[float, Path, MaskObject, npt.NDArray[np.bool_]]], *, cell: int = 160
) -> Image.Image:
    """One row per object: image crop | original mask | round-tripped mask, with its IoU."""
    rows = max(len(items), 1)
    sheet = Image.new("RGB", (3 * cell, rows * (cell + 16)), "white")
    d = ImageDraw.Draw(sheet)
    for r, (score, image_path, obj, rt) in enumerate(items):
        y0 = r * (cell + 16)
        try:
            with Image.open(image_path) as im:
                full = im.convert("RGB")
                fw, fh = full.size
                y1, x1, y2, x2 = obj.box
                crop = full.crop((round(x1 * fw), round(y1 * fh), round(x2 * fw), round(y2 * fh)))
        except Exception:
            crop = Image.new("RGB", (cell, cell), "grey")
        tiles = [crop, Image.fromarray(obj.crop.astype(np.uint8) * 255), Image.fromarray(rt.astype(np.uint8) * 255)]
        for c, tile in enumerate(tiles):
            sheet.paste(
                tile.convert("RGB").resize((cell - 4, cell - 4), Image.Resampling.NEAREST), (c * cell + 2, y0 + 16)
            )
        d.text((2, y0 + 2), f"{image_path.name}: IoU {score:.3f}  (image | mask | after 16 tokens)", fill="black")
    return sheet
