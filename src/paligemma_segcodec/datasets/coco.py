"""COCO instances in and out (pycocotools).

Input (`coco_examples`): each image of a COCO instances JSON becomes one example; each annotation
(polygon or RLE, decoded with ``pycocotools``) one object labelled with its category name.
``iscrowd=1`` annotations mark a *group* of objects (a crowd) with one mask; they are skipped by
default (``crowd="skip"``, counted in the report as warnings) because one PaliGemma object per crowd
teaches the model to draw a box around many things; ``crowd="include"`` keeps them as objects.

Output (`segments_to_coco`): decoded PaliGemma answers → a COCO results/instances JSON with RLE
(``segmentation.counts`` as a string) or polygons (contour tracing), for CVAT, Label Studio or
``pycocotools.COCO.loadRes``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

from paligemma_segcodec.boxes import box_to_loc
from paligemma_segcodec.datasets.files import MaskObject, Problem, unreadable
from paligemma_segcodec.segment import Segment
from paligemma_segcodec.tokens import check_label

__all__ = ["coco_examples", "mask_to_polygons", "mask_to_rle", "segments_to_coco"]


def load_coco(annotations: str | os.PathLike[str], *, need_size: bool = False) -> Any:
    """``pycocotools.coco.COCO`` of a file, without its progress prints.

    Raises:
      ValueError: the file is not JSON, or not shaped like a COCO instances file (each image needs
        ``id`` and ``file_name``, plus ``width`` and ``height`` with ``need_size``; each annotation
        ``id``, ``image_id`` and ``category_id``; each category ``id`` and ``name``); the message
        names the file and the first entries at fault.
    """
    from pycocotools.coco import COCO

    path = os.fspath(annotations)
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
    faults = _coco_faults(data, need_size)
    if faults:
        more = f" (and {len(faults) - 3} more)" if len(faults) > 3 else ""
        raise ValueError(f"{path}: not a COCO instances file: {'; '.join(faults[:3])}{more}")
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress to stdout
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    return coco


def _coco_faults(data: Any, need_size: bool) -> list[str]:
    if not isinstance(data, dict):
        return [f"the top level is a {type(data).__name__}, not an object with 'images' and 'annotations'"]
    faults = [
        f"'{key}' is not a list"
        for key in ("images", "annotations", "categories")
        if key in data and not isinstance(data[key], list)
    ]
    if "images" not in data:
        faults.append("no 'images' list")
    if faults:
        return faults
    image_keys = ("id", "file_name", "width", "height") if need_size else ("id", "file_name")
    sections = (
        ("images", image_keys),
        ("annotations", ("id", "image_id", "category_id")),
        ("categories", ("id", "name")),
    )
    for section, keys in sections:
        for i, entry in enumerate(data.get(section, [])):
            missing = [k for k in keys if not isinstance(entry, dict) or k not in entry]
            if missing:
                faults.append(f"{section}[{i}] has no {', '.join(repr(k) for k in missing)}")
    return faults


def coco_examples(
    annotations: str | os.PathLike[str], images_dir: str | os.PathLike[str], *, crowd: str = "skip", min_area: int = 0
) -> tuple[Iterator[Any], list[str], int]:
    """COCO JSON → (iterator of `Example` | `Problem`, image names, count). Images in file-name order."""
    from paligemma_segcodec.datasets.convert import Example

    if crowd not in ("skip", "include"):
        raise ValueError(f"crowd must be 'skip' or 'include', got {crowd!r}")
    coco = load_coco(annotations)
    images_dir = Path(images_dir)
    infos = sorted(coco.dataset.get("images", []), key=lambda im: (im["file_name"], im["id"]))
    names = [im["file_name"] for im in infos]
    cats = {
        c["id"]: check_label(c["name"], f"{annotations}: the name of category {c['id']}")
        for c in coco.dataset.get("categories", [])
    }
    cat_order = {cid: i for i, cid in enumerate(sorted(cats))}
    image_ids = {im["id"] for im in infos}

    def items() -> Iterator[Example | Problem]:
        for ann in coco.dataset.get("annotations", []):
            if ann["image_id"] not in image_ids:  # nothing would ever read it: say so
                yield Problem(f"{annotations}#annotation {ann['id']}", f"unknown image id {ann['image_id']}")
        for info in infos:
            path = images_dir / info["file_name"]
            try:
                with Image.open(path) as im:
                    im.load()
                    w, h = im.size
            except Exception as err:
                yield unreadable("image", str(path), err)
                continue
            if (w, h) != (info.get("width", w), info.get("height", h)):
                yield Problem(
                    str(path), f"size mismatch: image is {w}x{h}, the COCO file says {info['width']}x{info['height']}"
                )
                continue
            anns = sorted(
                coco.loadAnns(coco.getAnnIds(imgIds=[info["id"]])),
                key=lambda a: (cat_order.get(a["category_id"], 0), a["id"]),
            )
            objects: list[MaskObject] = []
            for ann in anns:
                where = f"{annotations}#annotation {ann['id']} ({info['file_name']})"
                if ann.get("iscrowd", 0) and crowd == "skip":
                    yield Problem(where, "crowd annotation skipped (use --crowd include to keep it)", "warning")
                    continue
                if ann["category_id"] not in cats:
                    yield Problem(where, f"unknown category id {ann['category_id']}")
                    continue
                fault = _segmentation_fault(ann.get("segmentation"))
                if fault:
                    yield Problem(where, fault)
                    continue
                try:
                    mask = coco.annToMask(ann).astype(bool)
                except Exception as err:
                    yield Problem(where, f"undecodable segmentation: {err}")
                    continue
                if mask.shape != (h, w):
                    yield Problem(
                        where, f"size mismatch: segmentation is {mask.shape[1]}x{mask.shape[0]}, image is {w}x{h}"
                    )
                    continue
                if not mask.any() or mask.sum() < min_area:
                    yield Problem(where, "empty or below --min-area segmentation skipped", "warning")
                    continue
                (slc,) = ndimage.find_objects(mask.astype(np.int32))
                ys, xs = slc
                box = (ys.start / h, xs.start / w, ys.stop / h, xs.stop / w)
                y1, x1, y2, x2 = box_to_loc(box)
                if y2 <= y1 or x2 <= x1:
                    yield Problem(where, "object thinner than one <loc> step (1/1023 of the side) skipped", "warning")
                    continue
                objects.append(MaskObject(cats[ann["category_id"]], box, mask[slc]))
            labels = tuple(dict.fromkeys(o.label for o in objects)) or tuple(cats[c] for c in sorted(cats))
            yield Example(info["file_name"], path, labels, tuple(objects))

    return items(), names, len(infos)


def _segmentation_fault(seg: Any) -> str | None:
    """Why an annotation's ``segmentation`` cannot be decoded, before pycocotools tries (its
    messages do not say what is wrong), or None."""
    if seg is None:
        return "no segmentation"
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            return "RLE segmentation without 'counts' and 'size'"
        return None
    if not isinstance(seg, list):
        return f"segmentation is a {type(seg).__name__}"
    if not seg:
        return "empty segmentation (no polygon)"
    for i, poly in enumerate(seg):
        if not isinstance(poly, list) or not all(isinstance(v, (int, float)) for v in poly):
            return f"polygon {i} is not a list of numbers"
        if len(poly) < 6 or len(poly) % 2:
            return f"polygon {i} has {len(poly)} numbers: needs x,y pairs of at least 3 points"
    return None


def mask_to_rle(mask: npt.ArrayLike) -> dict[str, Any]:
    """bool ``(H, W)`` → COCO RLE ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def mask_to_polygons(mask: npt.ArrayLike) -> list[list[float]]:
    """bool ``(H, W)`` → COCO polygons (outer contours of each component, x,y pixel-corner coordinates).

    Uses contour tracing on the pixel grid (OpenCV-free): each polygon follows the boundary of a
    connected component; holes are not represented (use RLE for exact masks).
    """
    m = np.asarray(mask, dtype=bool)
    polygons: list[list[float]] = []
    labels, count = ndimage.label(m, structure=np.ones((3, 3), bool))
    for i, slc in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        comp = np.pad(labels[slc] == i, 1)
        poly = _trace(comp)
        if len(poly) >= 3:
            oy, ox = slc[0].start - 1, slc[1].start - 1
            polygons.append([float(v) for y, x in poly for v in (x + ox, y + oy)])
    return polygons


def _trace(comp: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Outer boundary of one padded, 8-connected component: pixel-corner vertices ``(y, x)``, clockwise.

    Boundary edges are oriented with the component on their right; at a corner where two pixels touch
    diagonally the walk turns left first, so diagonal neighbours stay inside the same polygon.
    """
    c = comp
    up, down = np.zeros_like(c), np.zeros_like(c)
    up[1:], down[:-1] = c[:-1], c[1:]
    left, right = np.zeros_like(c), np.zeros_like(c)
    left[:, 1:], right[:, :-1] = c[:, :-1], c[:, 1:]
    nxt: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for (dy0, dx0, dy1, dx1), sel in (
        ((0, 0, 0, 1), c & ~up),  # top edge, heading east
        ((0, 1, 1, 1), c & ~right),  # right edge, heading south
        ((1, 1, 1, 0), c & ~down),  # bottom edge, heading west
        ((1, 0, 0, 0), c & ~left),  # left edge, heading north
    ):
        for y, x in zip(*np.nonzero(sel), strict=True):
            nxt.setdefault((int(y) + dy0, int(x) + dx0), []).append((int(y) + dy1, int(x) + dx1))
    ys, xs = np.nonzero(c)
    start = (int(ys[0]), int(xs[0]))  # top-left corner of the top-most, left-most pixel: outer boundary
    pos, heading = start, (0, 1)
    out = [start]
    used: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    while True:
        dy, dx = heading
        options = [q for q in nxt.get(pos, []) if (pos, q) not in used]
        if not options:
            break
        turn_rank = {(-dx, dy): 0, (dy, dx): 1, (dx, -dy): 2}  # left, straight, right (y down)
        q = min(options, key=lambda q: turn_rank.get((q[0] - pos[0], q[1] - pos[1]), 3))
        used.add((pos, q))
        heading = (q[0] - pos[0], q[1] - pos[1])
        if len(out) >= 2 and _collinear(out[-2], out[-1], q):
            out[-1] = q
        else:
            out.append(q)
        pos = q
        if pos == start:
            break
    if out[-1] == start:
        out.pop()
    if len(out) >= 3 and _collinear(out[-1], out[0], out[1]):
        out.pop(0)
    return out


def _collinear(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> bool:
    return (b[0] - a[0]) * (c[1] - b[1]) == (b[1] - a[1]) * (c[0] - b[0])


def segments_to_coco(
    images: Sequence[Mapping[str, Any]],
    segments: Sequence[Sequence[Segment]],
    *,
    polygons: bool = False,
    categories: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Decoded answers → a COCO instances JSON (dict).

    Args:
      images: one ``{"file_name", "width", "height"}`` per image (``id`` optional: 1-based order).
      segments: per image, its decoded `Segment`\\ s (decoded with that image's height/width, so
        ``mask`` is set; detection-only segments get a box and an empty segmentation).
      polygons: write polygons (contour tracing) instead of RLE.
      categories: category names in id order (default: the labels seen, sorted).

    Returns:
      ``{"images", "annotations", "categories"}``; each annotation has ``bbox`` (x, y, w, h in
      pixels), ``area``, ``segmentation``, ``iscrowd: 0`` and ``score: 1.0``.
    """
    from pycocotools import mask as mask_utils

    if len(images) != len(segments):
        raise ValueError(f"got {len(images)} images but {len(segments)} segment lists")
    names = list(categories) if categories is not None else sorted({s.label for segs in segments for s in segs})
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    out_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, (info, segs) in enumerate(zip(images, segments, strict=True)):
        image_id = int(info.get("id", i + 1))
        w, h = int(info["width"]), int(info["height"])
        out_images.append({"id": image_id, "file_name": info["file_name"], "width": w, "height": h})
        for s in segs:
            if s.label not in cat_id:
                raise ValueError(f"label {s.label!r} of image {info['file_name']} is not in categories")
            x1, y1, x2, y2 = s.xyxy(w, h)
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cat_id[s.label],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "iscrowd": 0,
                "score": 1.0,
            }
            if s.mask is not None:
                if s.mask.shape != (h, w):
                    raise ValueError(f"a segment of {info['file_name']} has a {s.mask.shape} mask, image is {h}x{w}")
                rle = mask_to_rle(s.mask)
                ann["area"] = int(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}))
                ann["segmentation"] = mask_to_polygons(s.mask) if polygons else rle
            else:
                ann["area"] = (x2 - x1) * (y2 - y1)
                ann["segmentation"] = []
            annotations.append(ann)
    return {
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": cat_id[n], "name": n} for n in names],
    }
