"""segcodec encode."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from paligemma_segcodec import encode_mask, load_codec
from paligemma_segcodec.cli import main
from paligemma_segcodec.maskio import read_mask

DATA = Path(__file__).parent.parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER_MASK = DATA / "water" / "masks" / "water_body_8892.jpg"


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


def test_bad_mask_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.png"
    p.write_bytes(b"\x89PNG not really")
    result = CliRunner().invoke(main, ["encode", str(p), "--checkpoint", str(CKPT)])
    assert result.exit_code == 1 and "broken.png" in result.output
