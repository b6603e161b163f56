"""The dataset library without the command line: convert_folder, extract_objects, polygons, the lint
helpers, reading palette masks. The commands themselves are tested in tests/cli/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from paligemma_segcodec import load_codec
from paligemma_segcodec.datasets import convert_folder, extract_objects, mask_to_polygons, segments_to_coco
from paligemma_segcodec.datasets.lint import border_wedges
from paligemma_segcodec.maskio import read_mask, read_mask_values

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"


def _palette_image(indices: np.ndarray, palette: list[int]) -> Image.Image:
    im = Image.fromarray(indices.astype(np.uint8), "P")
    im.putpalette(palette)
    return im


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_convert_split_copy_resize(tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    common = {"label": "water", "codec": load_codec(CKPT), "progress": False}
    report = convert_folder(WATER / "images", WATER / "masks", out, split=0.7, seed=3, image_size=224, **common)
    assert report.splits == {"train": 7, "val": 3}
    train, val = _lines(tmp_path / "train.jsonl"), _lines(tmp_path / "val.jsonl")
    assert {r["image"] for r in train}.isdisjoint({r["image"] for r in val})
    assert sorted(train + val, key=lambda r: r["image"]) == sorted(_lines(out), key=lambda r: r["image"])
    for r in train:
        with Image.open(tmp_path / "images" / r["image"]) as im:
            assert im.size == (224, 224)
    # tokens do not depend on the copies
    again = tmp_path / "b" / "all.jsonl"
    convert_folder(WATER / "images", WATER / "masks", again, split=0.7, seed=3, images="copy", **common)
    assert again.read_bytes() == out.read_bytes()
    assert (tmp_path / "b" / "images" / train[0]["image"]).read_bytes() == (
        WATER / "images" / train[0]["image"]
    ).read_bytes()


def test_semantic_classes_and_instances() -> None:
    values = np.zeros((40, 60), np.uint8)
    values[2:10, 2:10] = 1
    values[20:30, 30:50] = 1
    values[12:18, 40:58] = 2
    values[35:38, 0:2] = 255  # void, ignored
    objs, dropped = extract_objects(values, classes={1: "water", 2: "road"})
    assert [o.label for o in objs] == ["water", "water", "road"] and dropped == 0
    assert objs[0].box == (2 / 40, 2 / 60, 10 / 40, 10 / 60) and objs[0].area == 64
    whole, _ = extract_objects(values, classes={1: "water", 2: "road"}, instances="whole")
    assert [o.label for o in whole] == ["water", "road"]
    _, dropped = extract_objects(values, classes={1: "water"}, min_area=70)
    assert dropped == 1
    with pytest.raises(ValueError, match="exactly one"):
        extract_objects(values)


def test_border_wedge_detector() -> None:
    h, w = 200, 300
    yy, xx = np.mgrid[:h, :w]
    wedge = yy < (xx * 0.1 + 3)  # a sloped strip along the top: rotated-photo padding
    lake = (yy - 120) ** 2 + (xx - 150) ** 2 < 40**2
    flat = np.full((h, w), 255.0)
    found = border_wedges(wedge | lake, flat)
    assert [(s, shape) for s, _, shape in found] == [("top", "wedge")]
    assert border_wedges(lake, flat) == []  # a lake away from the border
    textured = np.random.default_rng(0).random((h, w)) * 255
    assert border_wedges(wedge | lake, textured) == []  # real content under it: not padding


def test_polygons_rasterize_back(tmp_path: Path) -> None:
    m = np.zeros((30, 40), bool)
    m[3:12, 4:20] = True
    m[12:25, 10:14] = True  # an L shape
    m[20:28, 30:38] = True  # a second component
    polys = mask_to_polygons(m)
    assert len(polys) == 2
    back = mask_utils.decode(mask_utils.frPyObjects(polys, 30, 40)).any(-1)
    np.testing.assert_array_equal(back, m)
    coco = segments_to_coco([{"file_name": "x.png", "width": 40, "height": 30}], [[]])
    assert coco["annotations"] == [] and coco["images"][0]["id"] == 1


def test_palette_masks_read_as_they_look_unless_the_palette_has_colours(tmp_path: Path) -> None:
    """A grey palette (GIF, a quantized grey image) gives the grey levels the file shows; a colour
    palette (VOC-style class colours) gives the indices; a black/white 0/1 palette stays 0/1."""
    rng = np.random.default_rng(0)
    grey = rng.choice(np.array([0, 40, 200, 255], np.uint8), size=(12, 16))
    Image.fromarray(grey).save(tmp_path / "grey.gif")
    np.testing.assert_array_equal(read_mask_values(tmp_path / "grey.gif"), grey)
    shuffled = np.array([3, 0, 2, 1], np.uint8)[np.searchsorted([0, 40, 200, 255], grey)]
    _palette_image(shuffled, [40] * 3 + [255] * 3 + [200] * 3 + [0] * 3).save(tmp_path / "shuffled.png")
    np.testing.assert_array_equal(read_mask_values(tmp_path / "shuffled.png"), grey)
    classes = rng.integers(0, 3, size=(12, 16)).astype(np.uint8)
    _palette_image(classes, [0, 0, 0, 128, 0, 0, 0, 128, 0]).save(tmp_path / "voc.png")
    np.testing.assert_array_equal(read_mask_values(tmp_path / "voc.png"), classes)
    binary = classes == 1
    _palette_image(binary, [0, 0, 0, 255, 255, 255]).save(tmp_path / "bw.png")
    np.testing.assert_array_equal(read_mask_values(tmp_path / "bw.png"), binary.astype(np.uint8))
    objects, _ = extract_objects(read_mask_values(tmp_path / "bw.png"), classes={1: "water"}, instances="whole")
    assert len(objects) == 1 and objects[0].area == binary.sum()  # --classes 1=water still finds it
    _palette_image(binary, [255, 255, 255, 0, 0, 0]).save(tmp_path / "wb.png")  # white first
    np.testing.assert_array_equal(read_mask(tmp_path / "wb.png"), ~binary)


def test_lint_table_header_lines_up() -> None:
    from paligemma_segcodec.datasets.files import Problem
    from paligemma_segcodec.datasets.lint import LintReport

    report = LintReport(pairs=2, problems=[Problem("a.png", "tiny", severity="warning"), Problem("bb.png", "x")])
    lines = report.table().splitlines()
    header, rows = lines[0], lines[2:4]
    for row in rows:
        assert row.index(Path(row.split()[1]).name) == header.index("file")
        assert len(row.split("  ")[0].rstrip()) <= header.index("file")
    assert len(lines[1]) >= max(len(r) for r in rows)
