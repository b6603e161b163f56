"""The ``segcodec`` command line: one module per command, all on one group (`main`).

One error path for every command (`base.SegcodecGroup.main`): a bad input or a failed write is one
line on stderr and exit 1; refused usage (bad options, an output over an input) exit 2; SIGINT 130
and SIGTERM 143, after every temporary output was removed (outputs are atomic: see
`paligemma_segcodec.safeio`). No traceback unless ``--debug`` (or ``SEGCODEC_DEBUG=1``).

Layout: ``base`` (the group, the error path, the options every command shares), ``answers``
(reading predictions and decoding them per image: show, eval, export), then one module per
command. A command module imports ``base`` (and ``answers``), never another command.
"""

from __future__ import annotations

from paligemma_segcodec.cli.audit import audit
from paligemma_segcodec.cli.base import main
from paligemma_segcodec.cli.bench import bench
from paligemma_segcodec.cli.convert import convert
from paligemma_segcodec.cli.decode import decode
from paligemma_segcodec.cli.encode import encode
from paligemma_segcodec.cli.eval import eval_
from paligemma_segcodec.cli.export import export
from paligemma_segcodec.cli.lint import lint
from paligemma_segcodec.cli.show import show

for _command in (encode, decode, bench, convert, lint, audit, show, eval_, export):
    main.add_command(_command)

__all__ = ["main"]
