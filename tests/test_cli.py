"""The segcodec command line (click's CliRunner, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from paligemma_segcodec import encode_mask, load_codec
from paligemma_segcodec.cli import main
from paligemma_segcodec.maskio import read_mask

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER_MASK = DATA / "water" / "masks" / "water_body_8892.jpg"
WATER_IMAGE = DATA / "water" / "images" / "water_body_8892.jpg"


def test_version() -> None:
    from paligemma_segcodec import __version__

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_encode_prints_tokens_like_the_api() -> None:
    result = CliRunner().invoke(main, ["encode", str(WATER_MASK), "--label", "water", "--checkpoint", str(CKPT)])
    assert result.exit_code == 0, result.output
    want = encode_mask(read_mask(WATER_MASK), label="water", codec=load_codec(CKPT))
    assert result.output.strip() == want


def test_encode_with_box() -> None:
    args = ["encode", str(WATER_MASK), "--box", "0.1", "0.1", "0.9", "0.9", "--checkpoint", str(CKPT)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<loc0102><loc0102><loc0921><loc0921>")


def test_decode_writes_overlay(tmp_path: Path) -> None:
    codec = load_codec(CKPT)
    mask = read_mask(WATER_MASK)
    text = encode_mask(mask, label="water", codec=codec) + " ; <loc0000><loc0000><loc0500><loc0500> boat"
    out = tmp_path / "o.png"
    result = CliRunner().invoke(
        main, ["decode", text, "--image", str(WATER_IMAGE), "--output", str(out), "--checkpoint", str(CKPT)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in records] == ["water", "boat"]
    img = np.asarray(Image.open(out).convert("RGB"))
    src = np.asarray(Image.open(WATER_IMAGE).convert("RGB"))
    assert img.shape == src.shape
    assert records[0]["mask_area_px"] > 0
    changed = np.any(img != src, axis=-1)
    assert changed.mean() > 0.05  # the mask fill and boxes are drawn


def test_decode_malformed_warns_or_fails() -> None:
    bad = "<loc0001><loc0002><loc0003> x"
    result = CliRunner().invoke(main, ["decode", bad])
    assert result.exit_code == 0 and "skipped 1 malformed" in result.stderr
    result = CliRunner().invoke(main, ["decode", bad, "--strict"])
    assert result.exit_code == 1 and "object 0 at character" in result.output


def test_offline_without_checkpoint_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as c

    monkeypatch.delenv("PALIGEMMA_SEGCODEC_CHECKPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    result = CliRunner().invoke(main, ["encode", str(WATER_MASK)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "--checkpoint" in result.output and "Traceback" not in result.output


def test_bad_mask_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.png"
    p.write_bytes(b"\x89PNG not really")
    result = CliRunner().invoke(main, ["encode", str(p), "--checkpoint", str(CKPT)])
    assert result.exit_code == 1 and "broken.png" in result.output


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
