"""``python -m paligemma_segcodec.cli``: the same command line as ``segcodec``."""

from paligemma_segcodec.__main__ import run

if __name__ == "__main__":  # pragma: no cover
    run()
