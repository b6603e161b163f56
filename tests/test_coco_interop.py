"""pycocotools interop: COCO RLE / polygons into `encode_mask(s)`, `Segment.to_rle` / `to_polygons`
out, COCO ``[x, y, w, h]`` boxes, and hostile segmentations refused with a ValueError saying why."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from paligemma_segcodec import decode_tokens, encode_mask, encode_masks, from_coco_xywh, to_coco_xywh
from paligemma_segcodec.boxes import box_to_loc
from paligemma_segcodec.coco_masks import decode_segmentation, mask_to_polygons, mask_to_rle
from paligemma_segcodec.segment import Segment


def _rle(mask: np.ndarray) -> dict[str, Any]:
    """pycocotools' own RLE: counts as bytes."""
    return dict(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def _uncompressed(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE: column-major runs, starting with a run of 0s."""
    flat = mask.T.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"size": list(mask.shape), "counts": runs}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


masks_st = st.tuples(st.integers(4, 40), st.integers(4, 40), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[2]).random((t[0], t[1])) < 0.3
)


# ---------------------------------------------------------------------------------------------
# Boxes


@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True),
    st.lists(st.floats(0, 1), min_size=2, max_size=2, unique=True),
)
def test_coco_xywh_round_trip(height: int, width: int, ys: list[float], xs: list[float]) -> None:
    box = (min(ys), min(xs), max(ys), max(xs))
    xywh = to_coco_xywh(box, height, width)
    assert xywh == (box[1] * width, box[0] * height, (box[3] - box[1]) * width, (box[2] - box[0]) * height)
    back = from_coco_xywh(xywh, height, width)
    assert back == pytest.approx(box, abs=1e-12)
    assert to_coco_xywh(back, height, width) == pytest.approx(xywh, abs=1e-9)


@given(st.integers(1, 2000), st.integers(1, 2000), st.data())
def test_from_coco_xywh_inverts_to_coco_for_pixel_boxes(height: int, width: int, data: st.DataObject) -> None:
    x = data.draw(st.integers(0, width - 1))
    y = data.draw(st.integers(0, height - 1))
    w = data.draw(st.integers(1, width - x))
    h = data.draw(st.integers(1, height - y))
    assert to_coco_xywh(from_coco_xywh([x, y, w, h], height, width), height, width) == pytest.approx((x, y, w, h))


def test_from_coco_xywh_clips_and_refuses() -> None:
    assert from_coco_xywh([-0.5, 10, 100.7, 20], height=100, width=100) == (0.1, 0.0, 0.3, 1.0)
    with pytest.raises(ValueError, match="finite"):
        from_coco_xywh([0, math.nan, 1, 1], height=10, width=10)
    with pytest.raises(ValueError, match="negative"):
        from_coco_xywh([5, 5, -1, 1], height=10, width=10)
    with pytest.raises(ValueError, match="no area"):
        from_coco_xywh([20, 5, 3, 1], height=10, width=10)
    with pytest.raises(ValueError, match="4 numbers"):
        from_coco_xywh([1, 2, 3], height=10, width=10)
    with pytest.raises(ValueError, match="height must be a positive integer"):
        to_coco_xywh((0, 0, 1, 1), height=0, width=10)
    with pytest.raises(ValueError, match="zero or negative area"):
        to_coco_xywh((0.5, 0, 0.5, 1), height=10, width=10)


# ---------------------------------------------------------------------------------------------
# COCO segmentations in: the same tokens as the decoded array


@settings(max_examples=25)
@given(masks_st)
def test_rle_in_gives_the_array_tokens(codec: Any, mask: np.ndarray) -> None:
    assume(mask.any())
    rle = _rle(mask)
    as_str = {"size": rle["size"], "counts": rle["counts"].decode()}
    texts = encode_masks([mask, rle, as_str, _uncompressed(mask)], labels=["a"] * 4, codec=codec)
    assert texts == [texts[0]] * 4
    assert encode_mask(json.loads(json.dumps(as_str)), label="a", codec=codec) == texts[0]


@settings(max_examples=25)
@given(
    st.integers(8, 60),
    st.integers(8, 60),
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=3, max_size=7),
)
def test_polygons_in_give_the_array_tokens(codec: Any, height: int, width: int, points: list[Any]) -> None:
    poly = [float(v) for x, y in points for v in (x * width, y * height)]
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], height, width))).astype(bool)
    assume(decoded.any())
    texts = encode_masks([decoded, [poly], (tuple(poly),)], height=height, width=width, codec=codec)
    assert texts == [texts[0]] * 3
    assert encode_mask([poly], height=height, width=width, codec=codec) == texts[0]


def test_several_polygons_are_merged(codec: Any) -> None:
    polys = [[1, 1, 5, 1, 5, 5, 1, 5], [10, 10, 14, 10, 14, 14, 10, 14]]
    merged = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, 20, 30))).astype(bool)
    assert np.array_equal(decode_segmentation(polys, height=20, width=30), merged)
    assert encode_mask(polys, height=20, width=30, codec=codec) == encode_mask(merged, codec=codec)


def test_mixed_list_and_numpy_values(codec: Any) -> None:
    mask = np.zeros((12, 10), bool)
    mask[3:9, 2:7] = True
    rle = _uncompressed(mask)
    numpy_rle = {"size": np.array(rle["size"]), "counts": np.array(rle["counts"], dtype=np.int64)}
    poly = np.array([2, 3, 7, 3, 7, 9, 2, 9], dtype=np.float32)
    texts = encode_masks([mask, numpy_rle, [poly]], height=12, width=10, codec=codec)
    assert texts[0] == texts[1]
    assert texts[2].startswith(texts[0][:36])  # the polygon's corners are the mask's box


@pytest.mark.parametrize(
    ("seg", "size", "message"),
    [
        ({"size": [4, 5], "counts": [3, 4]}, {}, r"add up to 7 pixels, not height x width = 20"),
        ({"size": [4, 5], "counts": "0a"}, {}, r"end inside run|add up to"),
        ({"size": [4, 5], "counts": "0~"}, {}, r"contain '~'"),
        ({"size": [4, 5], "counts": [10, -1, 11]}, {}, r"non-negative integers"),
        ({"size": [4, 5], "counts": [10.5, 9.5]}, {}, r"non-negative integers"),
        ({"size": [4], "counts": [20]}, {}, r"RLE size must be \[height, width\]"),
        ({"size": [0, 5], "counts": []}, {}, r"height must be a positive integer"),
        ({"size": [2**15, 2**15], "counts": [2**30]}, {}, r"exceeds the cap"),
        ({"counts": [20]}, {}, r"without 'size'"),
        ({"size": [4, 5]}, {}, r"without 'counts'"),
        ({"size": [4, 5], "counts": b"\xff"}, {}, r"ASCII"),
        ({"size": [4, 5], "counts": [20]}, {"height": 5, "width": 4}, r"size mismatch"),
        ([[1, 1, 3, 1, 3]], {"height": 4, "width": 5}, r"5 numbers: needs x,y pairs"),
        ([[1, 1, 3, 1]], {"height": 4, "width": 5}, r"4 numbers: needs x,y pairs of at least 3 points"),
        ([[1, 1, 3, math.nan, 3, 3]], {"height": 4, "width": 5}, r"NaN or infinite"),
        ([[1, 1, 3, math.inf, 3, 3]], {"height": 4, "width": 5}, r"NaN or infinite"),
        ([[1, 1, 30, 1, 3, 3]], {"height": 4, "width": 5}, r"outside the 5x4 image"),
        ([[1, 1, "3", 1, 3, 3]], {"height": 4, "width": 5}, r"not a list of numbers"),
        ([], {"height": 4, "width": 5}, r"empty segmentation"),
        ([[1, 1, 3, 1, 3, 3]], {}, r"polygons need the image size|if these are COCO polygons, pass height="),
        ([[1, 1, 3, 1, 3, 3]], {"height": 4}, r"both height and width"),
        ("nope", {}, r"an RLE .* or a list of polygons"),
    ],
)
def test_hostile_segmentations_say_what_is_wrong(seg: Any, size: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_segmentation(seg, **size)
    if isinstance(seg, (dict, list)) and size.keys() != {"height"}:
        with pytest.raises(ValueError, match=message):
            encode_mask(seg, **size)
        if size.keys() == {"height", "width"} or isinstance(seg, dict):
            with pytest.raises(ValueError, match="mask 1: .*" + message):
                encode_masks([np.ones(_size_of(seg, size), bool), seg], **size)


def _size_of(seg: Any, size: dict[str, int]) -> tuple[int, int]:
    return (size["height"], size["width"]) if size else (4, 5)


def test_array_size_is_checked_against_height_and_width() -> None:
    with pytest.raises(ValueError, match=r"mask 0 has shape \(4, 5\), but height=5, width=4"):
        encode_masks([np.ones((4, 5), bool)], height=5, width=4)
    with pytest.raises(ValueError, match="both height and width"):
        encode_mask(np.ones((4, 5), bool), width=4)
    with pytest.raises(ValueError, match="must be positive"):
        encode_mask(np.ones((4, 5), bool), height=-4, width=5)


def test_an_empty_rle_has_no_box() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_mask({"size": [4, 5], "counts": [20]})


# ---------------------------------------------------------------------------------------------
# Out: Segment.to_rle / to_polygons


def _water() -> tuple[np.ndarray, dict[str, Any]]:
    """A COCO annotation of a blob with a hole, 48x64."""
    yy, xx = np.mgrid[:48, :64]
    mask = ((yy - 24) ** 2 / 15**2 + (xx - 30) ** 2 / 22**2) < 1
    mask &= ~(((yy - 24) ** 2 + (xx - 30) ** 2) < 16)
    return mask, {"segmentation": mask_to_rle(mask), "category_id": 1}


def test_coco_annotation_to_tokens_to_rle_iou_matches_numpy(codec: Any) -> None:
    gt, ann = _water()
    text = encode_mask(ann["segmentation"], label="water", codec=codec)
    (seg,) = decode_tokens(text, height=48, width=64, codec=codec)
    rle = seg.to_rle()
    assert json.loads(json.dumps(rle)) == rle and isinstance(rle["counts"], str)
    assert np.array_equal(mask_utils.decode(rle).astype(bool), seg.mask)
    assert seg.mask is not None
    coco_iou = mask_utils.iou([rle], [ann["segmentation"]], [0])[0, 0]
    assert coco_iou == pytest.approx(_iou(seg.mask, gt), abs=1e-12)
    # decoded without a size: to_rle pastes mask64 into its box, the same mask
    (lazy,) = decode_tokens(text, codec=codec)
    assert lazy.to_rle(height=48, width=64) == rle


@settings(max_examples=15)
@given(masks_st)
def test_rle_round_trip_iou_matches_numpy(codec: Any, gt: np.ndarray) -> None:
    assume(gt.any())
    h, w = gt.shape
    (seg,) = decode_tokens(encode_mask(_rle(gt), label="x", codec=codec), height=h, width=w, codec=codec)
    assert seg.mask is not None
    ious = mask_utils.iou([seg.to_rle()], [mask_to_rle(gt)], [0])
    assert ious[0, 0] == pytest.approx(_iou(seg.mask, gt), abs=1e-12)


def test_to_polygons_rasterize_back_to_the_mask() -> None:
    mask = np.zeros((30, 40), bool)
    mask[3:12, 5:20] = True
    mask[15:25, 25:38] = True
    seg = Segment(label="x", loc=(0, 0, 1023, 1023), mask64=np.zeros((64, 64), np.float32), mask=mask)
    polys = seg.to_polygons()
    assert len(polys) == 2
    assert all(len(p) % 2 == 0 and len(p) >= 6 for p in polys)
    assert polys[0] == [5.0, 3.0, 20.0, 3.0, 20.0, 12.0, 5.0, 12.0]
    back = decode_segmentation(polys, height=30, width=40)
    assert _iou(back, mask) > 0.85  # pycocotools rasterizes corner polygons one pixel larger on two sides
    assert seg.to_rle() == mask_to_rle(mask)


def test_to_polygons_of_a_pasted_mask(codec: Any) -> None:
    gt, _ = _water()
    (seg,) = decode_tokens(encode_mask(gt, label="water", codec=codec), codec=codec)
    polys = seg.to_polygons(height=48, width=64)
    assert polys == mask_to_polygons(decode_segmentation(seg.to_rle(height=48, width=64)))
    assert all(0 <= v <= 64 for p in polys for v in p)


def test_to_rle_errors() -> None:
    det = Segment(label="car", loc=(0, 0, 512, 1023))
    with pytest.raises(ValueError, match="detection-only"):
        det.to_rle(height=4, width=4)
    with pytest.raises(ValueError, match="detection-only"):
        det.to_polygons(height=4, width=4)
    lazy = Segment(label="car", loc=(0, 0, 512, 1023), mask64=np.ones((64, 64), np.float32))
    with pytest.raises(ValueError, match="pass height= and width="):
        lazy.to_rle()
    with pytest.raises(ValueError, match="both height and width"):
        lazy.to_rle(height=4)
    full = Segment(label="car", loc=(0, 0, 512, 1023), mask=np.ones((4, 6), bool))
    with pytest.raises(ValueError, match=r"\(4, 6\), but height=6, width=4"):
        full.to_rle(height=6, width=4)
    assert full.to_rle(height=4, width=6) == full.to_rle()


def test_datasets_coco_uses_the_shared_checks() -> None:
    from paligemma_segcodec import coco_masks
    from paligemma_segcodec.datasets import coco

    for name in ("MAX_PIXELS", "rle_counts", "mask_to_rle", "mask_to_polygons", "_decode", "_size_fault"):
        assert getattr(coco, name) is getattr(coco_masks, name), name


def test_box_from_coco_bbox_matches_the_mask_tight_box() -> None:
    gt, ann = _water()
    x, y, w, h = (float(v) for v in mask_utils.toBbox(ann["segmentation"]))
    from paligemma_segcodec.boxes import tight_box

    assert box_to_loc(from_coco_xywh([x, y, w, h], 48, 64)) == box_to_loc(tight_box(gt))
