"""Regenerates docs/cli.md from the live ``segcodec --help`` texts (tests/test_docs.py checks it is current).

python docs/gen_cli.py
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from paligemma_segcodec.cli import main

COMMANDS = ["encode", "decode", "convert", "lint", "audit", "show", "eval", "export", "bench"]


def render() -> str:
    runner = CliRunner()
    parts = [
        "# Command line\n",
        "`segcodec` is installed with the package. Every command that needs the VQ-VAE takes "
        "`--checkpoint PATH` (default: `$PALIGEMMA_SEGCODEC_CHECKPOINT`, else the Hugging Face download).\n",
        "This page is generated from the live help by `docs/gen_cli.py`.\n",
        "## Exit codes and errors\n\n"
        "Every command follows one error path (see [Safety](safety.md) for the guarantees):\n\n"
        "| exit | meaning |\n|---|---|\n"
        "| 0 | done |\n"
        "| 1 | bad input files (each listed on one line; the rest of the run was still done), or a "
        "failed write (e.g. a full disk: the previous output is left unchanged) |\n"
        "| 2 | refused usage before any work: a bad option, or an output that is (or would overwrite) "
        "one of the run's inputs |\n"
        "| 130 / 143 | interrupted by SIGINT (Ctrl-C) / SIGTERM: temporaries removed, no partial file "
        "under a final name, one line says which completed files were kept |\n\n"
        "Errors are one line on stderr (`Error: what, which file, what to do`), without a Python "
        "traceback; add `--debug` (anywhere on the command line) or set `SEGCODEC_DEBUG=1` to see it.\n",
    ]
    for name in [None, *COMMANDS]:
        args = ["--help"] if name is None else [name, "--help"]
        text = runner.invoke(main, args, prog_name="segcodec", terminal_width=100).output
        parts.append(f"## `segcodec{'' if name is None else ' ' + name}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    Path(__file__).with_name("cli.md").write_text(render())
