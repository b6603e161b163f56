"""supervision both ways: ``sv.Detections`` → one PaliGemma suffix (`paligemma_segcodec.sv.to_suffix`)
→ `decode_tokens` → ``sv.Detections`` (`to_detections`) keeps boxes within one ``<loc>`` bin and
classes exactly; thin and empty objects follow ``segcodec convert``'s rules."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sv = pytest.importorskip("supervision")

from paligemma_segcodec import ThinObjectWarning, decode_tokens, encode_masks, parse_objects  # noqa: E402
from paligemma_segcodec.boxes import LOC_MAX  # noqa: E402
from paligemma_segcodec.sv import to_detections, to_suffix  # noqa: E402

NAMES = ["water", "boat", "sky", "car"]


@st.composite
def detections_st(draw: st.DrawFn) -> tuple[Any, int, int]:
    """Rectangles of at least 3 pixels a side on an image of at most 200 pixels: masks fill their boxes."""
    h, w = draw(st.integers(8, 200)), draw(st.integers(8, 200))
    n = draw(st.integers(0, 4))
    xyxy, masks, ids = [], np.zeros((n, h, w), bool), []
    for i in range(n):
        x1 = draw(st.integers(0, w - 3))
        y1 = draw(st.integers(0, h - 3))
        x2 = draw(st.integers(x1 + 3, w))
        y2 = draw(st.integers(y1 + 3, h))
        xyxy.append([x1, y1, x2, y2])
        masks[i, y1:y2, x1:x2] = True
        ids.append(draw(st.integers(0, len(NAMES) - 1)))
    det = sv.Detections(
        xyxy=np.array(xyxy, dtype=np.float32).reshape(n, 4),
        mask=masks,
        class_id=np.array(ids, dtype=int),
        data={"class_name": np.array([NAMES[i] for i in ids], dtype=object)},
    )
    return det, h, w


def _check_round_trip(det: Any, back: Any, text: str, h: int, w: int) -> None:
    assert len(back) == len(det)
    assert back.data["class_name"].tolist() == det.data["class_name"].tolist()
    objects = parse_objects(text, strict=True).objects
    for (x1, y1, x2, y2), o, got in zip(det.xyxy.tolist(), objects, back.xyxy.tolist(), strict=True):
        # the <loc> values are within half a bin of the box; its pixels within one bin (+1 truncated)
        ly1, lx1, ly2, lx2 = o.loc
        for k, v, side in ((ly1, y1, h), (lx1, x1, w), (ly2, y2, h), (lx2, x2, w)):
            assert abs(k / LOC_MAX - v / side) <= 0.5 / LOC_MAX + 1e-9
        for a, b, side in zip(got, (x1, y1, x2, y2), (w, h, w, h), strict=True):
            assert abs(a - b) <= side / LOC_MAX + 1


@settings(max_examples=20)
@given(detections_st())
def test_masks_round_trip(codec: Any, case: tuple[Any, int, int]) -> None:
    det, h, w = case
    text = to_suffix(det, codec=codec)
    assert text.count(" ; ") == max(0, len(det) - 1)
    assert text.count("<seg") == 16 * len(det)
    back = to_detections(decode_tokens(text, height=h, width=w, codec=codec, strict=True), h, w)
    _check_round_trip(det, back, text, h, w)


@settings(max_examples=40)
@given(detections_st())
def test_boxes_round_trip(case: tuple[Any, int, int]) -> None:
    det, h, w = case
    det.mask = None
    text = to_suffix(det, height=h, width=w)
    assert "<seg" not in text
    back = to_detections(decode_tokens(text, height=h, width=w, strict=True), h, w)
    _check_round_trip(det, back, text, h, w)


def test_the_suffix_is_convert_s_format(codec: Any) -> None:
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:10, 3:20] = True
    masks[1, 12:18, 5:25] = True
    det = sv.Detections(xyxy=np.array([[3, 2, 20, 10], [5, 12, 25, 18]], float), mask=masks, class_id=np.array([1, 0]))
    text = to_suffix(det, labels=["sky", "lake"], codec=codec)
    assert text == " ; ".join(encode_masks(list(masks), labels=["lake", "sky"], codec=codec))
    det.data["class_name"] = np.array(["a", "b"])
    assert to_suffix(det, labels=["sky", "lake"], codec=codec) == text  # labels= wins over class_name
    assert to_suffix(det, codec=codec).endswith(" b")


def test_empty_detections_give_an_empty_suffix() -> None:
    assert to_suffix(sv.Detections.empty()) == ""
    assert to_suffix(sv.Detections.empty(), height=10, width=10) == ""


def test_missing_or_bad_labels_are_errors() -> None:
    det = sv.Detections(xyxy=np.array([[1.0, 1, 5, 5]]), class_id=np.array([2]))
    with pytest.raises(ValueError, match=r"no labels: no data\['class_name'\]; pass labels="):
        to_suffix(det, height=10, width=10)
    with pytest.raises(ValueError, match="class_id 2 is not an index into labels"):
        to_suffix(det, labels=["a", "b"], height=10, width=10)
    no_ids = sv.Detections(xyxy=np.array([[1.0, 1, 5, 5]]))
    with pytest.raises(ValueError, match="no class_id"):
        to_suffix(no_ids, labels=["a"], height=10, width=10)
    with pytest.raises(ValueError, match="may not contain"):
        to_suffix(det, labels=["a", "b", "x;y"], height=10, width=10)


def test_box_checks() -> None:
    det = sv.Detections(xyxy=np.array([[1.0, 1, 5, 5]]), data={"class_name": np.array(["a"])})
    with pytest.raises(ValueError, match="need the image size"):
        to_suffix(det)
    assert to_suffix(det, height=10, width=10) == "<loc0102><loc0102><loc0512><loc0512> a"
    det.xyxy = np.array([[-3.0, 2, 50, 5]])  # clipped to the image
    assert to_suffix(det, height=10, width=10) == "<loc0205><loc0000><loc0512><loc1023> a"
    det.xyxy = np.array([[np.nan, 2, 50, 5]])
    with pytest.raises(ValueError, match="not finite"):
        to_suffix(det, height=10, width=10)
    det.xyxy = np.array([[20.0, 2, 50, 5]])
    with pytest.raises(ValueError, match="no area inside the 10x10 image"):
        to_suffix(det, height=10, width=10)


def test_mask_size_checks() -> None:
    det = sv.Detections(
        xyxy=np.array([[1.0, 1, 5, 5]]), mask=np.ones((1, 8, 9), bool), data={"class_name": np.array(["a"])}
    )
    with pytest.raises(ValueError, match=r"\(8, 9\), but height=9, width=8"):
        to_suffix(det, height=9, width=8)


def test_thin_and_empty_objects_follow_convert(codec: Any) -> None:
    masks = np.zeros((3, 20, 2048), bool)
    masks[0, 2:10, 3:200] = True
    masks[1, 5:15, 1000] = True  # one pixel of 2048: thinner than one <loc> step
    det = sv.Detections(xyxy=np.zeros((3, 4)), mask=masks, data={"class_name": np.array(["a", "pole", "c"])})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = to_suffix(det, codec=codec)
    kinds = sorted(w.category.__name__ for w in caught)
    assert kinds == ["ThinObjectWarning", "UserWarning"], kinds
    assert any("(1)" in str(w.message) and "min_loc_extent=1" in str(w.message) for w in caught)
    assert any("(2)" in str(w.message) and "empty" in str(w.message) for w in caught)
    assert text == encode_masks([masks[0]], labels=["a"], codec=codec)[0]
    with pytest.warns(UserWarning, match="empty"):
        widened = to_suffix(det, codec=codec, min_loc_extent=1)
    assert widened.count(" ; ") == 1 and widened.endswith(" pole")
    (_, pole) = decode_tokens(widened, strict=True, codec=codec)
    assert pole.loc[3] - pole.loc[1] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ThinObjectWarning)
        det.mask = None
        det.xyxy = np.array([[0.0, 0, 2048, 20], [1000, 5, 1000.5, 15], [1, 1, 3, 3]])
        with pytest.raises(ThinObjectWarning):
            to_suffix(det, height=20, width=2048)


def test_bad_min_loc_extent() -> None:
    with pytest.raises(TypeError):
        to_suffix(sv.Detections.empty(), min_loc_extent="1")  # type: ignore[arg-type]
