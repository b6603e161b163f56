"""`Codec`: the jit-compiled, batched VQ-VAE encoder/decoder, and `load_codec`.

Both directions run under ``jax.jit`` with the parameters resident on the default device
(the GPU when there is one). Batches are padded to a few bucket sizes (powers of two from 1 up to
``max_batch``) and longer inputs are split into ``max_batch`` chunks, so varying N never causes a
recompilation once each bucket has been compiled. All math runs at ``precision=HIGHEST``.

Near ties. float32 sums run in an order that depends on the batch shape, the backend and the device, so
the squared distances to the codebook differ by a few float32 roundings between a mask encoded alone, in a
batch of 3 or on a GPU. Where the best two codebook entries are closer than that, the argmin (the
``<seg>`` token) would depend on the batch. So the encoder checks, per latent position, whether
``second - best < TIE_EPSILON * (|z|² + |e_best|²)``; there (1-2.5% of masks) it compares the two entries
again with a cancellation-free formula, and where even that is within float32 error (`GAP_EPSILON`,
none measured) the host recomputes the latents in float64 NumPy (`paligemma_segcodec.model_numpy`).
Each step picks the float64 model's argmin, so the tokens are the same for any batch size, position
in the batch, jit or eager, thread count and device. Golden parity: the float64 argmin equals big_vision's
float32 TF answer on all 93 shared golden cases, including its near tie (relative gap 2.2e-5).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from paligemma_segcodec.checkpoint import Checkpoint, read_checkpoint, resolve_checkpoint
from paligemma_segcodec.model import HIGHEST, Decoder, Encoder, ModelConfig, Params, params_from_checkpoint
from paligemma_segcodec.model_numpy import distances_f64, encode_latents_f64
from paligemma_segcodec.prep import MASK_SIZE

__all__ = ["GAP_EPSILON", "MASK_SIZE", "TIE_EPSILON", "Codec", "load_codec"]


_MIN_BUCKET = 1  # one mask costs one mask (batch-1 calls are 3x faster than padding to 8)
_CPU_DECODE_CHUNK = 32  # measured best decoder batch on a 2-core CPU (benchmarks/)
# encode_masks sends chunks of this many masks so that the host's crop + resize of the next chunk
# overlaps the device's encoding of this one. On a CPU, 64 costs the encoder little against 256.
_HOST_CHUNK = {"cpu": 64}
_HOST_CHUNK_DEFAULT = 1024
_RANGE_SLACK = 1e-3  # float rounding in the resize can overshoot [0, 1] by a few ulps; not clipped, as the reference
_F64_CHUNK = 64  # masks per float64 NumPy encoder call (bounds its im2col buffers)

TIE_EPSILON = 2e-5
"""Window of a possible near tie: ``second - best < TIE_EPSILON * (|z|² + |e_best|²)`` on the float32
squared distances ``|z|² - 2 z·e + |e|²`` (the reference's formula; ``z`` the latent, ``e_best`` the nearest
codebook entry).

The scale is ``|z|² + |e|²``, not ``best``: the formula's float32 error comes from rounding terms of that
size (a 512-term dot product), while ``best`` can be 1e-5 of them on a trained codebook. Measured on
tests/data/fixture-vae.npz and tests/data/golden/checkpoint.npz (256 masks: the 93 golden crops + random
shapes; batch buckets 1…256, shuffled positions, jit and eager; CPU): the float32 ``d_j - d_best`` differs
from float64 by at most 2.1e-6 of that scale, so 2e-5 leaves a 10x margin. 1-2.5% of masks have a
position in the window (0.1% of positions); those are settled by `GAP_EPSILON`."""

GAP_EPSILON = 1e-5
"""Inside the `TIE_EPSILON` window the two nearest entries ``a``, ``b`` are compared on the device with
the cancellation-free ``d_b - d_a = Σ (e_b - e_a)(e_a + e_b - 2z)``. Its float32 error comes only from
``z`` (``|Δz| / |z| <= 1.6e-7`` across batch shapes): measured at most 8.8e-7 of
``|e_a - e_b| (|e_a + e_b - 2z| + |z|)``. Where ``|d_b - d_a|`` is below ``GAP_EPSILON`` times that scale
(none of the 4096 measured positions, incl. the golden case with a 2.2e-5 relative gap), or a third entry
is also in the window, the host recomputes the mask in float64 NumPy."""


def _default_max_batch() -> int:
    return 256 if jax.default_backend() == "cpu" else 8192


class Codec:
    """The VQ-VAE of one checkpoint: 64×64 masks ↔ 16 codebook indices.

    Build one with `load_codec`. Thread-safe; instances are cached per checkpoint file.

    Attributes:
      config: layer shapes read from the checkpoint.
      source: the file the weights came from.
      max_batch: largest batch sent to the device in one call.
      host_chunk: how many masks `encode_masks` prepares on the host per device call (its pipeline step).

    Args:
        checkpoint: the validated weights (`paligemma_segcodec.checkpoint.read_checkpoint`).
        max_batch: largest batch per device call; default: 256 on a CPU, more on an accelerator.

    Raises:
        ValueError: ``max_batch`` below 1.

    Examples:
        >>> import numpy as np
        >>> codec = load_codec("tests/data/fixture-vae.npz")
        >>> x = np.zeros((2, 64, 64), np.float32)
        >>> x[:, 16:48, 16:48] = 1.0
        >>> indices = codec.encode_indices(x)  # int32 [2, 16]
        >>> indices.shape, bool((indices[0] == indices[1]).all())
        ((2, 16), True)
        >>> codec.decode_indices(indices).shape  # float32 raw logits, > 0 is the mask
        (2, 64, 64)
    """

    def __init__(self, checkpoint: Checkpoint, *, max_batch: int | None = None) -> None:
        self.config: ModelConfig
        self.config, params = params_from_checkpoint(checkpoint)
        self.source = checkpoint.source
        self.max_batch = int(max_batch or _default_max_batch())
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        self._params: Params = jax.device_put({**params, "codebook_spread": _spread(checkpoint.codebook)})
        self._encoder_layers = checkpoint.encoder  # for the float64 near-tie path
        self._codebook = checkpoint.codebook
        backend = jax.default_backend()
        self._decode_chunk = _CPU_DECODE_CHUNK if backend == "cpu" else 0
        self.host_chunk = min(self.max_batch, _HOST_CHUNK.get(backend, _HOST_CHUNK_DEFAULT))
        self._traces = 0
        self._lock = threading.Lock()
        encoder = Encoder(self.config, space_to_depth=backend == "cpu")
        decoder = Decoder(self.config)
        self._encode_eager = partial(self._encode_impl, encoder)
        self._decode_eager = partial(self._decode_impl, decoder)
        self._encode_jit = jax.jit(self._counted(self._encode_eager))
        self._decode_jit = jax.jit(self._counted(self._decode_eager))

    def __repr__(self) -> str:
        return f"Codec(source={self.source!r}, codebook={self.config.codebook_size}x{self.config.embedding_dim})"

    @property
    def codebook_size(self) -> int:
        """Number of codebook entries (128 for vae-oid): valid indices are ``0..codebook_size - 1``."""
        return self.config.codebook_size

    @property
    def compile_count(self) -> int:
        """How many times an encode or decode function was traced (≈ compiled) so far."""
        return self._traces

    def _counted(self, fn: Callable[[Params, jax.Array], jax.Array]) -> Callable[[Params, jax.Array], jax.Array]:
        def traced(params: Params, x: jax.Array) -> jax.Array:
            self._traces += 1  # runs once per trace, i.e. per compilation
            return fn(params, x)

        return traced

    def _encode_impl(self, encoder: Encoder, params: Params, masks: jax.Array) -> jax.Array:
        """``[B, 64, 64, 1]`` → int32 ``[B, 33]``: 16 indices, 16 float64-fallback flags (see `TIE_EPSILON`),
        then 1 where that input had a value outside [0, 1] or a NaN/inf (checked here, on the device,
        instead of in extra NumPy passes)."""
        z: jax.Array = encoder.apply({"params": params["encoder"]}, masks)  # type: ignore[assignment]
        indices, near = _quantize_settle_ties(
            z.reshape(z.shape[0], -1, z.shape[-1]), params["codebook"], params["codebook_spread"]
        )
        flat = masks.reshape(masks.shape[0], -1)
        ok = jnp.all(jnp.isfinite(flat) & (flat >= -_RANGE_SLACK) & (flat <= 1 + _RANGE_SLACK), axis=1)
        return jnp.concatenate([indices, near.astype(jnp.int32), (~ok).astype(jnp.int32)[:, None]], axis=1)

    def _decode_impl(self, decoder: Decoder, params: Params, indices: jax.Array) -> jax.Array:
        codebook = params["codebook"]
        side = round(indices.shape[1] ** 0.5)
        z = codebook[indices].reshape(indices.shape[0], side, side, codebook.shape[-1])
        n, chunk = indices.shape[0], self._decode_chunk
        variables = {"params": params["decoder"]}
        if chunk and n > chunk and n % chunk == 0:
            # XLA's CPU convolutions: the residual blocks (4x4) are fastest on the whole batch, the
            # upsampling convs on small chunks (their 64x64x16 activations stay in cache). Same sums.
            x: jax.Array = Decoder(decoder.config, part="trunk").apply(variables, z)  # type: ignore[assignment]
            head = Decoder(decoder.config, part="head")

            def decode_chunk(xs: jax.Array) -> jax.Array:
                out: jax.Array = head.apply(variables, xs)  # type: ignore[assignment]
                return out[..., 0]

            parts: jax.Array = jax.lax.map(decode_chunk, x.reshape(-1, chunk, *x.shape[1:]))
            return parts.reshape(n, *parts.shape[2:])
        out: jax.Array = decoder.apply(variables, z)  # type: ignore[assignment]
        return out[..., 0]

    def _bucket(self, n: int) -> int:
        b = _MIN_BUCKET
        while b < n:
            b *= 2
        return min(b, self.max_batch)

    def _dispatch(
        self, fn: Callable[[Params, jax.Array], jax.Array], x: np.ndarray, out_shape: tuple[int, ...], dtype: type
    ) -> Callable[[], np.ndarray]:
        """Starts the device work (JAX dispatches asynchronously) and returns a function that waits for it."""
        n = x.shape[0]
        if n == 0:
            return lambda: np.zeros((0, *out_shape), dtype)
        pending = []
        for start in range(0, n, self.max_batch):
            chunk = x[start : start + self.max_batch]
            count = chunk.shape[0]
            size = self._bucket(count)
            if chunk.shape[0] < size:
                pad = np.zeros((size - chunk.shape[0], *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            with self._lock:
                pending.append((fn(self._params, jnp.asarray(chunk)), count))
        return lambda: np.concatenate([np.asarray(out)[:k] for out, k in pending]).astype(dtype, copy=False)

    def encode_indices(self, masks64: npt.ArrayLike, *, jit: bool = True) -> npt.NDArray[np.int32]:
        """64×64 masks → codebook indices.

        Args:
          masks64: float ``[N, 64, 64]`` or ``[N, 64, 64, 1]``, values in [0, 1] (the crop already
            resized, as the reference feeds its encoder). bool is accepted as 0/1.
          jit: run compiled (default) or op by op (for testing; same results).

        Returns:
          int32 ``[N, 16]`` in ``0..codebook_size - 1``, row-major over the 4×4 latent grid. A row
          does not depend on the other rows, the batch size, ``jit`` or the device: near ties of the
          argmin are settled in float64 (see `TIE_EPSILON`).

        Raises:
          ValueError: wrong shape, NaN/inf, or values outside [0, 1].
          TypeError: not a real-valued array.
        """
        return self.encode_indices_async(masks64, jit=jit)()

    def encode_indices_async(self, masks64: npt.ArrayLike, *, jit: bool = True) -> Callable[[], npt.NDArray[np.int32]]:
        """Like `encode_indices`, but returns at once: call the result to wait for the indices.

        Shape and dtype errors are raised here; NaN/inf or values outside [0, 1] (checked on the
        device, with the encoding) when the result is called.
        """
        x = np.asarray(masks64)
        if x.dtype == np.bool_:
            x = x.astype(np.float32)
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise TypeError(f"masks64 must be a real-valued array, got dtype {x.dtype}")
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[1:] != (MASK_SIZE, MASK_SIZE):
            raise ValueError(f"masks64 must have shape [N, 64, 64] or [N, 64, 64, 1], got {np.shape(masks64)}")
        x = x.astype(np.float32, copy=False)
        fn = self._encode_jit if jit else self._encode_eager
        wait = self._dispatch(fn, x[..., None], (33,), np.int32)

        def result() -> npt.NDArray[np.int32]:
            out = wait()
            if out[:, 32].any():
                _raise_bad_values(x)
            indices = np.ascontiguousarray(out[:, :16])
            near = out[:, 16:32].astype(bool)
            rows = np.flatnonzero(near.any(axis=1))
            if rows.size:
                exact = self._argmin_f64(x[rows])
                indices[rows] = np.where(near[rows], exact, indices[rows])
            return indices

        return result

    def _argmin_f64(self, masks64: npt.NDArray[np.float32]) -> npt.NDArray[np.int32]:
        """``[n, 64, 64]`` → int32 ``[n, 16]``: the codebook argmin of the float64 NumPy encoder."""
        parts = []
        for start in range(0, masks64.shape[0], _F64_CHUNK):
            z = encode_latents_f64(self._encoder_layers, masks64[start : start + _F64_CHUNK])
            parts.append(distances_f64(z, self._codebook).argmin(axis=-1).astype(np.int32))
        return np.concatenate(parts)

    def decode_indices(self, indices: npt.ArrayLike, *, jit: bool = True) -> npt.NDArray[np.float32]:
        """Codebook indices → the decoder's raw 64×64 output.

        Args:
          indices: int ``[N, 16]`` in ``0..codebook_size - 1``.
          jit: run compiled (default) or op by op (for testing; same results).

        Returns:
          float32 ``[N, 64, 64]``: raw logits, not squashed; ``> 0`` is the mask.

        Raises:
          ValueError: wrong shape or an index out of range. TypeError: not integers.
        """
        idx = self._check_indices(indices)
        fn = self._decode_jit if jit else self._decode_eager
        return self._dispatch(fn, idx, (MASK_SIZE, MASK_SIZE), np.float32)()

    def _check_indices(self, indices: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """int ``[N, 16]`` in ``0..codebook_size - 1`` → contiguous int32 (the decoder's input check, shared
        with `paligemma_segcodec.paste_device`)."""
        idx = np.asarray(indices)
        if idx.ndim != 2 or idx.shape[1] != 16:
            raise ValueError(f"indices must have shape [N, 16], got {idx.shape}")
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.codebook_size):
            bad = np.argwhere((idx < 0) | (idx >= self.codebook_size))[0]
            raise ValueError(
                f"indices must be in 0..{self.codebook_size - 1}; "
                f"got {int(idx[tuple(bad)])} at {tuple(int(i) for i in bad)}"
            )
        return np.ascontiguousarray(idx, dtype=np.int32)

    def jit_after_decoder(self, after: Callable[..., tuple[jax.Array, ...]]) -> Callable[..., tuple[jax.Array, ...]]:
        """The decoder and ``after`` in one jit-compiled device call, with this codec's parameters.

        Returns ``call(indices, *args)``: ``indices`` int32 ``[B, 16]``, already checked (in
        ``0..codebook_size - 1``) and padded to a bucket by the caller, → ``after(decoded, *args)``,
        where ``decoded`` is the float32 ``[B, 64, 64]`` raw output (the same computation as
        `decode_indices` on a batch of ``B``). It returns as soon as the work is dispatched (JAX
        arrays; asynchronous). Each trace counts in `compile_count`. Every call of this method builds
        a new jit: keep the result.
        """

        def program(params: Params, indices: jax.Array, *args: jax.Array) -> tuple[jax.Array, ...]:
            self._traces += 1  # runs once per trace, i.e. per compilation
            return after(self._decode_eager(params, indices), *args)

        compiled = jax.jit(program)

        def call(indices: jax.Array, *args: jax.Array) -> tuple[jax.Array, ...]:
            with self._lock:
                out: tuple[jax.Array, ...] = compiled(self._params, indices, *args)
            return out

        return call

    def jit_encoder_with(
        self, before: Callable[[jax.Array], jax.Array], after: Callable[[jax.Array], jax.Array]
    ) -> Callable[[jax.Array], jax.Array]:
        """``before``, the encoder and ``after`` in one jit-compiled device call, with this codec's parameters.

        Returns ``call(x)``: ``before(x)`` must give float32 ``[B, 64, 64]`` encoder inputs (values in
        [0, 1]; the caller pads ``B`` to a bucket), which are encoded exactly as `encode_indices` does on
        a batch of ``B`` (same near-tie settlement); ``after`` gets the int32 ``[B, 33]`` result (16
        indices, 16 float64-fallback flags, 1 out-of-range flag) and its output is returned, as a JAX
        array, as soon as the work is dispatched (asynchronous). Each trace counts in `compile_count`.
        Every call of this method builds a new jit: keep the result.
        """

        def program(params: Params, x: jax.Array) -> jax.Array:
            self._traces += 1  # runs once per trace, i.e. per compilation
            return after(self._encode_eager(params, before(x)[..., None]))

        compiled = jax.jit(program)

        def call(x: jax.Array) -> jax.Array:
            with self._lock:
                out: jax.Array = compiled(self._params, x)
            return out

        return call


def _quantize_settle_ties(z: jax.Array, codebook: jax.Array, spread: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`paligemma_segcodec.model.quantize` (same formula, same argmin) with near ties settled.

    ``z`` ``[..., D]`` → (int32 indices ``[...]``, bool ``[...]``: the host must take the float64 argmin).
    ``spread``: ``(K, K)`` distances ``|e_i - e_j|`` between codebook entries (`_spread`).
    Outside the `TIE_EPSILON` window the float32 argmin is the float64 one. Inside it (best ``a``,
    second ``b``), the sign of the accurate ``d_b - d_a`` picks between them, unless it is within
    `GAP_EPSILON` of zero or a third entry is in the window too (then the float64 fallback is flagged).
    """
    dots = jnp.einsum("...d,kd->...k", z, codebook, precision=HIGHEST)
    zz = jnp.sum(z * z, axis=-1)
    ee = jnp.sum(codebook * codebook, axis=-1)
    dist = zz[..., None] - 2.0 * dots + ee
    entries = jnp.arange(dist.shape[-1])
    a = jnp.argmin(dist, axis=-1).astype(jnp.int32)
    d_a = jnp.min(dist, axis=-1)
    rest = jnp.where(entries == a[..., None], jnp.inf, dist)
    b = jnp.argmin(rest, axis=-1).astype(jnp.int32)
    d_b = jnp.min(rest, axis=-1)
    third = jnp.min(jnp.where(entries == b[..., None], jnp.inf, rest), axis=-1)
    window = TIE_EPSILON * (zz + ee[a])
    near = (d_b - d_a) < window
    e_a, e_b = codebook[a], codebook[b]
    v = e_a + e_b - 2.0 * z
    gap = jnp.sum((e_b - e_a) * v, axis=-1)  # = d_b - d_a without cancellation
    # <=: identical entries (gap and scale 0) go to float64 too
    unsure = jnp.abs(gap) <= GAP_EPSILON * spread[a, b] * (jnp.sqrt(jnp.sum(v * v, axis=-1)) + jnp.sqrt(zz))
    indices = jnp.where(near & (gap < 0), b, a)
    fallback = near & (unsure | ((third - d_a) < window))
    return indices, fallback


def _spread(codebook: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(K, K)`` float32 ``|e_i - e_j|`` (computed in float64) for `_quantize_settle_ties`."""
    e = codebook.astype(np.float64)
    spread: npt.NDArray[np.float32] = np.sqrt(np.sum((e[:, None, :] - e[None, :, :]) ** 2, axis=-1)).astype(np.float32)
    return spread


def _raise_bad_values(x: npt.NDArray[np.float32]) -> None:
    """The error for masks64 with NaN/inf or values outside [0, 1] (the device flagged some row)."""
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"masks64 contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
    raise ValueError(f"masks64 values must be in [0, 1], got range [{x.min()}, {x.max()}]")


_CACHE: dict[tuple[str, int, int, int | None], Codec] = {}
_CACHE_LOCK = threading.Lock()


def load_codec(path: str | os.PathLike[str] | None = None, *, max_batch: int | None = None) -> Codec:
    """Loads (and caches) the codec of a vae-oid checkpoint.

    Order: ``path`` → ``$PALIGEMMA_SEGCODEC_CHECKPOINT`` → download ``vae-oid.npz`` from the
    Hugging Face Space ``big-vision/paligemma-hf`` (HF cache, ``HF_HUB_OFFLINE`` honoured, sha256
    checked). The same file loaded twice gives the same `Codec`.

    Raises:
      CheckpointNotFoundError: missing file, or offline and not cached (the message says how to get it).
      CheckpointError: (a ValueError, one line naming the file) sha256 mismatch of the download, or
        any file `read_checkpoint` refuses: not a zip (an empty, text, Git LFS pointer, .safetensors,
        pickle or PyTorch .pt file is named as such), truncated or damaged, a zip bomb or a header
        claiming more than the size limit (refused before reading), a missing or unknown key, a
        non-float dtype, a wrong shape or a codebook that is not 128 × D (key, expected and found named).

    Args:
        path: the ``vae-oid.npz`` (or any checkpoint with its layer names); None to look at
            ``$PALIGEMMA_SEGCODEC_CHECKPOINT``, then the Hugging Face download.
        max_batch: largest batch sent to the device in one call; default: chosen for the backend.

    Returns:
        The `Codec` of that file, shared by every caller that loads the same file.

    Examples:
        >>> codec = load_codec("tests/data/fixture-vae.npz")  # the bundled stand-in
        >>> codec is load_codec("tests/data/fixture-vae.npz")
        True
        >>> codec.codebook_size
        128
    """
    resolved = Path(resolve_checkpoint(path)).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns, max_batch)
    with _CACHE_LOCK:
        codec = _CACHE.get(key)
        if codec is None:
            codec = Codec(read_checkpoint(resolved), max_batch=max_batch)
            _CACHE[key] = codec
        return codec
