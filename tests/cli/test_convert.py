"""segcodec convert: folders and COCO, with planted faults."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from PIL import Image
from pycocotools import mask as mask_utils

from paligemma_segcodec import decode_tokens, load_codec
from paligemma_segcodec.datasets import convert_folder, lint_folder

DATA = Path(__file__).parent.parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"


def _palette_image(indices: np.ndarray, palette: list[int]) -> Image.Image:
    im = Image.fromarray(indices.astype(np.uint8), "P")
    im.putpalette(palette)
    return im


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_convert_cli_exact_form_and_strict_parse(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    out = tmp_path / "out.jsonl"
    args = ["convert", "--images", str(WATER / "images"), "--masks", str(WATER / "masks"), "--label", "water"]
    result = segcodec(*args, "--output", out, "--no-progress")
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    assert len(lines) == 10 and [set(r) for r in lines] == [{"image", "prefix", "suffix"}] * 10
    codec = load_codec(CKPT)
    for r in lines:
        assert r["prefix"] == "segment water"
        segs = decode_tokens(r["suffix"], strict=True, codec=codec)
        assert all(s.label == "water" and s.seg is not None for s in segs)
    assert sorted(r["image"] for r in lines) == sorted(p.name for p in (WATER / "images").iterdir())
    # byte-identical on a re-run
    first = out.read_bytes()
    segcodec(*args, "--output", out, "--no-progress")
    assert out.read_bytes() == first
    assert (tmp_path / "out.errors.jsonl").read_text() == ""


def test_convert_planted_faults(faulty: Path, tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    out = tmp_path / "o" / "train.jsonl"
    report = convert_folder(
        faulty / "images", faulty / "masks", out, label="water", codec=load_codec(CKPT), progress=False
    )
    errors = _lines(tmp_path / "o" / "train.errors.jsonl")
    reasons = " | ".join(e["reason"] for e in errors)
    stems = sorted(p.stem for p in (faulty / "images").iterdir())
    assert "unreadable mask" in reasons  # truncated JPEG
    assert "image without mask" in reasons
    assert "mask without image" in reasons  # orphan.png
    assert "size mismatch" in reasons
    assert "colour mask" in reasons
    assert len(errors) == 5 and not report.ok
    by_image = {r["image"]: r for r in _lines(out)}
    assert len(by_image) == 10 - 4  # every good pair converted, nothing else lost
    assert by_image[f"{stems[4]}.jpg"]["suffix"] == ""  # all-black: empty suffix, kept
    white = decode_tokens(by_image[f"{stems[3]}.jpg"]["suffix"], strict=True, codec=load_codec(CKPT))
    assert len(white) == 1 and white[0].loc == (0, 0, 1023, 1023)  # all-white: one full-image object
    # the CLI exits non-zero
    result = segcodec(
        "convert",
        "--images",
        faulty / "images",
        "--masks",
        faulty / "masks",
        "--label",
        "water",
        "--output",
        tmp_path / "c.jsonl",
        "--no-progress",
    )
    assert result.exit_code == 1 and "skipped 5 item(s)" in result.output


def _coco_fixture(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (80, 60), (20, 90, 160)).save(images / "a.png")
    Image.new("RGB", (50, 40), (200, 90, 60)).save(images / "b.png")
    rle_mask = np.zeros((40, 50), np.uint8)
    rle_mask[5:20, 10:30] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_mask))
    rle["counts"] = rle["counts"].decode()
    crowd = mask_utils.frPyObjects([[50, 40, 70, 40, 70, 55, 50, 55]], 60, 80)[0]
    crowd["counts"] = crowd["counts"].decode()
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 80, "height": 60},
            {"id": 2, "file_name": "b.png", "width": 50, "height": 40},
            {"id": 3, "file_name": "missing.png", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": "lake"}, {"id": 2, "name": "boat"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]],
                "area": 600,
                "bbox": [10, 10, 30, 20],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "iscrowd": 1,
                "segmentation": crowd,
                "area": 300,
                "bbox": [50, 40, 20, 15],
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 2,
                "iscrowd": 0,
                "segmentation": rle,
                "area": 300,
                "bbox": [10, 5, 20, 15],
            },
        ],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    return path, images


def test_convert_coco_polygons_rle_crowd(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    ann, images = _coco_fixture(tmp_path)
    out = tmp_path / "coco.jsonl"
    result = segcodec("convert", "--coco", ann, "--images", images, "--output", out, "--no-progress")
    assert result.exit_code == 1  # missing.png is an error
    lines = {r["image"]: r for r in _lines(out)}
    assert set(lines) == {"a.png", "b.png"}
    codec = load_codec(CKPT)
    a = decode_tokens(lines["a.png"]["suffix"], strict=True, codec=codec)
    assert [s.label for s in a] == ["lake"] and lines["a.png"]["prefix"] == "segment lake"  # crowd skipped
    # int(k / 1023 * side) truncates: within one pixel of the annotation (10, 10, 40, 30)
    assert np.abs(np.subtract(a[0].xyxy(height=60, width=80), (10, 10, 40, 30))).max() <= 1
    b = decode_tokens(lines["b.png"]["suffix"], strict=True, codec=codec)
    assert [s.label for s in b] == ["boat"]
    assert np.abs(np.subtract(b[0].xyxy(height=40, width=50), (10, 5, 30, 20))).max() <= 1
    errors = _lines(tmp_path / "coco.errors.jsonl")
    assert any("crowd" in e["reason"] and e["severity"] == "warning" for e in errors)
    assert any("missing.png" in e["file"] and e["severity"] == "error" for e in errors)
    # --crowd include keeps the crowd region as an object
    segcodec("convert", "--coco", ann, "--images", images, "--output", out, "--crowd", "include", "--no-progress")
    assert decode_tokens({r["image"]: r for r in _lines(out)}["a.png"]["suffix"], codec=codec)[1].label == "boat"


def test_convert_coco_reports_faulty_annotations_and_files(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    """Each faulty annotation is one error saying what is wrong; the good ones are still converted;
    a file that is not JSON or not COCO-shaped is a clean CLI error naming it."""
    ann, images = _coco_fixture(tmp_path)
    coco = json.loads(ann.read_text())
    good = coco["annotations"][0]
    faulty = {
        101: {"segmentation": [[10, 10, 20]]},
        102: {"segmentation": []},
        103: {"segmentation": None},
        104: {"segmentation": {"size": [60, 80]}},
        105: {"image_id": 77},
    }
    for i, change in faulty.items():
        bad = {**good, "id": i, **change}
        coco["annotations"].append({k: v for k, v in bad.items() if v is not None})
    ann.write_text(json.dumps(coco))
    out = tmp_path / "faulty.jsonl"
    result = segcodec("convert", "--coco", ann, "--images", images, "--output", out, "--no-progress")
    assert result.exit_code == 1
    reasons = {e["file"].split("#")[-1].split(" (")[0]: e["reason"] for e in _lines(tmp_path / "faulty.errors.jsonl")}
    assert reasons["annotation 101"] == "polygon 0 has 3 numbers: needs x,y pairs of at least 3 points"
    assert reasons["annotation 102"] == "empty segmentation (no polygon)"
    assert reasons["annotation 103"] == "no segmentation"
    assert reasons["annotation 104"] == "RLE segmentation without 'counts' and 'size'"
    assert reasons["annotation 105"] == "unknown image id 77"
    assert {r["image"] for r in _lines(out)} == {"a.png", "b.png"}
    a = decode_tokens({r["image"]: r for r in _lines(out)}["a.png"]["suffix"], strict=True, codec=load_codec(CKPT))
    assert [s.label for s in a] == ["lake"]  # the good annotation of a.png, alone

    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "shape.json").write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"id": 1}]}))
    for name, message in (
        ("broken.json", "broken.json: not valid JSON"),
        ("shape.json", "shape.json: not a COCO instances file: images[0] has no 'file_name'; annotations[0] has no"),
    ):
        result = segcodec("convert", "--coco", tmp_path / name, "--images", images, "--output", out, "--no-progress")
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", ""], "--label: label is empty"),
        (["--label", "water;lake"], "--label: label may not contain ';'"),
        (["--label", "water "], "--label: label has leading or trailing whitespace"),
        (["--classes", "1=water,2="], "--classes: --classes must look like 1=water,2=road"),
        (["--classes", "1=water,2=<road>"], "--classes: class name of 2 may not contain"),
    ],
)
def test_convert_rejects_bad_labels_before_writing_anything(
    tmp_path: Path, segcodec: Callable[..., Result], args: list[str], message: str
) -> None:
    out = tmp_path / "out" / "train.jsonl"
    result = segcodec("convert", "--images", WATER / "images", "--masks", WATER / "masks", *args, "--output", out)
    assert result.exit_code == 2 and message in result.output
    assert not out.parent.exists()  # no empty or half-written files


def test_convert_coco_rejects_a_category_name_that_cannot_be_a_label(
    tmp_path: Path, segcodec: Callable[..., Result]
) -> None:
    ann, images = _coco_fixture(tmp_path)
    coco = json.loads(ann.read_text())
    coco["categories"][1]["name"] = "boat; ship"
    ann.write_text(json.dumps(coco))
    out = tmp_path / "out" / "coco.jsonl"
    result = segcodec("convert", "--coco", ann, "--images", images, "--output", out, "--no-progress")
    assert result.exit_code == 1 and "the name of category 2 may not contain ';'" in result.output
    assert not out.parent.exists()


def test_convert_reads_mask_files_of_any_mask_format_alike(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    """The same mask saved as 16-bit PNG, palette 0/1, LA, RGBA grey, alpha-only cut-out, float and
    32-bit TIFF, GIF, lossless WebP, a palette PNG with white first and a CMYK TIFF gives the same
    JSONL line as the 8-bit original; duplicates and empty folders are reported."""
    stems = sorted(p.stem for p in (WATER / "images").iterdir())
    stems += [f"{stem}_again" for stem in stems[:1]]  # more formats than bundled pairs
    img, msk, ref = tmp_path / "images", tmp_path / "masks", tmp_path / "ref"
    for d in (img, msk, ref):
        d.mkdir()
    writers = [
        lambda b: Image.fromarray(b.astype(np.uint16) * 65535),  # I;16
        lambda b: Image.fromarray(b.astype(np.uint8)).convert("P"),  # palette indices 0/1
        lambda b: Image.fromarray(np.stack([b * 255, np.full(b.shape, 255)], -1).astype(np.uint8), "LA"),
        lambda b: Image.fromarray(np.stack([b * 200] * 3 + [np.full(b.shape, 255)], -1).astype(np.uint8), "RGBA"),
        lambda b: Image.fromarray(np.stack([np.zeros(b.shape)] * 3 + [b * 255], -1).astype(np.uint8), "RGBA"),
        lambda b: Image.fromarray(b.astype(np.float32)),  # F, 0/1
        lambda b: Image.fromarray(b.astype(np.int32) * 255),  # I
        lambda b: Image.fromarray(b.astype(np.uint8) * 255),  # GIF: a palette in the encoder's order
        lambda b: Image.fromarray(b.astype(np.uint8) * 255),  # WebP (saved lossless)
        lambda b: _palette_image((~b).astype(np.uint8), [255, 255, 255, 0, 0, 0]),  # index 0 is white
        lambda b: Image.fromarray(b.astype(np.uint8) * 255).convert("CMYK"),  # CMYK TIFF
    ]
    suffixes = [".png", ".png", ".png", ".png", ".png", ".tif", ".tif", ".gif", ".webp", ".png", ".tif"]
    for stem, write, suffix in zip(stems, writers, suffixes, strict=True):
        source = stem.removesuffix("_again")
        shutil.copy(WATER / "images" / f"{source}.jpg", img / f"{stem}.jpg")
        binary = np.asarray(Image.open(WATER / "masks" / f"{source}.jpg").convert("L")) > 127
        Image.fromarray(binary.astype(np.uint8) * 255).save(ref / f"{stem}.png")
        write(binary).save(msk / f"{stem}{suffix}", **({"lossless": True} if suffix == ".webp" else {}))
    common = {"label": "water", "codec": load_codec(CKPT), "progress": False}
    want = convert_folder(img, ref, tmp_path / "want.jsonl", **common)
    got = convert_folder(img, msk, tmp_path / "got.jsonl", **common)
    assert want.ok and got.ok
    assert (tmp_path / "got.jsonl").read_bytes() == (tmp_path / "want.jsonl").read_bytes()
    assert sum(bool(r["suffix"]) for r in _lines(tmp_path / "got.jsonl")) == 11

    # a second mask file with the same stem: reported (which one was used), the pair still converted
    shutil.copy(ref / f"{stems[0]}.png", msk / f"{stems[0]}.bmp")
    dup = convert_folder(img, msk, tmp_path / "dup.jsonl", **common)
    errors = _lines(tmp_path / "dup.errors.jsonl")
    assert not dup.ok and len(errors) == 1
    assert f"two mask files with the stem '{stems[0]}': used {stems[0]}.bmp, not this one" in errors[0]["reason"]
    assert len(_lines(tmp_path / "dup.jsonl")) == 11

    # empty folders: a clear error instead of an empty dataset
    (tmp_path / "e1").mkdir()
    (tmp_path / "e2").mkdir()
    result = segcodec(
        "convert",
        "--images",
        tmp_path / "e1",
        "--masks",
        tmp_path / "e2",
        "--label",
        "x",
        "--output",
        tmp_path / "e.jsonl",
    )
    assert result.exit_code == 1 and "no files in" in result.output


def test_convert_warns_when_no_pixel_passes_the_threshold(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    """A 0/1 mask saved as JPEG (values 0..3) is written with an empty suffix and a warning, not silently."""
    stem = sorted(p.stem for p in (WATER / "images").iterdir())[0]
    img, msk = tmp_path / "images", tmp_path / "masks"
    img.mkdir()
    msk.mkdir()
    shutil.copy(WATER / "images" / f"{stem}.jpg", img)
    binary = np.asarray(Image.open(WATER / "masks" / f"{stem}.jpg").convert("L")) > 127
    Image.fromarray(binary.astype(np.uint8) * 3).save(msk / f"{stem}.jpg", quality=70)
    args = ["convert", "--images", str(img), "--masks", str(msk), "--label", "water", "--no-progress"]
    result = segcodec(*args, "--output", tmp_path / "o.jsonl")
    assert result.exit_code == 0, result.output
    assert "1 warning(s)" in result.output and "no pixel above --threshold 127" in result.output
    (line,) = _lines(tmp_path / "o.jsonl")
    assert line["suffix"] == ""
    (warning,) = _lines(tmp_path / "o.errors.jsonl")
    assert warning["severity"] == "warning" and warning["file"].endswith(f"{stem}.jpg")
    # with a threshold that fits the values, the objects come out and nothing is reported
    result = segcodec(*args, "--threshold", "1", "--output", tmp_path / "t.jsonl")
    assert result.exit_code == 0 and "warning" not in result.output
    assert _lines(tmp_path / "t.jsonl")[0]["suffix"] != "" and _lines(tmp_path / "t.errors.jsonl") == []


def test_unreadable_files_are_reported_with_short_reasons(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    """Empty, missing (broken link), non-image and truncated mask files and a folder named like a
    mask: one reason each, no path inside it, so that the summary counts them by kind; every other
    pair is converted."""
    root = tmp_path / "water"
    shutil.copytree(WATER, root)
    msk = root / "masks"
    stems = sorted(p.stem for p in msk.iterdir())
    (msk / f"{stems[0]}.jpg").write_bytes(b"")
    (msk / f"{stems[1]}.jpg").unlink()
    (msk / f"{stems[1]}.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (msk / f"{stems[2]}.jpg").write_text("not an image")
    data = (msk / f"{stems[3]}.jpg").read_bytes()
    (msk / f"{stems[3]}.jpg").write_bytes(data[: len(data) // 2])
    (msk / f"{stems[4]}.jpg").unlink()
    (msk / f"{stems[4]}.jpg").mkdir()  # a folder named like the mask
    out = tmp_path / "out.jsonl"
    result = segcodec(
        "convert", "--images", root / "images", "--masks", msk, "--label", "water", "--output", out, "--no-progress"
    )
    assert result.exit_code == 1
    reasons = {e["file"]: e["reason"] for e in _lines(tmp_path / "out.errors.jsonl")}
    assert reasons == {
        str(msk / f"{stems[0]}.jpg"): "unreadable mask: empty file (0 bytes)",
        str(msk / f"{stems[1]}.jpg"): "unreadable mask: broken link (its target does not exist)",
        str(msk / f"{stems[2]}.jpg"): "unreadable mask: not an image file Pillow can read",
        str(msk / f"{stems[3]}.jpg"): "unreadable mask: truncated file",
        str(msk / f"{stems[4]}.jpg"): "a folder named like a mask file, not a file",
        str(root / "images" / f"{stems[4]}.jpg"): f"image without mask (no {stems[4]}.* in {msk})",
    }
    for line in (
        "1 x unreadable mask: empty file",
        "1 x unreadable mask: broken link",
        "1 x unreadable mask: not an image file Pillow can read",
        "1 x unreadable mask: truncated file",
    ):
        assert line in result.output
    assert len(_lines(out)) == len(stems) - 5
    lint = lint_folder(root / "images", msk)
    assert {p.reason for p in lint.errors} == set(reasons.values())
