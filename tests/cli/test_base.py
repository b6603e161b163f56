"""The segcodec group: --version, --help, the shared options (--output/-o, --checkpoint) and the error path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from paligemma_segcodec.cli import main

DATA = Path(__file__).parent.parent / "data"
WATER_MASK = DATA / "water" / "masks" / "water_body_8892.jpg"


def test_version() -> None:
    from paligemma_segcodec import __version__

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_offline_without_checkpoint_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as c

    monkeypatch.delenv("PALIGEMMA_SEGCODEC_CHECKPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    result = CliRunner().invoke(main, ["encode", str(WATER_MASK)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "--checkpoint" in result.output and "Traceback" not in result.output


def test_output_is_one_name_and_out_a_deprecated_alias(tmp_path: Path) -> None:
    """``--output``/``-o`` everywhere; ``--out`` still works for one release, with a deprecation line,
    and is hidden from the help."""
    cli_main = main
    answer = "<loc0100><loc0100><loc0900><loc0900> lake"
    runner = CliRunner()
    for cmd in ("decode", "audit", "show", "export", "convert"):
        text = runner.invoke(cli_main, [cmd, "--help"]).output
        assert "-o, --output" in text and "--out " not in text, cmd
    ref = runner.invoke(cli_main, ["export", "--help"])
    assert ref.exit_code == 0
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"image": "a.png", "suffix": answer}) + "\n")
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / "a.png")
    outs = []
    for flag in ("--output", "-o", "--out"):
        out = tmp_path / f"coco{len(outs)}.json"
        result = runner.invoke(
            cli_main, ["export", "--predictions", str(preds), "--images", str(images), flag, str(out)]
        )
        assert result.exit_code == 0, result.output
        assert ("--out is deprecated" in result.stderr) == (flag == "--out")
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1] == outs[2]
    both = runner.invoke(
        cli_main, ["export", "--predictions", str(preds), "--images", str(images), "--out", "x", "--output", "y"]
    )
    assert both.exit_code == 2 and "give --output (or -o) once" in both.stderr
    missing = runner.invoke(cli_main, ["export", "--predictions", str(preds), "--images", str(images)])
    assert missing.exit_code == 2 and "--output" in missing.stderr


def test_help_lists_whole_purposes_and_every_command_has_an_example() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"]).output
    assert "..." not in top.split("Commands:")[1]  # no purpose cut off
    for name, cmd in main.commands.items():
        text = runner.invoke(main, [name, "--help"]).output
        assert "Example:" in text and f"segcodec {name}" in text.split("Example:")[1], name
        first = " ".join((cmd.help or "").split("\n\n")[0].split())
        assert " ".join(first.split()[:4]) in " ".join(top.split()), name
