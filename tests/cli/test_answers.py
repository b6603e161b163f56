"""What show, eval and export share (cli/answers.py): the predictions file, the images, and one round
trip through the three commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from PIL import Image
from pycocotools.coco import COCO

from paligemma_segcodec import decode_tokens, load_codec
from paligemma_segcodec.datasets import convert_folder

DATA = Path(__file__).parent.parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_show_eval_export_round_trip(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    out = tmp_path / "gt.jsonl"
    codec = load_codec(CKPT)
    convert_folder(WATER / "images", WATER / "masks", out, label="water", codec=codec, progress=False)
    preds = tmp_path / "preds.jsonl"
    lines = _lines(out)
    lines[0]["suffix"] = "<loc0001><loc0002> broken"
    preds.write_text("".join(json.dumps({"image": r["image"], "prediction": r["suffix"]}) + "\n" for r in lines))
    # show
    result = segcodec("show", "--predictions", preds, "--images", WATER / "images", "--output", tmp_path / "show")
    assert result.exit_code == 0, result.output
    name = lines[1]["image"]
    shown = np.asarray(Image.open(tmp_path / "show" / (Path(name).stem + ".png")).convert("RGB")).astype(int)
    original = np.asarray(Image.open(WATER / "images" / name).convert("RGB")).astype(int)
    assert shown.shape == original.shape and np.mean(np.any(shown != original, axis=-1)) > 0.01
    # eval: the broken line is invalid
    csv_out = tmp_path / "scores.csv"
    result = segcodec("eval", "--predictions", preds, "--masks", WATER / "masks", "--csv", csv_out)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["images"] == 10 and metrics["invalid"] == 1 and 0 <= metrics["miou"] <= 1
    assert all(type(metrics[k]) is int for k in ("images", "invalid", "skipped_objects"))  # counts, not 3.0
    assert len(csv_out.read_text().splitlines()) == 11
    # export to COCO and load back with pycocotools
    coco_out = tmp_path / "pred_coco.json"
    result = segcodec("export", "--predictions", preds, "--images", WATER / "images", "--output", coco_out)
    assert result.exit_code == 0, result.output
    coco = COCO(str(coco_out))
    segs = decode_tokens(lines[1]["suffix"], height=original.shape[0], width=original.shape[1], codec=codec)
    img_id = next(i["id"] for i in coco.dataset["images"] if i["file_name"] == name)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
    assert len(anns) == len(segs)
    for ann, s in zip(anns, segs, strict=True):
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), s.mask)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "preds.jsonl:2: not JSON"),
        ("[1, 2]", "preds.jsonl:2: need a JSON object with string fields 'image' and 'prediction'"),
        ('{"image": "a.jpg"}', "preds.jsonl:2: need a JSON object"),
        ('{"image": "a.jpg", "prediction": null}', "preds.jsonl:2: need a JSON object"),
        ('{"image": "first.jpg", "suffix": ""}', "preds.jsonl:2: a second prediction for 'first.jpg' (the first is on"),
    ],
)
def test_predictions_file_faults_are_clean_errors(
    tmp_path: Path, segcodec: Callable[..., Result], line: str, message: str
) -> None:
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"image": "first.jpg", "prediction": ""}) + "\n" + line + "\n")
    for command in (["eval", "--masks", WATER / "masks"], ["show", "--images", WATER / "images", "--output", tmp_path]):
        result = segcodec(command[0], "--predictions", preds, *command[1:])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_show_and_export_skip_unreadable_images_and_go_on(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    out = tmp_path / "gt.jsonl"
    convert_folder(WATER / "images", WATER / "masks", out, label="water", codec=load_codec(CKPT), progress=False)
    lines = _lines(out)[:3]
    lines[1]["image"] = "missing.jpg"
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"image": r["image"], "prediction": r["suffix"]}) + "\n" for r in lines))
    skipped = f"{WATER / 'images' / 'missing.jpg'}: unreadable image: file not found"
    shown = segcodec("show", "--predictions", preds, "--images", WATER / "images", "--output", tmp_path / "show")
    assert shown.exit_code == 1 and "skipped 1 image(s)" in shown.output and skipped in shown.output
    assert sorted(p.name for p in (tmp_path / "show").iterdir()) == sorted(
        Path(r["image"]).stem + ".png" for r in (lines[0], lines[2])
    )
    coco_out = tmp_path / "coco.json"
    exported = segcodec("export", "--predictions", preds, "--images", WATER / "images", "--output", coco_out)
    assert exported.exit_code == 1 and skipped in exported.output
    written = [i["file_name"] for i in json.loads(coco_out.read_text())["images"]]
    assert written == [lines[0]["image"], lines[2]["image"]]
