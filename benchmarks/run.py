"""Throughput benchmark: prints one JSON object (same as ``segcodec bench``).

    python benchmarks/run.py --masks ../shared/water/masks --checkpoint tests/data/golden/checkpoint.npz
    python benchmarks/run.py --stream 100000 --only codec      # + the streaming-convert RSS check

Rates are masks (or objects) per second after warm-up, each with the ratio against a baseline
measured in the same run: the library's own API called one mask at a time.
"""

from __future__ import annotations

import sys

from paligemma_segcodec.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
