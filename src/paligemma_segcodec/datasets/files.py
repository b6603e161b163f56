"""Finding image/mask pairs in folders and turning masks into objects (NumPy, SciPy, Pillow; no JAX)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np
import numpy.typing as npt
from PIL import UnidentifiedImageError
from scipy import ndimage

from paligemma_segcodec.boxes import Box, box_to_loc
from paligemma_segcodec.errors import ImageTooLargeError, NotARegularFileError, UnsafePathError
from paligemma_segcodec.maskio import UnsupportedMaskError, binarize
from paligemma_segcodec.safeio import check_regular
from paligemma_segcodec.tokens import check_label

__all__ = [
    "IMAGE_EXTENSIONS",
    "Instances",
    "MaskObject",
    "Pair",
    "Problem",
    "extract_objects",
    "is_thin",
    "match_pairs",
    "non_utf8_name",
    "parse_classes",
    "unreadable",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
Instances = Literal["components", "whole"]
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Problem:
    """One input that could not be used (or looks wrong): which file and why.

    The dataset tools (convert, lint, audit, eval) report every skipped item and every warning as
    one of these; ``segcodec convert`` writes them to ``OUT.errors.jsonl`` with `to_json`.

    Attributes:
      file (str): the file (or ``"row N"``, an annotation id…) the problem is about.
      reason (str): what is wrong, short, naming no path (reports count problems by reason).
      severity (Literal["error", "warning"]): ``"error"``: the item was skipped; ``"warning"``: it
        was used but looks wrong.

    Examples:
        >>> p = Problem("masks/a.png", "empty mask (no pixel above the threshold)", "warning")
        >>> p.to_json()
        {'file': 'masks/a.png', 'reason': 'empty mask (no pixel above the threshold)', 'severity': 'warning'}
        >>> Problem("images/b.jpg", "image without mask").severity
        'error'
    """

    file: str
    reason: str
    severity: Literal["error", "warning"] = "error"

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason, "severity": self.severity}


def unreadable(
    what: str, file: str, err: BaseException, source: str | os.PathLike[str] | IO[bytes] | None = None
) -> Problem:
    """The `Problem` for a file that could not be read: ``"unreadable WHAT: REASON"``.

    REASON is short and names no path (the problem's ``file`` does), so that reports can count
    problems by reason: ``file not found``, ``broken link``, ``empty file (0 bytes)``, ``not an
    image file Pillow can read``, ``truncated file``, ``permission denied``, or the error's own text.

    Args:
      what: ``"image"``, ``"mask"``, …
      file: the name the problem is reported under.
      err: what reading raised.
      source: what was read (a path, or the open bytes), to tell an empty file; default ``file``.
    """
    source = file if source is None else source
    if isinstance(err, NotARegularFileError):
        reason = err.strerror or "not a regular file"
    elif isinstance(err, (ImageTooLargeError, UnsafePathError)):
        reason = str(err).removeprefix(f"{file}: ")
    elif isinstance(err, FileNotFoundError):
        link = isinstance(source, (str, os.PathLike)) and os.path.islink(source)
        reason = "broken link (its target does not exist)" if link else "file not found"
    elif isinstance(err, PermissionError):
        reason = "permission denied"
    elif isinstance(err, IsADirectoryError):
        reason = "a folder, not a file"
    elif _size(source) == 0:
        reason = "empty file (0 bytes)"
    elif isinstance(err, UnidentifiedImageError):
        reason = "not an image file Pillow can read"
    elif isinstance(err, OSError) and "truncated" in str(err).lower():
        reason = "truncated file"  # Pillow says "image file is truncated" or "Truncated File Read"
    else:
        reason = err.reason if isinstance(err, UnsupportedMaskError) else str(err) or type(err).__name__
        reason = reason.removeprefix(f"{file}: ")
    return Problem(file, f"unreadable {what}: {reason}")


def _size(source: str | os.PathLike[str] | IO[bytes]) -> int | None:
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.path.getsize(source)
        except OSError:
            return None
    getbuffer = getattr(source, "getbuffer", None)
    return getbuffer().nbytes if getbuffer is not None else None


@dataclass(frozen=True)
class Pair:
    """An image and its mask, matched by file stem."""

    stem: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class MaskObject:
    """One object cut out of a mask.

    Attributes:
      label (str): its label.
      box (Box): the tight normalized box ``(y1, x1, y2, x2)`` in the full mask.
      crop (npt.NDArray[np.bool_]): bool ``(h, w)``: the object's pixels inside that box
        (``mask[crop_pixels(box)]``).

    Examples:
        >>> import numpy as np
        >>> mask = np.zeros((8, 8), np.uint8)
        >>> mask[2:4, 2:6] = 255
        >>> (obj,), dropped = extract_objects(mask, label="water")
        >>> obj.label, obj.box, obj.crop.shape, obj.area
        ('water', (0.25, 0.25, 0.5, 0.75), (2, 4), 8)
    """

    label: str
    box: Box
    crop: npt.NDArray[np.bool_]

    @property
    def area(self) -> int:
        return int(self.crop.sum())


def non_utf8_name(path: Path, what: str) -> Problem | None:
    """The `Problem` for a file whose name is not valid UTF-8 (it could not be written to a JSONL
    or CSV report), named with its bytes escaped; None for a normal name."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return Problem(repr(str(path))[1:-1], f"{what} file name is not valid UTF-8 (rename the file)")
    return None


def _listing(folder: Path, what: str) -> tuple[dict[str, Path], list[Problem], set[str]]:
    """``(stem → file, problems, stems of unusable files)``: an unusable file (special, broken
    link) is reported once here, and its partner is not reported again as unmatched."""
    files: dict[str, Path] = {}
    problems: list[Problem] = []
    bad: set[str] = set()
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        problem = non_utf8_name(p, what)
        if problem is not None:  # it could not be written to the JSONL: reported, not read
            problems.append(problem)
            bad.add(p.stem)
            continue
        if p.is_dir() and not p.is_symlink():
            if p.suffix.lower() in IMAGE_EXTENSIONS:  # else a user looks for the file and finds it "there"
                problems.append(Problem(str(p), f"a folder named like a {what} file, not a file"))
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            try:  # FIFOs, sockets, devices, folders behind links, broken or looping links: never opened
                check_regular(p)
            except OSError as err:
                problems.append(unreadable(what, str(p), err))
                bad.add(p.stem)
                continue
        elif p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            problems.append(Problem(str(p), f"not a supported {what} file type ({', '.join(IMAGE_EXTENSIONS)})"))
            continue
        if p.stem in files:
            problems.append(
                Problem(
                    str(p),
                    f"two {what} files with the stem {p.stem!r}: used {files[p.stem].name}, not this one "
                    "(rename or remove one)",
                )
            )
            continue
        files[p.stem] = p
    return files, problems, bad


def match_pairs(
    images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str]
) -> tuple[list[Pair], list[Problem]]:
    """Pairs ``images_dir/STEM.*`` with ``masks_dir/STEM.*`` (PNG, JPEG, TIFF, BMP, GIF, WebP;
    case-insensitive).

    Hidden files (``.name``) and subfolders are ignored; special files (FIFOs, devices) and broken
    links are reported, never opened.

    Args:
      images_dir: the folder of images.
      masks_dir: the folder of masks, one per image, with the image's stem (any supported type).

    Returns:
      ``(pairs, problems)``: the `Pair` s (``stem``, ``image``, ``mask`` paths) sorted by stem, and
      one `Problem` per image without a mask, mask without an image, unsupported file type,
      duplicated stem, unusable file or file name that is not valid UTF-8.

    Raises:
      FileNotFoundError: a folder does not exist, or neither folder holds any file.

    Examples:
        >>> pairs, problems = match_pairs("tests/data/water/images", "tests/data/water/masks")
        >>> len(pairs), problems
        (10, [])
        >>> pairs[0].stem, pairs[0].image.name, pairs[0].mask.parent.name
        ('water_body_1120', 'water_body_1120.jpg', 'masks')
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
    images, problems, bad_images = _listing(images_dir, "image")
    masks, mask_problems, bad_masks = _listing(masks_dir, "mask")
    problems += mask_problems
    if not images and not masks and not problems:
        raise FileNotFoundError(f"no files in {images_dir} or {masks_dir}: check the --images and --masks folders")
    pairs = []
    for stem in sorted(set(images) | set(masks)):
        if stem in bad_images or stem in bad_masks:
            continue  # its partner is unusable, already reported
        if stem not in masks:
            problems.append(Problem(str(images[stem]), f"image without mask (no {stem}.* in {masks_dir})"))
        elif stem not in images:
            problems.append(Problem(str(masks[stem]), f"mask without image (no {stem}.* in {images_dir})"))
        else:
            pairs.append(Pair(stem, images[stem], masks[stem]))
    return pairs, problems


def parse_classes(spec: str) -> dict[int, str]:
    """``"1=water,2=road"`` → ``{1: "water", 2: "road"}`` (``segcodec convert --classes``).

    Args:
      spec: comma-separated ``VALUE=NAME`` entries: a mask value (an int) and its label; spaces
        around entries and names are ignored.

    Returns:
      Mask value → label, in the order given (a repeated value keeps its last name).

    Raises:
      ValueError: an entry that is not ``VALUE=NAME`` with an int value and a non-empty name, or
        a name that cannot be written as a label (`paligemma_segcodec.tokens.check_label`).

    Examples:
        >>> parse_classes("1=water, 2=road")
        {1: 'water', 2: 'road'}
        >>> parse_classes("1=water,road")
        Traceback (most recent call last):
        ...
        ValueError: --classes must look like 1=water,2=road; bad entry 'road'
    """
    classes: dict[int, str] = {}
    for part in spec.split(","):
        value, sep, name = part.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit() or not name.strip():
            raise ValueError(f"--classes must look like 1=water,2=road; bad entry {part.strip()!r}")
        classes[int(value)] = check_label(name.strip(), f"class name of {value.strip()}")
    return classes


def is_thin(box: Box) -> bool:
    """Whether a box is thinner than one ``<loc>`` step: ``y2 == y1`` or ``x2 == x1`` after
    big_vision's ``round(b * 1023)``, an answer PaliGemma's parsers (and big_vision's evaluator)
    reject."""
    y1, x1, y2, x2 = box_to_loc(box)
    return y2 <= y1 or x2 <= x1


def _objects_of(
    binary: npt.NDArray[np.bool_], label: str, instances: Instances, min_area: int, keep_thin: bool = False
) -> tuple[list[MaskObject], int]:
    h, w = binary.shape
    labels: npt.NDArray[np.integer]
    if instances == "whole":
        labels, count = binary.astype(np.int32), int(binary.any())
    else:
        labels, count = ndimage.label(binary, structure=_EIGHT)
    objects, dropped = [], 0
    # Every label 1..count is present, so find_objects gives a slice for each.
    for i, slc in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        crop = labels[slc] == i
        ys, xs = slc
        box = (ys.start / h, xs.start / w, ys.stop / h, xs.stop / w)
        if crop.sum() < min_area or (not keep_thin and is_thin(box)):  # too small, or thinner than one <loc> step
            dropped += 1
            continue
        objects.append(MaskObject(label, box, crop))
    return objects, dropped


def extract_objects(
    values: npt.NDArray[np.integer],
    *,
    label: str | None = None,
    classes: Mapping[int, str] | None = None,
    threshold: int = 127,
    instances: Instances = "components",
    min_area: int = 0,
    keep_thin: bool = False,
) -> tuple[list[MaskObject], int]:
    """A mask's objects: connected components (8-connected) or the whole mask, per class.

    Objects whose box is thinner than one ``<loc>`` step (1/1023 of the side, so ``y2 == y1`` or
    ``x2 == x1`` after rounding: PaliGemma's format cannot express them, and parsers reject them)
    are dropped and counted too, unless ``keep_thin`` (see `is_thin`).

    Args:
      values: the mask file's values (see `paligemma_segcodec.maskio.read_mask_values`).
      label: for a binary mask (``values > threshold``): the objects' label.
      classes: for a semantic mask: value → label; other values (background, void) are ignored.
      threshold: for a binary mask: pixels ``> threshold`` are the object(s).
      instances: ``"components"`` (one object per connected component) or ``"whole"`` (one object
        per mask, or per class).
      min_area: components with fewer pixels are dropped (and counted).
      keep_thin: keep the objects thinner than one ``<loc>`` step.

    Returns:
      ``(objects, dropped)``: the `MaskObject` s in class order, then raster order of their first
      pixel; and how many components were dropped (too small or too thin).

    Raises:
      ValueError: both or neither of ``label`` and ``classes``, or ``instances`` not
        ``"components"`` / ``"whole"``.

    Examples:
        >>> import numpy as np
        >>> values = np.zeros((64, 64), np.uint8)
        >>> values[4:20, 4:20] = 255  # a 16x16 square
        >>> values[40:60, 30:50] = 255  # a 20x20 square
        >>> values[2, 60] = 255  # one stray pixel
        >>> objects, dropped = extract_objects(values, label="water", min_area=4)
        >>> [(o.label, o.area) for o in objects], dropped
        ([('water', 256), ('water', 400)], 1)
        >>> semantic = np.where(values > 0, 1, 0)
        >>> semantic[40:60, 30:50] = 2
        >>> objects, _ = extract_objects(semantic, classes={1: "water", 2: "road"}, instances="whole")
        >>> [(o.label, o.area) for o in objects]
        [('water', 257), ('road', 400)]
    """
    if (label is None) == (classes is None):
        raise ValueError("give exactly one of label (binary masks) or classes (semantic masks)")
    if instances not in ("components", "whole"):
        raise ValueError(f"instances must be 'components' or 'whole', got {instances!r}")
    groups = (
        [(label, binarize(values, threshold))]
        if label is not None
        else [(n, values == v) for v, n in (classes or {}).items()]
    )
    objects: list[MaskObject] = []
    dropped = 0
    for name, binary in groups:
        found, lost = _objects_of(binary, str(name), instances, min_area, keep_thin)
        objects += found
        dropped += lost
    return objects, dropped
