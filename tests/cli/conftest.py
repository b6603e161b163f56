"""Fixtures shared by the command tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

WATER = Path(__file__).parent.parent / "data" / "water"


@pytest.fixture
def faulty(tmp_path: Path) -> Path:
    """The water sample with one planted fault of each kind."""
    root = tmp_path / "water"
    shutil.copytree(WATER, root)
    img, msk = root / "images", root / "masks"
    stems = sorted(p.stem for p in img.iterdir())
    # corrupt (truncated) mask
    data = (msk / f"{stems[0]}.jpg").read_bytes()
    (msk / f"{stems[0]}.jpg").write_bytes(data[: len(data) // 3])
    # missing mask
    (msk / f"{stems[1]}.jpg").unlink()
    # size mismatch
    with Image.open(msk / f"{stems[2]}.jpg") as m:
        m.resize((m.width + 7, m.height)).save(msk / f"{stems[2]}.jpg")
    # all-white and all-black masks
    for stem, value in ((stems[3], 255), (stems[4], 0)):
        with Image.open(img / f"{stem}.jpg") as im:
            Image.new("L", im.size, value).save(msk / f"{stem}.jpg")
    # a mask without image, and a colour (non-grey) mask
    Image.new("L", (10, 10), 255).save(msk / "orphan.png")
    with Image.open(img / f"{stems[5]}.jpg") as im:
        im.convert("RGB").save(msk / f"{stems[5]}.png")  # the photo itself as "mask"
    (msk / f"{stems[5]}.jpg").unlink()
    return root
