"""The high-level API: masks → PaliGemma text (`encode_mask`, `encode_masks`) and back (`decode_tokens`).

``codec=None`` everywhere means the shared default codec, loaded lazily on first use with
`load_codec` (``$PALIGEMMA_SEGCODEC_CHECKPOINT`` or the Hugging Face download).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, overload

import jax
import numpy as np
import numpy.typing as npt

from paligemma_segcodec.boxes import LOC_MAX, Convention
from paligemma_segcodec.coco_masks import decode_segmentation
from paligemma_segcodec.codec import Codec, load_codec
from paligemma_segcodec.errors import SkippedObjectWarning, ThinObjectWarning
from paligemma_segcodec.prep import MASK_SIZE, PreparedMask, _as_mask, _crops, _prepare, prepare_crop, prepare_mask
from paligemma_segcodec.resize import resize
from paligemma_segcodec.segment import Segment, check_size, paste_mask
from paligemma_segcodec.tokens import ParsedObject, _scan, check_label, format_object

__all__ = [
    "PreparedMask",
    "decode_tokens",
    "default_codec",
    "encode_mask",
    "encode_masks",
    "encode_prepared",
    "prepare_crop",
    "prepare_mask",
    "widen_loc",
]


_FIRST_CHUNK = 64  # before the default codec is loaded
_S = TypeVar("_S")
_R = TypeVar("_R")


def default_codec() -> Codec:
    """The shared codec used when ``codec=None`` (loaded once, see `load_codec`).

    Returns:
      The `Codec` of ``$PALIGEMMA_SEGCODEC_CHECKPOINT`` (or the Hugging Face download), the same
      object on every call.

    Raises:
      CheckpointNotFoundError: no checkpoint could be found (see `load_codec`).
      CheckpointError: the checkpoint file is not a vae-oid checkpoint.

    Example:
        >>> default_codec() is default_codec()
        True
    """
    return load_codec()


def encode_mask(
    mask: npt.ArrayLike | Mapping[str, Any] | Sequence[Sequence[float]],
    box: Sequence[float] | None = None,
    *,
    label: str | None = None,
    codec: Codec | None = None,
    min_loc_extent: int = 0,
    height: int | None = None,
    width: int | None = None,
) -> str:
    """One mask → PaliGemma's 4 ``<loc>`` + 16 ``<seg>`` tokens (+ ``" " + label``).

    The mask may be an array, or a COCO segmentation as pycocotools writes it: an RLE dict (its
    ``size`` gives the image size) or a polygon list (then ``height=`` and ``width=`` give it).
    A COCO segmentation is checked (see `paligemma_segcodec.coco_masks`) and decoded by pycocotools
    into the full-size bool mask, which is then encoded as an array would be: the tokens are those
    of ``encode_mask(decode_segmentation(mask, height=..., width=...))``.

    Args:
      mask: ``(H, W)`` bool, uint8 (0/1 or 0/255) or float in [0, 1]; or a COCO RLE
        ``{"size": [H, W], "counts": str | bytes | list[int]}`` (compressed or uncompressed);
        or COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` in pixels (a Python list or tuple; with
        ``height``/``width`` a list is always read as polygons: pass ``np.asarray(...)`` for a mask
        written as nested lists).
      box: normalized ``(y1, x1, y2, x2)``; None = the mask's tight box.
      label: appended after a space when given.
      codec: the codec to use; None = the shared default.
      min_loc_extent: 0 (default) writes the reference's ``<loc>`` tokens, warning about a box thinner
        than one ``<loc>`` step; 1 widens such a box by one bin (see `widen_loc`).
      height: the image height in pixels: needed for polygons; for an RLE or an array, checked
        against its size.
      width: the image width in pixels (give both or neither).

    Returns:
      e.g. ``"<loc0024><loc0002><loc1004><loc0963><seg057>…<seg012> water"``.

    Raises:
      ValueError: a bad mask or box (see `prepare_mask`), an empty mask without a box, a bad COCO
        segmentation (what is wrong, in words: see `paligemma_segcodec.coco_masks.decode_segmentation`),
        a size other than ``height`` × ``width``, or a bad label or ``min_loc_extent``.
      TypeError: a mask that is not numeric, or a ``min_loc_extent`` that is not an int.
      CheckpointNotFoundError: ``codec=None`` and no checkpoint could be found.

    Warns:
      ThinObjectWarning: the box rounds to ``y2 == y1`` or ``x2 == x1`` (with ``min_loc_extent=0``).

    Example:
        >>> mask = np.zeros((8, 8), bool)
        >>> mask[2:6, 2:6] = True
        >>> text = encode_mask(mask, label="square")
        >>> text[:36], text.count("<seg"), text.endswith(" square")
        ('<loc0256><loc0256><loc0767><loc0767>', 16, True)
        >>> rle = {"size": [8, 8], "counts": [18, 4, 4, 4, 4, 4, 4, 4, 18]}  # the same mask
        >>> encode_mask(rle, label="square") == text
        True
        >>> encode_mask([[2, 2, 6, 2, 6, 6, 2, 6]], height=8, width=8, label="square") == text
        True
    """
    arrays = _coco_masks([mask], height, width, single=True)
    return _encode_masks(
        arrays, None if box is None else [box], None if label is None else [label], codec, min_loc_extent, 3
    )[0]


class _CocoMasks(Sequence[Any]):
    """``masks`` with each COCO segmentation decoded to a bool array when it is read (one at a time,
    so a long list never holds all of them at full size); arrays are checked against the size."""

    def __init__(self, masks: Sequence[Any], size: tuple[int, int] | None, single: bool) -> None:
        self._masks = masks
        self._size = size
        self._single = single

    def __len__(self) -> int:
        return len(self._masks)

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        m = self._masks[i]
        where = "mask" if self._single else f"mask {i}"
        h, w = self._size if self._size is not None else (None, None)
        if isinstance(m, Mapping) or (self._size is not None and isinstance(m, (list, tuple))):
            try:
                return decode_segmentation(m, height=h, width=w)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
        if self._size is not None and np.shape(m)[:2] != self._size:
            raise ValueError(f"{where} has shape {np.shape(m)}, but height={h}, width={w} were given")
        if isinstance(m, (list, tuple)):  # no size given: a mask as nested lists, or polygons by mistake?
            try:
                return _as_mask(m, where)
            except ValueError as err:
                raise ValueError(f"{err} (if these are COCO polygons, pass height= and width=)") from None
        return m


def _coco_masks(masks: Any, height: int | None, width: int | None, *, single: bool) -> Any:
    """``masks`` as `_encode_masks` takes them: wrapped in `_CocoMasks` when a COCO segmentation may be
    among them (an RLE dict, or ``height``/``width`` given), else as they are."""
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither")
    if (
        getattr(masks, "ndim", None) == 2
        or isinstance(masks, (str, bytes))
        or not hasattr(masks, "__len__")
        or not hasattr(masks, "__getitem__")
    ):
        return masks  # not a sequence of masks: _encode_masks says what is wrong
    if height is not None and width is not None:
        return _CocoMasks(masks, check_size(height, width), single)
    if isinstance(masks, np.ndarray) and masks.dtype != object:
        return masks
    if any(isinstance(masks[i], (Mapping, list, tuple)) for i in range(len(masks))):
        return _CocoMasks(masks, None, single)
    return masks


def widen_loc(loc: Sequence[int], min_loc_extent: int = 1) -> tuple[int, int, int, int]:
    """Widens a ``<loc>`` box to at least ``min_loc_extent`` bins per side.

    Per axis, where ``hi - lo < min_loc_extent``: ``hi = min(lo + min_loc_extent, 1023)``, then
    ``lo = hi - min_loc_extent``. For 1: ``y2 = y1 + 1``, or ``y1 = 1022`` when ``y1 == y2 == 1023``;
    the same for x. ``min_loc_extent=0`` returns ``loc`` unchanged (the reference's tokens).

    Only the ``<loc>`` tokens change: the ``<seg>`` tokens are still computed from the crop of the
    original box (`prepare_mask`, `crop_pixels`), so the decoder pastes that mask over a box at most
    one bin (1/1023 of the side) larger. An answer with ``y2 == y1`` would not parse at all.

    Args:
      loc: the 4 ``<loc>`` indices ``(y1, x1, y2, x2)``.
      min_loc_extent: the least ``y2 - y1`` and ``x2 - x1``, in bins (0..1023).

    Returns:
      The widened ``(y1, x1, y2, x2)``.

    Raises:
      TypeError: ``min_loc_extent`` is not an int.
      ValueError: ``min_loc_extent`` is outside 0..1023.

    Example:
        >>> widen_loc((10, 20, 10, 30))
        (10, 20, 11, 30)
        >>> widen_loc((1023, 5, 1023, 5))
        (1022, 5, 1023, 6)
    """
    k = _check_extent(min_loc_extent)
    y1, x1, y2, x2 = (int(v) for v in loc)
    if y2 - y1 < k:
        y2 = min(y1 + k, LOC_MAX)
        y1 = y2 - k
    if x2 - x1 < k:
        x2 = min(x1 + k, LOC_MAX)
        x1 = x2 - k
    return (y1, x1, y2, x2)


def _check_extent(min_loc_extent: int) -> int:
    if isinstance(min_loc_extent, bool) or not isinstance(min_loc_extent, (int, np.integer)):
        raise TypeError(f"min_loc_extent must be an int, got {min_loc_extent!r}")
    if not 0 <= min_loc_extent <= LOC_MAX:
        raise ValueError(f"min_loc_extent must be in 0..{LOC_MAX}, got {min_loc_extent}")
    return int(min_loc_extent)


def _final_locs(
    locs: Sequence[tuple[int, int, int, int]], min_loc_extent: int, stacklevel: int
) -> list[tuple[int, int, int, int]]:
    """Widens (``min_loc_extent > 0``) or warns about (0) each box thinner than one ``<loc>`` step."""
    if min_loc_extent:
        return [widen_loc(loc, min_loc_extent) for loc in locs]
    for i, (y1, x1, y2, x2) in enumerate(locs):
        if y2 <= y1 or x2 <= x1:
            warnings.warn(
                f"mask {i}: its box rounds to <loc> (y1, x1, y2, x2) = {(y1, x1, y2, x2)}, thinner than one <loc> "
                "step (y2 == y1 or x2 == x1): these are the reference's tokens, but big_vision's evaluator and "
                "decode_tokens(strict=True) reject the answer; pass min_loc_extent=1 to widen the box by one bin",
                ThinObjectWarning,
                stacklevel=stacklevel + 1,
            )
    return list(locs)


def encode_masks(
    masks: Sequence[npt.ArrayLike | Mapping[str, Any] | Sequence[Sequence[float]]],
    boxes: Sequence[Sequence[float] | None] | None = None,
    labels: Sequence[str | None] | None = None,
    *,
    codec: Codec | None = None,
    min_loc_extent: int = 0,
    device_prep: bool | None = None,
    height: int | None = None,
    width: int | None = None,
) -> list[str]:
    """Many masks (any sizes) → one token string each, with batched device calls.

    Identical to ``[encode_mask(m, b, label=l) for m, b, l in zip(masks, boxes, labels)]``: a mask's
    tokens do not depend on the rest of the batch (see `Codec.encode_indices`). Masks may be arrays
    or COCO segmentations (RLE dicts, polygon lists), mixed, as in `encode_mask`; each COCO
    segmentation is decoded when its chunk is prepared, so a long list is never held at full size.

    Args:
      masks: a sequence of 2-D masks or COCO segmentations (see `encode_mask`); sizes may differ
        unless ``height``/``width`` are given.
      boxes: None, or one box (or None for the tight box) per mask.
      labels: None, or one label (or None) per mask.
      codec: the codec to use; None = the shared default.
      min_loc_extent: 0 (reference tokens, a `ThinObjectWarning` per box thinner than one ``<loc>``
        step) or 1 (such boxes widened by one bin, see `widen_loc`).
      device_prep: where binary masks are resized to 64×64: None (default) = on the device when JAX's
        default backend is an accelerator, else on the host; True = on the device (bit-packed crops
        are uploaded, see `paligemma_segcodec.prep_device`); False = on the host. Float masks are
        always resized on the host. The tokens are the same either way.
      height: the image height in pixels, for every mask: needed for polygon lists (a list is then
        always read as polygons); RLE sizes and array shapes are checked against it.
      width: the image width in pixels (give both or neither).

    Returns:
      One token string per mask, in order (as `encode_mask` returns them).

    Raises:
      ValueError: mismatched lengths, or a bad mask, COCO segmentation or box (the message names its
        index: ``"mask 3: ..."``), a mask of another size than ``height`` × ``width``, or a bad label.
      TypeError: ``masks`` is not a sequence (e.g. a generator: make it a list), or a bad flag.
      CheckpointNotFoundError: ``codec=None`` and no checkpoint could be found.

    Example:
        >>> a = np.zeros((8, 8), bool)
        >>> a[2:6, 2:6] = True
        >>> rle = {"size": [8, 8], "counts": [18, 4, 4, 4, 4, 4, 4, 4, 18]}  # the same mask
        >>> texts = encode_masks([a, rle, a[:, :4]], labels=["square", "square", None])
        >>> left_half = texts[2]
        >>> texts[0] == texts[1], left_half[:36]
        (True, '<loc0256><loc0512><loc0767><loc1023>')
    """
    arrays = _coco_masks(masks, height, width, single=False)
    return _encode_masks(arrays, boxes, labels, codec, min_loc_extent, 3, device_prep)


def _encode_masks(
    masks: Sequence[npt.ArrayLike],
    boxes: Sequence[Sequence[float] | None] | None,
    labels: Sequence[str | None] | None,
    codec: Codec | None,
    min_loc_extent: int,
    stacklevel: int,
    device_prep: bool | None = None,
) -> list[str]:
    _check_extent(min_loc_extent)
    _check_device_flag("device_prep", device_prep)
    if getattr(masks, "ndim", None) == 2:
        raise ValueError("masks must be a sequence of 2-D masks; for one mask use encode_mask")
    if isinstance(masks, (str, bytes)) or not hasattr(masks, "__len__") or not hasattr(masks, "__getitem__"):
        raise TypeError(f"masks must be a sequence (list, tuple, array) of 2-D masks, got {type(masks).__name__}")
    n = len(masks)
    if boxes is not None and len(boxes) != n:
        raise ValueError(f"got {n} masks but {len(boxes)} boxes")
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {n} masks but {len(labels)} labels")
    for i, label in enumerate(labels or ()):
        if label is not None:
            check_label(label, f"labels[{i}]")  # before any work is done

    if device_prep or (device_prep is None and jax.default_backend() != "cpu"):
        device_locs, device_indices = _encode_on_device(masks, boxes, codec, n)
        final = _final_locs(device_locs, min_loc_extent, stacklevel)
        return [
            format_object(loc, seg, None if labels is None else labels[i])
            for i, (loc, seg) in enumerate(zip(final, device_indices, strict=True))
        ]

    # Host work (crop + resize) of the next chunks overlaps the device's encoding of this one: JAX
    # dispatches asynchronously, and with `_host_threads` > 1 (a GPU) chunks are prepared on a pool.
    def prepare(span: tuple[int, int]) -> tuple[list[tuple[int, int, int, int]], npt.NDArray[np.float32]]:
        a, b = span
        return _prepare(
            [masks[i] for i in range(a, b)],  # any sequence: index one at a time
            None if boxes is None else [boxes[i] for i in range(a, b)],
            a,
            single=n == 1,
        )

    locs: list[tuple[int, int, int, int]] = []
    waits = []
    first = min(n, codec.host_chunk if codec is not None else _FIRST_CHUNK)
    if first:
        chunk_locs, masks64 = prepare((0, first))
        codec = codec or default_codec()  # loaded after the first chunk validated
        waits.append(codec.encode_indices_async(masks64))
        locs += chunk_locs
    if first < n:
        assert codec is not None
        spans = [(a, min(n, a + codec.host_chunk)) for a in range(first, n, codec.host_chunk)]
        for chunk_locs, masks64 in _ordered(prepare, spans, _host_threads()):
            waits.append(codec.encode_indices_async(masks64))
            locs += chunk_locs
    indices = [row for wait in waits for row in wait().tolist()]
    locs = _final_locs(locs, min_loc_extent, stacklevel)
    return [
        format_object(loc, seg, None if labels is None else labels[i])
        for i, (loc, seg) in enumerate(zip(locs, indices, strict=True))
    ]


_DEVICE_SPAN = 16384  # masks validated and cropped on the host per device-path call (the next span's
# host work overlaps the device's work on this one)


def _encode_on_device(
    masks: Sequence[npt.ArrayLike], boxes: Sequence[Sequence[float] | None] | None, codec: Codec | None, n: int
) -> tuple[list[tuple[int, int, int, int]], list[list[int]]]:
    """`encode_masks`' device path: each span of masks validated and cropped on the host (`prep._crops`),
    binary crops bit-packed and resized + encoded on the device (`prep_device.encode_crops_async`),
    float crops resized on the host. Returns ``(locs, indices)`` in input order."""
    from paligemma_segcodec import prep_device

    locs: list[tuple[int, int, int, int]] = []
    waits: list[tuple[list[int], Callable[[], npt.NDArray[np.int32]], list[int], npt.NDArray[np.float32] | None]] = []
    for a in range(0, n, _DEVICE_SPAN):
        b = min(n, a + _DEVICE_SPAN)
        span_locs, crops = _crops(
            [masks[i] for i in range(a, b)],
            None if boxes is None else [boxes[i] for i in range(a, b)],
            a,
            single=n == 1,
        )
        codec = codec or default_codec()  # loaded after the first span validated
        binary = [i for i, c in enumerate(crops) if c.dtype == np.bool_]
        soft = [i for i, c in enumerate(crops) if c.dtype != np.bool_]
        wait = prep_device.encode_crops_async(codec, [crops[i] for i in binary])  # type: ignore[misc]
        host = np.stack([resize(crops[i], MASK_SIZE, MASK_SIZE) for i in soft]) if soft else None
        waits.append((binary, wait, soft, host))
        locs += span_locs
    assert codec is not None or n == 0
    indices: list[list[int]] = []
    for binary, wait, soft, host in waits:
        rows: list[list[int]] = [[] for _ in range(len(binary) + len(soft))]
        for i, row in zip(binary, wait().tolist(), strict=True):
            rows[i] = row
        if host is not None and codec is not None:
            for i, row in zip(soft, codec.encode_indices(host).tolist(), strict=True):
                rows[i] = row
        indices += rows
    return locs, indices


def _check_device_flag(name: str, value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, got {value!r}")


def _host_threads() -> int:
    """Threads `encode_masks` prepares chunks on: ``$PALIGEMMA_SEGCODEC_HOST_THREADS`` when set, else 1
    on a CPU backend (the encoder already uses every core) and ``min(8, CPU count)`` on an accelerator
    (the host prep is then the bottleneck; its compiled parts release the GIL)."""
    env = os.environ.get("PALIGEMMA_SEGCODEC_HOST_THREADS", "")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"PALIGEMMA_SEGCODEC_HOST_THREADS must be an integer >= 1, got {env!r}") from None
        if value < 1:
            raise ValueError(f"PALIGEMMA_SEGCODEC_HOST_THREADS must be an integer >= 1, got {env!r}")
        return value
    if jax.default_backend() == "cpu":
        return 1
    return max(1, min(8, os.cpu_count() or 1))


def _ordered(fn: Callable[[_S], _R], items: Sequence[_S], threads: int) -> Iterator[_R]:
    """``map(fn, items)`` in order; with ``threads > 1`` on a pool, at most ``threads + 1`` items
    ahead of the consumer (bounded memory). An exception comes out at its item's place."""
    if threads <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="segcodec-prep") as pool:
        pending: deque[Future[_R]] = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def encode_prepared(
    prepared: Sequence[PreparedMask],
    labels: Sequence[str | None] | None = None,
    *,
    codec: Codec | None = None,
    min_loc_extent: int = 0,
) -> list[str]:
    """Prepared masks (see `prepare_mask`) → token strings, in one batched `Codec.encode_indices` call.

    Args:
      prepared: the masks, each already cropped and resized (`prepare_mask`, `prepare_crop`).
      labels: None, or one label (or None) per mask.
      codec: the codec to use; None = the shared default.
      min_loc_extent: as in `encode_masks` (the `ThinObjectWarning` names the index in ``prepared``).

    Returns:
      One token string per prepared mask, in order; ``[]`` for no masks.

    Raises:
      TypeError: ``min_loc_extent`` is not an int.
      ValueError: ``min_loc_extent`` is outside 0..1023, or a label is not a valid label.
      CheckpointNotFoundError: ``codec=None`` and no checkpoint could be found.

    Example:
        >>> mask = np.zeros((8, 8), bool)
        >>> mask[2:6, 2:6] = True
        >>> encode_prepared([prepare_mask(mask)], ["square"]) == [encode_mask(mask, label="square")]
        True
    """
    _check_extent(min_loc_extent)
    if not prepared:
        return []
    codec = codec or default_codec()
    indices = codec.encode_indices(np.stack([p.mask64 for p in prepared])).tolist()
    locs = _final_locs([p.loc for p in prepared], min_loc_extent, 2)
    out = []
    for i, (loc, seg) in enumerate(zip(locs, indices, strict=True)):
        label = None if labels is None else labels[i]
        out.append(format_object(loc, seg, label))
    return out


def decode_tokens(
    text: str,
    *,
    height: int | None = None,
    width: int | None = None,
    strict: bool = False,
    convention: Convention = "big_vision",
    codec: Codec | None = None,
    device_paste: bool | None = None,
) -> list[Segment]:
    """A PaliGemma answer → one `Segment` per object, masks decoded in batched calls.

    ``list(iter_decode_tokens(...))``: masks are decoded 256 objects at a time, but all of them are
    returned at once. Memory: 16 KiB (float32 64×64 ``mask64``) per object with ``<seg>`` tokens,
    plus, when ``height``/``width`` are given, ``objects × height × width`` bytes for the pasted
    bool masks (1,000 objects on a 1024×1024 image: about 1 GiB). `iter_decode_tokens` streams
    them instead.

    Args:
      text: the answer: objects ``<loc>×4 [<seg>×16] label`` separated by ``;``.
      height: the image height in pixels; with ``width``, each object with ``<seg>`` tokens gets a
        full-size bool ``mask`` (see `paste_mask`).
      width: the image width in pixels (give both or neither).
      strict: raise `MalformedObjectError` (a ValueError naming the object index and character
        offset) on a malformed object instead of skipping it.
      convention: loc → pixel rule for pasting: ``"big_vision"`` (``int(k / 1023 * side)``, the
        reference evaluator) or ``"colab"`` (``round(k / 1024 * side)``).
      codec: the codec to use; None = the shared default (only loaded if a ``<seg>`` object exists).
      device_paste: where masks are pasted into their boxes (with ``height``/``width``): None (default)
        = on the device when JAX's default backend is an accelerator, else on the host; True = on the
        device (decoder, resize into the box and threshold in one call per size bucket; only packed
        bits come back, see `paligemma_segcodec.paste_device`); False = on the host. The same masks,
        except pixels whose decoder value is within ``2**-16`` of the object's largest of 0.

    Returns:
      The well-formed objects in order. In lenient mode malformed objects are skipped and reported
      with one `SkippedObjectWarning` per call: their number and the first 5 (use
      `paligemma_segcodec.tokens.parse_objects` for a structured report). The empty string gives ``[]``.
      Lenient mode never raises on a ``str``, and its time is linear in ``len(text)``.

    Raises:
      MalformedObjectError: ``strict=True`` and an object is malformed.
      ValueError: only one of ``height``/``width``, or a size that is not positive integers (or
        more than `MAX_PASTE_PIXELS` pixels), or an unknown ``convention`` (when masks are pasted).
      TypeError: ``device_paste`` is not True, False or None.
      CheckpointNotFoundError: ``codec=None``, the answer has ``<seg>`` tokens and no checkpoint
        could be found.

    Warns:
      SkippedObjectWarning: lenient mode skipped malformed objects (one warning per call).

    Example:
        >>> seg = "".join(f"<seg{i:03d}>" for i in range(16))
        >>> segments = decode_tokens("<loc0000><loc0000><loc0512><loc1023>" + seg + " water", height=4, width=6)
        >>> s = segments[0]
        >>> s.label, s.loc, s.mask64.shape, s.mask.shape
        ('water', (0, 0, 512, 1023), (64, 64), (4, 6))
        >>> decode_tokens("<loc0100><loc0200><loc0300><loc0400> car")[0].seg is None  # detection only
        True
    """
    _check_device_flag("device_paste", device_paste)
    objects = _objects_to_decode(text, height, width, strict, stacklevel=3)
    on_device = device_paste or (device_paste is None and jax.default_backend() != "cpu")
    chunk = _DEVICE_DECODE_CHUNK if on_device else _DECODE_CHUNK  # all are returned at once anyway
    return list(_decode_objects(objects, height, width, convention, codec, chunk, device_paste))


def iter_decode_tokens(
    text: str,
    *,
    height: int | None = None,
    width: int | None = None,
    strict: bool = False,
    convention: Convention = "big_vision",
    codec: Codec | None = None,
    chunk: int = 256,
    device_paste: bool | None = None,
) -> Iterator[Segment]:
    """`decode_tokens`, streamed: the same segments, decoded ``chunk`` masks at a time.

    The text is parsed at the call: bad arguments, `MalformedObjectError` (``strict=True``) and
    the `SkippedObjectWarning` come right away. Masks are then decoded with one
    `Codec.decode_indices` call per ``chunk`` objects with ``<seg>`` tokens, as the iterator
    advances, and each is pasted (with ``height``/``width``) only when its segment is yielded. So
    an answer with 100,000 objects holds one chunk of decoded masks at a time (``chunk`` × 16 KiB)
    plus the segments the caller keeps; each segment owns its arrays.

    Args:
      text: the answer (as in `decode_tokens`).
      height: the image height for pasting, or None (as in `decode_tokens`).
      width: the image width for pasting, or None (as in `decode_tokens`).
      strict: raise on a malformed object (as in `decode_tokens`).
      convention: loc → pixel rule for pasting (as in `decode_tokens`).
      codec: the codec, or None for the shared default (as in `decode_tokens`).
      chunk: objects with ``<seg>`` tokens per decoder call (>= 1).
      device_paste: where masks are pasted (as in `decode_tokens`).

    Returns:
      An iterator of `Segment`, in text order.

    Raises:
      ValueError: ``chunk`` is not an int >= 1, or as `decode_tokens` (at the call).
      MalformedObjectError: ``strict=True`` and an object is malformed (at the call).
      TypeError: ``device_paste`` is not True, False or None.
      CheckpointNotFoundError: as `decode_tokens` (when the first mask is decoded).

    Example:
        >>> text = " ; ".join(f"<loc0000><loc0000><loc0512><loc{k:04d}> box{k}" for k in (100, 200))
        >>> for s in iter_decode_tokens(text, chunk=1):
        ...     print(s.label, s.loc)
        box100 (0, 0, 512, 100)
        box200 (0, 0, 512, 200)
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    _check_device_flag("device_paste", device_paste)
    objects = _objects_to_decode(text, height, width, strict, stacklevel=3)
    return _decode_objects(objects, height, width, convention, codec, chunk, device_paste)


_DECODE_CHUNK = 256  # objects with <seg> tokens per decoder call in decode_tokens
_DEVICE_DECODE_CHUNK = 4096  # the same on the device-paste path (fewer, fuller device calls)
_WARN_SHOWN = 5  # skipped objects listed in a SkippedObjectWarning
_WARN_LINE = 200  # characters per listed object


def _objects_to_decode(
    text: str, height: int | None, width: int | None, strict: bool, *, stacklevel: int
) -> list[ParsedObject]:
    """Checks the size arguments, parses ``text`` and warns once about skipped objects (``stacklevel``
    counts from the caller of this function)."""
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither")
    if height is not None and width is not None:
        check_size(height, width)
    objects, shown, n_skipped = _scan(text, strict=strict, keep=_WARN_SHOWN)
    if n_skipped:
        lines = "".join(f"\n  {str(s)[:_WARN_LINE]}" for s in shown)
        if n_skipped > len(shown):
            lines += f"\n  ... and {n_skipped - len(shown)} more"
        warnings.warn(f"skipped {n_skipped} malformed object(s):{lines}", SkippedObjectWarning, stacklevel=stacklevel)
    return objects


def _decode_objects(
    objects: list[ParsedObject],
    height: int | None,
    width: int | None,
    convention: Convention,
    codec: Codec | None,
    chunk: int,
    device_paste: bool | None = None,
) -> Iterator[Segment]:
    """Segments of parsed objects; masks decoded ``chunk`` objects with ``<seg>`` at a time, pasted lazily
    on the host, or with the decoding on the device (``device_paste``, see `decode_tokens`)."""
    start = 0
    while start < len(objects):
        stop, with_seg = start, list[tuple[int, ...]]()
        while stop < len(objects) and len(with_seg) < chunk:
            seg = objects[stop].seg
            if seg is not None:
                with_seg.append(seg)
            stop += 1
        masks64: npt.NDArray[np.float32] | None = None
        pasted: list[Any] | None = None
        if with_seg:
            codec = codec or default_codec()
            idx = np.array(with_seg, dtype=np.int32)
            on_device = device_paste or (device_paste is None and jax.default_backend() != "cpu")
            if on_device and height is not None and width is not None:
                from paligemma_segcodec import paste_device

                seg_locs = [o.loc for o in objects[start:stop] if o.seg is not None]
                masks64, pasted = paste_device.paste_in_boxes_async(
                    codec, idx, seg_locs, int(height), int(width), convention=convention
                )()
            else:
                masks64 = codec.decode_indices(idx)
        k = 0
        for o in objects[start:stop]:
            m64 = full = None
            if o.seg is not None and masks64 is not None:
                m64 = masks64[k].copy()  # its own array: a kept segment does not pin the whole chunk
                if height is not None and width is not None:
                    if pasted is not None:
                        box = pasted[k]
                        full = np.zeros((int(height), int(width)), dtype=bool)
                        full[box.top : box.bottom, box.left : box.right] = box.mask
                    else:
                        full = paste_mask(m64, o.loc, int(height), int(width), convention=convention)
                k += 1
            yield Segment(label=o.label, loc=o.loc, seg=o.seg, mask64=m64, mask=full)
        masks64 = None
        start = stop
