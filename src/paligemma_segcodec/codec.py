"""`Codec`: the jit-compiled, batched VQ-VAE encoder/decoder, and `load_codec`.

Both directions run under ``jax.jit`` with the parameters resident on the default device
(the GPU when there is one). Batches are padded to a few bucket sizes (powers of two from 1 up to
``max_batch``) and longer inputs are split into ``max_batch`` chunks, so varying N never causes a
recompilation once each bucket has been compiled. All math runs at ``precision=HIGHEST``, so a GPU
gives the CPU's tokens.
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
from paligemma_segcodec.model import Decoder, Encoder, ModelConfig, Params, params_from_checkpoint, quantize

__all__ = ["MASK_SIZE", "Codec", "load_codec"]

MASK_SIZE = 64
"""Side of the square masks the VQ-VAE encodes and decodes."""

_MIN_BUCKET = 1  # one mask costs one mask (batch-1 calls are 3x faster than padding to 8)
_CPU_DECODE_CHUNK = 32  # measured best decoder batch on a 2-core CPU (benchmarks/)
# encode_masks sends chunks of this many masks so that the host's crop + resize of the next chunk
# overlaps the device's encoding of this one. On a CPU, 64 costs the encoder little against 256.
_HOST_CHUNK = {"cpu": 64}
_HOST_CHUNK_DEFAULT = 1024
_RANGE_SLACK = 1e-3  # float rounding in the resize can overshoot [0, 1] by a few ulps; not clipped, as the reference


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
    """

    def __init__(self, checkpoint: Checkpoint, *, max_batch: int | None = None) -> None:
        self.config: ModelConfig
        self.config, params = params_from_checkpoint(checkpoint)
        self.source = checkpoint.source
        self.max_batch = int(max_batch or _default_max_batch())
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        self._params: Params = jax.device_put(params)
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
        """``[B, 64, 64, 1]`` → int32 ``[B, 17]``: 16 indices, then 1 where that input had a value
        outside [0, 1] or a NaN/inf (checked here, on the device, instead of in extra NumPy passes)."""
        z: jax.Array = encoder.apply({"params": params["encoder"]}, masks)  # type: ignore[assignment]
        indices = quantize(z.reshape(z.shape[0], -1, z.shape[-1]), params["codebook"])
        flat = masks.reshape(masks.shape[0], -1)
        ok = jnp.all(jnp.isfinite(flat) & (flat >= -_RANGE_SLACK) & (flat <= 1 + _RANGE_SLACK), axis=1)
        return jnp.concatenate([indices, (~ok).astype(jnp.int32)[:, None]], axis=1)

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
          int32 ``[N, 16]`` in ``0..codebook_size - 1``, row-major over the 4×4 latent grid.

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
        wait = self._dispatch(fn, x[..., None], (17,), np.int32)

        def result() -> npt.NDArray[np.int32]:
            out = wait()
            if out[:, 16].any():
                _raise_bad_values(x)
            return np.ascontiguousarray(out[:, :16])

        return result

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
        fn = self._decode_jit if jit else self._decode_eager
        return self._dispatch(fn, idx.astype(np.int32), (MASK_SIZE, MASK_SIZE), np.float32)()


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
