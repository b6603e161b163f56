"""``python -m paligemma_segcodec``: the ``segcodec`` command line."""

from paligemma_segcodec.cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="segcodec")
