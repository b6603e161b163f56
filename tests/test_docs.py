"""The docs stay true to the code: CLI reference current, every public name documented, README commands."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import paligemma_segcodec

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import gen_cli
    finally:
        sys.path.remove(str(DOCS))
    assert (DOCS / "cli.md").read_text() == gen_cli.render(), "run: python docs/gen_cli.py"


@pytest.mark.parametrize("name", sorted(set(paligemma_segcodec.__all__) - {"__version__"}))
def test_public_name_is_on_the_api_page(name: str) -> None:
    api = (DOCS / "api.md").read_text()
    assert re.search(rf"(::: paligemma_segcodec[\w.]*\.{name}\b)|(members: \[[^\]]*\b{name}\b)", api), name


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block is not None and readme.index("```bash") < 40
    commands = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert "pip install ." in commands[0] and "segcodec encode" in commands[0]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
