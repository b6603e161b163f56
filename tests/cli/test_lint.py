"""segcodec lint."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from paligemma_segcodec.cli import main
from paligemma_segcodec.datasets import lint_folder

DATA = Path(__file__).parent.parent / "data"
WATER = DATA / "water"


def test_lint_finds_planted_faults(faulty: Path, tmp_path: Path) -> None:
    report = lint_folder(faulty / "images", faulty / "masks", progress=False)
    text = " | ".join(p.reason for p in report.problems)
    for finding in (
        "unreadable mask",
        "image without mask",
        "mask without image",
        "size mismatch",
        "colour mask",
        "empty mask",
        "near-full mask",
    ):
        assert finding in text, finding
    json_out = tmp_path / "lint.json"
    result = CliRunner().invoke(main, ["lint", str(faulty), "--json", str(json_out), "--no-progress"])
    assert result.exit_code == 1 and "near-full" in result.output
    assert json.loads(json_out.read_text())["errors"] == len(report.errors) == 5
    clean = CliRunner().invoke(main, ["lint", str(WATER), "--no-progress", "--fail-on", "error"])
    assert clean.exit_code == 0, clean.output
