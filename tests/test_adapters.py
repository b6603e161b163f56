"""Optional adapters: tf.data, Hugging Face datasets, Ray Data, supervision.

Each part is skipped when its extra is not installed; .ci/run installs all of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from PIL import Image

from paligemma_segcodec import Segment, decode_tokens, encode_mask, encode_masks, load_codec
from paligemma_segcodec.datasets import convert_folder
from paligemma_segcodec.maskio import read_mask

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"


@pytest.fixture(scope="module")
def water_masks() -> list[np.ndarray]:
    return [read_mask(p) for p in sorted((WATER / "masks").iterdir())[:6]]


def test_tf_reference_path_gives_the_same_tokens(water_masks: list[np.ndarray]) -> None:
    """The reference's math rebuilt in TensorFlow (tf.image.resize with antialias, tf.nn.conv2d): the
    benchmark's calibration baseline, and an independent check of the resize + encoder."""
    pytest.importorskip("tensorflow")
    from paligemma_segcodec._tf_reference import TfReference
    from paligemma_segcodec.api import prepare_mask
    from paligemma_segcodec.boxes import tight_box
    from paligemma_segcodec.checkpoint import read_checkpoint
    from paligemma_segcodec.tokens import format_object

    codec = load_codec(CKPT)
    ref = TfReference(read_checkpoint(CKPT))
    boxes = [None, (0.1, 0.1, 0.9, 0.8), None, (0.0, 0.0, 1.0, 1.0), (0.2, 0.3, 0.7, 0.9), None]
    full = [tight_box(m) if b is None else b for m, b in zip(water_masks, boxes, strict=True)]
    theirs = [format_object(*ref.encode_one(m, b), None) for m, b in zip(water_masks, full, strict=True)]
    assert theirs == encode_masks(water_masks, boxes, codec=codec)
    x = np.stack([prepare_mask(m, b).mask64 for m, b in zip(water_masks, full, strict=True)])
    np.testing.assert_array_equal(ref.encode_batch(x), codec.encode_indices(x))


def test_tf_data_map_and_batched_map(water_masks: list[np.ndarray]) -> None:
    tf = pytest.importorskip("tensorflow")
    from paligemma_segcodec.tf import batched_mask_to_suffix, mask_to_suffix

    codec = load_codec(CKPT)
    u8 = [m.astype(np.uint8) * 255 for m in water_masks]  # different sizes
    boxes = [(0.1, 0.1, 0.9, 0.8), (0.0, 0.0, 1.0, 1.0), (0.2, 0.3, 0.7, 0.9)] * 2
    one = mask_to_suffix(label="water", codec=codec)
    batched = batched_mask_to_suffix(label="water", codec=codec)

    # one example at a time, tight box (no "box" key), masks [H, W, 1]
    no_box = tf.data.Dataset.from_generator(
        lambda: ({"mask": m[..., None]} for m in u8),
        output_signature={"mask": tf.TensorSpec([None, None, 1], tf.uint8)},
    )
    got = [ex["suffix"].numpy().decode() for ex in no_box.map(lambda ex: {"suffix": one(ex)})]
    assert got == encode_masks(water_masks, labels=["water"] * 6, codec=codec)

    # with boxes
    with_box = tf.data.Dataset.from_generator(
        lambda: ({"mask": m, "box": np.array(b, np.float32)} for m, b in zip(u8, boxes, strict=True)),
        output_signature={"mask": tf.TensorSpec([None, None], tf.uint8), "box": tf.TensorSpec([4], tf.float32)},
    )
    got = [ex["suffix"].numpy().decode() for ex in with_box.map(lambda ex: {"suffix": one(ex)})]
    assert got == encode_masks(water_masks, boxes, ["water"] * 6, codec=codec)

    # batched: ragged masks of different sizes, one codec call per batch
    out = [s.decode() for b in no_box.ragged_batch(4).map(batched) for s in b.numpy()]
    assert out == encode_masks(water_masks, labels=["water"] * 6, codec=codec)
    out = [s.decode() for b in with_box.ragged_batch(4).map(batched) for s in b.numpy()]
    assert out == encode_masks(water_masks, boxes, ["water"] * 6, codec=codec)


def test_hf_dataset_in_and_out(tmp_path: Path, segcodec: Callable[..., Result]) -> None:
    datasets = pytest.importorskip("datasets")
    from paligemma_segcodec.hf import jsonl_to_dataset

    codec = load_codec(CKPT)
    out = tmp_path / "hf"
    result = segcodec(
        "convert",
        "--images",
        WATER / "images",
        "--masks",
        WATER / "masks",
        "--label",
        "water",
        "--output",
        out,
        "--format",
        "hf",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    ds = datasets.load_from_disk(str(out))
    assert set(ds.column_names) == {"image", "prefix", "suffix"} and len(ds) == 10
    reference = tmp_path / "ref.jsonl"
    convert_folder(WATER / "images", WATER / "masks", reference, label="water", codec=codec, progress=False)
    ref = [json.loads(line) for line in reference.read_text().splitlines()]
    assert [r["suffix"] for r in ref] == ds["suffix"]
    assert (
        isinstance(ds[0]["image"], Image.Image)
        and ds[0]["image"].size == Image.open(WATER / "images" / ref[0]["image"]).size
    )
    assert len(jsonl_to_dataset(reference, WATER / "images")) == 10

    # a datasets.Dataset with image + mask columns as convert's input
    rows = {
        "image": [str(p) for p in sorted((WATER / "images").iterdir())],
        "mask": [str(p) for p in sorted((WATER / "masks").iterdir())],
    }
    src = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image()).cast_column("mask", datasets.Image())
    src.save_to_disk(str(tmp_path / "src"))
    out2 = tmp_path / "from_hf.jsonl"
    result = segcodec(
        "convert",
        "--hf-dataset",
        tmp_path / "src",
        "--mask-column",
        "mask",
        "--label",
        "water",
        "--output",
        out2,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out2.read_text().splitlines()]
    assert [r["suffix"] for r in lines] == [r["suffix"] for r in ref]  # same masks, same tokens
    assert (tmp_path / "images" / lines[0]["image"]).is_file()  # in-memory images are written out


def test_ray_matches_single_process_convert(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from paligemma_segcodec.datasets.convert import errors_path
    from paligemma_segcodec.ray import convert_with_ray

    # The bundled pairs plus one of each fault: an unreadable mask (skipped), an image without a
    # mask (unmatched), and a low-valued mask saved as JPEG (converted
    # with an empty suffix and a warning).
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for p in sorted((WATER / "images").iterdir()):
        (images / p.name).write_bytes(p.read_bytes())
        (masks / p.name).write_bytes((WATER / "masks" / p.name).read_bytes())
    first = sorted(images.iterdir())[0]
    for name in ("broken.jpg", "lonely.jpg", "zero_one.jpg"):
        (images / name).write_bytes(first.read_bytes())
    (masks / "broken.png").write_bytes(b"")
    with Image.open(first) as im:
        w, h = im.size
    zero_one = np.zeros((h, w), np.uint8)
    zero_one[h // 4 : h // 2, w // 4 : w // 2] = 3  # values 0..3 after JPEG: nothing above 127
    Image.fromarray(zero_one).save(masks / "zero_one.jpg", quality=70)

    single = tmp_path / "single.jsonl"
    report = convert_folder(images, masks, single, label="water", codec=load_codec(CKPT), progress=False)
    assert (len(report.skipped), len(report.warnings)) == (2, 1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        distributed = tmp_path / "ray.jsonl"
        n = convert_with_ray(images, masks, distributed, label="water", checkpoint=str(CKPT), batch_size=4)
    finally:
        ray.shutdown()
    assert n == 11
    assert distributed.read_bytes() == single.read_bytes()
    assert errors_path(distributed).read_bytes() == errors_path(single).read_bytes()
    severities = [json.loads(line)["severity"] for line in errors_path(single).read_text().splitlines()]
    assert sorted(severities) == ["error", "error", "warning"]


def test_supervision_detections_and_annotation(water_masks: list[np.ndarray]) -> None:
    pytest.importorskip("supervision")
    from paligemma_segcodec.sv import annotate, to_detections
    from paligemma_segcodec.viz import draw_segments

    codec = load_codec(CKPT)
    m = water_masks[0]
    h, w = m.shape
    text = encode_mask(m, label="water", codec=codec) + " ; <loc0000><loc0000><loc0500><loc0500> boat"
    segs = decode_tokens(text, height=h, width=w, codec=codec)
    det = to_detections(segs, h, w)
    assert len(det) == 2 and det.mask.shape == (2, h, w)
    assert list(det.data["class_name"]) == ["water", "boat"] and list(det.class_id) == [0, 1]
    np.testing.assert_array_equal(det.mask[0], segs[0].mask)
    assert tuple(det.xyxy[1]) == segs[1].xyxy(height=h, width=w)
    image = Image.fromarray(np.full((h, w, 3), 40, np.uint8))
    drawn = np.asarray(annotate(image, segs))
    assert drawn.shape == (h, w, 3) and np.any(drawn[segs[0].mask] != 40)
    pillow = np.asarray(draw_segments(image, segs, backend="pillow"))
    assert np.any(pillow[segs[0].mask] != 40)


def test_annotate_keeps_the_label_of_a_box_on_the_top_edge() -> None:
    """supervision draws a label above its box by default: a box on the image's top edge lost it."""
    pytest.importorskip("supervision")
    from paligemma_segcodec.sv import annotate

    image = Image.fromarray(np.full((200, 200, 3), 40, np.uint8))
    drawn = np.asarray(annotate(image, [Segment(label="boat", loc=(0, 0, 1023, 1023))]))
    inside = drawn[4:20, 4:40]  # below the box's top line, right of its left line: the label's background
    assert np.mean(np.any(inside != 40, axis=-1)) > 0.5
