"""Hostile COCO annotation files: every bad record is one error line naming what is wrong, the good
records are still converted, nothing outside the images folder is read, and nothing reaches
pycocotools' C code unchecked (crafted polygons and RLE strings crash or exhaust it)."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from paligemma_segcodec.datasets.coco import (
    MAX_PIXELS,
    annotation_mask,
    coco_examples,
    rle_counts,
    segments_to_coco,
)
from paligemma_segcodec.datasets.convert import Example, convert_coco
from paligemma_segcodec.datasets.evaluate import evaluate
from paligemma_segcodec.datasets.files import Problem
from paligemma_segcodec.segment import Segment, paste_mask


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


B_MASK = np.zeros((40, 50), bool)
B_MASK[5:20, 10:30] = True
GOOD_POLYGON = [10, 10, 40, 10, 40, 30, 10, 30]


def _good() -> dict[str, Any]:
    """a.png (80x60) with a polygon 'lake', b.png (50x40) with an RLE 'boat'."""
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 80, "height": 60},
            {"id": 2, "file_name": "b.png", "width": 50, "height": 40},
        ],
        "categories": [{"id": 1, "name": "lake"}, {"id": 2, "name": "boat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [GOOD_POLYGON], "bbox": [10, 10, 30, 20]},
            {"id": 2, "image_id": 2, "category_id": 2, "segmentation": _rle(B_MASK), "iscrowd": 0},
        ],
    }


GOOD_OBJECTS = {"a.png": ["lake"], "b.png": ["boat"]}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (80, 60), (20, 90, 160)).save(images / "a.png")
    Image.new("RGB", (50, 40), (200, 90, 60)).save(images / "b.png")
    outside = tmp_path / "outside.jpg"
    os.mkfifo(outside)  # opening it for reading would block: the alarm below turns that into a failure
    return {"root": tmp_path, "images": images, "outside": outside}


@pytest.fixture
def no_hang() -> Iterator[None]:
    def fail(signum: int, frame: object) -> None:
        raise TimeoutError("blocked: a FIFO was opened")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(coco: Any, env: dict[str, Path]) -> tuple[list[Problem], dict[str, list[str]]]:
    path = env["root"] / "coco.json"
    path.write_text(json.dumps(coco))  # allow_nan: NaN / Infinity literals, as Python writes them
    items, _, _ = coco_examples(path, env["images"])
    problems: list[Problem] = []
    examples: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Problem):
            problems.append(item)
        else:
            assert isinstance(item, Example)
            examples[item.image] = [o.label for o in item.objects]
    return problems, examples


def _image(coco: dict[str, Any], name: object, **fields: object) -> None:
    coco["images"].append({"id": 10, "file_name": name, "width": 8, "height": 8, **fields})


def _ann(coco: dict[str, Any], **fields: object) -> None:
    coco["annotations"].append({"id": 100, "image_id": 1, "category_id": 1, "segmentation": [GOOD_POLYGON], **fields})


def _poly(*values: object) -> list[list[object]]:
    return [[10, 10, 40, 10, 40, 30, *values]]


def _symlink_escape(coco: dict[str, Any], env: dict[str, Path]) -> None:
    (env["images"] / "link.jpg").symlink_to(env["outside"])
    _image(coco, "link.jpg")


def _fifo_inside(coco: dict[str, Any], env: dict[str, Path]) -> None:
    os.mkfifo(env["images"] / "fifo.jpg")
    _image(coco, "fifo.jpg")


def _bad_category(coco: dict[str, Any], env: dict[str, Path]) -> None:
    coco["categories"].append({"id": 3, "name": 7})
    _ann(coco, category_id=3)


Mutation = Callable[[dict[str, Any], dict[str, Path]], None]
CASES: list[tuple[str, Mutation, str, str]] = [
    # (id, change to the good file, where the error is filed, what its reason says)
    # -- file_name: never read outside the images folder (the outside file is a FIFO: reading it hangs)
    ("dotdot", lambda c, e: _image(c, "../outside.jpg"), "#image 10 (../outside.jpg)", "leaves its folder"),
    ("absolute", lambda c, e: _image(c, str(e["outside"])), "#image 10", "is an absolute path"),
    ("drive-letter", lambda c, e: _image(c, "C:\\x.jpg"), "#image 10", "is an absolute path"),
    ("symlink-escape", _symlink_escape, "#image 10 (link.jpg)", "resolves outside its folder"),
    ("nul-in-name", lambda c, e: _image(c, "a.png\x00.jpg"), "#image 10", "NUL character"),
    ("name-not-string", lambda c, e: _image(c, ["a.png"]), "#image 10", "file_name must be a path, got a list"),
    # -- a FIFO inside the folder, named like an image: reported, not opened
    ("fifo-inside", _fifo_inside, "imgs/fifo.jpg", "FIFO"),
    # -- image records
    ("huge-image", lambda c, e: _image(c, "huge.png", width=10**6, height=10**6), "#image 10", "exceeds the cap"),
    (
        "no-height",
        lambda c, e: c["images"].append({"id": 10, "file_name": "z.png", "width": 8}),
        "#image 10",
        "no 'height'",
    ),
    ("zero-width", lambda c, e: _image(c, "z.png", width=0), "#image 10", "width must be a positive integer"),
    ("string-size", lambda c, e: _image(c, "z.png", height="8"), "#image 10", "height must be a positive integer"),
    ("list-size", lambda c, e: _image(c, "z.png", width=[8]), "#image 10", "got a list"),
    ("string-image-id", lambda c, e: _image(c, "z.png", id="10"), "#images[2]", "id must be an integer, got a str"),
    ("bool-image-id", lambda c, e: _image(c, "z.png", id=True), "#images[2]", "got a boolean (true)"),
    ("image-not-object", lambda c, e: c["images"].append([1, "z.png"]), "#images[2]", "not an object"),
    ("duplicate-name", lambda c, e: _image(c, "a.png", width=80, height=60), "#image 10", "a second image"),
    ("same-file", lambda c, e: _image(c, "./a.png", width=80, height=60), "#image 10", "the same file as image 1"),
    ("duplicate-id", lambda c, e: _image(c, "z.png", id=2), "#image 2 (z.png)", "a second image with id 2"),
    # -- polygons: checked before pycocotools' rasterizer (which has no bounds)
    ("nan", lambda c, e: _ann(c, segmentation=_poly(math.nan, 30)), "#annotation 100 (a.png)", "NaN or infinite"),
    ("inf", lambda c, e: _ann(c, segmentation=_poly(math.inf, 30)), "#annotation 100", "NaN or infinite"),
    ("-inf", lambda c, e: _ann(c, segmentation=_poly(10, -math.inf)), "#annotation 100", "NaN or infinite"),
    ("1e308", lambda c, e: _ann(c, segmentation=_poly(1e308, 30)), "#annotation 100", "outside the 80x60 image"),
    ("negative", lambda c, e: _ann(c, segmentation=_poly(-5, 30)), "#annotation 100", "(-5, 30) outside"),
    ("huge-int", lambda c, e: _ann(c, segmentation=_poly(10**400, 30)), "#annotation 100", "too large"),
    ("string-coord", lambda c, e: _ann(c, segmentation=_poly("10", 30)), "#annotation 100", "holds a string"),
    ("bool-coord", lambda c, e: _ann(c, segmentation=_poly(True, 30)), "#annotation 100", "holds a boolean"),
    ("null-coord", lambda c, e: _ann(c, segmentation=_poly(None, 30)), "#annotation 100", "holds null"),
    (
        "nested",
        lambda c, e: _ann(c, segmentation=[[[10, 10], [40, 10], [40, 30]] * 2]),
        "#annotation 100",
        "holds a list",
    ),
    ("dict-polygon", lambda c, e: _ann(c, segmentation=[{"x": 1}]), "#annotation 100", "polygon 0 is not a list"),
    ("odd-length", lambda c, e: _ann(c, segmentation=_poly(10)), "#annotation 100", "7 numbers"),
    ("string-seg", lambda c, e: _ann(c, segmentation="abc"), "#annotation 100", "got a string"),
    # -- RLE: size, characters, and a total that matches height x width, before pycocotools decodes
    ("rle-size", lambda c, e: _ann(c, segmentation=_rle(B_MASK)), "#annotation 100", "size mismatch"),
    (
        "rle-size-type",
        lambda c, e: _ann(c, segmentation={"size": "60x80", "counts": "PP"}),
        "#annotation 100",
        "RLE size must be [height, width]",
    ),
    (
        "rle-sum-compressed",
        lambda c, e: _ann(c, segmentation={**_rle(B_MASK), "size": [60, 80]}),
        "#annotation 100",
        "add up to 2,000 pixels, not height x width = 4,800",
    ),
    (
        "rle-sum-list",
        lambda c, e: _ann(c, segmentation={"size": [60, 80], "counts": [100, 200]}),
        "#annotation 100",
        "add up to 300 pixels",
    ),
    (
        "rle-negative",
        lambda c, e: _ann(c, segmentation={"size": [60, 80], "counts": [-5, 4805]}),
        "#annotation 100",
        "non-negative integers, got a number (-5)",
    ),
    (
        "rle-bad-char",
        lambda c, e: _ann(c, segmentation={"size": [60, 80], "counts": "0~"}),
        "#annotation 100",
        "contain '~'",
    ),
    (
        "rle-truncated",
        lambda c, e: _ann(c, segmentation={"size": [60, 80], "counts": "0P"}),
        "#annotation 100",
        "end inside run 1",
    ),
    (
        "rle-long-run",
        lambda c, e: _ann(c, segmentation={"size": [60, 80], "counts": "PPPPPPP0"}),
        "#annotation 100",
        "longer than 6 characters",
    ),
    (
        "rle-garbage",
        lambda c, e: _ann(c, segmentation={"counts": 5, "size": [60, 80]}),
        "#annotation 100",
        "counts must be a list of integers or a string",
    ),
    ("rle-no-size", lambda c, e: _ann(c, segmentation={"counts": "0"}), "#annotation 100", "without 'counts'"),
    # -- annotation fields
    ("string-ann-id", lambda c, e: _ann(c, id="100"), "#annotations[2]", "id must be an integer"),
    ("string-image-ref", lambda c, e: _ann(c, image_id="1"), "#annotation 100", "image_id must be an integer"),
    ("bool-category", lambda c, e: _ann(c, category_id=True), "#annotation 100", "category_id must be an integer"),
    ("iscrowd-2", lambda c, e: _ann(c, iscrowd=2), "#annotation 100", "iscrowd must be 0 or 1"),
    ("iscrowd-bool", lambda c, e: _ann(c, iscrowd=True), "#annotation 100", "iscrowd must be 0 or 1"),
    ("duplicate-ann-id", lambda c, e: _ann(c, id=1), "#annotation 1", "a second annotation with id 1"),
    ("ann-not-object", lambda c, e: c["annotations"].append("x"), "#annotations[2]", "not an object"),
    ("unknown-image", lambda c, e: _ann(c, image_id=77), "#annotation 100", "unknown image id 77"),
    # -- categories
    ("category-name", _bad_category, "#category 3", "name must be a string, got a number (7)"),
    ("category-name-ann", _bad_category, "#annotation 100 (a.png)", "category 3 is unusable"),
    ("string-cat-id", lambda c, e: c["categories"].append({"id": "3", "name": "x"}), "#categories[2]", "integer"),
    # -- sections that are not lists
    ("annotations-dict", lambda c, e: c.update(annotations={"1": {}}), "#annotations", "is an object, not a list"),
]


@pytest.mark.parametrize(("mutate", "where", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_record_is_one_error_and_the_rest_is_converted(
    env: dict[str, Path], no_hang: None, mutate: Mutation, where: str, reason: str
) -> None:
    coco = _good()
    mutate(coco, env)
    problems, examples = _run(coco, env)
    errors = [p for p in problems if p.severity == "error"]
    assert any(where in p.file and reason in p.reason for p in errors), errors
    # the good images are converted (without objects when the annotations section itself is bad)
    expected = GOOD_OBJECTS if isinstance(coco["annotations"], list) else {"a.png": [], "b.png": []}
    assert {k: examples.get(k) for k in expected} == expected


def test_long_outline_is_refused_before_rasterizing(env: dict[str, Path]) -> None:
    coco = _good()
    Image.new("L", (2000, 2000)).save(env["images"] / "w.png")
    coco["images"].append({"id": 10, "file_name": "w.png", "width": 2000, "height": 2000})
    _ann(coco, image_id=10, segmentation=[[0, 0, 2000, 0] * 5000])  # 10,000 points, ~100 M steps
    problems, examples = _run(coco, env)
    assert [p.reason for p in problems] == [
        "polygon outlines too long to rasterize: 100,010,000 steps exceed the cap of 8,388,608 (5 per pixel of outline)"
    ]
    assert examples == {**GOOD_OBJECTS, "w.png": []}


def test_two_million_point_polygon_is_rejected_fast(env: dict[str, Path]) -> None:
    coco = _good()
    _ann(coco, segmentation=[[1, 1] * 2_000_000])
    path = env["root"] / "coco.json"
    path.write_text(json.dumps(coco))
    t0 = time.perf_counter()
    items, _, _ = coco_examples(path, env["images"])
    problems = [p for p in items if isinstance(p, Problem)]
    assert time.perf_counter() - t0 < 10
    assert [p.reason for p in problems] == [
        "polygons with 2,000,000 points exceed the cap of 500,000 points per annotation"
    ]


def test_null_bbox_and_missing_area_are_fine(env: dict[str, Path]) -> None:
    """``bbox`` and ``area`` are not used (the box comes from the mask): null or garbage is ignored."""
    coco = _good()
    _ann(coco, category_id=2, bbox=None, area="big")
    _ann(coco, id=101, category_id=2, bbox={"x": 1})
    problems, examples = _run(coco, env)
    assert problems == []
    assert examples == {"a.png": ["lake", "boat", "boat"], "b.png": ["boat"]}


def test_absurd_size_allocates_nothing(env: dict[str, Path]) -> None:
    coco = _good()
    coco["images"][0].update(width=10**6, height=10**6)
    problems, examples = _run(coco, env)
    assert [(p.file.split("#")[1], p.reason) for p in problems] == [
        ("image 1 (a.png)", f"1000000x1000000 = 1,000,000,000,000 pixels exceeds the cap of {MAX_PIXELS:,} pixels")
    ]
    assert examples == {"b.png": ["boat"]}
    with pytest.raises(ValueError, match="exceeds the cap"):
        annotation_mask({"segmentation": {"size": [10**6, 10**6], "counts": "0"}}, 10**6, 10**6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "the top level is a list (0 items), not an object"),  # a COCO *results* file
        ('"x"', "the top level is a string"),
        ("{}", "no 'images' list"),
        ('{"images": [{"id": 1}]}', "images[0] has no 'file_name'"),
        ("[" * 100_000, "not valid JSON"),  # nested too deeply
        ("\xff", "not valid JSON"),
    ],
)
def test_a_file_that_is_not_coco_is_refused_as_a_whole(env: dict[str, Path], content: str, message: str) -> None:
    path = env["root"] / "coco.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ValueError, match=re.escape(message)):
        coco_examples(path, env["images"])


def test_annotation_file_that_is_a_fifo_is_refused(env: dict[str, Path], no_hang: None) -> None:
    with pytest.raises(OSError, match="FIFO"):
        coco_examples(env["outside"], env["images"])


def test_rle_counts_match_pycocotools() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        m = rng.random((h, w)) < rng.random()
        runs = rle_counts(_rle(m)["counts"])
        flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool)
        np.testing.assert_array_equal(flat.reshape(w, h).T, m)
        np.testing.assert_array_equal(annotation_mask({"segmentation": _rle(m)}, h, w), m)
        uncompressed = {"size": [h, w], "counts": [int(r) for r in runs]}
        np.testing.assert_array_equal(annotation_mask({"segmentation": uncompressed}, h, w), m)


def test_convert_coco_end_to_end(env: dict[str, Path], codec: Any) -> None:
    coco = _good()
    _ann(coco, segmentation=_poly(math.nan, 30))
    _image(coco, "../outside.jpg")
    path = env["root"] / "coco.json"
    path.write_text(json.dumps(coco))
    out = env["root"] / "out" / "train.jsonl"
    report = convert_coco(path, env["images"], out, codec=codec, progress=False)
    assert {json.loads(line)["image"] for line in out.read_text().splitlines()} == {"a.png", "b.png"}
    assert report.objects == 2
    errors = [json.loads(line) for line in (env["root"] / "out" / "train.errors.jsonl").read_text().splitlines()]
    assert sorted(e["file"].split("#")[1] for e in errors) == ["annotation 100 (a.png)", "image 10 (../outside.jpg)"]


def test_eval_skips_and_reports_bad_ground_truth(env: dict[str, Path]) -> None:
    coco = _good()
    _ann(coco, segmentation={"size": [60, 80], "counts": [1, 2]})
    coco["images"].append({"id": 3, "file_name": "c.png", "width": 10**6, "height": 10**6})
    path = env["root"] / "coco.json"
    path.write_text(json.dumps(coco))
    report = evaluate({"a.png": "", "b.png": ""}, coco=path)
    messages = [p.reason for p in report.skipped]  # listed in the report (the CLI prints them, exit 1)
    assert any("annotation 100 (a.png): RLE counts add up to 3 pixels" in m for m in messages)
    assert any("image 3 (c.png)" in m and "exceeds the cap" in m for m in messages)
    assert [s.image for s in report.scores] == ["a", "b"]
    assert [s.union for s in report.scores] == [600, int(B_MASK.sum())]


def test_export_with_only_mask64_matches_full_masks() -> None:
    """``segments_to_coco`` pastes mask64-only segments box-locally; same JSON as full-size masks."""
    rng = np.random.default_rng(3)
    h, w = 37, 53
    segs = [
        Segment("a", (int(y), int(x), int(y) + 300, int(x) + 400), (0,) * 16, mask64=rng.normal(size=(64, 64)))
        for y, x in rng.integers(0, 700, (4, 2))
    ]
    full = [Segment(s.label, s.loc, s.seg, mask64=s.mask64, mask=paste_mask(s.mask64, s.loc, h, w)) for s in segs]
    info = [{"file_name": "x.png", "width": w, "height": h}]
    for polygons in (False, True):
        assert segments_to_coco(info, [segs], polygons=polygons) == segments_to_coco(info, [full], polygons=polygons)
    rles = segments_to_coco(info, [full])["annotations"]
    for s, ann in zip(full, rles, strict=True):
        rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), s.mask)
        assert ann["area"] == int(s.mask.sum())


# -- random mutations of a valid file: only documented errors, at load; otherwise Problems

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["a.png", "../a.png", "/etc/passwd", "C:\\a.png", "0P", "PPPPPPPP", "", "."]),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images = tmp_path_factory.mktemp("hostile") / "imgs"
    images.mkdir()
    Image.new("RGB", (80, 60)).save(images / "a.png")
    Image.new("RGB", (50, 40)).save(images / "b.png")
    return images


@settings(max_examples=150)
@given(data=st.data())
def test_random_mutations_give_problems_not_crashes(images_dir: Path, data: st.DataObject) -> None:
    doc: Any = copy.deepcopy(_good())
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        where = data.draw(st.sampled_from(paths))
        value = data.draw(_json)
        if not where:
            doc = value
            continue
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, (dict, list)):
            del parent[where[-1]]
        else:
            parent[where[-1]] = value
    path = images_dir.parent / "mutated.json"
    path.write_text(json.dumps(doc))
    try:
        items, _, _ = coco_examples(path, images_dir)
    except ValueError as err:  # documented: not a COCO file at all, or a category name that is no label
        message = str(err)
    else:
        message = ""
    if message:
        assert str(path) in message
        return
    for item in items:  # never raises
        assert isinstance(item, (Example, Problem))
        if isinstance(item, Example):
            assert item.image in ("a.png", "b.png")
            assert all(o.crop.shape[0] <= 60 and o.crop.shape[1] <= 80 for o in item.objects)
