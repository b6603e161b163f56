"""Token parity of the device prep path (`paligemma_segcodec.prep_device`) with the host path, at scale.

For every crop: the host path's tokens, ``codec.encode_indices(prepare_crop(crop, box).mask64)``, against
``prep_device.encode_crops(codec, crops)``; also the largest |device masks64 - host masks64|. Inputs:
the golden crops (tests/data/golden and ../shared/golden), the water masks (tests/data/water/masks and
../shared/water/masks; thresholded > 127, tight box) and ``--n`` random crops (log-uniform sides 1..1500,
noise of random density, ellipses, rings and thin lines; plain, strided, flipped and transposed views).
Prints one JSON object; mismatches are listed with the float64 relative distance gap of the position.

    PALIGEMMA_SEGCODEC_CHECKPOINT=tests/data/fixture-vae.npz python benchmarks/device_parity.py --n 65536
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.bench import load_masks
from paligemma_segcodec.boxes import crop_pixels, tight_box
from paligemma_segcodec.codec import Codec, load_codec
from paligemma_segcodec.model_numpy import distances_f64, encode_latents_f64
from paligemma_segcodec.prep import _as_mask, prepare_crop
from paligemma_segcodec.prep_device import _prep, encode_crops, resize_crops

ROOT = Path(__file__).resolve().parent.parent
BOX = (0.0, 0.0, 1.0, 1.0)  # only the <loc> tokens depend on the box


def golden_crops() -> list[npt.NDArray[np.bool_]]:
    out = []
    for folder in (ROOT / "tests/data/golden", ROOT.parent / "shared/golden"):
        if not (folder / "golden.json").is_file():
            continue
        meta = json.loads((folder / "golden.json").read_text())
        inputs = np.load(folder / "encode_inputs.npz")
        for case in meta["encode"]:
            m = _as_mask(inputs[case["key"]], "mask")
            t, left, b, r = crop_pixels(case["bbox_yxyx"], *m.shape)
            if b > t and r > left:
                out.append(np.asarray(m[t:b, left:r], dtype=bool))
    return out


def water_crops() -> list[npt.NDArray[np.bool_]]:
    out = []
    for folder in (ROOT / "tests/data/water/masks", ROOT.parent / "shared/water/masks"):
        if folder.is_dir():
            for m in load_masks(folder):
                t, left, b, r = crop_pixels(tight_box(m), *m.shape)
                out.append(m[t:b, left:r])
    return out


def random_crop(rng: np.random.Generator, max_side: int) -> npt.NDArray[np.bool_]:
    h, w = (max(1, int(v)) for v in np.exp(rng.uniform(0, np.log(max_side), 2)))
    kind = rng.integers(4)
    if kind == 0:
        m = rng.random((h, w)) < rng.uniform(0.02, 0.98)
    else:
        yy, xx = np.ogrid[:h, :w]
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        ry, rx = rng.uniform(0.05, 0.9) * h + 0.5, rng.uniform(0.05, 0.9) * w + 0.5
        r = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        m = r < 1 if kind == 1 else (r < 1) & (r > rng.uniform(0.2, 0.8)) if kind == 2 else np.abs(r - 0.5) < 0.05
    view = rng.integers(4)
    if view == 1:
        return np.repeat(np.repeat(m, 2, 0), 2, 1)[::2, ::2]
    if view == 2:
        return m[::-1]
    if view == 3:
        fortran: npt.NDArray[np.bool_] = np.ascontiguousarray(m.T).T
        return fortran
    out: npt.NDArray[np.bool_] = m
    return out


def blocks(n: int, seed: int, size: int, max_side: int) -> Iterator[list[npt.NDArray[np.bool_]]]:
    rng = np.random.default_rng(seed)
    for start in range(0, n, size):
        yield [random_crop(rng, max_side) for _ in range(min(size, n - start))]


def gap_f64(codec: Codec, m64: npt.NDArray[np.float32], pos: int) -> float:
    """Relative float64 distance gap (second - best) / (|z|² + |e_best|²) at one latent position."""
    z = encode_latents_f64(codec._encoder_layers, m64[None])
    d = np.sort(distances_f64(z, codec._codebook)[0, pos])
    zz = float(np.sum(z.reshape(-1, z.shape[-1])[pos] ** 2))
    best = int(np.argmin(distances_f64(z, codec._codebook)[0, pos]))
    ee = float(np.sum(codec._codebook[best].astype(np.float64) ** 2))
    return float((d[1] - d[0]) / (zz + ee))


def compare(codec: Codec, crops: list[npt.NDArray[np.bool_]], chunk: int | None, stats: dict[str, Any]) -> None:
    host64 = np.stack([prepare_crop(c, BOX).mask64 for c in crops])
    want = codec.encode_indices(host64)
    prep = _prep(codec, chunk)
    settled = prep.settled_rows
    got = encode_crops(codec, crops, chunk=chunk)
    stats["rows_settled_float64"] += prep.settled_rows - settled
    dev64 = resize_crops(crops, chunk=256)
    stats["crops"] += len(crops)
    stats["max_abs_diff_masks64"] = max(stats["max_abs_diff_masks64"], float(np.abs(dev64 - host64).max()))
    bad = np.argwhere(got != want)
    stats["token_mismatches"] += len(bad)
    for row, pos in bad.tolist():
        stats["mismatches"].append(
            {
                "shape": list(crops[row].shape),
                "position": pos,
                "host": int(want[row, pos]),
                "device": int(got[row, pos]),
                "relative_gap_f64": gap_f64(codec, host64[row], pos),
            }
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="default: $PALIGEMMA_SEGCODEC_CHECKPOINT")
    ap.add_argument("--n", type=int, default=65536, help="random crops")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=1500)
    ap.add_argument("--block", type=int, default=2048, help="crops compared per step (bounds memory)")
    ap.add_argument("--chunk", type=int, help="device pipeline chunk (default: the library's)")
    args = ap.parse_args()

    codec = load_codec(args.checkpoint)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"checkpoint": str(codec.source)}
    for name, crops in (("golden", golden_crops()), ("water", water_crops())):
        stats: dict[str, Any] = {
            "crops": 0,
            "token_mismatches": 0,
            "rows_settled_float64": 0,
            "max_abs_diff_masks64": 0.0,
            "mismatches": [],
        }
        for s in range(0, len(crops), args.block):
            compare(codec, crops[s : s + args.block], args.chunk, stats)
        result[name] = stats
        print(f"[{time.perf_counter() - t0:7.1f} s] {name}: {stats['crops']} crops", file=sys.stderr, flush=True)
    stats = {
        "crops": 0,
        "token_mismatches": 0,
        "rows_settled_float64": 0,
        "max_abs_diff_masks64": 0.0,
        "mismatches": [],
    }
    for crops in blocks(args.n, args.seed, args.block, args.max_side):
        compare(codec, crops, args.chunk, stats)
        print(
            f"[{time.perf_counter() - t0:7.1f} s] random: {stats['crops']} crops, "
            f"{stats['token_mismatches']} mismatches",
            file=sys.stderr,
            flush=True,
        )
    result["random"] = stats
    result["seconds"] = time.perf_counter() - t0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
