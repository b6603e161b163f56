"""GPU check: token parity (GPU == CPU, and == the reference's golden tokens) and encode/decode throughput.

Prints one JSON object (and writes it to ``--output`` after every stage, so a run cut short still
reports what it measured). Meant for a machine with an NVIDIA GPU and a CUDA build of JAX:

    pip install -e . "jax[cuda12]"
    python benchmarks/gpu_check.py --checkpoint tests/data/golden/checkpoint.npz \
        --checkpoint tests/data/fixture-vae.npz --masks tests/data/water/masks

Targets (issue #4): encode_indices >= 1,000,000 masks/s and decode_indices >= 400,000 masks/s on an
H100 at precision=HIGHEST, tokens identical to the CPU's. Rates are on device-resident batches
(the codec's jit'd functions, parameters already on the GPU); ``*_host_to_host`` rates go through the
public `Codec` methods, NumPy in and out.

Device path (issue 14 §4, `paligemma_segcodec.prep_device`): stage ``device_prep`` times
``encode_masks(device_prep=True)`` on in-memory 512² masks (target >= 100,000 masks/s; via
`prep_device.encode_crops_async` on the tight crops if `encode_masks` lacks the keyword), the device
part alone, the host path for comparison, compilations after `prep_device.warm_up` (target 0) and the
strings against the CPU host path; ``device_prep_parity`` compares `prep_device.encode_crops` on the
GPU with the CPU host path on ``--device-parity`` random crops; ``host_prep_device_path`` is
`pack_crops`' µs per 512² mask on 1, 2, 4 and 8 threads (target <= 25 µs on one); ``public_api_host_to_host``
has encode_indices >= 300,000/s as the target; ``paste_device`` times `paste_device.paste_in_boxes_async`
when that module exists.

``--smoke`` runs every stage tiny, on whatever backend JAX has (a CPU is fine), to check the script.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from paligemma_segcodec import model, prep_device
from paligemma_segcodec.api import encode_masks, prepare_mask
from paligemma_segcodec.bench import jit_encoder, load_masks, machine_info, matmul_gflops, synthetic_masks
from paligemma_segcodec.boxes import crop_pixels, tight_box
from paligemma_segcodec.checkpoint import read_checkpoint
from paligemma_segcodec.codec import Codec
from paligemma_segcodec.prep import prepare_crop


def rate(fn: Callable[[], Any], n: int, seconds: float = 1.5) -> dict[str, float]:
    """Items/s after a warm-up call (whose time, ~ the compilation, is reported too)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(3, int(seconds / one))
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn()
    jax.block_until_ready(out)
    return {"masks_per_s": n * reps / (time.perf_counter() - t0), "first_call_s": first, "repeats": reps}


def conv_transpose_decoder(ckpt: Any) -> Callable[[jax.Array], jax.Array]:
    """The decoder with XLA's own transposed conv (cuDNN on a GPU) instead of the sub-pixel form, for comparison."""
    hi = jax.lax.Precision.HIGHEST
    dn = ("NHWC", "HWIO", "NHWC")

    def conv(x: jax.Array, c: Any) -> jax.Array:
        w = jnp.asarray(c.weight.transpose(2, 3, 1, 0))
        if c.transposed:
            y = jax.lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=dn, transpose_kernel=True, precision=hi)
        else:
            y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn, precision=hi)
        return y + jnp.asarray(c.bias)

    codebook = jnp.asarray(ckpt.codebook)

    def decode(indices: jax.Array) -> jax.Array:
        x = codebook[indices].reshape(indices.shape[0], 4, 4, -1)
        layers = ckpt.decoder
        x = jax.nn.relu(conv(x, layers[0][0]))
        for layer in layers[1:-1]:
            if len(layer) == 3:
                h = jax.nn.relu(conv(x, layer[0]))
                h = jax.nn.relu(conv(h, layer[1]))
                x = x + conv(h, layer[2])
            else:
                x = jax.nn.relu(conv(x, layer[0]))
        return conv(x, layers[-1][0])[..., 0]

    return jax.jit(decode)


def realistic_inputs(masks: list[np.ndarray], n: int) -> np.ndarray:
    """``n`` 64x64 encoder inputs: the resized crops of real / synthetic masks, cycled."""
    x = np.stack([prepare_mask(m).mask64 for m in masks])
    return np.resize(x, (n, 64, 64)).astype(np.float32)


def masks_at(masks: list[np.ndarray], n: int, side: int) -> list[np.ndarray]:
    """``n`` bool ``side × side`` masks: each mask resampled (nearest) to that size, cycled; the non-empty ones."""
    out = []
    for m in masks:
        h, w = m.shape
        r = m[(np.arange(side) * h // side)[:, None], (np.arange(side) * w // side)[None, :]]
        if r.any():
            out.append(np.ascontiguousarray(r))
    return [out[i % len(out)] for i in range(n)]


def tight_crops(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Each mask's tight-box crop (a view), as `encode_masks` cuts it."""
    out = []
    for m in masks:
        t, left, b, r = crop_pixels(tight_box(m), *m.shape)
        out.append(m[t:b, left:r])
    return out


def random_crops(n: int, seed: int, max_side: int) -> list[np.ndarray]:
    """``n`` bool crops, log-uniform sides 1..max_side: noise, ellipses and rings; some strided views."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (max(1, int(v)) for v in np.exp(rng.uniform(0, np.log(max_side), 2)))
        if i % 3 == 0:
            m = rng.random((h, w)) < rng.uniform(0.02, 0.98)
        else:
            yy, xx = np.ogrid[:h, :w]
            r = ((yy - rng.uniform(0, h)) / (rng.uniform(0.1, 0.9) * h + 0.5)) ** 2 + (
                (xx - rng.uniform(0, w)) / (rng.uniform(0.1, 0.9) * w + 0.5)
            ) ** 2
            m = (r < 1) & (r > (0.5 if i % 3 == 2 else -1))
        out.append(m[::-1] if i % 5 == 0 else m)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", required=True, help="repeatable; the first is benchmarked")
    ap.add_argument("--masks", help="folder of real masks for the parity checks (synthetic ones are added)")
    ap.add_argument("--encode-batches", default="4096,16384,65536")
    ap.add_argument("--decode-batches", default="4096,16384")
    ap.add_argument("--parity", type=int, default=4096, help="64x64 inputs compared GPU vs CPU per checkpoint")
    ap.add_argument(
        "--output", "-o", "--out", dest="out", help="also write the JSON here (after every stage; --out: old name)"
    )
    ap.add_argument("--precision-variants", action="store_true", help="also time TF32 / bf16x3 (not the product)")
    ap.add_argument("--host-batch", type=int, default=16384, help="batch of the public_api_host_to_host stage")
    ap.add_argument("--device-masks", type=int, default=16384, help="in-memory masks for the device_prep stage")
    ap.add_argument("--mask-side", type=int, default=512, help="side of those masks")
    ap.add_argument("--device-parity", type=int, default=65536, help="random crops: device path (GPU) vs CPU host")
    ap.add_argument("--smoke", action="store_true", help="every stage tiny (checks the script; CPU is fine)")
    args = ap.parse_args()
    if args.smoke:
        args.encode_batches, args.decode_batches, args.parity, args.host_batch = "64", "64", 64, 64
        args.device_masks, args.mask_side, args.device_parity = 48, 128, 96

    result: dict[str, Any] = {"machine": machine_info(), "devices": [str(d) for d in jax.devices()]}
    from paligemma_segcodec.resize import _numba_kernel

    result["numba_resize"] = _numba_kernel() is not None

    def stage(name: str, fn: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as e:  # report and go on: one failing stage must not hide the others
            result[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
        print(f"[{time.perf_counter() - t0:7.1f} s] {name}", file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2))

    # The device's own fp32 matmul rate at HIGHEST (GFLOP/s): a yardstick for comparing runs and cards.
    size = 256 if args.smoke else 2048 if jax.default_backend() == "cpu" else 8192
    stage("matmul_yardstick", lambda: {"n": size, "gflops": matmul_gflops(size)})

    cpu_dev = jax.devices("cpu")[0]
    masks = load_masks(args.masks) if args.masks else []
    masks += synthetic_masks(12, seed=5, max_side=200) if args.smoke else synthetic_masks(300, seed=5)
    real = realistic_inputs(masks, args.parity)
    rng = np.random.default_rng(0)
    noise = (rng.random((args.parity, 64, 64)) > 0.5).astype(np.float32)

    def parity(path: str) -> dict[str, Any]:
        ckpt = read_checkpoint(path)
        gpu = Codec(ckpt)
        with jax.default_device(cpu_dev):
            cpu = Codec(ckpt, max_batch=256)
            out: dict[str, Any] = {}
            for name, x in (("resized_crops", real), ("noise", noise)):
                ci, gi = cpu.encode_indices(x), gpu.encode_indices(x)
                out[f"{name}_token_mismatches"] = int((ci != gi).sum())
                out[f"{name}_tokens"] = int(ci.size)
            idx = cpu.encode_indices(real[:1024])
            cd, gd = cpu.decode_indices(idx), gpu.decode_indices(idx)
            out["decode_max_abs_diff"] = float(np.abs(cd - gd).max())
            out["decode_sign_flips"] = int(((cd > 0) != (gd > 0)).sum())
            sub = masks[:300]
            out["encode_masks_strings_differ"] = sum(
                a != b for a, b in zip(encode_masks(sub, codec=cpu), encode_masks(sub, codec=gpu), strict=True)
            )
            out["encode_masks_strings"] = len(sub)
        return out

    for i, path in enumerate(args.checkpoint):
        stage(f"parity_{i}_{Path(path).stem}", lambda p=path: parity(p))  # type: ignore[misc]

    ckpt = read_checkpoint(args.checkpoint[0])
    gpu = Codec(ckpt)
    params = gpu._params
    enc_batches = [int(b) for b in args.encode_batches.split(",")]
    dec_batches = [int(b) for b in args.decode_batches.split(",")]

    def encode_rates(codec: Codec) -> dict[str, Any]:
        out = {}
        for b in enc_batches:
            x = jax.device_put(realistic_inputs(masks, b)[..., None])
            out[str(b)] = rate(lambda x=x: codec._encode_jit(codec._params, x), b)  # type: ignore[misc]
        return out

    def decode_rates() -> dict[str, Any]:
        out = {}
        for b in dec_batches:
            idx = jax.device_put(np.asarray(gpu.encode_indices(realistic_inputs(masks, b))))
            out[str(b)] = rate(lambda i=idx: gpu._decode_jit(params, i), b)  # type: ignore[misc]
        return out

    stage("encode_indices_device_resident", lambda: encode_rates(gpu))
    stage("decode_indices_device_resident", decode_rates)

    def encode_other_first_conv() -> dict[str, Any]:
        # The first layer the other way (space-to-depth on a CPU backend, plain strided conv else).
        other = jax.default_backend() != "cpu"
        fn = jit_encoder(gpu, space_to_depth=other)
        x = realistic_inputs(masks, args.parity)
        mism = int((np.asarray(fn(jnp.asarray(x[..., None]))) != gpu.encode_indices(x)).sum())
        b = enc_batches[-1]
        xd = jax.device_put(realistic_inputs(masks, b)[..., None])
        return {"space_to_depth": other, "token_mismatches_vs_library": mism, str(b): rate(lambda: fn(xd), b)}

    stage("encode_variant_other_first_conv", encode_other_first_conv)

    def decode_conv_transpose() -> dict[str, Any]:
        fn = conv_transpose_decoder(ckpt)
        b = dec_batches[-1]
        idx = jax.device_put(np.asarray(gpu.encode_indices(realistic_inputs(masks, b))))
        diff = float(jnp.abs(fn(idx) - gpu._decode_jit(params, idx)).max())
        return {"max_abs_diff_vs_library": diff, str(b): rate(lambda: fn(idx), b)}

    stage("decode_variant_conv_transpose", decode_conv_transpose)

    def host_to_host() -> dict[str, Any]:
        b = args.host_batch
        x = realistic_inputs(masks, b)
        idx = gpu.encode_indices(x)
        return {
            "batch": b,
            "encode_indices": rate(lambda: gpu.encode_indices(x), b),
            "decode_indices": rate(lambda: gpu.decode_indices(idx), b),
        }

    stage("public_api_host_to_host", host_to_host)

    def e2e() -> dict[str, Any]:
        sub = (masks * 4)[: 64 if args.smoke else 1024]
        r = rate(lambda: encode_masks(sub, codec=gpu), len(sub), seconds=3)
        return {"masks": len(sub), "mean_pixels": float(np.mean([m.size for m in sub])), **r}

    stage("encode_masks_end_to_end", e2e)

    def lower_precision(preset: Any) -> dict[str, Any]:
        # For the note only: what the same encoder does when XLA may use tensor cores (not the product's path).
        saved = model.HIGHEST
        model.HIGHEST = preset
        try:
            codec = Codec(ckpt)
            x = realistic_inputs(masks, args.parity)
            mism = int((codec.encode_indices(x) != gpu.encode_indices(x)).sum())
            b = 16384
            xd = jax.device_put(realistic_inputs(masks, b)[..., None])
            r = rate(lambda: codec._encode_jit(codec._params, xd), b)
            idx = jax.device_put(np.asarray(gpu.encode_indices(realistic_inputs(masks, b))))
            d = rate(lambda: codec._decode_jit(codec._params, idx), b)
            return {"token_mismatches_vs_highest": mism, "tokens": x.shape[0] * 16, "encode": r, "decode": d}
        finally:
            model.HIGHEST = saved

    # --- the device prep path (issue 14 §4) -------------------------------------------------------
    big = masks_at(masks, args.device_masks, args.mask_side)
    has_keyword = "device_prep" in inspect.signature(encode_masks).parameters

    def device_prep_stage() -> dict[str, Any]:
        crops = tight_crops(big)
        out: dict[str, Any] = {
            "masks": len(big),
            "side": args.mask_side,
            "mean_crop_pixels": float(np.mean([c.size for c in crops])),
            "via": "encode_masks(device_prep=True)" if has_keyword else "prep_device.encode_crops_async",
        }
        t0 = time.perf_counter()
        out["warm_up_compiles"] = prep_device.warm_up(gpu, max_side=args.mask_side)
        out["warm_up_s"] = time.perf_counter() - t0

        def device_e2e() -> Any:
            if has_keyword:
                return encode_masks(big, codec=gpu, device_prep=True)
            return prep_device.encode_crops_async(gpu, tight_crops(big))()

        before = prep_device.compile_count(gpu)
        out["encode_masks_device_prep"] = rate(device_e2e, len(big), seconds=3)
        out["encode_crops_device_only"] = rate(lambda: prep_device.encode_crops_async(gpu, crops)(), len(crops), 3)
        out["compiles_after_warm_up"] = prep_device.compile_count(gpu) - before
        if has_keyword:
            sub = big[: 64 if args.smoke else 2048]
            out["encode_masks_host_prep"] = rate(
                lambda: encode_masks(sub, codec=gpu, device_prep=False),
                len(sub),
                seconds=3,
            )
        # tokens: device path on this backend vs the host path on the CPU
        check = big[: 64 if args.smoke else 4096]
        got = prep_device.encode_crops(gpu, tight_crops(check))
        with jax.default_device(cpu_dev):
            cpu = Codec(ckpt, max_batch=256)
            want = cpu.encode_indices(
                np.stack([prepare_crop(c, (0.0, 0.0, 1.0, 1.0)).mask64 for c in tight_crops(check)])
            )
            if has_keyword:
                a = encode_masks(check, codec=cpu, device_prep=False)
                b = encode_masks(check, codec=gpu, device_prep=True)
                out["strings_differ_vs_cpu_host_path"] = sum(x != y for x, y in zip(a, b, strict=True))
        out["token_mismatches_vs_cpu_host_path"] = int((got != want).sum())
        out["tokens_compared"] = int(want.size)
        return out

    stage("device_prep", device_prep_stage)

    def device_prep_parity() -> dict[str, Any]:
        crops = random_crops(args.device_parity, seed=7, max_side=1500)
        mism, rows = 0, 0
        with jax.default_device(cpu_dev):
            cpu = Codec(ckpt, max_batch=256)
        for s in range(0, len(crops), 4096):
            part = crops[s : s + 4096]
            got = prep_device.encode_crops(gpu, part)
            with jax.default_device(cpu_dev):
                want = cpu.encode_indices(np.stack([prepare_crop(c, (0.0, 0.0, 1.0, 1.0)).mask64 for c in part]))
            mism += int((got != want).sum())
            rows += int((got != want).any(axis=1).sum())
        return {"crops": len(crops), "token_mismatches": mism, "rows_with_mismatch": rows}

    stage("device_prep_parity", device_prep_parity)

    def host_prep_device_path() -> dict[str, Any]:
        crops = tight_crops(big[:1024])
        return {
            "function": "prep_device.host_prep_us (pack_crops, best of 5)",
            "side": args.mask_side,
            **{f"us_per_mask_threads_{t}": prep_device.host_prep_us(crops, threads=t) for t in (1, 2, 4, 8)},
        }

    stage("host_prep_device_path", host_prep_device_path)

    try:
        paste_device: Any = importlib.import_module("paligemma_segcodec.paste_device")
    except ImportError:
        paste_device = None
    if paste_device is not None and hasattr(paste_device, "paste_in_boxes_async"):

        def paste_stage() -> dict[str, Any]:
            from paligemma_segcodec.boxes import box_to_loc

            n = min(len(big), 64 if args.smoke else 8192)
            side = args.mask_side
            idx = gpu.encode_indices(np.stack([prepare_mask(m).mask64 for m in big[:n]]))
            locs = [box_to_loc(tight_box(m)) for m in big[:n]]

            def paste() -> Any:
                return paste_device.paste_in_boxes_async(gpu, idx, locs, side, side)()

            out: dict[str, Any] = {"objects": n, "image_side": side}
            if hasattr(paste_device, "warm_up"):
                t0 = time.perf_counter()
                out["warm_up_compiles"] = paste_device.warm_up(gpu, max_side=side)
                out["warm_up_s"] = time.perf_counter() - t0
            before = gpu.compile_count
            out.update(rate(paste, n, seconds=3))
            out["compiles_after_warm_up"] = gpu.compile_count - before
            return out

        stage("paste_device", paste_stage)

    if args.precision_variants:
        stage("encode_precision_default_tf32", lambda: lower_precision(jax.lax.Precision.DEFAULT))
        stage("encode_precision_high_bf16x3", lambda: lower_precision(jax.lax.Precision.HIGH))

    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
