"""Throughput benchmarks (``segcodec bench``, ``benchmarks/run.py``). Prints one JSON object.

Each measurement runs after a warm-up and reports a rate and its ratio against a baseline measured
in the same run: the library's own API called one mask at a time (batch 1), which is what the
reference's per-mask path does. A rate is the median over repeats; each measurement also records the
minimum, maximum and spread (``(max - min) / median``) of its repeats. Nothing here asserts a speed
(shared machines are noisy): the numbers are for people to read, and the run says when they are
shaky (a ``warnings`` list: too few masks for a stable ratio, or a spread above 10 %).

While it runs, each stage prints one line to the ``progress`` stream (the CLI: stderr) as it
finishes: name, rate, spread, elapsed seconds. The JSON header records the machine (CPU model,
cores, platform, `matmul_gflops`), the versions, and the install flavour (which optional parts are
installed, and whether the compiled resize kernel is active).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.bench_masks import load_masks, synthetic_masks

if TYPE_CHECKING:
    from paligemma_segcodec.codec import Codec

__all__ = [
    "BENCHMARKS",
    "ENCODER_CORE_TARGET",
    "MAX_SPREAD",
    "MIN_MASKS",
    "Log",
    "Rate",
    "install_info",
    "machine_info",
    "matmul_gflops",
    "paired_ratio",
    "run",
    "synthetic_masks",
    "versions",
]

BENCHMARKS = ("codec", "encode_masks", "numpy_fallback", "decode_tokens", "recompiles", "tf")

MIN_MASKS = 200
"""Fewer masks than this in the end-to-end sample: the run warns that its ratios are not stable."""
MAX_SPREAD = 0.10
"""A measurement whose repeats spread more than this (``(max - min) / median``): the run warns."""
ENCODER_CORE_TARGET = 0.65
"""Throughput issue: ``encode_masks`` end to end ≥ 0.65 × `Codec.encode_indices` at batch 256, same run."""

# Optional parts: module → (distribution names to ask for a version, the extra that installs it).
_OPTIONAL = {
    "numba": (("numba",), "fast"),
    "tensorflow": (("tensorflow", "tensorflow-cpu"), "tf"),
    "supervision": (("supervision",), "supervision"),
    "datasets": (("datasets",), "hf"),
    "ray": (("ray",), "ray"),
}


def _cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else `platform.processor` (or None)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """Device, CPU model, core count, platform and the main library versions, for the JSON header."""
    import flax
    import jax

    dev = jax.devices()[0]
    return {
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "backend": jax.default_backend(),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        # also under "versions" (kept here: benchmarks/gpu_check.py and older result files read them)
        "jax": jax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    """Versions of Python and the libraries that set the speed (None: not installed)."""
    from paligemma_segcodec import __version__

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": _dist_version("jax"),
        "jaxlib": _dist_version("jaxlib"),
        "flax": _dist_version("flax"),
        "pillow": _dist_version("pillow", "Pillow"),
        "numba": _dist_version("numba"),
        "paligemma_segcodec": __version__,
    }


def install_info() -> dict[str, Any]:
    """The install flavour: which optional parts are installed (found by the import system; TensorFlow,
    Ray and datasets are not imported here, importing them would change the other timings), the
    extras they correspond to, and whether the compiled resize kernel is active (numba present and
    not switched off by ``PALIGEMMA_SEGCODEC_NUMBA=0``)."""
    from paligemma_segcodec.resize import _numba_kernel

    optional: dict[str, str | None] = {}
    for module, (dists, _) in _OPTIONAL.items():
        found = importlib.util.find_spec(module) is not None
        optional[module] = (_dist_version(*dists) or "unknown version") if found else None
    return {
        "optional": optional,
        "extras": sorted({extra for module, (_, extra) in _OPTIONAL.items() if optional[module] is not None}),
        "compiled_resize": _numba_kernel() is not None,
        "PALIGEMMA_SEGCODEC_NUMBA": os.environ.get("PALIGEMMA_SEGCODEC_NUMBA"),
        "PALIGEMMA_SEGCODEC_HOST_THREADS": os.environ.get("PALIGEMMA_SEGCODEC_HOST_THREADS"),
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


@dataclass(frozen=True)
class Rate:
    """One timed measurement: items per second in each repeat (after a warm-up), and its total time."""

    rates: tuple[float, ...]
    elapsed: float

    @property
    def median(self) -> float:
        return float(statistics.median(self.rates))

    @property
    def spread(self) -> float:
        """``(max - min) / median`` of the repeats' rates."""
        return (max(self.rates) - min(self.rates)) / self.median

    def json(self) -> dict[str, Any]:
        return {
            "min": min(self.rates),
            "median": self.median,
            "max": max(self.rates),
            "spread": self.spread,
            "repeats": len(self.rates),
            "elapsed_s": self.elapsed,
        }


def _rate(fn: Callable[[], Any], items: int, *, seconds: float, repeats: int = 5) -> Rate:
    """Items per second in each of ``repeats`` runs of ``fn`` (each repeated to last ~seconds/repeats),
    after a warm-up call (compilation)."""
    start = time.perf_counter()
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
    return Rate(tuple(rates), time.perf_counter() - start)


def paired_ratio(
    fn_a: Callable[[], Any], items_a: int, fn_b: Callable[[], Any], items_b: int, *, seconds: float, rounds: int = 7
) -> dict[str, Any]:
    """Rate of ``fn_a`` over rate of ``fn_b``, measured in alternation: each round times one stretch
    of each (back to back), and the per-round ratios' median is reported. Load that comes and goes
    on a shared machine hits both sides of a round alike, so this ratio is steadier than the ratio
    of two rates measured minutes apart."""
    fn_a()  # warm-up
    fn_b()

    def stretch(fn: Callable[[], Any], items: int, reps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return items * reps / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    fn_a()
    reps_a = max(1, int(seconds / 2 / rounds / max(time.perf_counter() - t0, 1e-6)))
    t0 = time.perf_counter()
    fn_b()
    reps_b = max(1, int(seconds / 2 / rounds / max(time.perf_counter() - t0, 1e-6)))
    ratios, rates_a, rates_b = [], [], []
    for _ in range(rounds):
        a = stretch(fn_a, items_a, reps_a)
        b = stretch(fn_b, items_b, reps_b)
        rates_a.append(a)
        rates_b.append(b)
        ratios.append(a / b)
    median = float(statistics.median(ratios))
    return {
        "ratio": median,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "spread": (max(ratios) - min(ratios)) / median,
        "rounds": rounds,
        "a_masks_per_s_median": float(statistics.median(rates_a)),
        "b_masks_per_s_median": float(statistics.median(rates_b)),
    }


class Log:
    """A run's stage lines (one per finished measurement, written to ``stream``) and its warnings.

    ``stream=None``: silent; the warnings are still collected.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.warnings: list[str] = []

    def line(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.line(f"warning: {text}")

    def stage(self, name: str, value: str, elapsed: float, spread: float | None = None) -> None:
        spread_text = "" if spread is None else f"spread {spread:5.1%}"
        self.line(f"{name:<44} {value:>18}  {spread_text:<13} {elapsed:6.1f}s")

    def rate(
        self,
        name: str,
        fn: Callable[[], Any],
        items: int,
        *,
        seconds: float,
        repeats: int = 5,
        unit: str = "masks/s",
    ) -> Rate:
        """`_rate`, then its stage line, and a warning if its repeats spread more than `MAX_SPREAD`."""
        r = _rate(fn, items, seconds=seconds, repeats=repeats)
        self.stage(name, f"{r.median:,.0f} {unit}", r.elapsed, r.spread)
        if r.spread > MAX_SPREAD:
            self.warn(
                f"{name}: the {len(r.rates)} repeats spread {r.spread:.1%} (> {MAX_SPREAD:.0%}; "
                f"{min(r.rates):,.0f}..{max(r.rates):,.0f} {unit}): a busy or noisy machine; "
                "re-run, or raise --seconds"
            )
        return r


def _timing(main: Rate, **rates: Rate) -> dict[str, Any]:
    """``spread`` (the main rate's) and ``timing``: min/median/max/spread of every rate in a measurement."""
    return {"spread": main.spread, "timing": {key: r.json() for key, r in rates.items()}}


def _bench_masks(masks_dir: str | os.PathLike[str] | None, limit: int) -> tuple[list[npt.NDArray[np.bool_]], str]:
    """The end-to-end sample (the masks of ``masks_dir``, else synthetic ones) and its description."""
    if masks_dir:
        masks = load_masks(masks_dir, limit)
        return masks, f"{masks_dir} (first {len(masks)} non-empty, > 127, tight box)"
    masks = synthetic_masks(limit)
    return masks, f"synthetic: {len(masks)} masks of mixed sizes"


def bench_codec(codec: Codec, *, batch: int, seconds: float, log: Log | None = None) -> dict[str, Any]:
    import jax

    log = log or Log()
    rng = np.random.default_rng(0)
    x = (rng.random((batch, 64, 64)) > 0.5).astype(np.float32)
    idx = codec.encode_indices(x)
    enc = log.rate(f"encode_indices (batch {batch})", lambda: codec.encode_indices(x), batch, seconds=seconds)
    enc1 = log.rate("encode_indices (batch 1)", lambda: codec.encode_indices(x[:1]), 1, seconds=seconds / 2)
    dec = log.rate(f"decode_indices (batch {batch})", lambda: codec.decode_indices(idx), batch, seconds=seconds)
    dec1 = log.rate("decode_indices (batch 1)", lambda: codec.decode_indices(idx[:1]), 1, seconds=seconds / 2)
    plain = jit_encoder(codec, space_to_depth=False)
    xd = jax.device_put(x[..., None])
    enc_plain = log.rate(
        f"plain lax.conv encoder (batch {batch})", lambda: plain(xd).block_until_ready(), batch, seconds=seconds
    )
    return {
        "encode_indices": {
            "batch": batch,
            "masks_per_s": enc.median,
            "baseline_batch1_masks_per_s": enc1.median,
            "ratio": enc.median / enc1.median,
            # Machine calibration: the plain jit'd lax.conv encoder (every stride-2 conv as one
            # conv_general_dilated, no space-to-depth), same batch, its input already on the device
            # (the library's rate above includes the host-to-device copy).
            "plain_lax_encoder_masks_per_s": enc_plain.median,
            "ratio_vs_plain_lax": enc.median / enc_plain.median,
            **_timing(
                enc,
                masks_per_s=enc,
                baseline_batch1_masks_per_s=enc1,
                plain_lax_encoder_masks_per_s=enc_plain,
            ),
        },
        "decode_indices": {
            "batch": batch,
            "masks_per_s": dec.median,
            "baseline_batch1_masks_per_s": dec1.median,
            "ratio": dec.median / dec1.median,
            **_timing(dec, masks_per_s=dec, baseline_batch1_masks_per_s=dec1),
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


def host_prep(
    masks: Sequence[npt.NDArray[np.bool_]],
    boxes: Sequence[Sequence[float]],
    *,
    seconds: float,
    log: Log | None = None,
    name: str = "host prep: prep.prepare_batch",
) -> dict[str, Any]:
    """The host side of `encode_masks` alone (crop + resize into the float32 ``[N, 64, 64]`` encoder
    input, the ``<loc>`` indices), single-threaded on the calling thread: µs per mask."""
    from paligemma_segcodec.prep import prepare_batch

    log = log or Log()
    r = log.rate(name, lambda: prepare_batch(masks, boxes), len(masks), seconds=seconds, repeats=3)
    out: dict[str, Any] = {"function": "paligemma_segcodec.prep.prepare_batch", "us_per_mask": 1e6 / r.median}
    out.update(_timing(r, masks_per_s=r))
    return out


def _device_prep(
    masks: Sequence[npt.NDArray[np.bool_]], boxes: Sequence[Sequence[float]], *, seconds: float, log: Log
) -> dict[str, Any] | None:
    """The host side of the device path, when `paligemma_segcodec.prep_device` exists: each mask's crop
    (a view, `boxes.crop_pixels`) bit-packed into its size bucket by ``pack_crops(crops, threads=1)``."""
    from paligemma_segcodec.boxes import crop_pixels

    try:
        prep_device = importlib.import_module("paligemma_segcodec.prep_device")
    except ImportError:
        return None
    pack_crops = getattr(prep_device, "pack_crops", None)
    if pack_crops is None:
        return None
    cuts = [crop_pixels(b, *m.shape) for m, b in zip(masks, boxes, strict=True)]

    def pack() -> Any:
        return pack_crops([m[t:b, l:r] for m, (t, l, b, r) in zip(masks, cuts, strict=True)], threads=1)

    r = log.rate("host prep: prep_device.pack_crops", pack, len(masks), seconds=seconds, repeats=3)
    out: dict[str, Any] = {
        "function": "paligemma_segcodec.prep_device.pack_crops (threads=1, crops cut as views)",
        "us_per_mask": 1e6 / r.median,
    }
    out.update(_timing(r, masks_per_s=r))
    return out


def bench_encode_masks(
    codec: Codec,
    masks: Sequence[npt.NDArray[np.bool_]],
    *,
    seconds: float,
    source: str,
    log: Log | None = None,
) -> dict[str, Any]:
    from paligemma_segcodec import api
    from paligemma_segcodec.api import encode_mask, encode_masks
    from paligemma_segcodec.boxes import tight_box

    log = log or Log()
    host_threads = getattr(api, "_host_threads", None)  # threads encode_masks prepares chunks on
    if len(masks) < MIN_MASKS:
        log.warn(
            f"encode_masks: {len(masks)} masks in the sample (< {MIN_MASKS}): its rate and ratios are not "
            f"stable; use --limit {MIN_MASKS} or more"
        )
    boxes = [tight_box(m) for m in masks]
    rate = log.rate(
        f"encode_masks ({len(masks)} masks)",
        lambda: encode_masks(masks, boxes, codec=codec),
        len(masks),
        seconds=seconds,
        repeats=3,
    )
    few = list(range(min(len(masks), 50)))
    base = log.rate(
        f"encode_mask, one per call ({len(few)} masks)",
        lambda: [encode_mask(masks[i], boxes[i], codec=codec) for i in few],
        len(few),
        seconds=seconds / 2,
        repeats=3,
    )
    prep = host_prep(masks, boxes, seconds=seconds / 2, log=log)
    # The §2 ratio, measured in alternation with the encoder core (batch 256 of these masks' own
    # 64x64 inputs), so that load changes during the run cancel.
    from paligemma_segcodec.prep import prepare_batch

    core_batch = 256
    _, core_x = prepare_batch([masks[i % len(masks)] for i in range(core_batch)])
    t1 = time.perf_counter()
    paired = paired_ratio(
        lambda: encode_masks(masks, boxes, codec=codec),
        len(masks),
        lambda: codec.encode_indices(core_x),
        core_batch,
        seconds=2 * seconds,
    )
    log.stage(
        f"encode_masks / encode_indices ({core_batch}), paired",
        f"{paired['ratio']:.2f}x",
        time.perf_counter() - t1,
        paired["spread"],
    )
    px = float(np.mean([m.size for m in masks]))
    out = {
        "masks": len(masks),
        "source": source,
        "boxes": "given: the tight boxes, computed before timing",
        "mean_pixels": px,
        "max_side": int(max(max(m.shape) for m in masks)),
        "host_threads": host_threads() if host_threads is not None else None,
        "masks_per_s": rate.median,
        "baseline_per_mask_masks_per_s": base.median,
        "ratio": rate.median / base.median,
        "host_prep_us_per_mask": prep["us_per_mask"],
        "host_prep": prep,
        "ratio_vs_encoder_core_paired": paired["ratio"],
        "paired_vs_encoder_core": {**paired, "encoder_core_batch": core_batch, "target": ENCODER_CORE_TARGET},
        **_timing(rate, masks_per_s=rate, baseline_per_mask_masks_per_s=base),
    }
    device_prep = _device_prep(masks, boxes, seconds=seconds / 2, log=log)
    if device_prep is not None:
        out["device_prep_us_per_mask"] = device_prep["us_per_mask"]
        out["device_prep"] = device_prep
    return out


def _fallback_child(checkpoint: str, masks_dir: str, limit: str, seconds: str) -> dict[str, Any]:
    """In a child started with ``PALIGEMMA_SEGCODEC_NUMBA=0``: `encode_masks` on the same masks, and
    its host prep, on the NumPy resize path."""
    from paligemma_segcodec.api import encode_masks
    from paligemma_segcodec.boxes import tight_box
    from paligemma_segcodec.codec import load_codec
    from paligemma_segcodec.resize import _numba_kernel

    codec = load_codec(checkpoint or None)
    masks, _ = _bench_masks(masks_dir or None, int(limit))
    boxes = [tight_box(m) for m in masks]
    secs = float(seconds)
    r = _rate(lambda: encode_masks(masks, boxes, codec=codec), len(masks), seconds=secs, repeats=3)
    prep = host_prep(masks, boxes, seconds=secs / 2)
    return {
        "compiled_resize": _numba_kernel() is not None,
        "masks": len(masks),
        "masks_per_s": r.median,
        "rate": r.json(),
        "host_prep_us_per_mask": prep["us_per_mask"],
    }


def bench_numpy_fallback(
    checkpoint: str | os.PathLike[str] | None,
    masks_dir: str | os.PathLike[str] | None,
    limit: int,
    *,
    seconds: float,
    compiled: dict[str, Any] | None,
    log: Log | None = None,
) -> dict[str, Any]:
    """`encode_masks` with the compiled resize switched off (a child process with
    ``PALIGEMMA_SEGCODEC_NUMBA=0``, the same masks and seconds) against ``compiled``, the
    `bench_encode_masks` result of this run (None: not measured)."""
    log = log or Log()
    code = (
        "import json, sys; from paligemma_segcodec.bench import _fallback_child as f; "
        "print(json.dumps(f(*sys.argv[1:])))"
    )
    args = [sys.executable, "-c", code, str(checkpoint or ""), str(masks_dir or ""), str(limit), str(seconds)]
    env = {**os.environ, "PALIGEMMA_SEGCODEC_NUMBA": "0"}
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        log.warn(f"numpy_fallback: the child process failed (exit {proc.returncode}): {tail}")
        return {"failed": proc.stderr.strip().splitlines()[-20:]}
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    spread = float(child["rate"]["spread"])
    log.stage(
        f"encode_masks, NumPy resize ({child['masks']} masks)",
        f"{child['masks_per_s']:,.0f} masks/s",
        time.perf_counter() - t0,
        spread,
    )
    if spread > MAX_SPREAD:
        log.warn(
            f"encode_masks, NumPy resize: the repeats spread {spread:.1%} (> {MAX_SPREAD:.0%}): a busy or "
            "noisy machine; re-run, or raise --seconds"
        )
    out: dict[str, Any] = {
        "how": "a child process with PALIGEMMA_SEGCODEC_NUMBA=0: the same masks, boxes and --seconds",
        "masks": child["masks"],
        "masks_per_s": child["masks_per_s"],
        "host_prep_us_per_mask": child["host_prep_us_per_mask"],
        "compiled_resize_in_child": child["compiled_resize"],
        "spread": child["rate"]["spread"],
        "timing": {"masks_per_s": child["rate"]},
    }
    if compiled is not None:
        out["compiled_masks_per_s"] = compiled["masks_per_s"]
        out["compiled_host_prep_us_per_mask"] = compiled["host_prep_us_per_mask"]
        out["numpy_fallback_vs_compiled"] = child["masks_per_s"] / compiled["masks_per_s"]
        log.line(
            f"  NumPy fallback / compiled resize: {out['numpy_fallback_vs_compiled']:.2f}x "
            f"({child['masks_per_s']:,.0f} vs {compiled['masks_per_s']:,.0f} masks/s)"
        )
    return out


def bench_decode_tokens(
    codec: Codec, *, objects: int, size: int, seconds: float, log: Log | None = None
) -> dict[str, Any]:
    from paligemma_segcodec.api import decode_tokens
    from paligemma_segcodec.tokens import format_object

    log = log or Log()
    rng = np.random.default_rng(1)
    texts = []
    for _ in range(objects):
        y1, x1 = (int(v) for v in rng.integers(0, 700, 2))
        y2, x2 = y1 + int(rng.integers(50, 320)), x1 + int(rng.integers(50, 320))
        texts.append(format_object((y1, x1, y2, x2), [int(v) for v in rng.integers(0, 128, 16)], "obj"))
    answer = " ; ".join(texts)
    rate = log.rate(
        f"decode_tokens ({objects} objects, {size}x{size})",
        lambda: decode_tokens(answer, height=size, width=size, codec=codec),
        objects,
        seconds=seconds,
        repeats=3,
        unit="objects/s",
    )
    few = texts[:50]
    base = log.rate(
        f"decode_tokens, one object per call ({len(few)})",
        lambda: [decode_tokens(t, height=size, width=size, codec=codec) for t in few],
        len(few),
        seconds=seconds / 2,
        repeats=3,
        unit="objects/s",
    )
    return {
        "objects": objects,
        "image": [size, size],
        "objects_per_s": rate.median,
        "baseline_one_per_call_objects_per_s": base.median,
        "ratio": rate.median / base.median,
        **_timing(rate, objects_per_s=rate, baseline_one_per_call_objects_per_s=base),
    }


def bench_tf_reference(
    codec: Codec, masks: Sequence[npt.NDArray[np.bool_]], *, batch: int, seconds: float, log: Log | None = None
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

    log = log or Log()
    try:
        ref = TfReference(read_checkpoint(codec.source))
    except ImportError as exc:  # no TensorFlow: the message says which extra to install
        log.line(f"{'tf_reference':<44} skipped: {exc}")
        return {"skipped": str(exc)}
    x = (np.random.default_rng(0).random((batch, 64, 64)) > 0.5).astype(np.float32)
    enc = log.rate(f"TF reference encoder (batch {batch})", lambda: ref.encode_batch(x), batch, seconds=seconds)
    few = list(masks[:50])
    boxes = [tight_box(m) for m in few]
    per_mask = log.rate(
        f"TF reference, one mask per call ({len(few)})",
        lambda: [ref.encode_one(m, b) for m, b in zip(few, boxes, strict=True)],
        len(few),
        seconds=seconds,
        repeats=3,
    )
    theirs = [format_object(*ref.encode_one(m, b), None) for m, b in zip(few, boxes, strict=True)]
    ours = encode_masks(few, boxes, codec=codec)
    return {
        "tensorflow": ref.version,
        "encoder_batch": batch,
        "encoder_masks_per_s": enc.median,
        "per_mask_masks_per_s": per_mask.median,
        "same_tokens_as_encode_masks": f"{sum(a == b for a, b in zip(ours, theirs, strict=True))}/{len(few)}",
        **_timing(enc, encoder_masks_per_s=enc, per_mask_masks_per_s=per_mask),
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
    progress: TextIO | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """All benchmarks; returns the JSON-ready result. ``progress``: where the stage lines go (None: nowhere);
    ``workers``: passed to `bench_stream` (the ``--stream`` run's reader threads) when not None.

    Raises:
      ValueError: a name in ``only`` that is not one of `BENCHMARKS` (or ``"none"``).
    """
    from paligemma_segcodec.codec import load_codec

    unknown = sorted(set(only) - set(BENCHMARKS) - {"none"})
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)} (or none)")

    log = Log(progress)
    t0 = time.perf_counter()
    codec = load_codec(checkpoint)
    machine = machine_info()
    result: dict[str, Any] = {
        "machine": machine,
        "versions": versions(),
        "install": install_info(),
        "checkpoint": codec.source,
        "warnings": log.warnings,
    }
    install = result["install"]
    log.line(
        f"machine: {machine['cpu_model'] or machine['machine']}, {machine['cpu_cores']} cores, {machine['device']}; "
        f"jax {machine['jax']}; extras: {', '.join(install['extras']) or 'none'}; "
        f"compiled resize: {'on' if install['compiled_resize'] else 'off'}"
    )
    t1 = time.perf_counter()
    machine["xla_matmul_gflops"] = matmul_gflops()
    log.stage(
        "xla_matmul_gflops (2048^2, HIGHEST)", f"{machine['xla_matmul_gflops']:,.0f} GFLOP/s", time.perf_counter() - t1
    )
    masks, source = _bench_masks(masks_dir, limit)
    if "codec" in only:
        result.update(bench_codec(codec, batch=batch, seconds=seconds, log=log))
    if "encode_masks" in only:
        em = result["encode_masks"] = bench_encode_masks(codec, masks, seconds=seconds, source=source, log=log)
        if "encode_indices" in result:
            core = result["encode_indices"]
            em["encoder_core_batch"] = core["batch"]
            em["ratio_vs_encoder_core"] = em["masks_per_s"] / core["masks_per_s"]
            em["ratio_vs_encoder_core_target"] = ENCODER_CORE_TARGET
            log.line(
                f"  encode_masks / encode_indices (batch {core['batch']}): {em['ratio_vs_encoder_core']:.2f}x "
                f"from the two rates above, {em['ratio_vs_encoder_core_paired']:.2f}x measured in alternation "
                f"(target >= {ENCODER_CORE_TARGET:.2f}x at batch 256)"
            )
        log.line(f"  host prep (prep.prepare_batch, one thread): {em['host_prep_us_per_mask']:,.1f} us/mask")
        if "device_prep_us_per_mask" in em:
            log.line(
                f"  host prep of the device path (prep_device.pack_crops, one thread): "
                f"{em['device_prep_us_per_mask']:,.1f} us/mask"
            )
    if "numpy_fallback" in only:
        result["numpy_fallback"] = bench_numpy_fallback(
            checkpoint, masks_dir, limit, seconds=seconds, compiled=result.get("encode_masks"), log=log
        )
    if "decode_tokens" in only:
        result["decode_tokens"] = bench_decode_tokens(codec, objects=1000, size=512, seconds=seconds, log=log)
    if "recompiles" in only:
        t1 = time.perf_counter()
        rc = result["recompiles"] = count_recompiles(codec, masks)
        log.stage(
            "compilations after warm-up",
            f"{rc['compiles_after_warmup']} ({rc['warmup_compiles']} in warm-up)",
            time.perf_counter() - t1,
        )
    if "tf" in only:  # last: TensorFlow's thread pools stay around once it is imported
        tf_ref = bench_tf_reference(codec, masks, batch=batch, seconds=seconds, log=log)
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

        t1 = time.perf_counter()
        sc = result["stream_convert"] = bench_stream(
            str(checkpoint) if checkpoint else None,
            str(masks_dir) if masks_dir else None,
            stream,
            **({} if workers is None else {"workers": workers}),
        )
        log.stage(
            f"stream convert ({stream} masks, child process)",
            f"{sc.get('masks_per_s', 0):,.0f} masks/s",
            time.perf_counter() - t1,
        )
    # the yardstick again: a busy machine shows as a drop (or a spread) between the two
    t1 = time.perf_counter()
    machine["xla_matmul_gflops_at_end"] = matmul_gflops()
    log.stage(
        "xla_matmul_gflops, again at the end",
        f"{machine['xla_matmul_gflops_at_end']:,.0f} GFLOP/s",
        time.perf_counter() - t1,
    )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["seconds"] = time.perf_counter() - t0
    log.line(f"done in {result['seconds']:.1f}s; {len(log.warnings)} warning(s)")
    return result
