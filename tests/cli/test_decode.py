"""segcodec decode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from paligemma_segcodec import encode_mask, load_codec
from paligemma_segcodec.cli import main
from paligemma_segcodec.maskio import read_mask

DATA = Path(__file__).parent.parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER_MASK = DATA / "water" / "masks" / "water_body_8892.jpg"
WATER_IMAGE = DATA / "water" / "images" / "water_body_8892.jpg"


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
