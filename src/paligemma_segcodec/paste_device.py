"""Decode + paste on the device: 64×64 decoder outputs resized into their boxes without a host round trip.

`paste_in_boxes_async` runs, in one jit-compiled call per (batch bucket, box-size bucket), the
decoder (`Codec.jit_after_decoder`), the antialiased bilinear resize of each 64×64 output into its
pixel box (``Wy @ mask64 @ Wx.T``, two matmuls at ``precision=HIGHEST``, with the weights of
`paligemma_segcodec.resize.resize_weights` rebuilt on the device) and the threshold ``> 0``; the
result is bit-packed on the device. Only the packed bits and the float32 ``[N, 64, 64]`` decoder
outputs come back; the host unpacks each box into a bool crop (`PastedBox`).

Buckets. A box goes to the smallest size ``S`` in `BOX_BUCKETS` with ``max(box_h, box_w) <= S``
(square ``S × S`` buckets: one compile per (S, batch bucket), batch buckets are powers of two up to
a per-``S`` cap that bounds the ``B × S × S`` float32 intermediate). A box larger than the biggest
bucket (only on images over 1024 pixels a side) and a box that clips to no pixel are decoded in the
smallest bucket with a zero-size box; the first is then resized on the host (`resize`, as
`paste_mask`), the second is an empty crop.

Parity with the host (`paste_mask_in_box` on `Codec.decode_indices`). The weights are the host's,
bit for bit (same float32 operations in the same order, the normalizing sum accumulated
sequentially as TF's loop). The matmuls sum in another order than NumPy's, so a pixel can differ
only where the host's float32 value is within float32 rounding of 0: see `PARITY_EPSILON`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from paligemma_segcodec.boxes import LOC_MAX, Convention
from paligemma_segcodec.codec import Codec
from paligemma_segcodec.model import HIGHEST
from paligemma_segcodec.prep import MASK_SIZE
from paligemma_segcodec.resize import resize
from paligemma_segcodec.segment import check_size

__all__ = [
    "BOX_BUCKETS",
    "PARITY_EPSILON",
    "PastedBox",
    "batch_buckets",
    "batch_cap",
    "batch_pieces",
    "device_resize_weights",
    "host_unpack_us",
    "min_batch",
    "paste_in_boxes_async",
    "pixel_boxes",
    "warm_up",
]

BOX_BUCKETS = (16, 32, 64, 128, 256, 512, 1024)
"""Box-size buckets: a box of ``h × w`` pixels is resized on an ``S × S`` canvas, ``S`` the smallest
entry with ``max(h, w) <= S``. Larger boxes are resized on the host."""

PARITY_EPSILON = 2.0**-16
"""Where the device's bit differs from the host's (`paste_mask_in_box`), the host's float32 resized
value ``v`` satisfies ``|v| <= PARITY_EPSILON * max|mask64|`` (the object's largest absolute decoder
output); everywhere else the bits are equal.

Why: both sides compute ``Wy @ mask64 @ Wx.T`` with the same float32 weights (non-negative, each
row summing to 1) and differ only in the order of the two 64-term sums. Each side's error is at most
``2 * 64 * 2**-24 * max|mask64|`` (two sums of 64 terms, unit roundoff ``2**-24``, first order), so
the two values straddle 0 only when ``|v| <= 4 * 64 * 2**-24 * max|mask64| = 2**-16 * max|mask64|``.
Measured on a CPU with fixture-vae.npz: 12,000 random objects on 512×512, 1333×800, 2000×1500 and
7×5 images (9e8 pixels; the slow tests in tests/test_paste_device.py run 8,000 such): no mismatch;
crafted outputs that cross 0 on whole rows and columns (linear ramps, saddles, 1e-3 noise; 2.7e6
pixels): 585 mismatches, all with ``|v| <= 1.5e-8 * max|mask64|``."""

_PIXEL_BUDGET = {"cpu": 2**24}  # largest B × S × S float32 intermediate per device call (64 MiB on a CPU)
_PIXEL_BUDGET_DEFAULT = 2**28  # 1 GiB on an accelerator
_TINY = float(np.finfo(np.float32).tiny)


class PastedBox(NamedTuple):
    """One object's pasted mask, restricted to its box (as `paste_mask_in_box`).

    Attributes:
      top: first row of the box, clipped to the image.
      left: first column.
      bottom: row past the last (``bottom == top`` for a box that rounds to no pixel).
      right: column past the last.
      mask: bool ``[bottom - top, right - left]``; the full-image mask is this crop at
        ``[top:bottom, left:right]`` and False elsewhere.

    Examples:
    >>> import numpy as np
    >>> box = PastedBox(top=2, left=3, bottom=4, right=6, mask=np.ones((2, 3), bool))
    >>> full = np.zeros((8, 8), bool)
    >>> full[box.top : box.bottom, box.left : box.right] = box.mask
    >>> int(full.sum())
    6
    """

    top: int
    left: int
    bottom: int
    right: int
    mask: npt.NDArray[np.bool_]


def pixel_boxes(
    locs: Sequence[Sequence[int]] | npt.ArrayLike, height: int, width: int, *, convention: Convention = "big_vision"
) -> npt.NDArray[np.int64]:
    """`loc_to_pixels` of many ``<loc>`` boxes, clipped to the image as `paste_mask_in_box` does.

    Args:
      locs: int ``[N, 4]`` (y1, x1, y2, x2) in ``0..1023``; ``y2 <= y1`` or ``x2 <= x1`` is allowed
        (the box is then empty).
      height: the image height in pixels.
      width: the image width in pixels.
      convention: ``"big_vision"`` or ``"colab"`` (see `loc_to_pixels`).

    Returns:
      int64 ``[N, 4]`` (top, left, bottom, right) with ``0 <= top <= bottom <= height`` and
      ``0 <= left <= right <= width``.

    Raises:
      ValueError: not ``[N, 4]``, a value outside ``0..1023``, or an unknown convention.
      TypeError: not integers.
    """
    arr = np.asarray(locs)
    if arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"locs must have shape [N, 4], got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"locs must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > LOC_MAX):
        raise ValueError(f"locs must be in 0..{LOC_MAX}, got range [{arr.min()}, {arr.max()}]")
    k = arr.astype(np.float64)
    side = np.array([height, width, height, width], dtype=np.float64)
    # The same float64 operations as loc_to_pixels: (k / 1023) * side, then int() (truncation; the
    # values are >= 0) or round() (half to even, as np.rint).
    if convention == "big_vision":
        px = np.floor(k / LOC_MAX * side)
    elif convention == "colab":
        px = np.rint(k / 1024 * side)
    else:
        raise ValueError(f"convention must be 'big_vision' or 'colab', got {convention!r}")
    px = px.astype(np.int64)
    out = np.empty_like(px)
    out[:, 0] = np.clip(px[:, 0], 0, height)
    out[:, 1] = np.clip(px[:, 1], 0, width)
    out[:, 2] = np.maximum(np.minimum(px[:, 2], height), out[:, 0])
    out[:, 3] = np.maximum(np.minimum(px[:, 3], width), out[:, 1])
    return out


def _weights(out_sizes: jax.Array, size: int) -> jax.Array:
    """Device copy of `resize_weights` ``(64, n)`` for each ``n`` of int32 ``out_sizes`` ``[B]``,
    padded: float32 ``[B, size, 64]`` whose rows ``>= n`` are zero (all rows for ``n == 0``).

    The float32 operations of `paligemma_segcodec.resize._spans`, in the same order, so the result is
    the host's bit for bit (XLA does not reassociate float32 arithmetic): the normalizing sum is
    accumulated one input column at a time from column 0 (the columns before the span's start are
    exact zeros, so this is TF's sequential sum over the span). No product feeds an addition
    directly, so a backend that contracts ``a * b + c`` into a fused multiply-add (GPUs) computes
    the same values.
    """
    f32 = jnp.float32
    n = out_sizes.astype(jnp.int32)[:, None]  # [B, 1]
    scale = jnp.maximum(n, 1).astype(f32) / f32(MASK_SIZE)
    inv_scale = f32(1.0) / scale
    kernel_scale = jnp.maximum(inv_scale, f32(1.0))
    rows = jnp.arange(size, dtype=jnp.int32)[None, :]  # [1, S]
    sample = (rows.astype(f32) + f32(0.5)) * inv_scale  # [B, S]
    start = jnp.clip(jnp.ceil(sample - kernel_scale - f32(0.5)), 0, MASK_SIZE - 1)
    stop = jnp.clip(jnp.floor(sample + kernel_scale - f32(0.5)), 0, MASK_SIZE - 1) + f32(1.0)
    src = jnp.arange(MASK_SIZE, dtype=f32)  # [64]
    inside = (
        (src >= start[..., None])
        & (src < stop[..., None])
        & ((sample >= 0) & (sample <= MASK_SIZE) & (rows < n))[..., None]
    )
    w = jnp.maximum(
        f32(0.0), f32(1.0) - jnp.abs((src + f32(0.5) - sample[..., None]) * (f32(1.0) / kernel_scale)[..., None])
    )
    w = jnp.where(inside, w, f32(0.0))  # [B, S, 64]
    total = w[..., 0]
    for j in range(1, MASK_SIZE):  # sequential float32 sum, as TF's loop (and the host's cumsum)
        total = total + w[..., j]
    norm = jnp.abs(total) >= f32(1000.0 * _TINY)
    factor = jnp.where(norm, f32(1.0) / jnp.where(norm, total, f32(1.0)), f32(1.0))
    return w * factor[..., None]


def _paste(size: int) -> Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """The device part after the decoder, for boxes up to ``size × size``:
    (float32 decoded ``[B, 64, 64]``, int32 box sizes ``[B, 2]`` (h, w), 0 for none) →
    (uint8 ``[B, size, size // 8]``: the bits ``resized > 0`` packed along rows, MSB first as
    `np.packbits`; float32 ``[B, 64, 64]``: the decoded input)."""

    def after(decoded: jax.Array, box_hw: jax.Array) -> tuple[jax.Array, jax.Array]:
        wy = _weights(box_hw[:, 0], size)  # [B, S, 64]
        wx = _weights(box_hw[:, 1], size)
        cols = jnp.einsum("byx,bkx->byk", decoded, wx, precision=HIGHEST)  # [B, 64, S]
        full = jnp.einsum("bjy,byk->bjk", wy, cols, precision=HIGHEST)  # [B, S, S]
        return jnp.packbits(full > 0, axis=-1), decoded

    return after


_PROGRAMS: weakref.WeakKeyDictionary[Codec, dict[int, Callable[..., tuple[jax.Array, ...]]]] = (
    weakref.WeakKeyDictionary()
)
_PROGRAMS_LOCK = threading.Lock()


def _program(codec: Codec, size: int) -> Callable[..., tuple[jax.Array, ...]]:
    """``codec``'s decoder + `_paste` (``size``), compiled once per batch shape (cached per codec)."""
    with _PROGRAMS_LOCK:
        per_codec = _PROGRAMS.setdefault(codec, {})
        fn = per_codec.get(size)
        if fn is None:
            fn = per_codec[size] = codec.jit_after_decoder(_paste(size))
        return fn


def batch_cap(codec: Codec, size: int) -> int:
    """Most objects per device call in the ``size`` box bucket: ``codec.max_batch``, lowered to the
    largest power of two whose ``B × size × size`` float32 intermediate fits the backend's budget."""
    budget = _PIXEL_BUDGET.get(jax.default_backend(), _PIXEL_BUDGET_DEFAULT)
    cap = max(1, budget // (size * size))
    cap = 1 << (cap.bit_length() - 1)
    return max(1, min(codec.max_batch, cap))


def min_batch() -> int:
    """Smallest batch of a device call: 1 on a CPU (a lone object costs one decoder run), 64 on an
    accelerator (where 64 cost about what 1 does), so that fewer programs are compiled there."""
    return _MIN_BATCH.get(jax.default_backend(), _MIN_BATCH_DEFAULT)


_MIN_BATCH = {"cpu": 1}
_MIN_BATCH_DEFAULT = 64


def batch_buckets(codec: Codec, size: int) -> list[int]:
    """The batch sizes the ``size`` box bucket compiles for: powers of two from `min_batch` up to
    `batch_cap` (and the cap itself)."""
    cap = batch_cap(codec, size)
    out = [min(min_batch(), cap)]
    while out[-1] * 2 < cap:
        out.append(out[-1] * 2)
    if out[-1] != cap:
        out.append(cap)
    return out


def _batch_bucket(n: int, cap: int, smallest: int) -> int:
    b = smallest
    while b < n:
        b *= 2
    return min(b, cap)


_PAD_ALWAYS = 64  # a remainder this small is padded to its power of two, not split further
_PAD_FRACTION = 4  # padding up to 1/4 of the lower power of two is cheaper than another call


def batch_pieces(n: int, cap: int, smallest: int = 1) -> list[tuple[int, int]]:
    """How ``n`` objects of one box bucket are split into device calls: ``(objects, padded batch)``
    pairs, the batch always one of `batch_buckets` (``smallest``: `min_batch`, a power of two
    <= 64). Full ``cap`` chunks first; then the remainder ``m`` is padded to the next power of two
    (at least ``smallest``) when that adds at most a quarter of the lower power of two ``p`` (or
    ``m <= 64``), else split into ``p`` and the rest. So padding is at most an eighth of a call's
    batch (or, for a remainder of at most 64, up to 31 rows, or ``smallest - m``), in at most
    ``log2(cap)`` calls for the remainder.

    Examples:
        >>> batch_pieces(425, 256)
        [(256, 256), (128, 128), (41, 64)]
        >>> batch_pieces(228, 256)
        [(228, 256)]
        >>> batch_pieces(3, 8192, 64)
        [(3, 64)]
    """
    out = []
    while n >= cap:
        out.append((cap, cap))
        n -= cap
    while n > 0:
        p = 1 << (n.bit_length() - 1)
        padded = _batch_bucket(n, cap, smallest)
        if n <= _PAD_ALWAYS or padded - n <= p // _PAD_FRACTION:
            out.append((n, padded))
            break
        out.append((p, p))
        n -= p
    return out


_WEIGHTS_JIT: dict[int, Callable[[jax.Array], jax.Array]] = {}


def device_resize_weights(out_sizes: Sequence[int] | npt.ArrayLike, size: int) -> npt.NDArray[np.float32]:
    """The resize weights the device path uses, fetched (for tests and inspection).

    Args:
      out_sizes: int ``[B]`` box sides in ``0..size``.
      size: the bucket (rows of padding).

    Returns:
      float32 ``[B, size, 64]``: ``[i, :n_i]`` is ``resize_weights(64, n_i)``, the other rows are 0.
    """
    fn = _WEIGHTS_JIT.get(size)
    if fn is None:
        fn = _WEIGHTS_JIT[size] = jax.jit(lambda n: _weights(n, size))
    return np.asarray(fn(jnp.asarray(np.asarray(out_sizes, dtype=np.int32))))


def _check_indices(codec: Codec, indices: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """As `Codec.decode_indices` checks them: int ``[N, 16]`` in ``0..codebook_size - 1`` → int32."""
    idx = np.asarray(indices)
    if idx.size == 0 and idx.ndim == 1:
        idx = idx.reshape(0, 16)
    return codec._check_indices(idx)


def paste_in_boxes_async(
    codec: Codec,
    indices: npt.NDArray[np.int32],
    locs: Sequence[tuple[int, int, int, int]],
    height: int,
    width: int,
    *,
    convention: Convention = "big_vision",
) -> Callable[[], tuple[npt.NDArray[np.float32], list[PastedBox]]]:
    """Decodes ``N`` objects and pastes each into its box, on the device; returns at once.

    All device calls are dispatched before this returns (per box-size bucket, chunks of at most
    `batch_cap` objects padded to a power-of-two batch, see `batch_pieces`), so several are in flight; the
    packed results are copied back asynchronously. Call the result to wait for them and unpack.

    Args:
      codec: the codec (its parameters and decoder).
      indices: int ``[N, 16]`` ``<seg>`` indices in ``0..codec.codebook_size - 1``.
      locs: ``N`` ``<loc>`` boxes (y1, x1, y2, x2), ints in ``0..1023``; an empty box
        (``y2 <= y1``, or one that rounds to no pixel) gives an empty crop.
      height: the image height in pixels.
      width: the image width in pixels.
      convention: loc → pixel rule, as `paste_mask`.

    Returns:
      A function returning ``(masks64, boxes)``: float32 ``[N, 64, 64]``, the decoder's raw
      outputs (`Codec.decode_indices`'s computation; the decoder runs on other batch shapes here,
      so a row can differ from a `Codec.decode_indices` call on all ``N`` by the decoder's own
      float32 rounding, measured <= 3e-7 of its largest value), and ``N`` `PastedBox`, in input
      order, each equal to `paste_mask_in_box` of its ``masks64`` row except at pixels whose host
      value is within ``PARITY_EPSILON * max|row|`` of 0 (see `PARITY_EPSILON`).

    Raises:
      ValueError: bad ``indices`` values, ``locs`` (not ``[N, 4]`` ints in 0..1023, or a
        different ``N``), size or convention, at the call.
      TypeError: ``indices`` or ``locs`` that are not integers.

    Examples:
    >>> import numpy as np
    >>> from paligemma_segcodec import load_codec
    >>> codec = load_codec("tests/data/fixture-vae.npz")
    >>> indices = np.zeros((1, 16), np.int32)
    >>> wait = paste_in_boxes_async(codec, indices, [(100, 100, 500, 600)], 480, 640)
    >>> masks64, boxes = wait()
    >>> masks64.shape, (boxes[0].top, boxes[0].left, boxes[0].bottom, boxes[0].right)
    ((1, 64, 64), (46, 62, 234, 375))
    """
    idx = _check_indices(codec, indices)
    h_img, w_img = check_size(height, width)
    boxes = pixel_boxes(locs, h_img, w_img, convention=convention)
    n = idx.shape[0]
    if boxes.shape[0] != n:
        raise ValueError(f"got {n} index rows but {boxes.shape[0]} locs")
    bh = boxes[:, 2] - boxes[:, 0]
    bw = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(bh, bw)
    on_device = (bh > 0) & (bw > 0) & (side <= BOX_BUCKETS[-1])
    bucket = np.where(on_device, np.searchsorted(np.asarray(BOX_BUCKETS), side), 0)
    sizes = np.where(on_device[:, None], np.stack([bh, bw], axis=1), 0).astype(np.int32)

    pending: list[tuple[npt.NDArray[np.intp], jax.Array, jax.Array]] = []
    smallest = min_batch()
    for b, size in enumerate(BOX_BUCKETS):
        members = np.flatnonzero(bucket == b)
        if members.size == 0:
            continue
        cap = batch_cap(codec, size)
        program = _program(codec, size)
        start = 0
        for count, padded in batch_pieces(int(members.size), cap, smallest):
            rows = members[start : start + count]
            start += count
            idx_chunk = np.zeros((padded, idx.shape[1]), np.int32)
            idx_chunk[: rows.size] = idx[rows]
            size_chunk = np.zeros((padded, 2), np.int32)
            size_chunk[: rows.size] = sizes[rows]
            packed, decoded = program(jnp.asarray(idx_chunk), jnp.asarray(size_chunk))
            packed.copy_to_host_async()
            decoded.copy_to_host_async()
            pending.append((rows, packed, decoded))

    box_list = boxes.tolist()
    device_list = on_device.tolist()

    def result() -> tuple[npt.NDArray[np.float32], list[PastedBox]]:
        masks64 = np.empty((n, MASK_SIZE, MASK_SIZE), np.float32)
        out: list[PastedBox | None] = [None] * n
        for rows, packed, decoded in pending:
            masks64[rows] = np.asarray(decoded)[: rows.size]
            _unpack_chunk(np.asarray(packed), rows.tolist(), box_list, device_list, masks64, out)
        done: list[PastedBox] = [p for p in out if p is not None]
        return masks64, done

    return result


def _unpack_chunk(
    bits: npt.NDArray[np.uint8],
    rows: list[int],
    box_list: list[list[int]],
    device_list: list[bool],
    masks64: npt.NDArray[np.float32],
    out: list[PastedBox | None],
) -> None:
    """The host part of one device call: ``out[rows[k]]`` from row ``k`` of the packed bits (uint8
    ``[B, S, S // 8]``), or from the host resize of ``masks64[rows[k]]`` for a box too large for
    the buckets, or an empty crop."""
    for k, i in enumerate(rows):
        top, left, bottom, right = box_list[i]
        h, w = bottom - top, right - left
        if device_list[i]:
            crop = np.unpackbits(bits[k, :h, : (w + 7) // 8], axis=1, count=w).view(np.bool_)
        elif h > 0 and w > 0:  # larger than the biggest bucket: the host's resize
            crop = resize(masks64[i], h, w) > 0
        else:
            crop = np.zeros((h, w), dtype=bool)
        out[i] = PastedBox(top, left, bottom, right, crop)


def host_unpack_us(box_sides: Sequence[tuple[int, int]] | npt.ArrayLike, *, repeats: int = 5) -> float:
    """Host cost of the device path per object, in µs (best of ``repeats``): unpacking the packed
    bits of a device call into `PastedBox` crops, as ``paste_in_boxes_async(...)()`` does once the
    device is done (without the copy from the device).

    Args:
      box_sides: int ``[N, 2]`` box (height, width) in pixels, each side in ``1..BOX_BUCKETS[-1]``;
        random bits stand in for the device's output (the cost does not depend on the values).
      repeats: timing runs.

    Returns:
      Microseconds per object.
    """
    import time

    hw = np.asarray(box_sides, dtype=np.int64).reshape(-1, 2)
    if hw.size == 0 or hw.min() < 1 or hw.max() > BOX_BUCKETS[-1]:
        raise ValueError(f"box_sides must be [N, 2] sides in 1..{BOX_BUCKETS[-1]}, N >= 1")
    rng = np.random.default_rng(0)
    sizes = np.asarray(BOX_BUCKETS)[np.searchsorted(np.asarray(BOX_BUCKETS), hw.max(axis=1))]
    groups = []
    for size in np.unique(sizes).tolist():
        rows = np.flatnonzero(sizes == size).tolist()
        groups.append((rng.integers(0, 256, (len(rows), size, size // 8), dtype=np.uint8), rows))
    box_list = [[0, 0, int(h), int(w)] for h, w in hw.tolist()]
    device_list = [True] * len(box_list)
    masks64 = np.zeros((len(box_list), MASK_SIZE, MASK_SIZE), np.float32)
    best = float("inf")
    for _ in range(max(1, repeats)):
        out: list[PastedBox | None] = [None] * len(box_list)
        t0 = time.perf_counter()
        for bits, rows in groups:
            _unpack_chunk(bits, rows, box_list, device_list, masks64, out)
        best = min(best, time.perf_counter() - t0)
    return best / len(box_list) * 1e6


def warm_up(codec: Codec, *, max_side: int = BOX_BUCKETS[-1]) -> int:
    """Compiles every program `paste_in_boxes_async` can need for boxes with both sides ``<= max_side``:
    each (box bucket, batch bucket) pair of `batch_buckets`, run once on zeros. Afterwards such calls
    compile nothing. Returns the number of compilations (`Codec.compile_count`).

    Args:
        codec: the codec whose decoder and paste programs to compile.
        max_side: the largest box side (in pixels) to prepare for.

    Returns:
        The number of compilations it made.

    Examples:
        >>> from paligemma_segcodec import load_codec
        >>> warm_up(load_codec("tests/data/fixture-vae.npz"), max_side=64)  # doctest: +SKIP
        27
    """
    before = codec.compile_count
    last: jax.Array | None = None
    top = int(np.searchsorted(np.asarray(BOX_BUCKETS), min(max(int(max_side), 1), BOX_BUCKETS[-1])))
    for size in BOX_BUCKETS[: top + 1]:
        program = _program(codec, size)
        for b in batch_buckets(codec, size):
            last = program(jnp.zeros((b, 16), jnp.int32), jnp.zeros((b, 2), jnp.int32))[0]
    if last is not None:
        last.block_until_ready()
    return codec.compile_count - before
