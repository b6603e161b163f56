"""Device-side prep for encoding: bit-packed crops in, ``<seg>`` indices out (issue 14 §4).

The host path (`paligemma_segcodec.prep`) resizes every crop to 64×64 on the CPU and uploads float32
``[N, 64, 64]``. This path uploads the crops themselves, bit-packed (1 bit per pixel), and runs the
antialiased resize, the encoder and the argmin on the device, so the host does little more than one
`np.packbits` per crop:

- **Host** (`pack_crops`): each bool crop ``mask[top:bottom, left:right]`` is packed row by row
  (``np.packbits(crop, axis=1)``, MSB first; it releases the GIL, so packing scales with threads) into
  the buffer of its size bucket: height and width each rounded up to one of `SIDES`
  (64, 128, …, 2048), so at most ``len(SIDES)²`` crop shapes exist. Crops with a side above `MAX_SIDE`
  are resized on the host instead (`resize.resize_binary`) and uploaded as float32 64×64.
- **Device**, per bucket and piece (a power-of-two number of crops, at least `_MIN_PIECE`): unpack the
  bits, build each crop's triangle weights ``Wy [64, Hb]`` and ``Wx [64, Wb]`` from its true size,
  ``Wy @ crop @ Wx.T`` at ``precision=HIGHEST``, and scatter the 64×64 results into the chunk's
  ``[C, 64, 64]`` buffer (donated, updated in place). Then one call runs `Codec`'s encoder and its
  near-tie settlement on the chunk (`Codec.jit_encoder_with`) and packs each index with its float64-
  fallback flag into a uint8 (``index | flag << 7``): the host fetches 16 bytes per mask.
- **Weights**: not recomputed by float formula on the device, where division and fused multiply-adds
  may round differently, but gathered from per-bucket tables that `resize._spans` itself computed once
  (TF's ComputeSpans in float32: kernel scale, the sample-outside skip, normalization by the float32
  sequential sum). So the device weights equal `resize.resize_weights` bit for bit on any backend.
  Tables: ``[sizes, 64, K]`` float32 per side (K ≤ 64), 22 MiB on the device for all sides.
- **Near ties**: rows the encoder flags for the float64 fallback are resized again on the host
  (`resize.resize_binary`, the host path's own input) and settled by `Codec`'s float64 argmin, so
  those positions get exactly the host path's answer.
- **Pipeline**: chunks of ``C`` crops (64 on a CPU backend, 4096 otherwise, at most
  ``codec.max_batch``), up to `IN_FLIGHT` dispatched at once: the host packs chunk ``k + 1`` while the
  device computes ``k`` and the transfer of ``k - 1``'s indices is under way (``copy_to_host_async``).
  Across calls, at most `MAX_QUEUED` chunks wait on the device (back-pressure on the dispatching thread).

Compiled shapes are bounded: one resize program per (bucket, piece size), one encoder per power-of-two
chunk size ≤ ``C``, one host-masks64 scatter per piece size. `warm_up` compiles them all; after it,
varying N and crop sizes compiles nothing (`compile_count`).

The device's float32 sums differ from the host's (float64 prefix sums) by ~1e-7 per value; the
encoder's near-tie window (`codec.TIE_EPSILON`) absorbs that, so the tokens equal the host path's.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from paligemma_segcodec.codec import Codec
from paligemma_segcodec.model import HIGHEST
from paligemma_segcodec.prep import MASK_SIZE
from paligemma_segcodec.resize import _spans, resize_binary

__all__ = [
    "IN_FLIGHT",
    "MAX_QUEUED",
    "MAX_SIDE",
    "SIDES",
    "Bucket",
    "PackedCrops",
    "compile_count",
    "device_weights",
    "encode_crops",
    "encode_crops_async",
    "host_prep_us",
    "pack_crops",
    "resize_crops",
    "warm_up",
]

SIDES = (64, 128, 256, 512, 1024, 2048)
"""Bucket sides (pixels) for a crop's height and width: each is rounded up to the first side that holds it."""

MAX_SIDE = SIDES[-1]
"""Crops taller or wider than this are resized on the host (`resize.resize_binary`) and uploaded as 64×64."""

IN_FLIGHT = 3
"""Chunks one `encode_crops_async` call dispatches before its result waits for the oldest."""

MAX_QUEUED = 2 * IN_FLIGHT
"""Chunks of all calls (per codec and chunk size) queued on the device at once: a further dispatch first
waits until the oldest is done, so callers that start many calls before waiting (a span loop) keep
device and host memory bounded (a 4096-crop chunk of 512² crops uploads 128 MiB of bits)."""

_MIN_PIECE = 8  # smallest number of crops per device call (a bucket's crop count is padded to a multiple)
_PIECE_PIXELS = 1 << 27  # padded crop pixels per device call: 16 MiB of bits, 512 MiB unpacked float32
_CHUNK = {"cpu": 64}
_CHUNK_DEFAULT = 4096
_FLAG = 128  # the float64-fallback flag's bit in the fetched uint8 (indices are < 128)


@dataclass(frozen=True)
class Bucket:
    """The packed crops of one size bucket.

    Attributes:
      height, width: the bucket's padded crop size in pixels (from `SIDES`).
      bits: uint8 ``[m, height, width // 8]``, row-major bits (MSB first, as `np.packbits`); crop ``i``
        fills ``bits[i, :h, :ceil(w / 8)]``. ``m`` is the crop count rounded up to a multiple of
        `_MIN_PIECE`; bytes outside a crop (and the padding rows) are unspecified: the resize weights
        there are zero.
      sizes: int32 ``[m, 2]``: the true ``(h, w)`` of each crop (0 for padding rows).
      index: int32 ``[m]``: each crop's position in the packed sequence (-1 for padding rows).
    """

    height: int
    width: int
    bits: npt.NDArray[np.uint8]
    sizes: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]


@dataclass(frozen=True)
class PackedCrops:
    """`pack_crops`' result.

    Attributes:
      count: number of crops packed.
      buckets: the non-empty size buckets.
      host: int32 ``[k]``: positions of the crops with a side above `MAX_SIDE` (left to the host resize).
    """

    count: int
    buckets: tuple[Bucket, ...]
    host: npt.NDArray[np.int32]


def _side_index(n: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Index into `SIDES` of the bucket side holding each size (``len(SIDES)`` above `MAX_SIDE`)."""
    return np.searchsorted(np.asarray(SIDES), n, side="left")


def _check_crops(crops: Sequence[npt.NDArray[np.bool_]]) -> npt.NDArray[np.int64]:
    """Validates the crops → int64 ``[N, 2]`` their shapes. TypeError: not bool; ValueError: not 2-D or empty."""
    shapes = np.empty((len(crops), 2), np.int64)
    for i, c in enumerate(crops):
        if not isinstance(c, np.ndarray) or c.dtype != np.bool_:
            if not isinstance(c, np.ndarray):
                raise TypeError(f"crop {i} must be a NumPy bool array, got {type(c).__name__}")
            raise TypeError(
                f"crop {i} must be bool (the device path takes binary masks; use the host path for "
                f"{c.dtype} masks), got dtype {c.dtype}"
            )
        if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
            raise ValueError(f"crop {i} must be a non-empty 2-D array, got shape {c.shape}")
        shapes[i] = c.shape
    return shapes


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="segcodec-pack")
        return pool


def pack_crops(crops: Sequence[npt.NDArray[np.bool_]], *, threads: int = 1) -> PackedCrops:
    """Bit-packs bool crops into size-bucketed buffers (the host part of the device path).

    Args:
      crops: N bool 2-D arrays, any size >= 1×1, contiguous or not (e.g. ``mask[t:b, l:r]`` views).
      threads: pack on this many threads (`np.packbits` releases the GIL).

    Returns:
      `PackedCrops`: per bucket the bits, true sizes and positions; crops with a side above
      `MAX_SIDE` are listed in ``host``.

    Raises:
      TypeError: a crop is not a bool NumPy array (float masks take the host path).
      ValueError: a crop is not 2-D or has no pixel.

    Examples:
    >>> import numpy as np
    >>> packed = pack_crops([np.ones((40, 60), bool), np.ones((300, 20), bool)])
    >>> packed.count, len(packed.buckets), packed.host.size
    (2, 2, 0)
    """
    return _pack(crops, _check_crops(crops), threads)


def _pack(crops: Sequence[npt.NDArray[np.bool_]], shapes: npt.NDArray[np.int64], threads: int) -> PackedCrops:
    n = len(crops)
    ns = len(SIDES)
    iy, ix = _side_index(shapes[:, 0]), _side_index(shapes[:, 1])
    giant = (iy >= ns) | (ix >= ns)
    key = np.where(giant, ns * ns, iy * ns + ix)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=ns * ns + 1)
    buckets: list[Bucket] = []
    jobs_buf: list[npt.NDArray[np.uint8]] = []  # per crop (in `order`): its bucket's buffer
    jobs_row: list[int] = []
    jobs_crop: list[int] = []
    start = 0
    for k in range(ns * ns):
        count = int(counts[k])
        if not count:
            continue
        hb, wb = SIDES[k // ns], SIDES[k % ns]
        m = -(-count // _MIN_PIECE) * _MIN_PIECE
        members = order[start : start + count]
        start += count
        bits = np.empty((m, hb, wb // 8), np.uint8)
        sizes = np.zeros((m, 2), np.int32)
        sizes[:count] = shapes[members]
        index = np.full(m, -1, np.int32)
        index[:count] = members
        buckets.append(Bucket(hb, wb, bits, sizes, index))
        jobs_buf += [bits] * count
        jobs_row += range(count)
        jobs_crop += members.tolist()
    host = order[start:].astype(np.int32)

    def work(lo: int, hi: int) -> None:
        for j in range(lo, hi):
            c = crops[jobs_crop[j]]
            packed = np.packbits(c, axis=1)
            jobs_buf[j][jobs_row[j], : packed.shape[0], : packed.shape[1]] = packed

    total = len(jobs_crop)
    if threads <= 1 or total < 2 * threads:
        work(0, total)
    else:
        edges = np.linspace(0, total, threads + 1).astype(int).tolist()
        list(_pool(threads).map(lambda e: work(*e), itertools.pairwise(edges)))
    return PackedCrops(count=n, buckets=tuple(buckets), host=host)


def host_prep_us(crops: Sequence[npt.NDArray[np.bool_]], threads: int = 1, *, repeat: int = 5) -> float:
    """Host time of the device path, µs per crop: the best of ``repeat`` `pack_crops` runs over ``crops``.

    Args:
        crops: bool 2-D arrays, as `pack_crops` takes them.
        threads: pack on this many threads.
        repeat: runs timed; the best is reported.

    Returns:
        Microseconds per crop (float).

    Examples:
        >>> import numpy as np
        >>> host_prep_us([np.ones((64, 64), bool)] * 8, repeat=1) > 0
        True
    """
    shapes = _check_crops(crops)
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        _pack(crops, shapes, threads)
        best = min(best, time.perf_counter() - t0)
    return best / max(1, len(crops)) * 1e6


# --- Device side ----------------------------------------------------------------------------------


@cache
def _weight_table(side: int) -> tuple[int, npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Compact resize weights of every input size that the bucket ``side`` holds (`resize._spans`).

    Returns ``(lo, w, start)``: sizes ``lo..side``; ``w`` float32 ``[side - lo + 1, 64, K]`` the normalized
    triangle weights of output row ``j`` at inputs ``start + 0..K-1`` (zero past the span), ``start`` int32
    ``[side - lo + 1, 64]``.
    """
    i = SIDES.index(side)
    lo = 1 if i == 0 else SIDES[i - 1] + 1
    spans = [_spans.__wrapped__(s, MASK_SIZE) for s in range(lo, side + 1)]  # bypass (not fill) its cache
    k = max(sp[2].shape[1] for sp in spans)
    w = np.zeros((len(spans), MASK_SIZE, k), np.float32)
    start = np.empty((len(spans), MASK_SIZE), np.int32)
    for r, (_, first, weights, _) in enumerate(spans):
        w[r, :, : weights.shape[1]] = weights
        start[r] = first
    return lo, w, start


def _dense_weights(w_tab: jax.Array, start_tab: jax.Array, lo: int, n: jax.Array, side: int) -> jax.Array:
    """int32 sizes ``[p]`` → float32 ``[p, 64, side]``: `resize.resize_weights(n, 64)` zero-padded to ``side``."""
    k = jnp.clip(n - lo, 0, w_tab.shape[0] - 1)
    wc, st = w_tab[k], start_tab[k]  # [p, 64, K], [p, 64]
    off = jnp.arange(side, dtype=jnp.int32)[None, None, :] - st[:, :, None]
    vals = jnp.take_along_axis(wc, jnp.clip(off, 0, wc.shape[-1] - 1), axis=2)
    return jnp.where((off >= 0) & (off < wc.shape[-1]), vals, jnp.float32(0))


def device_weights(sizes: Sequence[int], side: int) -> npt.NDArray[np.float32]:
    """The device path's resize weights: float32 ``[n, 64, side]``, row ``i`` = ``resize_weights(sizes[i], 64)``
    zero-padded to ``side`` (a `SIDES` entry; each size in that bucket: ``side // 2 < size <= side``, or
    ``1 <= size <= 64`` for the first). For parity checks."""
    lo, w, start = _weight_table(side)
    fn = jax.jit(partial(_dense_weights, lo=lo, side=side))
    return np.asarray(fn(jnp.asarray(w), jnp.asarray(start), n=jnp.asarray(np.asarray(sizes, np.int32))))


def _unpack(bits: jax.Array) -> jax.Array:
    """uint8 ``[p, H, W // 8]`` (MSB first) → float32 ``[p, H, W]`` of 0/1."""
    shifts = jnp.arange(7, -1, -1, dtype=jnp.uint8)
    b = (bits[..., None] >> shifts) & jnp.uint8(1)
    out: jax.Array = b.reshape(*bits.shape[:-1], bits.shape[-1] * 8).astype(jnp.float32)
    return out


def _resize_piece(
    hb: int,
    wb: int,
    buf: jax.Array,
    wy_tab: jax.Array,
    sy_tab: jax.Array,
    wx_tab: jax.Array,
    sx_tab: jax.Array,
    bits: jax.Array,
    meta: jax.Array,
) -> jax.Array:
    """One piece of a bucket, resized and scattered into ``buf`` float32 ``[C, 64, 64]``.

    ``bits`` uint8 ``[p, hb, wb // 8]``; ``meta`` int32 ``[p, 3]``: true h, w, and the row of ``buf``
    (``C``: dropped).
    """
    lo_y = _weight_table_lo(hb)
    lo_x = _weight_table_lo(wb)
    wy = _dense_weights(wy_tab, sy_tab, lo_y, meta[:, 0], hb)  # [p, 64, hb]
    wx = _dense_weights(wx_tab, sx_tab, lo_x, meta[:, 1], wb)  # [p, 64, wb]
    x = _unpack(bits)  # [p, hb, wb]
    if hb >= wb:  # reduce the longer side first
        t = jnp.einsum("pjy,pyx->pjx", wy, x, precision=HIGHEST)
        m64 = jnp.einsum("pjx,pkx->pjk", t, wx, precision=HIGHEST)
    else:
        t = jnp.einsum("pyx,pkx->pyk", x, wx, precision=HIGHEST)
        m64 = jnp.einsum("pjy,pyk->pjk", wy, t, precision=HIGHEST)
    return buf.at[meta[:, 2]].set(m64, mode="drop")


def _weight_table_lo(side: int) -> int:
    i = SIDES.index(side)
    return 1 if i == 0 else SIDES[i - 1] + 1


def _scatter(buf: jax.Array, m64: jax.Array, dest: jax.Array) -> jax.Array:
    return buf.at[dest].set(m64, mode="drop")


def _pack_u8(out: jax.Array) -> jax.Array:
    """The encoder's int32 ``[B, 33]`` → uint8 ``[B, 16]``: index (< 128) | float64-fallback flag << 7."""
    return (out[:, :16] | (out[:, 16:32] << 7)).astype(jnp.uint8)


def _pieces(m: int, p_max: int) -> list[int]:
    """Split ``m`` (a multiple of `_MIN_PIECE`) into powers of two ``<= p_max``, largest first."""
    out = []
    while m:
        p = min(p_max, 1 << (m.bit_length() - 1))
        out.append(p)
        m -= p
    return out


def _pow2_at_least(n: int, lo: int) -> int:
    p = lo
    while p < n:
        p *= 2
    return p


class _DevicePrep:
    """Programs and weight tables of the device path for one codec and chunk size."""

    def __init__(self, codec: Codec | None, chunk: int) -> None:
        if codec is not None and codec.codebook_size > _FLAG:
            raise ValueError(f"the device path packs indices in 7 bits; codebook has {codec.codebook_size}")
        self.codec = codec
        self.chunk = chunk
        self.traces = 0
        self.settled_rows = 0  # rows whose flagged positions took the float64 fallback (diagnostics)
        self._lock = threading.Lock()
        self._queued: deque[jax.Array] = deque()  # recent chunks' outputs, oldest first (`MAX_QUEUED`)
        self._tables: dict[int, tuple[jax.Array, jax.Array]] = {}
        self._resize: dict[tuple[int, int], Callable[..., jax.Array]] = {}
        self._encoders: dict[int, Callable[[jax.Array], jax.Array]] = {}
        self._zeros = jax.jit(self._counted(lambda: jnp.zeros((chunk, MASK_SIZE, MASK_SIZE), jnp.float32)))
        self._scatter = jax.jit(self._counted(_scatter), donate_argnums=0)

    def _counted(self, fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        def traced(*args: jax.Array) -> jax.Array:
            self.traces += 1  # runs once per trace, i.e. per compilation
            return fn(*args)

        return traced

    def tables(self, side: int) -> tuple[jax.Array, jax.Array]:
        with self._lock:
            got = self._tables.get(side)
            if got is None:
                _, w, start = _weight_table(side)
                got = self._tables[side] = (jax.device_put(w), jax.device_put(start))
            return got

    def resize_fn(self, hb: int, wb: int) -> Callable[..., jax.Array]:
        with self._lock:
            fn = self._resize.get((hb, wb))
            if fn is None:
                fn = self._resize[(hb, wb)] = jax.jit(self._counted(partial(_resize_piece, hb, wb)), donate_argnums=0)
            return fn

    def encoder(self, rows: int) -> Callable[[jax.Array], jax.Array]:
        with self._lock:
            fn = self._encoders.get(rows)
            if fn is None:
                if self.codec is None:
                    raise RuntimeError("this device prep has no codec (resize only)")
                fn = self._encoders[rows] = self.codec.jit_encoder_with(lambda buf: buf[:rows], _pack_u8)
            return fn

    def piece_max(self, hb: int, wb: int) -> int:
        return max(_MIN_PIECE, min(self.chunk, 1 << ((_PIECE_PIXELS // (hb * wb)).bit_length() - 1)))

    def fill(self, crops: Sequence[npt.NDArray[np.bool_]], shapes: npt.NDArray[np.int64], threads: int) -> jax.Array:
        """Dispatches the resize of up to ``chunk`` crops → the device buffer float32 ``[chunk, 64, 64]``."""
        packed = _pack(crops, shapes, threads)
        buf = self._zeros()
        for b in packed.buckets:
            wy, sy = self.tables(b.height)
            wx, sx = self.tables(b.width)
            fn = self.resize_fn(b.height, b.width)
            meta = np.concatenate([b.sizes, np.where(b.index < 0, self.chunk, b.index)[:, None]], axis=1)
            meta = meta.astype(np.int32)
            at = 0
            for p in _pieces(b.bits.shape[0], self.piece_max(b.height, b.width)):
                bits = jax.device_put(b.bits[at : at + p])
                buf = fn(buf, wy, sy, wx, sx, bits, jax.device_put(meta[at : at + p]))
                at += p
        if packed.host.size:
            k = packed.host.size
            rows = _pow2_at_least(k, _MIN_PIECE)
            m64 = np.zeros((rows, MASK_SIZE, MASK_SIZE), np.float32)
            for r, i in enumerate(packed.host.tolist()):
                m64[r] = resize_binary(crops[i], MASK_SIZE, MASK_SIZE)
            dest = np.full(rows, self.chunk, np.int32)
            dest[:k] = packed.host
            buf = self._scatter(buf, jax.device_put(m64), jax.device_put(dest))
        out: jax.Array = buf
        return out

    def dispatch(
        self, crops: Sequence[npt.NDArray[np.bool_]], shapes: npt.NDArray[np.int64], threads: int
    ) -> jax.Array:
        """Resize + encode of up to ``chunk`` crops (dispatched) → uint8 ``[rows, 16]`` (rows >= len(crops))."""
        while True:  # back-pressure: at most MAX_QUEUED chunks on the device
            with self._lock:
                oldest = self._queued.popleft() if len(self._queued) >= MAX_QUEUED else None
            if oldest is None:
                break
            oldest.block_until_ready()
        buf = self.fill(crops, shapes, threads)
        out = self.encoder(_pow2_at_least(len(crops), _MIN_PIECE) if len(crops) < self.chunk else self.chunk)(buf)
        out.copy_to_host_async()
        with self._lock:
            self._queued.append(out)
        return out

    def settle(self, crops: Sequence[npt.NDArray[np.bool_]], fetched: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
        """uint8 ``[n, 16]`` → int32 indices; flagged positions get the float64 argmin of the host resize."""
        idx = (fetched & (_FLAG - 1)).astype(np.int32)
        near = fetched >= _FLAG
        rows = np.flatnonzero(near.any(axis=1))
        if rows.size:
            self.settled_rows += int(rows.size)
            m64 = np.stack([resize_binary(crops[int(i)], MASK_SIZE, MASK_SIZE) for i in rows])
            assert self.codec is not None
            exact = self.codec._argmin_f64(m64)
            idx[rows] = np.where(near[rows], exact, idx[rows])
        return idx


_PREPS: weakref.WeakKeyDictionary[Codec, dict[int, _DevicePrep]] = weakref.WeakKeyDictionary()
_PREPS_LOCK = threading.Lock()


def _default_chunk(codec: Codec) -> int:
    return min(codec.max_batch, _CHUNK.get(jax.default_backend(), _CHUNK_DEFAULT))


def _prep(codec: Codec, chunk: int | None) -> _DevicePrep:
    size = int(chunk or _default_chunk(codec))
    if size < _MIN_PIECE or size & (size - 1):
        raise ValueError(f"chunk must be a power of two >= {_MIN_PIECE}, got {size}")
    with _PREPS_LOCK:
        per = _PREPS.setdefault(codec, {})
        prep = per.get(size)
        if prep is None:
            prep = per[size] = _DevicePrep(codec, size)
        return prep


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def encode_crops_async(
    codec: Codec,
    crops: Sequence[npt.NDArray[np.bool_]],
    *,
    chunk: int | None = None,
    threads: int | None = None,
) -> Callable[[], npt.NDArray[np.int32]]:
    """Starts encoding bool crops on the device; call the result to wait for the indices.

    Each crop is what the reference encodes for a mask and its box: ``mask[crop_pixels(box, H, W)]``.
    The tokens equal the host path's, ``codec.encode_indices([prepare_crop(c, box).mask64 ...])``.

    Args:
      codec: the VQ-VAE (its encoder runs on JAX's default device).
      crops: N bool 2-D arrays (any size >= 1×1; views are fine).
      chunk: crops per device pipeline step (a power of two >= 8); default 64 on a CPU backend, else 4096
        (at most ``codec.max_batch``).
      threads: host threads packing bits (default ``min(8, cpu_count)``).

    Returns:
      A function returning int32 ``[N, 16]`` (in ``0..codebook_size - 1``, input order). The first
      `IN_FLIGHT` chunks are dispatched before this returns; the rest as earlier ones complete.

    Raises:
      TypeError: a crop that is not a bool NumPy array (use the host path for float masks).
      ValueError: a crop that is not 2-D or is empty.

    Examples:
    >>> import numpy as np
    >>> from paligemma_segcodec import load_codec
    >>> codec = load_codec("tests/data/fixture-vae.npz")
    >>> crop = np.zeros((40, 60), bool)
    >>> crop[5:35, 10:50] = True
    >>> wait = encode_crops_async(codec, [crop, crop.T])  # dispatched; the host is free meanwhile
    >>> wait().shape
    (2, 16)
    """
    shapes = _check_crops(crops)
    prep = _prep(codec, chunk)
    n_threads = int(threads or _default_threads())
    n = len(crops)
    out = np.empty((n, 16), np.int32)
    starts = iter(range(0, n, prep.chunk))
    pending: deque[tuple[int, int, jax.Array]] = deque()

    def dispatch_next() -> None:
        s = next(starts, None)
        if s is not None:
            e = min(s + prep.chunk, n)
            pending.append((s, e, prep.dispatch(crops[s:e], shapes[s:e], n_threads)))

    for _ in range(IN_FLIGHT):
        dispatch_next()
    lock = threading.Lock()

    def result() -> npt.NDArray[np.int32]:
        with lock:
            while pending:
                s, e, dev = pending.popleft()
                dispatch_next()  # keep the device busy while this chunk is fetched and settled
                out[s:e] = prep.settle(crops[s:e], np.asarray(dev)[: e - s])
            return out

    return result


def encode_crops(
    codec: Codec, crops: Sequence[npt.NDArray[np.bool_]], *, chunk: int | None = None, threads: int | None = None
) -> npt.NDArray[np.int32]:
    """`encode_crops_async`, waited for: int32 ``[N, 16]``.

    Args:
        codec: the VQ-VAE, as `encode_crops_async`.
        crops: N bool 2-D arrays, as `encode_crops_async`.
        chunk: crops per device pipeline step, as `encode_crops_async`.
        threads: host threads packing bits, as `encode_crops_async`.

    Returns:
        int32 ``[N, 16]`` codebook indices, in input order.

    Raises:
        TypeError: a crop that is not a bool NumPy array.
        ValueError: a crop that is not 2-D or is empty.

    Examples:
        >>> import numpy as np
        >>> from paligemma_segcodec import load_codec
        >>> crop = np.zeros((40, 60), bool)
        >>> crop[5:35, 10:50] = True
        >>> encode_crops(load_codec("tests/data/fixture-vae.npz"), [crop]).shape
        (1, 16)
    """
    return encode_crops_async(codec, crops, chunk=chunk, threads=threads)()


def resize_crops(crops: Sequence[npt.NDArray[np.bool_]], *, chunk: int = 64) -> npt.NDArray[np.float32]:
    """The device path's 64×64 encoder inputs, float32 ``[N, 64, 64]`` (for parity checks; no encoder).

    Same programs as `encode_crops_async`; the host path's value is ``prepare_crop(crop, box).mask64``.
    """
    shapes = _check_crops(crops)
    prep = _resize_only(chunk)
    parts = [
        np.asarray(prep.fill(crops[s : s + chunk], shapes[s : s + chunk], 1))[: min(chunk, len(crops) - s)]
        for s in range(0, len(crops), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, MASK_SIZE, MASK_SIZE), np.float32)


@lru_cache(maxsize=8)
def _resize_only(chunk: int) -> _DevicePrep:
    return _DevicePrep(None, chunk)


def warm_up(codec: Codec, *, chunk: int | None = None, max_side: int = MAX_SIDE) -> int:
    """Compiles every program the device path can need for crops with both sides ``<= max_side``.

    Runs each on zeros: all (bucket, piece size) resizes, the host-masks64 scatter per piece size and the
    encoder per chunk size. Afterwards `encode_crops_async` with the same ``chunk`` compiles nothing for
    such crops (and for giant crops only if ``max_side == MAX_SIDE``). Returns the number of compilations.

    Args:
        codec: the VQ-VAE whose programs to compile.
        chunk: the ``chunk`` later calls will use (default as `encode_crops_async`).
        max_side: the largest crop side to prepare for.

    Returns:
        The number of compilations it made.

    Examples:
        >>> from paligemma_segcodec import load_codec
        >>> warm_up(load_codec("tests/data/fixture-vae.npz"), max_side=64)  # doctest: +SKIP
        11
    """
    prep = _prep(codec, chunk)
    before = compile_count(codec)
    sides = [s for s in SIDES if s <= max_side]
    buf = prep._zeros()
    for hb in sides:
        for wb in sides:
            wy, sy = prep.tables(hb)
            wx, sx = prep.tables(wb)
            fn = prep.resize_fn(hb, wb)
            p = prep.piece_max(hb, wb)
            while p >= _MIN_PIECE:
                bits = jnp.zeros((p, hb, wb // 8), jnp.uint8)
                meta = jnp.full((p, 3), prep.chunk, jnp.int32)
                buf = fn(buf, wy, sy, wx, sx, bits, meta)
                p //= 2
    rows = prep.chunk
    while rows >= _MIN_PIECE:
        buf = prep._scatter(buf, jnp.zeros((rows, MASK_SIZE, MASK_SIZE)), jnp.full((rows,), prep.chunk, jnp.int32))
        out = prep.encoder(rows)(buf)
        rows //= 2
    out.block_until_ready()
    return compile_count(codec) - before


def compile_count(codec: Codec) -> int:
    """Compilations so far of ``codec``'s encoder/decoder plus the device path's programs for it.

    Args:
        codec: the VQ-VAE.

    Returns:
        The number of compilations so far (it never goes down).

    Examples:
        >>> from paligemma_segcodec import load_codec
        >>> compile_count(load_codec("tests/data/fixture-vae.npz")) >= 0
        True
    """
    with _PREPS_LOCK:
        preps = list(_PREPS.get(codec, {}).values())
    return codec.compile_count + sum(p.traces for p in preps)
