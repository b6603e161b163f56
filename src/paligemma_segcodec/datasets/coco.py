"""COCO instances in and out (pycocotools).

Input (`coco_examples`): each image of a COCO instances JSON becomes one example; each annotation
(polygon or RLE, decoded with ``pycocotools``) one object labelled with its category name.
``iscrowd=1`` annotations mark a *group* of objects (a crowd) with one mask; they are skipped by
default (``crowd="skip"``, counted in the report as warnings) because one PaliGemma object per crowd
teaches the model to draw a box around many things; ``crowd="include"`` keeps them as objects.

Every annotation file is treated as hostile. Each record is checked in Python before anything
reaches pycocotools' C code (which reads out of bounds or allocates without limit on crafted input);
a bad record is one error line (`Problem`) and the rest of the file is still converted:

- The file is refused as a whole (``ValueError`` naming it) only when it is not JSON, its top level
  is not an object with an ``images`` key, or it has images but none with an ``id`` and a
  ``file_name`` (not a COCO instances file at all). ``images``, ``annotations`` or ``categories``
  that are not lists are one error line each (and count as empty).
- Ids (image ``id``, annotation ``id``/``image_id``/``category_id``, category ``id``) are integers
  (not booleans, not strings); a second record with the same id, a second image with the same
  ``file_name``, or whose ``file_name`` resolves to the same file, is an error (the later record in
  the file). Category names are strings (and valid labels: `check_label`, which refuses the file).
- ``file_name`` is resolved with `paligemma_segcodec.safeio.resolve_under`: absolute paths, drive
  letters, ``..`` and symlinks leaving the images folder are refused, never read. Images are opened
  with `paligemma_segcodec.maskio.open_image` (`paligemma_segcodec.safeio.open_regular`), so a FIFO
  or device named ``a.jpg`` is reported, never read.
- ``width`` and ``height`` (when given; always for evaluation) are positive integers with
  ``width * height <= MAX_PIXELS`` (2**28 = 268,435,456 pixels, 256 MiB per uint8 mask); no
  image-size buffer is allocated before that check.
- ``iscrowd`` is 0 or 1 (absent: 0). ``area`` is not used. ``bbox`` is used only as the
  ground-truth box of ``eval --protocol big_vision`` (conversion computes boxes from the masks): a
  null or malformed ``bbox`` (not 4 finite numbers with ``w, h >= 0``) is kept as None, never an error.
- Polygons: a list of lists of finite numbers (no booleans, strings, nulls, nested lists), each of
  even length ≥ 6, every point within the image with `POLYGON_MARGIN` (1 pixel) of slack; at most
  `MAX_POLYGON_POINTS` (500,000) points per annotation, and an outline of at most
  `MAX_POLYGON_STEPS` (2**23) rasterization steps (pycocotools walks the outline at 5 steps per
  pixel, ~20 bytes per step: this bounds its memory to ~170 MB).
- RLE: ``size`` is ``[height, width]`` equal to the image's; ``counts`` is a list of non-negative
  integers or a compressed string (characters ``'0'``..``'o'``, decoded here first: no truncated
  number, no negative run); either way the runs must add up to exactly ``height * width``.

`annotation_mask` is that check plus the decoding, for one annotation (``segcodec eval`` uses it).

Output (`segments_to_coco`): decoded PaliGemma answers → a COCO results/instances JSON with RLE
(``segmentation.counts`` as a string) or polygons (contour tracing), for CVAT, Label Studio or
``pycocotools.COCO.loadRes``. Objects are encoded one at a time through one reusable image-size
buffer (each pasted into its box, encoded, cleared), so memory does not grow with objects × pixels.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.boxes import Convention, box_to_loc, loc_to_pixels
from paligemma_segcodec.coco_masks import (  # the checks and conversions, shared with the API
    MAX_PIXELS,
    MAX_POLYGON_POINTS,
    MAX_POLYGON_STEPS,
    POLYGON_MARGIN,
    _decode,
    _describe,
    _is_int,
    _polygons,
    _size_fault,
    mask_to_polygons,
    mask_to_rle,
    rle_counts,
)
from paligemma_segcodec.datasets.files import MaskObject, Problem, unreadable
from paligemma_segcodec.datasets.parallel import ordered_map, resolve_workers
from paligemma_segcodec.errors import UnsafePathError
from paligemma_segcodec.maskio import open_image
from paligemma_segcodec.resize import resize
from paligemma_segcodec.safeio import open_regular, resolve_under
from paligemma_segcodec.segment import Segment
from paligemma_segcodec.tokens import check_label

__all__ = [
    "MAX_PIXELS",
    "MAX_POLYGON_POINTS",
    "MAX_POLYGON_STEPS",
    "POLYGON_MARGIN",
    "CocoFile",
    "CocoImage",
    "annotation_mask",
    "coco_examples",
    "mask_to_polygons",
    "mask_to_rle",
    "read_coco",
    "rle_counts",
    "segments_to_coco",
]

# ---------------------------------------------------------------------------------------------
# Reading and checking the JSON records (no pycocotools)


@dataclass(frozen=True)
class CocoImage:
    """A checked ``images`` record. ``width``/``height`` are None when the file does not give them."""

    id: int
    file_name: str
    width: int | None
    height: int | None
    where: str  # what its problems are reported under


@dataclass(frozen=True)
class CocoAnnotation:
    """A checked ``annotations`` record (ids and ``iscrowd``); ``segmentation`` is checked when decoded.

    ``bbox`` is the record's ``[x, y, w, h]`` in pixels when it has one of 4 finite numbers with
    ``w, h >= 0``, else None (it is optional: only ``eval --protocol big_vision`` reads it).
    """

    id: int
    image_id: int
    category_id: int
    iscrowd: bool
    segmentation: Any
    bbox: tuple[float, float, float, float] | None = None


@dataclass
class CocoFile:
    """A COCO instances file, record by record: what passed the checks, and one `Problem` per record
    that did not (in file order)."""

    path: str
    images: list[CocoImage] = field(default_factory=list)
    annotations: list[CocoAnnotation] = field(default_factory=list)
    categories: dict[int, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    refused_images: set[int] = field(default_factory=set)  # ids of image records with an error
    refused_categories: dict[int, str] = field(default_factory=dict)  # id → why


def _show(v: object) -> str:
    """An id for a problem's file field: ints as they are, anything else short and quoted."""
    if _is_int(v):
        return str(v)
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "…"


def _int_fault(entry: Mapping[str, Any], key: str) -> str | None:
    if key not in entry:
        return f"no {key!r}"
    if not _is_int(entry[key]):
        return f"{key} must be an integer, got {_describe(entry[key])}"
    return None


def read_coco(annotations: str | os.PathLike[str], *, need_size: bool = False) -> CocoFile:
    """Reads a COCO instances file and checks every record (see the module docstring).

    Args:
      annotations: the JSON file (opened with `open_regular`: a FIFO is refused, never read).
      need_size: images must give ``width`` and ``height`` (evaluation).

    Raises:
      ValueError: the file is not JSON, or not a COCO instances file at all (not an object with
        ``images``; images none of which has an ``id`` and a ``file_name``); the message names the
        file and the first entries at fault.
      OSError: the file cannot be opened (missing, a FIFO or folder, permission).
    """
    path = os.fspath(annotations)
    with open_regular(path) as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark is accepted
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (not UTF-8 text: {err.reason} at byte {err.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as err:  # JSONDecodeError, or an integer too long to convert
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    del raw
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: not a COCO instances file: the top level is {_describe(data)}, "
            "not an object with 'images' and 'annotations'"
        )
    if "images" not in data:
        raise ValueError(f"{path}: not a COCO instances file: no 'images' list")
    out = CocoFile(path)
    sections: dict[str, list[Any]] = {}
    for key in ("images", "annotations", "categories"):
        value = data.get(key, [])
        if not isinstance(value, list):
            out.problems.append(Problem(f"{path}#{key}", f"'{key}' is {_describe(value)}, not a list"))
            value = []
        sections[key] = value
    _refuse_if_not_coco(path, sections)
    _read_images(out, sections["images"], need_size)
    _read_categories(out, sections["categories"])
    _read_annotations(out, sections["annotations"])
    return out


def _refuse_if_not_coco(path: str, sections: Mapping[str, list[Any]]) -> None:
    """ValueError when there are images but none has an ``id`` and a ``file_name``: some other format."""
    images = sections["images"]
    if not images or any(isinstance(e, dict) and "id" in e and "file_name" in e for e in images):
        return
    keys = {
        "images": ("id", "file_name"),
        "annotations": ("id", "image_id", "category_id"),
        "categories": ("id", "name"),
    }
    faults = []
    for section, need in keys.items():
        for i, entry in enumerate(sections[section]):
            if not isinstance(entry, dict):
                faults.append(f"{section}[{i}] is {_describe(entry)}, not an object")
                continue
            missing = [k for k in need if k not in entry]
            if missing:
                faults.append(f"{section}[{i}] has no {', '.join(repr(k) for k in missing)}")
            if len(faults) > 3:
                break
    more = " (and more)" if len(faults) > 3 else ""
    raise ValueError(f"{path}: not a COCO instances file: {'; '.join(faults[:3])}{more}")


def _read_images(out: CocoFile, entries: list[Any], need_size: bool) -> None:
    first_id: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            out.problems.append(Problem(f"{out.path}#images[{i}]", f"not an object but {_describe(entry)}"))
            continue
        fault = _int_fault(entry, "id")
        if fault:
            out.problems.append(Problem(f"{out.path}#images[{i}]", fault))
            continue
        image_id = entry["id"]
        name = entry.get("file_name")
        where = f"{out.path}#image {image_id}" + (f" ({name[:200]})" if isinstance(name, str) else "")
        if image_id in first_id:
            out.problems.append(
                Problem(where, f"a second image with id {image_id} (the first is images[{first_id[image_id]}])")
            )
            continue  # its annotations belong to the first
        first_id[image_id] = i
        if not isinstance(name, str) or not name:
            fault = "no 'file_name'" if "file_name" not in entry else f"file_name must be a path, got {_describe(name)}"
        elif need_size or "width" in entry or "height" in entry:
            missing = [k for k in ("width", "height") if k not in entry]
            fault = f"no {missing[0]!r}" if missing else _size_fault(entry["width"], entry["height"])
        if fault:
            out.problems.append(Problem(where, fault))
            out.refused_images.add(image_id)
            continue
        width, height = entry.get("width"), entry.get("height")
        assert isinstance(name, str)
        out.images.append(CocoImage(image_id, name, width, height, where))


def _read_categories(out: CocoFile, entries: list[Any]) -> None:
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            out.problems.append(Problem(f"{out.path}#categories[{i}]", f"not an object but {_describe(entry)}"))
            continue
        fault = _int_fault(entry, "id")
        if fault:
            out.problems.append(Problem(f"{out.path}#categories[{i}]", fault))
            continue
        cid = entry["id"]
        where = f"{out.path}#category {cid}"
        if cid in out.categories or cid in out.refused_categories:
            out.problems.append(Problem(where, f"a second category with id {cid}"))
            continue
        name = entry.get("name")
        if not isinstance(name, str):
            fault = "no 'name'" if "name" not in entry else f"name must be a string, got {_describe(name)}"
            out.problems.append(Problem(where, fault))
            out.refused_categories[cid] = fault
            continue
        out.categories[cid] = name


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    """A record's ``bbox`` as 4 floats when it is 4 finite numbers with ``w, h >= 0``, else None."""
    if not isinstance(value, list) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    x, y, w, h = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
        return None
    return x, y, w, h


def _read_annotations(out: CocoFile, entries: list[Any]) -> None:
    first_id: dict[int, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            out.problems.append(Problem(f"{out.path}#annotations[{i}]", f"not an object but {_describe(entry)}"))
            continue
        fault = _int_fault(entry, "id")
        if fault:
            out.problems.append(Problem(f"{out.path}#annotations[{i}]", fault))
            continue
        ann_id = entry["id"]
        where = f"{out.path}#annotation {ann_id}"
        fault = _int_fault(entry, "image_id") or _int_fault(entry, "category_id")
        crowd = entry.get("iscrowd", 0)
        if not fault and (not _is_int(crowd) or crowd not in (0, 1)):
            fault = f"iscrowd must be 0 or 1, got {_describe(crowd)}"
        if not fault and ann_id in first_id:
            fault = f"a second annotation with id {ann_id} (the first is annotations[{first_id[ann_id]}])"
        if fault:
            out.problems.append(Problem(where, fault))
            continue
        first_id[ann_id] = i
        out.annotations.append(
            CocoAnnotation(
                ann_id,
                entry["image_id"],
                entry["category_id"],
                bool(crowd),
                entry.get("segmentation"),
                _bbox(entry.get("bbox")),
            )
        )


# ---------------------------------------------------------------------------------------------
# Segmentations: checked in Python, then decoded by pycocotools


def annotation_mask(ann: Mapping[str, Any], height: int, width: int) -> npt.NDArray[np.bool_]:
    """An annotation's ``segmentation`` (polygons or RLE) as a bool ``(height, width)`` mask,
    checked first (see the module docstring) so that pycocotools only sees well-formed input.

    Raises:
      ValueError: what is wrong (the image size, a polygon, the RLE), in words.
    """
    if not isinstance(ann, Mapping):
        raise ValueError(f"the annotation is {_describe(ann)}, not an object")
    return _decode(ann.get("segmentation"), height, width).view(np.bool_)


def _tight_crop(mask: npt.NDArray[Any]) -> tuple[int, int, npt.NDArray[np.bool_]]:
    """``(top, left, crop)``: the bool crop of ``mask`` around its pixels (0x0 when none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, np.zeros((0, 0), bool)
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return y0, x0, np.array(mask[y0:y1, x0:x1], dtype=bool)


# ---------------------------------------------------------------------------------------------
# COCO → examples


def coco_examples(
    annotations: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    *,
    crowd: str = "skip",
    min_area: int = 0,
    workers: int | None = 1,
) -> tuple[Generator[Any, None, None], list[str], int]:
    """COCO JSON → (iterator of `Example` | `Problem`, image names, count). Images in file-name order.

    Every record that fails a check of the module docstring is one `Problem` (error) and the rest
    is converted; bad records' problems come first, then each image's. The annotations of a refused
    image are not listed again (its line says why none of them is used).

    Each image is read, its annotations decoded and its objects prepared for the encoder
    (`example.prepare_example`) on ``workers`` threads (default 1: no threads; None: the CPU count),
    in order: the items are the same whatever the number. Close the iterator when not reading it to the end.

    Raises:
      ValueError: see `read_coco`; or a category name that cannot be a label (`check_label`).
      OSError: the annotation file cannot be opened.
    """
    from paligemma_segcodec.datasets.example import Example, prepare_example

    if crowd not in ("skip", "include"):
        raise ValueError(f"crowd must be 'skip' or 'include', got {crowd!r}")
    n_workers = resolve_workers(workers)
    coco = read_coco(annotations)
    images_dir = Path(images_dir)
    cats = {
        cid: check_label(name, f"{annotations}: the name of category {cid}") for cid, name in coco.categories.items()
    }
    cat_order = {cid: i for i, cid in enumerate(sorted(cats))}
    problems = list(coco.problems)
    infos: list[tuple[CocoImage, Path]] = []
    by_name: dict[str, CocoImage] = {}
    by_file: dict[str, CocoImage] = {}
    for info in coco.images:  # file order: the later of two records for one file is the error
        if info.file_name in by_name:
            first = by_name[info.file_name]
            problems.append(Problem(info.where, f"a second image with this file_name (image {first.id} has it)"))
            continue
        by_name[info.file_name] = info
        try:
            path = resolve_under(images_dir, info.file_name, what="file_name")
        except UnsafePathError as err:
            problems.append(Problem(info.where, str(err)))
            continue
        real = os.path.realpath(path)
        if real in by_file:
            first = by_file[real]
            problems.append(Problem(info.where, f"the same file as image {first.id} ({first.file_name[:200]})"))
            continue
        by_file[real] = info
        infos.append((info, path))
    infos.sort(key=lambda item: (item[0].file_name, item[0].id))
    image_ids = {info.id for info in coco.images} | coco.refused_images
    anns_of: dict[int, list[CocoAnnotation]] = {}
    for ann in coco.annotations:
        if ann.image_id in image_ids:
            anns_of.setdefault(ann.image_id, []).append(ann)
        else:  # nothing would ever read it: say so
            problems.append(Problem(f"{annotations}#annotation {ann.id}", f"unknown image id {ann.image_id}"))

    def objects_of(info: CocoImage, h: int, w: int) -> Iterator[MaskObject | Problem]:
        anns = sorted(anns_of.get(info.id, []), key=lambda a: (cat_order.get(a.category_id, 0), a.id))
        for ann in anns:
            where = f"{annotations}#annotation {ann.id} ({info.file_name})"
            if ann.iscrowd and crowd == "skip":
                yield Problem(where, "crowd annotation skipped (use --crowd include to keep it)", "warning")
                continue
            if ann.category_id not in cats:
                refused = coco.refused_categories.get(ann.category_id)
                yield Problem(
                    where,
                    f"category {ann.category_id} is unusable ({refused})"
                    if refused
                    else f"unknown category id {ann.category_id}",
                )
                continue
            try:
                y0, x0, crop = _tight_crop(_decode(ann.segmentation, h, w))
            except ValueError as err:
                yield Problem(where, str(err))
                continue
            if not crop.any() or crop.sum() < min_area:
                yield Problem(where, "empty or below --min-area segmentation skipped", "warning")
                continue
            ch, cw = crop.shape
            box = (y0 / h, x0 / w, (y0 + ch) / h, (x0 + cw) / w)
            y1, x1, y2, x2 = box_to_loc(box)
            if y2 <= y1 or x2 <= x1:
                yield Problem(where, "object thinner than one <loc> step (1/1023 of the side) skipped", "warning")
                continue
            yield MaskObject(cats[ann.category_id], box, crop)

    def image_items(entry: tuple[CocoImage, Path]) -> list[Example | Problem]:
        """One image's problems, then its `Example` (objects prepared); runs on a reading thread."""
        info, path = entry
        try:
            with open_image(path) as im:  # regular files only (a FIFO is refused), Pillow's bomb limit
                w, h = im.size
        except Exception as err:  # Pillow raises many types for broken files
            return [unreadable("image", str(path), err)]
        if (w, h) != (info.width or w, info.height or h):
            return [
                Problem(str(path), f"size mismatch: image is {w}x{h}, the COCO file says {info.width}x{info.height}")
            ]
        fault = _size_fault(w, h)
        if fault:
            return [Problem(str(path), f"image too large: {fault}")]
        out: list[Example | Problem] = []
        objects: list[MaskObject] = []
        for item in objects_of(info, h, w):
            if isinstance(item, Problem):
                out.append(item)
            else:
                objects.append(item)
        labels = tuple(dict.fromkeys(o.label for o in objects)) or tuple(cats[c] for c in sorted(cats))
        out.append(prepare_example(Example(info.file_name, path, labels, tuple(objects))))
        return out

    def items() -> Generator[Example | Problem, None, None]:
        yield from problems
        with closing(ordered_map(image_items, infos, workers=n_workers)) as results:
            for found in results:
                yield from found

    return items(), [info.file_name for info, _ in infos], len(infos)


# ---------------------------------------------------------------------------------------------
# Masks → COCO


def _segment_crop(s: Segment, height: int, width: int, convention: Convention) -> tuple[int, int, Any] | None:
    """``(top, left, bool crop)`` holding all of a segment's mask pixels, or None without a mask.

    A decoded full-size ``mask`` is cropped to its pixels; a segment with only ``mask64`` is pasted
    into its box here, box-locally, as `paste_mask` does without its full-size canvas. (A box-local
    helper, ``segment.paste_mask_in_box``, is in the works; this can call it once it has landed.)
    """
    if s.mask is not None:
        if s.mask.shape != (height, width):
            raise ValueError(f"{s.mask.shape} mask, image is {height}x{width}")
        return _tight_crop(s.mask)
    if s.mask64 is None:
        return None
    y1, x1, y2, x2 = loc_to_pixels(s.loc, height, width, convention=convention)
    y1, x1, y2, x2 = max(y1, 0), max(x1, 0), min(y2, height), min(x2, width)
    if y2 <= y1 or x2 <= x1:
        return 0, 0, np.zeros((0, 0), bool)
    return y1, x1, resize(np.asarray(s.mask64, dtype=np.float32), y2 - y1, x2 - x1) > 0


def segments_to_coco(
    images: Sequence[Mapping[str, Any]],
    segments: Sequence[Sequence[Segment]],
    *,
    polygons: bool = False,
    categories: Sequence[str] | None = None,
    convention: Convention = "big_vision",
) -> dict[str, Any]:
    """Decoded answers → a COCO instances JSON (dict).

    Objects are encoded one at a time through one image-size buffer per image (pasted into their
    box, encoded, cleared): memory does not grow with the number of objects.

    Args:
      images: one ``{"file_name", "width", "height"}`` per image (``id`` optional: 1-based order).
      segments: per image, its decoded `Segment`\\ s: with a full-size ``mask`` (decoded with that
        image's height/width), or with only ``mask64`` (pasted into its box here); detection-only
        segments get a box and an empty segmentation.
      polygons: write polygons (contour tracing) instead of RLE.
      categories: category names in id order (default: the labels seen, sorted).
      convention: how ``<loc>`` becomes pixels (`paligemma_segcodec.boxes.loc_to_pixels`).

    Returns:
      ``{"images", "annotations", "categories"}``; each annotation has ``bbox`` (x, y, w, h in
      pixels), ``area``, ``segmentation``, ``iscrowd: 0`` and ``score: 1.0``.

    Raises:
      ValueError: ``images`` and ``segments`` differ in length, a label is not in ``categories``,
        or a segment's full-size ``mask`` is not its image's ``height × width``.

    Examples:
        >>> import numpy as np
        >>> from paligemma_segcodec import Segment
        >>> mask = np.zeros((4, 6), bool)
        >>> mask[1:3, 0:3] = True
        >>> answers = [[Segment("car", (256, 0, 767, 511), mask=mask), Segment("sign", (0, 512, 512, 1023))]]
        >>> images = [{"file_name": "a.jpg", "width": 6, "height": 4}]
        >>> coco = segments_to_coco(images, answers)
        >>> coco["categories"]
        [{'id': 1, 'name': 'car'}, {'id': 2, 'name': 'sign'}]
        >>> car, sign = coco["annotations"]
        >>> car["category_id"], car["area"], car["segmentation"]
        (1, 6, {'size': [4, 6], 'counts': '122000;'})
        >>> sign["category_id"], sign["segmentation"]  # detection only: a box, no mask
        (2, [])
        >>> segments_to_coco(images, answers, polygons=True)["annotations"][0]["segmentation"]
        [[0.0, 1.0, 3.0, 1.0, 3.0, 3.0, 0.0, 3.0]]
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
        canvas: npt.NDArray[np.uint8] | None = None  # zero between objects
        for s in segs:
            if s.label not in cat_id:
                raise ValueError(f"label {s.label!r} of image {info['file_name']} is not in categories")
            x1, y1, x2, y2 = s.xyxy(height=h, width=w, convention=convention)
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cat_id[s.label],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "iscrowd": 0,
                "score": 1.0,
            }
            try:
                found = _segment_crop(s, h, w, convention)
            except ValueError as err:
                raise ValueError(f"a segment of {info['file_name']} has a {err}") from None
            if found is None:
                ann["area"] = (x2 - x1) * (y2 - y1)
                ann["segmentation"] = []
            else:
                top, left, crop = found
                ann["area"] = int(np.count_nonzero(crop))
                if polygons:
                    ann["segmentation"] = _polygons(crop, top, left)
                else:
                    if canvas is None:
                        canvas = np.zeros((h, w), np.uint8, order="F")
                    region = canvas[top : top + crop.shape[0], left : left + crop.shape[1]]
                    region[...] = crop
                    rle = mask_utils.encode(canvas)
                    region[...] = 0
                    ann["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
            annotations.append(ann)
    return {
        "images": out_images,
        "annotations": annotations,
        "categories": [{"id": cat_id[n], "name": n} for n in names],
    }
