"""Labels readable with either drawing backend: inside the image when a box touches the top,
a font that grows with the image, and no third-party warning on stderr."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from paligemma_segcodec.api import decode_tokens
from paligemma_segcodec.viz import draw_segments

HAS_SV = importlib.util.find_spec("supervision") is not None
BACKENDS = ["pillow", pytest.param("supervision", marks=pytest.mark.skipif(not HAS_SV, reason="no supervision"))]
SCALABLE = "size" in ImageFont.load_default.__code__.co_varnames  # Pillow >= 10.1
TOP_BOX = "<loc0000><loc0100><loc0600><loc0900> water"  # y1 = 0: the box touches the top edge


def white_rows(picture: Image.Image) -> np.ndarray:
    """Rows holding white (label text) pixels, over a black image."""
    a = np.asarray(picture)
    return np.flatnonzero((a == 255).all(axis=2).any(axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_label_of_a_box_on_the_top_edge_is_inside_the_image(backend: str) -> None:
    image = Image.new("RGB", (300, 200))
    picture = draw_segments(image, decode_tokens(TOP_BOX), backend=backend)  # type: ignore[arg-type]
    rows = white_rows(picture)
    assert rows.size, "the label was not drawn"
    assert rows.max() < 40  # near the top, below the box's top edge
    cols = np.flatnonzero((np.asarray(picture) == 255).all(axis=2).any(axis=0))
    assert cols.min() >= 300 * 100 // 1023  # inside the box horizontally


@pytest.mark.skipif(not HAS_SV, reason="no supervision")
def test_both_backends_draw_the_same_label() -> None:
    image = Image.new("RGB", (400, 300))
    segs = decode_tokens(TOP_BOX + " ; <loc0500><loc0500><loc0900><loc0900> road")
    a = np.asarray(draw_segments(image, segs, backend="pillow"))
    b = np.asarray(draw_segments(image, segs, backend="supervision"))
    assert np.array_equal((a == 255).all(axis=2), (b == 255).all(axis=2))


@pytest.mark.skipif(not SCALABLE, reason="Pillow < 10.1 has one bitmap font size")
@pytest.mark.parametrize("backend", BACKENDS)
def test_label_grows_with_the_image(backend: str) -> None:
    heights = []
    for side in (200, 1200):
        picture = draw_segments(Image.new("RGB", (side, side)), decode_tokens(TOP_BOX), backend=backend)  # type: ignore[arg-type]
        rows = white_rows(picture)
        heights.append(rows.max() - rows.min() + 1)
    assert heights[1] >= 2 * heights[0]


def test_show_prints_no_warnings(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 48)).save(image)
    env = {**os.environ, "PALIGEMMA_SEGCODEC_CHECKPOINT": str(Path(__file__).parent / "data" / "fixture-vae.npz")}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "paligemma_segcodec",
            "show",
            "--text",
            TOP_BOX,
            "--image",
            str(image),
            "-o",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"wrote 1 image(s) to {tmp_path / 'o.png'}", r.stderr
