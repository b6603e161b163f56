"""GPU check: parity (GPU tokens == CPU tokens) and encode/decode throughput at large batches.

Prints one JSON object. Meant for a machine with an NVIDIA GPU and ``jax[cuda12]`` installed:

    pip install -e . "jax[cuda12]"
    python benchmarks/gpu_check.py --checkpoint tests/data/golden/checkpoint.npz

Targets (issue #4): encode_indices >= 1,000,000 masks/s and decode_indices >= 400,000 masks/s on an
H100 at precision=HIGHEST, tokens identical to the CPU's.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from paligemma_segcodec.bench import machine_info
from paligemma_segcodec.checkpoint import read_checkpoint
from paligemma_segcodec.codec import Codec


def rate(fn, n: int, repeats: int = 10) -> float:  # type: ignore[no-untyped-def]
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return n * repeats / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", type=int, default=16384)
    args = ap.parse_args()
    ckpt = read_checkpoint(args.checkpoint)
    gpu = Codec(ckpt, max_batch=args.batch)
    rng = np.random.default_rng(0)
    x = (rng.random((args.batch, 64, 64)) > 0.5).astype(np.float32)
    with jax.default_device(jax.devices("cpu")[0]):
        cpu = Codec(ckpt, max_batch=256)
        cpu_idx = cpu.encode_indices(x[:2048])
        cpu_dec = cpu.decode_indices(cpu_idx[:512])
    gpu_idx = gpu.encode_indices(x[:2048])
    result = {
        "machine": machine_info(),
        "tokens_identical_to_cpu": bool(np.array_equal(gpu_idx, cpu_idx)),
        "token_mismatches": int((gpu_idx != cpu_idx).sum()),
        "decode_max_abs_diff_vs_cpu": float(np.abs(gpu.decode_indices(cpu_idx[:512]) - cpu_dec).max()),
    }
    xd = jax.device_put(x)
    enc = jax.jit(lambda p, m: gpu._encode_jit(p, m[..., None]))
    result["encode_indices_masks_per_s"] = rate(lambda: enc(gpu._params, xd).block_until_ready(), args.batch)
    idx = jax.device_put(np.asarray(gpu.encode_indices(x)))
    result["decode_indices_masks_per_s"] = rate(
        lambda: gpu._decode_jit(gpu._params, idx).block_until_ready(), args.batch
    )
    result["encode_indices_host_to_host_masks_per_s"] = rate(lambda: gpu.encode_indices(x), args.batch, 3)
    result["batch"] = args.batch
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
