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
    ]
    for name in [None, *COMMANDS]:
        args = ["--help"] if name is None else [name, "--help"]
        text = runner.invoke(main, args, prog_name="segcodec", terminal_width=100).output
        parts.append(f"## `segcodec{'' if name is None else ' ' + name}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    Path(__file__).with_name("cli.md").write_text(render())
