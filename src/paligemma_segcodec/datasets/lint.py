"""``segcodec lint``: find masks that would make bad fine-tuning data (NumPy, SciPy, Pillow; no JAX).

Checks, per image/mask pair (severity in brackets):

- [error] unreadable or truncated image or mask, unsupported mask mode, image without mask, mask
  without image, image/mask size mismatch;
- [warning] empty mask (no pixel above the threshold);
- [warning] near-full mask (more than ``full_fraction``, 98 % by default, of the pixels);
- [warning] tiny objects (connected components under ``min_area`` pixels);
- [warning] thin objects: components whose box is thinner than one ``<loc>`` step (1/1023 of the
  side), so that big_vision's ``round(b * 1023)`` gives ``y2 == y1`` or ``x2 == x1``: an answer
  PaliGemma's parsers reject (``convert`` drops them unless ``--widen-thin-boxes``);
- [warning] not binary: more than ``grey_fraction`` (5 %) of the pixels are mid-grey (16 < v < 240),
  i.e. a soft or mis-saved mask rather than JPEG edge noise;
- [warning] border wedge: the mask fills a straight-edged wedge or strip along an image border where
  the image is flat (one colour): the artefact of a rotated photo padded with a plain colour, with
  the padding labelled as water.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from paligemma_segcodec.boxes import box_to_loc
from paligemma_segcodec.datasets.files import Pair, Problem, match_pairs, unreadable
from paligemma_segcodec.datasets.parallel import ordered_map, resolve_workers
from paligemma_segcodec.maskio import binarize, open_image, read_mask_values
from paligemma_segcodec.progress import Progress
from paligemma_segcodec.progress import wrap as wrap_progress

__all__ = ["LintReport", "border_wedges", "lint_folder", "lint_pair"]


@dataclass
class LintReport:
    """Findings of `lint_folder`, one `Problem` each, and the number of pairs checked.

    ``errors`` and ``warnings`` are the problems of each severity; `table` is what ``segcodec lint``
    prints and ``to_json()`` what ``segcodec lint --json`` writes.

    Attributes:
      pairs (int): image/mask pairs checked.
      problems (list[Problem]): the findings: the folders' listing problems first (unmatched,
        unsupported, unusable files), then each pair's, in stem order.

    Examples:
        >>> report = LintReport(2, [Problem("masks/a.png", "empty mask (no pixel above the threshold)", "warning")])
        >>> len(report.errors), len(report.warnings), report.to_json()["warnings"]
        (0, 1, 1)
        >>> print(report.table())
        severity  file   finding
        ----------------------------------------------------------
        warning   a.png  empty mask (no pixel above the threshold)
        2 pairs checked: 0 errors, 1 warnings
    """

    pairs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_json() for p in self.problems],
        }

    def table(self) -> str:
        """A plain-text table: severity, file, finding."""
        if not self.problems:
            return f"{self.pairs} pairs checked: no problems"
        rows = [(p.severity, Path(p.file).name, p.reason) for p in self.problems]
        w0 = max(len("severity"), *(len(r[0]) for r in rows))  # the header fits its column too
        w1 = max(len("file"), *(len(r[1]) for r in rows))
        w2 = max(len("finding"), *(len(r[2]) for r in rows))
        lines = [f"{'severity':<{w0}}  {'file':<{w1}}  finding", "-" * (w0 + w1 + w2 + 4)]
        lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
        lines.append(f"{self.pairs} pairs checked: {len(self.errors)} errors, {len(self.warnings)} warnings")
        return "\n".join(lines)


def _inward_depth(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """For each column, how many mask pixels run down from row 0 before the first background pixel."""
    h = mask.shape[0]
    first_bg = np.where((~mask).any(axis=0), np.argmax(~mask, axis=0), h)
    return np.asarray(first_bg, dtype=np.int64)


def border_wedges(
    mask: npt.NDArray[np.bool_], grey: npt.NDArray[np.floating] | None = None
) -> list[tuple[str, float, str]]:
    """Straight-edged wedges/strips of mask along the borders: ``[(side, area_fraction, shape)]``.

    For each side, the run of mask pixels from the border inward is measured along the side. A
    finding needs a contiguous stretch over at least a quarter of the side where that depth is
    at most a quarter of the image, at least 3 px deep, and close to a straight line (RMS residual
    < 15 % of the mean depth): a wedge when the line slopes, a strip when it is flat. With ``grey``
    (the image as grey levels), the image under it must also be flat (std < 12 grey levels).

    Args:
      mask: the binarized mask, bool ``(H, W)``.
      grey: the image as grey levels, ``(H, W)``; None: the image is not looked at.

    Returns:
      One ``(side, area_fraction, shape)`` per side with a finding, in the order top, bottom,
      left, right: ``side`` is ``"top"``, ``"bottom"``, ``"left"`` or ``"right"``,
      ``area_fraction`` the wedge's share of the image's pixels, ``shape`` ``"wedge"`` or
      ``"strip"``. Empty when nothing was found.

    Examples:
        >>> import numpy as np
        >>> mask = np.zeros((64, 64), bool)
        >>> for col in range(64):  # a wedge along the top, 3 px deep on the left, 13 on the right
        ...     mask[: round(3 + 0.15 * col), col] = True
        >>> border_wedges(mask)
        [('top', 0.120361328125, 'wedge')]
        >>> border_wedges(mask, np.full((64, 64), 200.0))  # over a flat image area: still found
        [('top', 0.120361328125, 'wedge')]
        >>> textured = np.random.default_rng(0).uniform(0, 255, (64, 64))
        >>> border_wedges(mask, textured)  # the image has detail there: real content, not padding
        []
    """
    found = []
    sides = {
        "top": (mask, grey),
        "bottom": (mask[::-1], None if grey is None else grey[::-1]),
        "left": (mask.T, None if grey is None else grey.T),
        "right": (mask.T[::-1], None if grey is None else grey.T[::-1]),
    }
    for side, (m, g) in sides.items():
        depth_limit = m.shape[0] // 4
        d = _inward_depth(m)
        ok = (d >= 3) & (d <= depth_limit)
        labels, n = ndimage.label(ok)
        if n == 0:
            continue
        sizes = ndimage.sum_labels(ok, labels, index=np.arange(1, n + 1))
        best = int(np.argmax(sizes)) + 1
        cols = np.flatnonzero(labels == best)
        if len(cols) < max(8, m.shape[1] // 4):
            continue
        dd = d[cols].astype(np.float64)
        slope, icpt = np.polyfit(cols, dd, 1)
        rms = float(np.sqrt(np.mean((dd - (slope * cols + icpt)) ** 2)))
        if rms > 0.15 * dd.mean() + 1.0:
            continue
        region = np.zeros_like(m)
        rows = np.arange(m.shape[0])[:, None]
        region[:, cols] = rows < d[cols][None, :]
        if g is not None and float(np.std(g[region])) >= 12.0:
            continue
        shape = "wedge" if abs(slope) * len(cols) >= max(3.0, 0.5 * dd.mean()) else "strip"
        found.append((side, float(region.sum()) / mask.size, shape))
    return found


def _thin_objects(
    labels: npt.NDArray[np.integer], n: int, areas: npt.NDArray[np.integer], min_area: int
) -> list[tuple[int, int]]:
    """Top-left pixels of the components (not tiny) whose box rounds to an empty ``<loc>`` box."""
    h, w = labels.shape
    found = []
    for i, slc in enumerate(ndimage.find_objects(labels, max_label=n)):
        if slc is None or areas[i] < min_area:
            continue
        ys, xs = slc
        y1, x1, y2, x2 = box_to_loc((ys.start / h, xs.start / w, ys.stop / h, xs.stop / w))
        if y2 <= y1 or x2 <= x1:
            found.append((ys.start, xs.start))
    return found


def lint_pair(
    image_path: Path,
    mask_path: Path,
    *,
    threshold: int = 127,
    min_area: int = 16,
    full_fraction: float = 0.98,
    grey_fraction: float = 0.05,
) -> list[Problem]:
    """All findings for one pair (see the module docstring).

    Args:
      image_path: the image file.
      mask_path: its mask file (findings are reported under this name).
      threshold: mask pixels ``> threshold`` are foreground.
      min_area: connected components (8-connected) with fewer pixels are "tiny".
      full_fraction: a mask covering more than this share of the pixels is "near-full".
      grey_fraction: a uint8 mask with more than this share of mid-grey pixels (16 < v < 240) is
        "not binary".

    Returns:
      The `Problem` s found, errors and warnings (empty for a clean pair). An unreadable file or a
      size mismatch is the only finding (the other checks need both files).

    Examples:
        >>> from pathlib import Path
        >>> water = Path("tests/data/water")
        >>> lint_pair(water / "images/water_body_1280.jpg", water / "masks/water_body_1280.jpg")
        []
        >>> [p.reason for p in lint_pair(water / "images/water_body_1120.jpg", water / "masks/water_body_1120.jpg")]
        ['19 tiny object(s) under 16 px (of 23)']
        >>> (p,) = lint_pair(water / "images/water_body_1120.jpg", water / "masks/water_body_1280.jpg")
        >>> p.severity, p.reason
        ('error', 'size mismatch: mask is 106x162, image is 113x191')
    """
    try:
        with open_image(image_path) as im:
            grey = np.asarray(im.convert("L"), dtype=np.float32)
    except Exception as err:
        return [unreadable("image", str(image_path), err)]
    try:
        values = read_mask_values(mask_path)
    except Exception as err:
        return [unreadable("mask", str(mask_path), err)]
    name = str(mask_path)
    if values.shape != grey.shape:
        return [
            Problem(
                name,
                f"size mismatch: mask is {values.shape[1]}x{values.shape[0]}, image is {grey.shape[1]}x{grey.shape[0]}",
            )
        ]
    problems = []
    mask = binarize(values, threshold)
    frac = float(mask.mean())
    if not mask.any():
        top = int(values.max()) if values.size else 0
        hint = f" (values 0..{top}: a 0/1 mask saved with JPEG noise? try a lower threshold)" if top > 1 else ""
        problems.append(Problem(name, f"empty mask (no pixel above the threshold){hint}", "warning"))
    elif frac > full_fraction:
        problems.append(Problem(name, f"near-full mask ({frac:.1%} of the pixels)", "warning"))
    if values.dtype == np.uint8 and int(values.max()) > 1:
        mid = float(((values > 16) & (values < 240)).mean())
        if mid > grey_fraction:
            problems.append(Problem(name, f"not binary: {mid:.1%} of the pixels are mid-grey", "warning"))
    if mask.any() and frac <= full_fraction:
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        areas = np.bincount(labels.ravel())[1:]
        tiny = int((areas < min_area).sum())
        if tiny:
            problems.append(Problem(name, f"{tiny} tiny object(s) under {min_area} px (of {n})", "warning"))
        thin = _thin_objects(labels, n, areas, min_area)
        if thin:
            problems.append(
                Problem(
                    name,
                    f"{len(thin)} object(s) thinner than one <loc> step (1/1023 of the side), e.g. at pixel "
                    f"(y, x) {thin[0]}: their boxes round to y2 == y1 or x2 == x1, which PaliGemma's parsers "
                    "reject; convert drops them unless --widen-thin-boxes",
                    "warning",
                )
            )
        for side, area, shape in border_wedges(mask, grey):
            problems.append(
                Problem(
                    name,
                    f"border {shape} on the {side} side ({area:.1%} of the image) over a flat image area",
                    "warning",
                )
            )
    return problems


def _lint(pair: Pair, checks: dict[str, Any]) -> list[Problem]:
    return lint_pair(pair.image, pair.mask, **checks)


def _findings(
    problems: list[Problem], pairs: list[Pair], workers: int, checks: dict[str, Any]
) -> Generator[list[Problem], None, None]:
    """The listing's problems (one list each), then each pair's findings, in order."""
    for p in problems:
        yield [p]
    with closing(ordered_map(functools.partial(_lint, checks=checks), pairs, workers=workers)) as results:
        yield from results


def lint_folder(
    images_dir: str | os.PathLike[str],
    masks_dir: str | os.PathLike[str],
    *,
    progress: Progress = True,
    workers: int | None = None,
    **checks: Any,
) -> LintReport:
    """Lints every pair of two folders (matched by stem, `match_pairs`); ``segcodec lint``.

    Args:
      images_dir: the folder of images.
      masks_dir: the folder of masks.
      progress: show a progress bar (True / False, or a `paligemma_segcodec.progress` option).
      workers: threads reading and checking the pairs (None: the CPU count; 1: no threads); the
        report is the same, in the same order, whatever the number.
      checks: options of `lint_pair` (``threshold``, ``min_area``, ``full_fraction``,
        ``grey_fraction``).

    Returns:
      The `LintReport`: pairs checked and every finding, listing problems first.

    Raises:
      FileNotFoundError: a folder does not exist, or neither holds any file (`match_pairs`).

    Examples:
        >>> report = lint_folder("tests/data/water/images", "tests/data/water/masks", progress=False)
        >>> report.pairs, len(report.errors), len(report.warnings)
        (10, 0, 9)
        >>> report.problems[0].reason
        '19 tiny object(s) under 16 px (of 23)'
        >>> lint_folder("tests/data/water/images", "tests/data/water/masks", progress=False, min_area=1).problems
        []
    """
    n_workers = resolve_workers(workers)
    report = LintReport()
    pairs, problems = match_pairs(Path(images_dir), Path(masks_dir))
    report.pairs = len(pairs)
    found = _findings(problems, pairs, n_workers, checks)
    with closing(found):
        for findings in wrap_progress(progress, found, total=len(problems) + len(pairs), desc="lint", unit="pair"):
            report.problems += findings
    return report
