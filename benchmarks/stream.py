"""Streaming conversion from disk, one reading thread vs the default: prints one JSON object.

    python benchmarks/stream.py --masks ../shared/water/masks --total 5000
    python benchmarks/stream.py --total 100000                     # the 100k-mask RSS check

Each run is a child process (`paligemma_segcodec.bench_stream.bench_stream`): masks are read,
their objects extracted and prepared on N threads (as ``segcodec convert --workers N``), encoded and
written as JSONL. Printed: both rates, their ratio (threaded / one thread), each run's peak RSS,
the machine and this command. No test asserts a speed: on a shared machine the rates are noisy.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from paligemma_segcodec.bench import machine_info
from paligemma_segcodec.bench_stream import bench_stream
from paligemma_segcodec.datasets.parallel import default_workers


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--masks",
        default="tests/data/water/masks",
        help="Folder of masks, cycled through (default: tests/data/water/masks, 10 bundled masks; "
        "../shared/water/masks, 300 real 2007x2009 satellite masks, is optional and not in the repository).",
    )
    parser.add_argument("--total", type=int, default=2000, help="Masks streamed per run (default: 2000).")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="Threads of the second run (default: CPU count)."
    )
    parser.add_argument("--checkpoint", default=None, help="VQ-VAE checkpoint (default: the library's lookup).")
    args = parser.parse_args(argv)
    if args.total < 1 or args.workers < 1:
        parser.error("--total and --workers must be >= 1")
    one = bench_stream(args.checkpoint, args.masks, args.total, workers=1)
    many = bench_stream(args.checkpoint, args.masks, args.total, workers=args.workers)
    result = {
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["stream.py", *argv]),
        "machine": machine_info(),
        "masks_dir": args.masks,
        "total": args.total,
        "workers_1": one,
        f"workers_{args.workers}": many,
        "ratio": many["masks_per_s"] / one["masks_per_s"],
        "peak_rss_mb": {"workers_1": one["peak_rss_mb"], f"workers_{args.workers}": many["peak_rss_mb"]},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
