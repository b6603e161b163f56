"""``python -m paligemma_segcodec`` and the ``segcodec`` script: the command line.

`run` installs the stop handlers (SIGINT / SIGTERM / SIGHUP) before the command line's modules
are imported, so that a signal during start-up is one line and exit 130 / 143 too.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Entry point of ``segcodec``."""
    from paligemma_segcodec.safeio import Interrupted, install_stop_handlers

    install_stop_handlers()
    try:
        from paligemma_segcodec.cli import main
    except (KeyboardInterrupt, Interrupted) as err:
        signum = err.signum if isinstance(err, Interrupted) else 2
        print(f"Error: interrupted while starting (signal {signum}): nothing was written", file=sys.stderr)
        sys.exit(128 + signum)
    main(prog_name="segcodec")


if __name__ == "__main__":  # pragma: no cover
    run()
