"""Throughput benchmarks (``segcodec bench``, ``benchmarks/run.py``). Prints one JSON object.

Each measurement runs after a warm-up and reports a rate and its ratio against a baseline measured
in the same run: the library's own API called one mask at a time (batch 1), which is what the
reference's per-mask path does. Timings are wall-clock medians over repeats; nothing here asserts a
speed (shared machines are noisy): the numbers are for people to read.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = ["BENCHMARKS", "machine_info", "matmul_gflops", "run", "synthetic_masks"]

BENCHMARKS = ("codec", "encode_masks", "decode_tokens", "recompiles", "tf")


def machine_info() -> dict[str, Any]:
    """Device, library versions and core count, for the JSON header."""
    import flax
    import jax

    dev = jax.devices()[0]
    return {
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "machine": platform.machine(),
    }


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's dense float32 matmul rate through XLA (``n × n`` at ``precision=HIGHEST``, best of
    ``repeats``), in GFLOP/s: a yardstick for comparing rates measured on different or busy machines."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a, b = (jax.device_put(rng.standard_normal((n, n), dtype=np.float32)) for _ in range(2))
    dot = jax.jit(lambda x, y: jnp.dot(x, y, precision=jax.lax.Precision.HIGHEST))
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dot(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _rate(fn: Callable[[], Any], items: int, *, seconds: float, repeats: int = 5) -> float:
    """Items per second: median over ``repeats`` runs of ``fn`` (each repeated to last ~seconds/repeats)."""
    fn()  # warm-up (compilation)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    inner = max(1, int(seconds / repeats / one))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        rates.append(items * inner / (time.perf_counter() - t0))
    return float(statistics.median(rates))


def synthetic_masks(n: int, seed: int = 0, *, max_side: int = 1200) -> list[npt.NDArray[np.bool_]]:
    """``n`` bool masks of mixed sizes (60..max_side per side): ellipses, rings and noisy blobs."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(60, max_side, 2))
        yy, xx = np.ogrid[:h, :w]
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.1, 0.45) * h, rng.uniform(0.1, 0.45) * w
        r = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        m = r < 1
        if rng.random() < 0.3:
            m &= r > 0.4
        out.append(m)
    return out


def load_masks(
    folder: str | os.PathLike[str], limit: int | None = None, threshold: int = 127
) -> list[npt.NDArray[np.bool_]]:
    """The non-empty masks of a folder (sorted by name), thresholded ``> threshold``."""
    from paligemma_segcodec.datasets.files import IMAGE_EXTENSIONS
    from paligemma_segcodec.maskio import binarize, read_mask_values

    out = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            m = binarize(read_mask_values(p), threshold)
            if m.any():
                out.append(m)
        if limit and len(out) >= limit:
            break
    return out


def bench_codec(codec: Codec, *, batch: int, seconds: float) -> dict[str, Any]:
    import jax

    rng = np.random.default_rng(0)
    x = (rng.random((batch, 64, 64)) > 0.5).astype(np.float32)
    idx = codec.encode_indices(x)
    enc = _rate(lambda: codec.encode_indices(x), batch, seconds=seconds)
    enc1 = _rate(lambda: codec.encode_indices(x[:1]), 1, seconds=seconds / 2)
    dec = _rate(lambda: codec.decode_indices(idx), batch, seconds=seconds)
    dec1 = _rate(lambda: codec.decode_indices(idx[:1]), 1, seconds=seconds / 2)
    plain = jit_encoder(codec, space_to_depth=False)
    xd = jax.device_put(x[..., None])
    enc_plain = _rate(lambda: plain(xd).block_until_ready(), batch, seconds=seconds)
    return {
        "encode_indices": {
            "batch": batch,
            "masks_per_s": enc,
            "baseline_batch1_masks_per_s": enc1,
            "ratio": enc / enc1,
            # Machine calibration: the plain jit'd lax.conv encoder (every stride-2 conv as one
            # conv_general_dilated, no space-to-depth), same batch, its input already on the device
            # (the library's rate above includes the host-to-device copy).
            "plain_lax_encoder_masks_per_s": enc_plain,
            "ratio_vs_plain_lax": enc / enc_plain,
        },
        "decode_indices": {
            "batch": batch,
            "masks_per_s": dec,
            "baseline_batch1_masks_per_s": dec1,
            "ratio": dec / dec1,
        },
    }


def jit_encoder(codec: Codec, *, space_to_depth: bool) -> Callable[[Any], Any]:
    """``[B, 64, 64, 1]`` → indices with ``codec``'s weights and the first layer in the given form,
    without the library's input check: a baseline/variant for the benchmarks."""
    import jax

    from paligemma_segcodec.model import Encoder, quantize

    encoder = Encoder(codec.config, space_to_depth=space_to_depth)

    @jax.jit
    def encode(params: Any, masks: Any) -> Any:
        z = encoder.apply({"params": params["encoder"]}, masks)
        return quantize(z.reshape(z.shape[0], -1, z.shape[-1]), params["codebook"])  # type: ignore[union-attr]

    return lambda masks: encode(codec._params, masks)


def bench_encode_masks(
    codec: Codec, masks: Sequence[npt.NDArray[np.bool_]], *, seconds: float, source: str
) -> dict[str, Any]:
    from paligemma_segcodec.api import encode_mask, encode_masks
    from paligemma_segcodec.boxes import tight_box

    boxes = [tight_box(m) for m in masks]
    rate = _rate(lambda: encode_masks(masks, boxes, codec=codec), len(masks), seconds=seconds, repeats=3)
    few = list(range(min(len(masks), 50)))
    base = _rate(
        lambda: [encode_mask(masks[i], boxes[i], codec=codec) for i in few], len(few), seconds=seconds / 2, repeats=3
    )
    px = float(np.mean([m.size for m in masks]))
    return {
        "masks": len(masks),
        "source": source,
        "mean_pixels": px,
        "max_side": int(max(max(m.shape) for m in masks)),
        "masks_per_s": rate,
        "baseline_per_mask_masks_per_s": base,
        "ratio": rate / base,
    }


def bench_decode_tokens(codec: Codec, *, objects: int, size: int, seconds: float) -> dict[str, Any]:
    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.tokens import format_object

    rng = np.random.default_rng(1)
    texts = []
    for _ in range(objects):
        y1, x1 = (int(v) for v in rng.integers(0, 700, 2))
        y2, x2 = y1 + int(rng.integers(50, 320)), x1 + int(rng.integers(50, 320))
        texts.append(format_object((y1, x1, y2, x2), [int(v) for v in rng.integers(0, 128, 16)], "obj"))
    answer = " ; ".join(texts)
    rate = _rate(
        lambda: decode_tokens(answer, height=size, width=size, codec=codec), objects, seconds=seconds, repeats=3
    )
    few = texts[:50]
    base = _rate(
        lambda: [decode_tokens(t, height=size, width=size, codec=codec) for t in few],
        len(few),
        seconds=seconds / 2,
        repeats=3,
    )
    return {
        "objects": objects,
        "image": [size, size],
        "objects_per_s": rate,
        "baseline_one_per_call_objects_per_s": base,
        "ratio": rate / base,
    }


def bench_tf_reference(
    codec: Codec, masks: Sequence[npt.NDArray[np.bool_]], *, batch: int, seconds: float
) -> dict[str, Any]:
    """The reference's math rebuilt in TensorFlow (`paligemma_segcodec._tf_reference`), timed here.

    Its encoder at ``batch`` (``tf.nn.conv2d``: oneDNN on x86) and its one-mask-per-call path (crop,
    ``tf.image.resize(antialias=True)``, encoder, in one ``tf.function``), plus how many of those
    masks get the same tokens as `encode_masks`. Needs the ``[tf]`` extra; skipped without it.
    """
    from paligemma_segcodec._tf_reference import TfReference
    from paligemma_segcodec.api import encode_masks
    from paligemma_segcodec.boxes import tight_box
    from paligemma_segcodec.checkpoint import read_checkpoint
    from paligemma_segcodec.tokens import format_object

    try:
        ref = TfReference(read_checkpoint(codec.source))
    except ImportError as exc:  # no TensorFlow: the message says which extra to install
        return {"skipped": str(exc)}
    x = (np.random.default_rng(0).random((batch, 64, 64)) > 0.5).astype(np.float32)
    enc = _rate(lambda: ref.encode_batch(x), batch, seconds=seconds)
    few = list(masks[:50])
    boxes = [tight_box(m) for m in few]
    per_mask = _rate(
        lambda: [ref.encode_one(m, b) for m, b in zip(few, boxes, strict=True)], len(few), seconds=seconds, repeats=3
    )
    theirs = [format_object(*ref.encode_one(m, b), None) for m, b in zip(few, boxes, strict=True)]
    ours = encode_masks(few, boxes, codec=codec)
    return {
        "tensorflow": ref.version,
        "encoder_batch": batch,
        "encoder_masks_per_s": enc,
        "per_mask_masks_per_s": per_mask,
        "same_tokens_as_encode_masks": f"{sum(a == b for a, b in zip(ours, theirs, strict=True))}/{len(few)}",
    }


def count_recompiles(codec: Codec, masks: Sequence[npt.NDArray[np.bool_]]) -> dict[str, int]:
    """Compilations while N and mask sizes vary, after one warm-up pass over every bucket."""
    from paligemma_segcodec.api import encode_masks

    rng = np.random.default_rng(2)
    sizes = [1, 3, 8, 9, 17, 31, 64, 100, 200, 256, 300, 700]
    x = np.zeros((max(sizes), 64, 64), np.float32)
    for n in sizes:  # warm-up: compiles each bucket once
        codec.decode_indices(codec.encode_indices(x[:n]))
    before = codec.compile_count
    for n in rng.permutation(sizes):
        picked = [masks[int(i)] for i in rng.integers(0, len(masks), int(n))]
        codec.decode_indices(np.array([[0] * 16] * int(n)))
        encode_masks(picked, codec=codec)
    return {"warmup_compiles": before, "compiles_after_warmup": codec.compile_count - before}


def run(
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    masks_dir: str | os.PathLike[str] | None = None,
    limit: int = 200,
    batch: int = 256,
    seconds: float = 3.0,
    stream: int = 0,
    only: Sequence[str] = BENCHMARKS,
) -> dict[str, Any]:
    """All benchmarks; returns the JSON-ready result.

    Raises:
      ValueError: a name in ``only`` that is not one of `BENCHMARKS` (or ``"none"``).
    """
    from paligemma_segcodec.codec import load_codec

    unknown = sorted(set(only) - set(BENCHMARKS) - {"none"})
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)} (or none)")

    t0 = time.perf_counter()
    codec = load_codec(checkpoint)
    result: dict[str, Any] = {"machine": machine_info(), "checkpoint": codec.source}
    result["machine"]["xla_matmul_gflops"] = matmul_gflops()
    if masks_dir:
        masks = load_masks(masks_dir, limit)
        source = f"{masks_dir} (first {len(masks)} non-empty, > 127, tight box)"
    else:
        masks = synthetic_masks(limit)
        source = f"synthetic: {len(masks)} masks of mixed sizes"
    if "codec" in only:
        result.update(bench_codec(codec, batch=batch, seconds=seconds))
    if "encode_masks" in only:
        result["encode_masks"] = bench_encode_masks(codec, masks, seconds=seconds, source=source)
    if "decode_tokens" in only:
        result["decode_tokens"] = bench_decode_tokens(codec, objects=1000, size=512, seconds=seconds)
    if "recompiles" in only:
        result["recompiles"] = count_recompiles(codec, masks)
    if "tf" in only:  # last: TensorFlow's thread pools stay around once it is imported
        tf_ref = bench_tf_reference(codec, masks, batch=batch, seconds=seconds)
        result["tf_reference"] = tf_ref
        if "encoder_masks_per_s" in tf_ref and "encode_indices" in result:
            tf_ref["ratio_encode_indices_vs_tf_encoder"] = (
                result["encode_indices"]["masks_per_s"] / tf_ref["encoder_masks_per_s"]
            )
        if "per_mask_masks_per_s" in tf_ref and "encode_masks" in result:
            tf_ref["ratio_encode_masks_vs_tf_per_mask"] = (
                result["encode_masks"]["masks_per_s"] / tf_ref["per_mask_masks_per_s"]
            )
    if stream:
        from paligemma_segcodec.bench_stream import bench_stream

        result["stream_convert"] = bench_stream(
            str(checkpoint) if checkpoint else None, str(masks_dir) if masks_dir else None, stream
        )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["seconds"] = time.perf_counter() - t0
    return result
