"""COCO segmentations (RLE and polygons) ↔ bool masks, with the checks that keep pycocotools safe.

No JAX and no click: the layer under `paligemma_segcodec.api` (which takes COCO segmentations in
`encode_mask`/`encode_masks`), `paligemma_segcodec.segment` (`Segment.to_rle`,
`Segment.to_polygons`) and `paligemma_segcodec.datasets.coco` (COCO files), which all share these
checks. Decoding and encoding RLE is pycocotools' job (``frPyObjects``, ``merge``, ``decode``,
``encode``); everything is checked in Python before it reaches pycocotools' C code, which reads out
of bounds or allocates without limit on crafted input:

- The image size: positive integers with ``height * width <= MAX_PIXELS`` (2**28 pixels).
- Polygons: a list of lists of finite numbers (no booleans, strings, nulls, nested lists), each of
  even length ≥ 6 (at least 3 x,y points), every point within the image with `POLYGON_MARGIN`
  (1 pixel) of slack; at most `MAX_POLYGON_POINTS` points and `MAX_POLYGON_STEPS` rasterization
  steps per segmentation.
- RLE: ``size`` is ``[height, width]`` (integers); ``counts`` is a list of non-negative integers
  (uncompressed) or a compressed string (characters ``'0'``..``'o'``, checked by `rle_counts`);
  the runs add up to exactly ``height * width``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = [
    "MAX_PIXELS",
    "MAX_POLYGON_POINTS",
    "MAX_POLYGON_STEPS",
    "POLYGON_MARGIN",
    "decode_segmentation",
    "mask_to_polygons",
    "mask_to_rle",
    "rle_counts",
]

MAX_PIXELS = 2**28
"""Largest ``width * height`` accepted from a COCO file (268,435,456 pixels: a 256 MiB uint8 mask)."""
MAX_POLYGON_POINTS = 500_000
"""Most polygon points (x, y pairs) in one annotation, all its polygons together."""
MAX_POLYGON_STEPS = 2**23
"""Most rasterization steps of one annotation's polygon outlines (pycocotools: 5 per pixel of outline)."""
POLYGON_MARGIN = 1.0
"""How far (pixels) a polygon point may lie outside the image (rounding in exporters)."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _describe(v: object) -> str:
    """A JSON value in words, short: ``a string ('1')``, ``null``, ``a list``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, str):
        return f"a string ({v[:40]!r}{'…' if len(v) > 40 else ''})"
    if isinstance(v, (int, float)):
        text = str(v) if not isinstance(v, int) or abs(v) < 10**30 else f"an integer of {len(str(abs(v)))} digits"
        return f"a number ({text})"
    if isinstance(v, list):
        return f"a list ({len(v)} items)"
    if isinstance(v, dict):
        return "an object"
    return f"a {type(v).__name__}"


def _size_fault(width: object, height: object) -> str | None:
    """Why ``width × height`` is not a usable image size, or None."""
    for name, v in (("width", width), ("height", height)):
        if not _is_int(v) or v <= 0:  # type: ignore[operator]
            return f"{name} must be a positive integer, got {_describe(v)}"
    assert isinstance(width, int) and isinstance(height, int)
    if width * height > MAX_PIXELS:
        return f"{width}x{height} = {width * height:,} pixels exceeds the cap of {MAX_PIXELS:,} pixels"
    return None


def rle_counts(counts: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``, in Python).

    Each run is a little-endian sequence of 5-bit groups, one character (``chr(48 + group)``) each,
    ``0x20`` marking "more groups follow" and ``0x10`` of the last group the sign; from the fourth
    run on, the value is a difference to the run two before.

    Args:
      counts: the ``counts`` string of a compressed RLE.

    Returns:
      The run lengths, alternately of 0s and 1s (column-major), starting with 0s.

    Raises:
      ValueError: a character outside ``'0'``..``'o'``, a run of more than 6 characters (beyond
        30 bits, where the C code overflows), a string that ends inside a run, or a negative run.

    Example:
        >>> rle_counts("013000")  # the eye(3) mask
        [0, 1, 3, 1, 3, 1]
    """
    out: list[int] = []
    p, n = 0, len(counts)
    while p < n:
        x = k = 0
        while True:
            if p >= n:
                raise ValueError(f"compressed RLE counts end inside run {len(out)} (a truncated string)")
            c = ord(counts[p]) - 48
            if not 0 <= c <= 63:
                raise ValueError(f"compressed RLE counts contain {counts[p]!r} at character {p} (allowed: '0' to 'o')")
            if k == 6:
                raise ValueError(f"compressed RLE counts: run {len(out)} is longer than 6 characters")
            x |= (c & 0x1F) << (5 * k)
            p += 1
            k += 1
            if not c & 0x20:
                if c & 0x10:
                    x -= 1 << (5 * k)  # sign-extend
                break
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            raise ValueError(f"compressed RLE counts decode to a negative run ({x}) at run {len(out)}")
        out.append(x)
    return out


def _polygon_fault(seg: list[Any], height: int, width: int) -> str | None:
    if not seg:
        return "empty segmentation (no polygon)"
    total = 0
    for i, poly in enumerate(seg):
        if not isinstance(poly, list):
            return f"polygon {i} is not a list of numbers (it is {_describe(poly)})"
        total += len(poly)
    if total > 2 * MAX_POLYGON_POINTS:
        return f"polygons with {total // 2:,} points exceed the cap of {MAX_POLYGON_POINTS:,} points per annotation"
    steps = 0
    for i, poly in enumerate(seg):
        if len(poly) < 6 or len(poly) % 2:
            return f"polygon {i} has {len(poly)} numbers: needs x,y pairs of at least 3 points"
        bad = next((v for v in poly if not isinstance(v, (int, float)) or isinstance(v, bool)), poly)
        if bad is not poly:
            return f"polygon {i} is not a list of numbers (it holds {_describe(bad)})"
        try:
            xy = np.array(poly, dtype=np.float64).reshape(-1, 2)
        except OverflowError:
            return f"polygon {i} has a number too large for a coordinate"
        if not np.isfinite(xy).all():
            return f"polygon {i} has a coordinate that is NaN or infinite"
        lo, hi = -POLYGON_MARGIN, np.array([width, height]) + POLYGON_MARGIN
        outside = ((xy < lo) | (xy > hi)).any(axis=1)
        if outside.any():
            x, y = xy[int(np.argmax(outside))]
            return f"polygon {i} has the point ({x:g}, {y:g}) outside the {width}x{height} image"
        scaled = np.trunc(xy * 5 + 0.5)  # pycocotools' rleFrPoly: (int)(5 * v + .5)
        steps += int((np.abs(scaled - np.roll(scaled, -1, axis=0)).max(axis=1) + 1).sum())
    if steps > MAX_POLYGON_STEPS:
        return (
            f"polygon outlines too long to rasterize: {steps:,} steps exceed the cap of {MAX_POLYGON_STEPS:,} "
            "(5 per pixel of outline)"
        )
    return None


def _rle_fault(seg: Mapping[str, Any], height: int, width: int) -> tuple[str | None, list[int] | bytes]:
    if "counts" not in seg or "size" not in seg:
        return "RLE segmentation without 'counts' and 'size'", b""
    size = seg["size"]
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) for v in size):
        return f"RLE size must be [height, width] integers, got {_describe(size)}", b""
    if (size[0], size[1]) != (height, width):
        return f"size mismatch: segmentation is {size[1]}x{size[0]}, image is {width}x{height}", b""
    counts = seg["counts"]
    if isinstance(counts, str):
        try:
            runs = rle_counts(counts)
        except ValueError as err:
            return str(err), b""
        encoded: list[int] | bytes = counts.encode("ascii")
    elif isinstance(counts, list):
        bad = next((v for v in counts if not _is_int(v) or v < 0), counts)
        if bad is not counts:
            return f"RLE counts must be non-negative integers, got {_describe(bad)}", b""
        runs = encoded = counts
    else:
        return f"RLE counts must be a list of integers or a string, got {_describe(counts)}", b""
    total = sum(runs)
    if total != height * width:
        return f"RLE counts add up to {total:,} pixels, not height x width = {height * width:,}", b""
    return None, encoded


def _decode(seg: Any, height: int, width: int) -> npt.NDArray[np.uint8]:
    """A checked segmentation → uint8 ``(height, width)`` (Fortran order), or ValueError saying why not."""
    from pycocotools import mask as mask_utils

    fault = _size_fault(width, height)
    if fault:
        raise ValueError(f"image size: {fault}")
    if seg is None:
        raise ValueError("no segmentation")
    if isinstance(seg, list):
        fault = _polygon_fault(seg, height, width)
        if fault:
            raise ValueError(fault)
        polys = [[float(v) for v in poly] for poly in seg]
        try:
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        except Exception as err:  # not expected after the checks
            raise ValueError(f"undecodable segmentation: {err}") from None
    elif isinstance(seg, dict):
        fault, counts = _rle_fault(seg, height, width)
        if fault:
            raise ValueError(fault)
        if isinstance(counts, bytes):
            rle = {"size": [height, width], "counts": counts}
        else:
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    else:
        raise ValueError(f"segmentation must be a list of polygons or an RLE object, got {_describe(seg)}")
    try:
        return mask_utils.decode(rle)  # type: ignore[no-any-return]
    except Exception as err:  # not expected after the checks
        raise ValueError(f"undecodable segmentation: {err}") from None


def mask_to_rle(mask: npt.ArrayLike) -> dict[str, Any]:
    """A 2-D mask → COCO RLE ``{"size": [H, W], "counts": str}`` (pycocotools' compressed counts).

    ``counts`` is a ``str`` (pycocotools returns ``bytes``), so the dict is JSON-serialisable as it
    is; pycocotools' functions (``decode``, ``area``, ``iou``) accept it as well.

    Args:
      mask: ``(H, W)``; non-zero pixels are the mask.

    Returns:
      ``{"size": [H, W], "counts": str}``.

    Raises:
      ValueError: the mask is not 2-D.

    Example:
        >>> mask_to_rle(np.eye(3, dtype=bool))
        {'size': [3, 3], 'counts': '013000'}
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {arr.shape}")
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(arr != 0, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def mask_to_polygons(mask: npt.ArrayLike) -> list[list[float]]:
    """A 2-D mask → COCO polygons ``[[x0, y0, x1, y1, ...], ...]``, one per 8-connected component.

    Exact boundary tracing on the pixel grid (no OpenCV): each polygon walks the outer boundary of
    one component along pixel edges, so its vertices are pixel *corners* (integers; pixel ``(y, x)``
    is the square from ``(x, y)`` to ``(x + 1, y + 1)``), collinear vertices merged. Holes are not
    represented (a ring becomes its outer outline): use `mask_to_rle` for exact masks. pycocotools
    rasterizes such a polygon back to the component up to its boundary pixels.

    Args:
      mask: ``(H, W)``; non-zero pixels are the mask.

    Returns:
      One flat list of floats per component, in the order of their top-left pixels; ``[]`` for an
      empty mask.

    Raises:
      ValueError: the mask is not 2-D.

    Example:
        >>> m = np.zeros((4, 5), bool); m[1:3, 1:4] = True
        >>> mask_to_polygons(m)
        [[1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0]]
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {arr.shape}")
    return _polygons(arr != 0, 0, 0)


def _polygons(m: npt.NDArray[np.bool_], top: int, left: int) -> list[list[float]]:
    """`mask_to_polygons` of a crop whose top-left pixel is ``(top, left)`` in the image."""
    polygons: list[list[float]] = []
    if m.size == 0:
        return polygons
    labels, count = ndimage.label(m, structure=np.ones((3, 3), bool))
    for i, slc in enumerate(ndimage.find_objects(labels, max_label=count), start=1):
        comp = np.pad(labels[slc] == i, 1)
        poly = _trace(comp)
        if len(poly) >= 3:
            oy, ox = slc[0].start - 1 + top, slc[1].start - 1 + left
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


def _plain(v: object) -> object:
    """A NumPy scalar as the Python number it holds (so ``np.int64(3)`` passes the checks as 3)."""
    return v.item() if isinstance(v, np.generic) else v


def _rle_size(size: object) -> tuple[int, int] | None:
    """An RLE's ``size`` as ``(height, width)`` when it is two integers, else None."""
    if not isinstance(size, (list, tuple, np.ndarray)) or len(size) != 2:
        return None
    h, w = (_plain(v) for v in size)
    if not (_is_int(h) and _is_int(w)):
        return None
    assert isinstance(h, int) and isinstance(w, int)
    return h, w


def _normalized_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    """An RLE as the checks expect it: ``size`` a list of ints; ``counts`` a str (bytes, as
    ``pycocotools.mask.encode`` returns them, are decoded as ASCII) or a list (from a tuple or an
    integer array)."""
    out = dict(rle)
    size = _rle_size(out.get("size"))
    if size is not None:
        out["size"] = list(size)
    counts = out.get("counts")
    if isinstance(counts, bytes):
        try:
            out["counts"] = counts.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("compressed RLE counts must be ASCII characters '0' to 'o'") from None
    elif isinstance(counts, np.ndarray):
        if counts.ndim != 1 or not np.issubdtype(counts.dtype, np.integer):
            raise ValueError(f"RLE counts must be a 1-D array of integers, got {counts.dtype} of shape {counts.shape}")
        out["counts"] = counts.tolist()
    elif isinstance(counts, (list, tuple)):
        out["counts"] = [_plain(v) for v in counts]
    return out


def decode_segmentation(
    segmentation: Mapping[str, Any] | Sequence[Sequence[float]],
    *,
    height: int | None = None,
    width: int | None = None,
) -> npt.NDArray[np.bool_]:
    """A COCO segmentation (RLE or polygons) → a bool ``(height, width)`` mask, checked first.

    The checks of the module docstring run in Python; pycocotools then decodes (``frPyObjects``,
    ``merge`` for several polygons, ``decode``).

    Args:
      segmentation: an RLE ``{"size": [height, width], "counts": ...}`` with ``counts`` a compressed
        string (``str`` or ``bytes``, as ``pycocotools.mask.encode`` returns it) or a list of run
        lengths (uncompressed, column-major, starting with a run of 0s); or polygons
        ``[[x0, y0, x1, y1, ...], ...]`` in pixel coordinates (several polygons are merged).
      height: the image height; needed for polygons, optional for an RLE (then checked against its
        ``size``).
      width: the image width (give both or neither).

    Returns:
      bool ``(height, width)``, C-contiguous.

    Raises:
      ValueError: what is wrong, in words: the size (not positive integers, over `MAX_PIXELS`, only
        one of height/width, polygons without them, an RLE ``size`` other than the given height and
        width), an RLE's counts (not integers, negative, a malformed string, not adding up to
        ``height * width``), a polygon (odd number of coordinates, fewer than 3 points, NaN or
        infinite values, points outside the image), or a value that is neither RLE nor polygons.

    Example:
        >>> rle = {"size": [2, 3], "counts": [1, 2, 3]}  # column-major: 1 zero, 2 ones, 3 zeros
        >>> decode_segmentation(rle).astype(int)
        array([[0, 1, 0],
               [1, 0, 0]])
        >>> int(decode_segmentation([[0, 0, 2, 0, 2, 2, 0, 2]], height=3, width=3).sum())
        4
    """
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither")
    given: tuple[int, int] | None = None
    if height is not None:
        h0, w0 = _plain(height), _plain(width)
        fault = _size_fault(w0, h0)
        if fault:
            raise ValueError(f"image size: {fault}")
        assert isinstance(h0, int) and isinstance(w0, int)
        given = (h0, w0)
    seg: Any
    if isinstance(segmentation, Mapping):
        seg = _normalized_rle(segmentation)
        size = _rle_size(seg.get("size"))
        if size is None:
            if "size" not in seg:
                raise ValueError("RLE segmentation without 'size' ([height, width])")
            raise ValueError(f"RLE size must be [height, width] integers, got {_describe(seg.get('size'))}")
        if given is not None and size != given:
            raise ValueError(
                f"size mismatch: the RLE's size is [height, width] = {list(size)}, "
                f"but height={given[0]}, width={given[1]} were given"
            )
        h, w = size
    elif isinstance(segmentation, (list, tuple)):
        if given is None:
            raise ValueError("polygons need the image size: pass height= and width=")
        h, w = given
        seg = [
            [_plain(v) for v in (p.tolist() if isinstance(p, np.ndarray) else p)]
            if isinstance(p, (list, tuple, np.ndarray))
            else p
            for p in segmentation
        ]
    else:
        raise ValueError(
            "a COCO segmentation is an RLE {'size': [h, w], 'counts': ...} or a list of polygons, "
            f"got {_describe(segmentation)}"
        )
    return np.ascontiguousarray(_decode(seg, h, w).view(np.bool_))
