"""``segcodec audit``: how much of each mask survives the 16-token format.

For every object: encode (crop, resize, quantize) → decode → paste back at full resolution → IoU
with the original object mask (pasted and scored inside the boxes only, so memory follows the image
and the batch, not objects × image). That IoU is the ceiling a PaliGemma model can reach on the object
through its 16 ``<seg>`` tokens, whatever it learns: thin rivers and ragged shorelines score low.
"""

from __future__ import annotations

import csv
import functools
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from paligemma_segcodec.datasets.files import (
    Instances,
    MaskObject,
    Pair,
    Problem,
    extract_objects,
    match_pairs,
    unreadable,
)
from paligemma_segcodec.datasets.parallel import ordered_map, resolve_workers
from paligemma_segcodec.maskio import open_image, read_image, read_mask_values
from paligemma_segcodec.prep import PreparedMask, prepare_crop
from paligemma_segcodec.progress import Progress
from paligemma_segcodec.progress import wrap as wrap_progress
from paligemma_segcodec.safeio import AtomicFiles
from paligemma_segcodec.segment import paste_mask_in_box

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["AuditRecord", "AuditReport", "audit_folder", "audit_objects", "box_iou_parts", "iou", "iter_audit_objects"]


def iou(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Intersection over union of two bool masks of the same shape; 1.0 when both are empty.

    Args:
      a: a mask (anything ``np.asarray(a, bool)`` takes: bool, 0/1, 0/255).
      b: the other mask, the same shape.

    Returns:
      ``|a & b| / |a | b|``, in [0, 1]; 1.0 when both masks are empty.

    Raises:
      ValueError: the masks have different shapes.

    Examples:
        >>> import numpy as np
        >>> a = np.zeros((4, 4), bool)
        >>> a[:2] = True
        >>> b = np.zeros((4, 4), bool)
        >>> b[1:3] = True
        >>> iou(a, b)
        0.3333333333333333
        >>> iou(a, a), iou(np.zeros((4, 4)), np.zeros((4, 4)))
        (1.0, 1.0)
    """
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
    """What `audit_folder` measured: one `AuditRecord` per object, and the items it skipped.

    ``summary()`` gives the IoU statistics per label, as written to ``summary.json``.

    Attributes:
      records (list[AuditRecord]): per object, in image (stem) order then object order: the image,
        object index, label, ``<loc>`` box, area in pixels and round-trip IoU.
      skipped (list[Problem]): pairs (or files) that could not be audited, and why.

    Examples:
        >>> report = AuditReport([
        ...     AuditRecord("a.jpg", 0, "water", (0, 0, 512, 512), 900, 0.9),
        ...     AuditRecord("a.jpg", 1, "water", (600, 0, 700, 1023), 40, 0.5),
        ... ])
        >>> summary = report.summary()
        >>> sorted(summary), summary["water"]["count"], summary["water"]["mean"]
        (['all', 'water'], 2.0, 0.7)
    """

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


Slices = tuple[slice, slice]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[Slices, Slices] | None:
    """Where boxes ``a`` and ``b`` (``(top, left, bottom, right)``) overlap, as slices into a crop of
    each, or None when they do not."""
    t, left, bot, r = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    if bot <= t or r <= left:
        return None
    return (
        (slice(t - a[0], bot - a[0]), slice(left - a[1], r - a[1])),
        (slice(t - b[0], bot - b[0]), slice(left - b[1], r - b[1])),
    )


def box_iou_parts(
    a_box: tuple[int, int, int, int],
    a: npt.NDArray[np.bool_],
    b_box: tuple[int, int, int, int],
    b: npt.NDArray[np.bool_],
) -> tuple[int, int]:
    """``(intersection, union)`` pixel counts of two masks given as box crops on one canvas.

    ``a`` is the mask's pixels inside ``a_box`` = ``(top, left, bottom, right)`` (False outside),
    likewise ``b``; the counts equal those of the two full-size masks (only the boxes' overlap can
    intersect; the union is the sum of the areas minus the intersection).
    """
    if a.shape != (a_box[2] - a_box[0], a_box[3] - a_box[1]) or b.shape != (b_box[2] - b_box[0], b_box[3] - b_box[1]):
        raise ValueError(f"crops {a.shape} and {b.shape} do not match their boxes {a_box} and {b_box}")
    overlap = _overlap(a_box, b_box)
    inter = 0 if overlap is None else int(np.count_nonzero(a[overlap[0]] & b[overlap[1]]))
    return inter, int(np.count_nonzero(a)) + int(np.count_nonzero(b)) - inter


def _object_box(o: MaskObject, h: int, w: int) -> tuple[int, int, int, int]:
    """The object's pixel box (``crop_pixels`` of its box), checked against its crop."""
    from paligemma_segcodec.boxes import crop_pixels

    t, left, b, r = crop_pixels(o.box, h, w)
    if not (0 <= t <= b <= h and 0 <= left <= r <= w) or o.crop.shape != (b - t, r - left):
        raise ValueError(f"object crop {o.crop.shape} does not fit its box {(t, left, b, r)} in a {h}x{w} mask")
    return (t, left, b, r)


_CPU_BATCH = 16
"""Objects per encode / decode call on a CPU: as fast per object as 64 or 256 there, with smaller
XLA buffers (auditing a 1,115-object mask peaked ~50 MB lower than with batches of 64)."""


def _batch_size(codec: Codec) -> int:
    import jax

    return min(codec.host_chunk, _CPU_BATCH) if jax.default_backend() == "cpu" else codec.host_chunk


def iter_audit_objects(
    objects: Sequence[MaskObject],
    shapes: Sequence[tuple[int, int]],
    *,
    codec: Codec | None = None,
    prepared: Sequence[PreparedMask] | None = None,
) -> Iterator[tuple[float, npt.NDArray[np.bool_], tuple[int, int, int, int]]]:
    """`audit_objects`, one object at a time.

    Objects are encoded and decoded in small batches (`_batch_size`) and each is pasted inside its
    ``<loc>`` box only: memory is one batch of 64×64 masks plus one object's boxes, never the full
    image per object. ``prepared``: the objects' encoder inputs when already computed
    (``prepare_crop(o.crop, o.box)`` each, e.g. on a reading thread).
    """
    from paligemma_segcodec.api import default_codec

    if len(objects) != len(shapes):
        raise ValueError(f"{len(objects)} objects but {len(shapes)} shapes")
    if prepared is not None and len(prepared) != len(objects):
        raise ValueError(f"{len(objects)} objects but {len(prepared)} prepared masks")
    if not objects:
        return
    codec = codec or default_codec()
    step = _batch_size(codec)
    for start in range(0, len(objects), step):
        chunk = objects[start : start + step]
        prepared_chunk = (
            prepared[start : start + step] if prepared is not None else [prepare_crop(o.crop, o.box) for o in chunk]
        )
        decoded = codec.decode_indices(codec.encode_indices(np.stack([p.mask64 for p in prepared_chunk])))
        for o, p, m64, (h, w) in zip(chunk, prepared_chunk, decoded, shapes[start : start + len(chunk)], strict=True):
            yield _audit_one(o, p.loc, m64, h, w)


def _audit_one(
    o: MaskObject, loc: tuple[int, int, int, int], m64: npt.NDArray[np.float32], h: int, w: int
) -> tuple[float, npt.NDArray[np.bool_], tuple[int, int, int, int]]:
    obox = _object_box(o, h, w)
    pbox, pasted = paste_mask_in_box(m64, loc, h, w)
    inter, union = box_iou_parts(obox, o.crop, pbox, pasted)
    # the round trip seen through the object's own box (as the contact sheet shows it)
    rt = np.zeros(o.crop.shape, bool)
    overlap = _overlap(obox, pbox)
    if overlap is not None:
        rt[overlap[0]] = pasted[overlap[1]]
    return (1.0 if union == 0 else inter / union), rt, loc


def audit_objects(
    objects: Sequence[MaskObject], shapes: Sequence[tuple[int, int]], *, codec: Codec | None = None
) -> list[tuple[float, npt.NDArray[np.bool_], tuple[int, int, int, int]]]:
    """For each object (with its full mask shape): ``(iou, round-tripped crop, loc)``.

    The IoU is the full-resolution IoU of the object and its pasted reconstruction, computed from
    their boxes (intersection inside the boxes' overlap, union from the areas): no full-size mask
    is built. The round-tripped crop is the pasted mask inside the object's own box.
    """
    return list(iter_audit_objects(objects, shapes, codec=codec))


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
    progress: Progress = True,
    workers: int | None = None,
) -> AuditReport:
    """Audits every object of a folder pair; writes ``audit.csv``, ``summary.json``,
    ``histogram.png`` and ``worst.png`` (contact sheet of the ``worst`` objects) to ``out_dir``.

    The four files replace any previous ones together (all or none). ``segcodec audit``.

    Args:
      images_dir: the folder of images (matched to masks by stem, `match_pairs`).
      masks_dir: the folder of binary masks.
      out_dir: where the four files go (created if needed).
      label: the objects' label in the report.
      threshold: mask pixels ``> threshold`` are foreground.
      instances: ``"components"`` (one object per connected component) or ``"whole"``.
      min_area: components with fewer pixels are left out.
      worst: how many of the lowest-IoU objects the contact sheet shows.
      codec: the codec (default: `paligemma_segcodec.codec.load_codec`'s checkpoint).
      progress: show a progress bar.
      workers: threads reading the pairs and preparing the objects (None: the CPU count; 1: no
        threads); the caller's thread encodes, decodes and scores. The outputs are
        byte-identical whatever the number.

    Returns:
      The `AuditReport` (every object's IoU, the skipped items).

    Raises:
      FileNotFoundError: a folder does not exist, or neither holds any file (`match_pairs`).
      CheckpointNotFoundError: ``codec=None`` and no checkpoint could be found.

    Examples:
        >>> import os, tempfile
        >>> out = tempfile.mkdtemp()
        >>> report = audit_folder(
        ...     "tests/data/water/images", "tests/data/water/masks", out, label="water", progress=False
        ... )
        >>> len(report.records), report.skipped, sorted(os.listdir(out))
        (30, [], ['audit.csv', 'histogram.png', 'summary.json', 'worst.png'])
        >>> r = report.records[0]
        >>> r.image, r.index, r.label, r.loc, r.area
        ('water_body_1120.jpg', 0, 'water', (155, 733, 171, 806), 16)
        >>> 0.0 <= r.iou <= 1.0
        True
    """
    import json

    n_workers = resolve_workers(workers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs, problems = match_pairs(images_dir, masks_dir)
    report = AuditReport(skipped=list(problems))
    keep: list[tuple[float, Path, MaskObject, npt.NDArray[np.bool_]]] = []
    work = functools.partial(_read_pair, label=label, threshold=threshold, instances=instances, min_area=min_area)
    with closing(ordered_map(work, pairs, workers=n_workers)) as found:
        for pair, item in zip(pairs, wrap_progress(progress, found, total=len(pairs), desc="audit"), strict=True):
            if isinstance(item, Problem):
                report.skipped.append(item)
                continue
            objects, prepared, shape = item
            results = iter_audit_objects(objects, [shape] * len(objects), codec=codec, prepared=prepared)
            for i, (o, (score, rt, loc)) in enumerate(zip(objects, results, strict=True)):
                report.records.append(AuditRecord(pair.image.name, i, o.label, loc, o.area, score))
                keep.append((score, pair.image, o, rt))
                keep.sort(key=lambda k: k[0])
                del keep[worst:]
    with AtomicFiles() as files:  # the four outputs replace the previous ones together
        writer = csv.writer(files.open(out / "audit.csv", "w"))
        writer.writerow(["image", "object", "label", "y1", "x1", "y2", "x2", "area_px", "iou"])
        for r in report.records:
            writer.writerow([r.image, r.index, r.label, *r.loc, r.area, f"{r.iou:.6f}"])
        files.open(out / "summary.json", "w").write(json.dumps(report.summary(), indent=2) + "\n")
        histogram([r.iou for r in report.records]).save(files.open(out / "histogram.png", "wb"), format="PNG")
        contact_sheet(keep).save(files.open(out / "worst.png", "wb"), format="PNG")
    return report


def _read_pair(
    pair: Pair, *, label: str, threshold: int, instances: Instances, min_area: int
) -> Problem | tuple[list[MaskObject], list[PreparedMask], tuple[int, int]]:
    """A reading thread's work for one pair: the image checked, the mask's objects and their encoder
    inputs, and the mask's shape; or the `Problem` that stops the pair."""
    try:  # the image is checked as convert checks it: readable, within the bomb limit, same size
        with open_image(pair.image) as im:
            size = im.size
    except Exception as err:
        return unreadable("image", str(pair.image), err)
    try:
        values = read_mask_values(pair.mask)
    except Exception as err:
        return unreadable("mask", str(pair.mask), err)
    if values.shape != (size[1], size[0]):
        w, h = size
        reason = f"size mismatch: mask is {values.shape[1]}x{values.shape[0]}, image is {w}x{h} (WxH)"
        return Problem(str(pair.mask), reason)
    objects, _ = extract_objects(values, label=label, threshold=threshold, instances=instances, min_area=min_area)
    prepared = [prepare_crop(o.crop, o.box) for o in objects]
    return objects, prepared, (int(values.shape[0]), int(values.shape[1]))


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
    """One row per object: image crop | original mask | round-tripped mask, with its IoU.

    Consecutive rows of one image share one decode of it (the previous image is closed first).
    """
    rows = max(len(items), 1)
    sheet = Image.new("RGB", (3 * cell, rows * (cell + 16)), "white")
    d = ImageDraw.Draw(sheet)
    current: tuple[Path, Image.Image | None] | None = None
    try:
        for r, (score, image_path, obj, rt) in enumerate(items):
            y0 = r * (cell + 16)
            if current is None or current[0] != image_path:
                if current is not None and current[1] is not None:
                    current[1].close()
                current = (image_path, _load_image(image_path))
            crop = _crop(current[1], obj.box) or Image.new("RGB", (cell, cell), "grey")
            tiles = [
                crop,
                Image.fromarray(np.multiply(obj.crop, 255, dtype=np.uint8)),
                Image.fromarray(np.multiply(rt, 255, dtype=np.uint8)),
            ]
            for c, tile in enumerate(tiles):
                # nearest-neighbour shrink first, then to RGB: the same pixels (conversion is per
                # pixel) without a full-size RGB copy of a big object
                tile = tile.resize((cell - 4, cell - 4), Image.Resampling.NEAREST).convert("RGB")
                sheet.paste(tile, (c * cell + 2, y0 + 16))
            d.text((2, y0 + 2), f"{image_path.name}: IoU {score:.3f}  (image | mask | after 16 tokens)", fill="black")
    finally:
        if current is not None and current[1] is not None:
            current[1].close()
    return sheet


def _load_image(path: Path) -> Image.Image | None:
    """The decoded image (the caller closes it), or None when it cannot be read."""
    try:  # a regular file only (a FIFO never blocks), within Pillow's decompression-bomb limit
        return read_image(path)
    except Exception:
        return None


def _crop(im: Image.Image | None, box: tuple[float, float, float, float]) -> Image.Image | None:
    """The normalized ``box`` of ``im``, or None when there is no image or it cannot be cropped."""
    if im is None:
        return None
    fw, fh = im.size
    y1, x1, y2, x2 = box
    try:
        return im.crop((round(x1 * fw), round(y1 * fh), round(x2 * fw), round(y2 * fh)))
    except Exception:
        return None
