"""segcodec show."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from paligemma_segcodec.cli import main


def test_show_out_pointing_at_the_predictions_file_is_refused(tmp_path: Path) -> None:
    """``show --predictions P --output P``: refused before any work (exit 2), P unchanged."""
    images = tmp_path / "images"
    images.mkdir()
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"image": "a.png", "prediction": ""}\n')
    before = preds.read_bytes()
    args = ["show", "--predictions", str(preds), "--images", str(images), "--output", str(preds)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "input" in result.output and preds.read_bytes() == before
