"""Throughput benchmark: prints one JSON object (same as ``segcodec bench``).

From a fresh clone (``pip install -e .``), with the synthetic checkpoint in the repository:

    python benchmarks/run.py --checkpoint tests/data/fixture-vae.npz                  # 200 synthetic masks
    python benchmarks/run.py --checkpoint tests/data/fixture-vae.npz --masks tests/data/water/masks
    python benchmarks/run.py --checkpoint tests/data/fixture-vae.npz --stream 100000 --only none

Optional, with a mask folder outside the repository (e.g. the 300 water masks the project's runs use):

    python benchmarks/run.py --checkpoint tests/data/fixture-vae.npz --masks ../shared/water/masks --limit 300

Each stage prints one line to stderr as it finishes (name, rate, spread of its repeats, seconds);
stdout is the JSON. Rates are masks (or objects) per second after warm-up, each with the ratio
against a baseline measured in the same run (the library's own API called one mask at a time), and
``warnings`` lists what makes the run shaky (fewer than 200 masks, repeats spread above 10 %).
"""

from __future__ import annotations

import sys

from paligemma_segcodec.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
