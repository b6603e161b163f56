"""``eval --protocol big_vision``: big_vision's segmentation evaluator, number for number.

- the worked example of docs/evaluation.md, with numbers computed by hand;
- agreement with big_vision's own evaluator run on the water pairs (``tests/data/bv_eval/golden.json``,
  made by ``tests/data/bv_eval/make.py``), to 1e-6 (they agree exactly);
- the CLI end to end; the reader never crashes on junk and counts it invalid.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from paligemma_segcodec import load_codec
from paligemma_segcodec.cli import main
from paligemma_segcodec.codec import Codec
from paligemma_segcodec.datasets.bv_protocol import (
    BV_DET_IOUS,
    bv_box_iou,
    bv_ground_truth_box,
    bv_metrics,
    check_det_ious,
    read_bv_answer,
)
from paligemma_segcodec.datasets.evaluate import evaluate, score_image_bv

DATA = Path(__file__).parent / "data"
WATER = DATA / "water"
GOLDEN = json.loads((DATA / "bv_eval" / "golden.json").read_text())
FULL = "<seg110>" * 16  # the stand-in checkpoint decodes these to a full box
HEAD = "<loc0100><loc0200><loc0300><loc0400>" + "<seg005>" * 16


@pytest.fixture(scope="module")
def codec() -> Codec:
    return load_codec(DATA / "fixture-vae.npz")


@pytest.fixture
def cli() -> Callable[..., Result]:
    def run(*args: object) -> Result:
        env = {"PALIGEMMA_SEGCODEC_CHECKPOINT": str(DATA / "fixture-vae.npz")}  # never the download
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)

    return run


# ---------------------------------------------------------------------------------------------
# Reading an answer: the first 4 + 16 tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD, ((100, 200, 300, 400), (5,) * 16)),
        (HEAD + " cat", ((100, 200, 300, 400), (5,) * 16)),
        (HEAD + " cat ; <loc0000><loc0000><loc0010><loc0010> dog", ((100, 200, 300, 400), (5,) * 16)),
        (HEAD + "<seg001><loc0005> junk <eos>", ((100, 200, 300, 400), (5,) * 16)),  # ignore rest
        ("<loc0000><loc0000><loc1023><loc1023>" + "<seg127>" * 16, ((0, 0, 1023, 1023), (127,) * 16)),
    ],
)
def test_an_answer_is_read_from_its_first_20_tokens(text: str, expected: object) -> None:
    assert read_bv_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty
        "<loc0100><loc0200><loc0300><loc0400> cat",  # detection only
        "<loc0100><loc0200><loc0300><loc0400>" + "<seg005>" * 15 + " cat",  # 15 seg tokens
        "<loc0100><loc0200><loc0300>" + "<seg005>" * 16,  # 3 loc tokens
        "<loc0300><loc0200><loc0300><loc0400>" + "<seg005>" * 16,  # y2 == y1
        "<loc0100><loc0400><loc0300><loc0200>" + "<seg005>" * 16,  # x2 < x1
        " " + HEAD,  # a leading space is a token
        "<bos>" + HEAD,
        HEAD.replace("><", "> <", 1),  # a space between tokens is a token
        HEAD.replace("<loc0400>", "<loc1024>"),  # not a PaliGemma token
        HEAD.replace("<seg005>", "<seg128>", 1),
        HEAD.replace("<loc0100>", "<loc100>"),
        HEAD.replace("<loc0100>", "<LOC0100>"),
        HEAD.replace("<loc0100>", "<loc٠١٠٠>"),  # Arabic-Indic digits: not a token
        "cat " + HEAD,
    ],
)
def test_anything_else_is_invalid(text: str) -> None:
    assert read_bv_answer(text) is None


def test_the_ground_truth_box_is_the_masks_pixel_edges_in_float32() -> None:
    m = np.zeros((4, 8), bool)
    m[1:3, 2:8] = True
    box = bv_ground_truth_box(m)
    assert box.dtype == np.float32 and box.tolist() == [0.25, 0.25, 0.75, 1.0]
    m = np.zeros((3, 7), bool)
    m[1, 1] = True
    assert bv_ground_truth_box(m).tolist() == np.array([1 / 3, 1 / 7, 2 / 3, 2 / 7], np.float32).tolist()
    assert bv_ground_truth_box(np.zeros((5, 5), bool)).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="2-D"):
        bv_ground_truth_box(np.zeros(5, bool))


# ---------------------------------------------------------------------------------------------
# The worked example of docs/evaluation.md, by hand


def _worked_example(folder: Path) -> dict[str, str]:
    def save(name: str, *boxes: tuple[int, int, int, int]) -> None:
        m = np.zeros((100, 100), np.uint8)
        for t, left, b, r in boxes:
            m[t:b, left:r] = 255
        Image.fromarray(m).save(folder / f"{name}.png")

    save("two", (10, 10, 40, 40), (60, 60, 90, 90))
    for name in ("det", "flat", "thin"):
        save(name, (20, 20, 80, 80))
    return {
        "two.jpg": f"<loc0103><loc0103><loc0410><loc0410>{FULL} pond ; <loc0614><loc0614><loc0921><loc0921>{FULL} pond",
        "det.jpg": "<loc0205><loc0205><loc0819><loc0819> pond",
        "flat.jpg": f"<loc0205><loc0205><loc0205><loc0819>{FULL} pond",
        "thin.jpg": f"<loc0500><loc0205><loc0501><loc0819>{FULL} pond",
    }


def test_the_full_code_decodes_to_a_full_box(codec: Codec) -> None:
    """The worked example's premise: FULL pastes as its whole box (stand-in checkpoint)."""
    logits = codec.decode_indices(np.full((1, 16), 110))[0]
    for size in [(30, 30), (60, 60), (1, 60), (80, 30)]:
        assert (np.asarray(Image.fromarray(logits).resize(size, Image.Resampling.BILINEAR)) > 0).all()


def test_worked_example_big_vision(tmp_path: Path, codec: Codec) -> None:
    answers = _worked_example(tmp_path)
    report = evaluate(answers, masks_dir=tmp_path, protocol="big_vision", codec=codec, progress=False)
    by = {s.image: s for s in report.scores}
    gt = np.float32(0.2), np.float32(0.8)  # the 20:80 squares' box, float32 as TFDS
    # two objects: only the first (rows/cols 10:40 = <loc0103>..<loc0410>) is read: IoU 900 / 1800
    assert (by["two"].iou, by["two"].intersection, by["two"].union, by["two"].invalid) == (0.5, 900, 1800, False)
    side = 307 / 1023  # first box inside the ground truth's box (0.1 .. 0.9)
    assert by["two"].box_iou == pytest.approx(side * side / (float(np.float32(0.9)) - float(np.float32(0.1))) ** 2)
    assert by["two"].skipped_objects == 1
    # detection only and y2 == y1: invalid, box IoU from the all-zero box
    for name in ("det", "flat"):
        assert (by[name].iou, by[name].box_iou, by[name].invalid) == (0.0, 0.0, True)
    # <loc0500>..<loc0501> is 48.9 .. 48.97 px: int() leaves no row: invalid, box IoU all the same
    y1, x1, y2, x2 = 500 / 1023, 205 / 1023, 501 / 1023, 819 / 1023
    inter = (y2 - y1) * (float(gt[1]) - x1)
    expected = inter / ((y2 - y1) * (x2 - x1) + float(gt[1] - gt[0]) ** 2 - inter)
    assert by["thin"].invalid and by["thin"].iou == 0.0
    assert by["thin"].box_iou == pytest.approx(expected, rel=1e-6)
    assert report.metrics() == {
        "protocol": "big_vision",
        "miou": 0.125,  # (0.5 + 0 + 0 + 0) / 4
        "boxacc/0.5": 0.0,
        "boxacc/0.75": 0.0,
        "invalid": 3,
        "total": 4,
    }


def test_worked_example_segcodec(tmp_path: Path, codec: Codec) -> None:
    answers = _worked_example(tmp_path)
    report = evaluate(answers, masks_dir=tmp_path, codec=codec, progress=False)
    by = {s.image: s for s in report.scores}
    assert (by["two"].iou, by["two"].box_iou) == (1.0, 1.0)  # both squares, the box around both
    assert (by["det"].iou, by["det"].box_iou, by["det"].invalid) == (0.0, 1.0, False)  # its box counts
    assert by["flat"].invalid and by["flat"].skipped_objects == 1  # y2 == y1: not an object
    assert (by["thin"].iou, by["thin"].box_iou, by["thin"].invalid) == (0.0, 0.0, False)
    assert report.metrics() == {
        "protocol": "segcodec",
        "images": 4,
        "miou": 0.25,
        "ciou": 1800 / 12600,
        "box_acc@0.5": 0.5,
        "box_acc@0.75": 0.5,
        "invalid": 1,
        "skipped_objects": 1,
    }


# ---------------------------------------------------------------------------------------------
# big_vision's own numbers (tests/data/bv_eval/golden.json)


@pytest.mark.parametrize("key", sorted(GOLDEN["sets"]))
def test_agrees_with_big_visions_evaluator(key: str, codec: Codec) -> None:
    ref = GOLDEN["sets"][key]
    det_ious = ref["det_ious"]
    report = evaluate(
        ref["answers"],
        masks_dir=WATER / "masks",
        protocol="big_vision",
        det_ious=det_ious,
        codec=codec,
        progress=False,
    )
    metrics = report.metrics()
    assert metrics.pop("protocol") == "big_vision"
    assert list(metrics) == list(ref["metrics"])  # same names, same order
    for name, value in ref["metrics"].items():
        assert metrics[name] == pytest.approx(value, abs=1e-6), name
    assert metrics["invalid"] == ref["metrics"]["invalid"] and metrics["total"] == ref["metrics"]["total"]
    for s in report.scores:
        alone = ref["per_image"][s.image + ".jpg"]
        assert s.iou == pytest.approx(alone["miou"], abs=1e-6), s.image
        assert s.invalid == bool(alone["invalid"]), s.image
        for t in det_ious or BV_DET_IOUS:
            assert (t <= s.box_iou) == bool(alone[f"boxacc/{t}"]), (s.image, t)


def test_the_golden_sets_cover_the_varied_answers() -> None:
    varied = GOLDEN["sets"]["varied/default"]
    assert varied["metrics"]["invalid"] == 6 and varied["metrics"]["total"] == 10
    texts = list(varied["answers"].values())
    assert "" in texts and any(t.startswith(" ") for t in texts) and any(" ; <loc" in t for t in texts)


# ---------------------------------------------------------------------------------------------
# API details


def test_metrics_names_follow_the_thresholds() -> None:
    from paligemma_segcodec.datasets.evaluate import ImageScore

    s = ImageScore("a", 0.25, 0.6, 1, 4, 1, 1, False, 0, "big_vision")
    assert list(bv_metrics([s], (0.3, 0.6, 0.61))) == [
        "miou",
        "boxacc/0.3",
        "boxacc/0.6",
        "boxacc/0.61",
        "invalid",
        "total",
    ]
    assert bv_metrics([s], (0.3, 0.6, 0.61))["boxacc/0.61"] == 0.0
    assert bv_metrics([s], (0.6,))["boxacc/0.6"] == 1.0  # t <= box IoU
    assert bv_metrics([]) == {"total": 0}


@pytest.mark.parametrize("bad", [(), (0.5, 0.5), (1.5,), (-0.1,), (math.nan,), ("0.5",), (True,)])
def test_bad_thresholds_are_refused(bad: tuple[object, ...]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        check_det_ious(bad)  # type: ignore[arg-type]


def test_protocol_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="protocol must be one of"):
        evaluate({}, masks_dir=tmp_path, protocol="coco")
    with pytest.raises(ValueError, match="det_ious"):
        evaluate({}, masks_dir=tmp_path, det_ious=(0.5,))


def test_a_missing_prediction_is_invalid(tmp_path: Path) -> None:
    _worked_example(tmp_path)
    report = evaluate({"two.jpg": ""}, masks_dir=tmp_path, protocol="big_vision", progress=False)
    assert report.metrics()["invalid"] == 4 and report.metrics()["miou"] == 0.0


def test_an_empty_ground_truth_gives_nan_as_the_evaluator(tmp_path: Path, codec: Codec) -> None:
    """0 / 0: the evaluator's box IoU (and mask IoU when nothing is predicted) is NaN; no hit."""
    gt = np.zeros((50, 50), bool)
    s = score_image_bv("a", "", gt, codec=codec)
    assert s.invalid and math.isnan(s.box_iou) and s.iou == 0.0
    s = score_image_bv("a", "<loc0000><loc0000><loc1023><loc1023>" + "<seg043>" * 16, gt, codec=codec)
    assert not s.invalid and s.box_iou == 0.0 and math.isnan(s.iou)  # <seg043>: an empty mask
    assert bv_metrics([s])["boxacc/0.5"] == 0.0


def test_progress_is_reported_and_can_be_a_callable(tmp_path: Path, codec: Codec) -> None:
    answers = _worked_example(tmp_path)
    seen: list[tuple[int | None, str]] = []

    def progress(items: object, *, total: int | None, desc: str, unit: str) -> object:
        seen.append((total, desc))
        return items

    a = evaluate(answers, masks_dir=tmp_path, protocol="big_vision", codec=codec, progress=progress)
    b = evaluate(answers, masks_dir=tmp_path, protocol="big_vision", codec=codec, progress=False)
    assert seen == [(4, "eval")] and a.scores == b.scores


# ---------------------------------------------------------------------------------------------
# CLI


def _predictions(path: Path, answers: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"image": k, "prediction": v}) + "\n" for k, v in answers.items()))
    return path


def test_cli_big_vision_end_to_end(tmp_path: Path, cli: Callable[..., Result]) -> None:
    ref = GOLDEN["sets"]["varied/custom"]
    preds = _predictions(tmp_path / "p.jsonl", ref["answers"])
    csv_out, json_out = tmp_path / "s.csv", tmp_path / "m.json"
    args = ["--masks", WATER / "masks", "--protocol", "big_vision", "--det-ious", "0.3,0.5,0.9", "--no-progress"]
    result = cli("eval", "--predictions", preds, *args, "--csv", csv_out, "--json", json_out)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics == json.loads(json_out.read_text())
    assert metrics.pop("protocol") == "big_vision"
    assert list(metrics) == list(ref["metrics"])
    for name, value in ref["metrics"].items():
        assert metrics[name] == pytest.approx(value, abs=1e-6)
    assert type(metrics["invalid"]) is int and type(metrics["total"]) is int
    rows = list(csv.DictReader(csv_out.open()))
    assert len(rows) == 10 and {r["protocol"] for r in rows} == {"big_vision"}


def test_cli_default_protocol_is_segcodec_and_says_so(tmp_path: Path, cli: Callable[..., Result]) -> None:
    preds = _predictions(tmp_path / "p.jsonl", GOLDEN["sets"]["varied/default"]["answers"])
    csv_out = tmp_path / "s.csv"
    result = cli("eval", "--predictions", preds, "--masks", WATER / "masks", "--csv", csv_out, "--no-progress")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["protocol"] == "segcodec" and "ciou" in metrics
    assert {r["protocol"] for r in csv.DictReader(csv_out.open())} == {"segcodec"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--det-ious", "0.5"], "--det-ious applies to --protocol big_vision only"),
        (["--protocol", "big_vision", "--det-ious", "0.5,x"], "not a comma list of numbers"),
        (["--protocol", "big_vision", "--det-ious", "0.5,2"], "numbers in [0, 1]"),
        (["--protocol", "big_vision", "--det-ious", "0.5,0.5"], "given twice"),
        (["--protocol", "coco"], "'coco' is not one of"),
    ],
)
def test_cli_bad_protocol_options(tmp_path: Path, cli: Callable[..., Result], args: list[str], message: str) -> None:
    preds = _predictions(tmp_path / "p.jsonl", {"a.jpg": ""})
    result = cli("eval", "--predictions", preds, "--masks", WATER / "masks", *args)
    assert result.exit_code == 2 and message in result.output


# ---------------------------------------------------------------------------------------------
# Junk answers


_PIECES = ["<loc0000>", "<loc1023>", "<loc1024>", "<loc0512>", "<seg000>", "<seg127>", "<seg128>", "<seg"]
_JUNK = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from([*_PIECES, " ", ";", "<eos>", "<loc٠١٠٠>", "water", ">", "<", "\n", "<loc05>"]),
        max_size=60,
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(text=_JUNK)
def test_the_reader_never_crashes_and_junk_is_invalid(text: str) -> None:
    read = read_bv_answer(text)
    if read is not None:  # only a genuine head is read
        (y1, x1, y2, x2), seg = read
        assert text.startswith("".join(f"<loc{k:04d}>" for k in read[0]) + "".join(f"<seg{k:03d}>" for k in seg))
        assert y2 > y1 and x2 > x1 and len(seg) == 16
    gt = np.zeros((8, 8), bool)
    gt[2:6, 2:6] = True
    s = score_image_bv("x", text, gt, codec=_NO_DECODE)
    if read is None:
        assert s.invalid and (s.iou, s.box_iou, s.predicted) == (0.0, 0.0, 0)


class _NoDecode:
    """A codec for junk: it decodes nothing (junk never gets that far) but a read head (all-positive)."""

    def decode_indices(self, indices: object) -> np.ndarray:
        return np.ones((1, 64, 64), np.float32)


_NO_DECODE: Codec = _NoDecode()  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------
# COCO ground truth: the annotations' own bbox is big_vision's ground-truth box


def _coco_file(path: Path, bboxes: list[object]) -> Path:
    """A 100x100 image with one polygon annotation per entry of ``bboxes`` (the ``bbox`` field as
    given; ``"absent"`` leaves it out); every polygon is the square 20..60."""
    anns = []
    for i, bbox in enumerate(bboxes, 1):
        ann: dict[str, object] = {"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0}
        ann["segmentation"] = [[20, 20, 60, 20, 60, 60, 20, 60]]
        if bbox != "absent":
            ann["bbox"] = bbox
        anns.append(ann)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "water"}],
    }
    path.write_text(json.dumps(doc))
    return path


ANSWER = "<loc0205><loc0205><loc0614><loc0614>" + FULL + " water"


def _box_iou_of(tmp_path: Path, codec: Codec, bboxes: list[object]) -> float:
    coco = _coco_file(tmp_path / "gt.json", bboxes)
    report = evaluate({"a.jpg": ANSWER}, coco=coco, protocol="big_vision", codec=codec)
    (score,) = report.scores
    return score.box_iou


def test_coco_ground_truth_box_is_the_annotations_bbox(tmp_path: Path, codec: Codec) -> None:
    pred = np.array([205, 205, 614, 614]) / 1023
    bbox = [19.5, 18.25, 41.0, 42.5]  # x, y, w, h: not the rasterized polygon's tight box
    gt = np.array([18.25 / 100, 19.5 / 100, 60.75 / 100, 60.5 / 100], np.float64).astype(np.float32)
    expected = bv_box_iou(pred, gt)
    assert _box_iou_of(tmp_path, codec, [bbox]) == expected
    # two annotations: the union of their boxes
    union = bv_box_iou(pred, np.array([18.25 / 100, 5 / 100, 60.75 / 100, 60.5 / 100], np.float64).astype(np.float32))
    assert _box_iou_of(tmp_path, codec, [bbox, [5, 30, 10, 10]]) == union


@pytest.mark.parametrize("bad", ["absent", None, [1, 2, 3], [0, 0, -1, 5], [0, 0, float("nan"), 1], [True, 0, 1, 1]])
def test_coco_without_a_valid_bbox_uses_the_mask_box(tmp_path: Path, codec: Codec, bad: object) -> None:
    from paligemma_segcodec.datasets.coco import annotation_mask

    pred = np.array([205, 205, 614, 614]) / 1023
    mask = annotation_mask({"segmentation": [[20, 20, 60, 20, 60, 60, 20, 60]]}, 100, 100)
    assert _box_iou_of(tmp_path, codec, [bad]) == bv_box_iou(pred, bv_ground_truth_box(mask))
