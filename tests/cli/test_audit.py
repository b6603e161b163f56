"""segcodec audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from click.testing import Result
from PIL import Image

DATA = Path(__file__).parent.parent / "data"
WATER = DATA / "water"


def test_audit_writes_reports(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    result = segcodec(
        "audit",
        "--images",
        WATER / "images",
        "--masks",
        WATER / "masks",
        "--output",
        tmp_path,
        "--label",
        "water",
        "--worst",
        "4",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["water"]["count"] >= 10 and 0 <= summary["water"]["mean"] <= 1
    rows = (tmp_path / "audit.csv").read_text().splitlines()
    assert rows[0].startswith("image,object,label") and len(rows) == summary["all"]["count"] + 1
    hist = np.asarray(Image.open(tmp_path / "histogram.png").convert("RGB"))
    assert hist.shape == (360, 640, 3) and np.any(np.all(hist == (0, 110, 200), axis=-1))  # bars drawn
    sheet = Image.open(tmp_path / "worst.png")
    assert sheet.size == (480, 4 * 176)
