"""Box-local pasting: `paste_mask_in_box` is `paste_mask` inside the box (False outside), and audit,
eval and draw_segments, which now paste one object's box at a time, give today's full-size results."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from paligemma_segcodec import decode_tokens, encode_mask, load_codec, paste_mask
from paligemma_segcodec.boxes import crop_pixels
from paligemma_segcodec.datasets.audit import audit_objects, box_iou_parts, iou
from paligemma_segcodec.datasets.evaluate import EvalReport, ImageScore, score_image
from paligemma_segcodec.datasets.files import extract_objects
from paligemma_segcodec.maskio import read_mask_values
from paligemma_segcodec.segment import Segment, paste_mask_in_box
from paligemma_segcodec.viz import PALETTE, draw_segments

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"


@st.composite
def locs(draw: st.DrawFn) -> tuple[int, int, int, int]:
    y1, y2 = sorted(draw(st.lists(st.integers(0, 1023), min_size=2, max_size=2, unique=True)))
    x1, x2 = sorted(draw(st.lists(st.integers(0, 1023), min_size=2, max_size=2, unique=True)))
    return (y1, x1, y2, x2)


@st.composite
def masks64(draw: st.DrawFn) -> np.ndarray:
    kind = draw(st.sampled_from(["noise", "blob", "positive", "negative"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "positive":
        return np.full((64, 64), 3.0, np.float32)
    if kind == "negative":
        return np.full((64, 64), -3.0, np.float32)
    if kind == "blob":
        yy, xx = np.mgrid[:64, :64]
        cy, cx, r = rng.uniform(0, 64, 3)
        return (r - np.hypot(yy - cy, xx - cx)).astype(np.float32)
    return rng.normal(size=(64, 64)).astype(np.float32)


@settings(max_examples=300)
@given(
    m64=masks64(),
    loc=locs(),
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    convention=st.sampled_from(["big_vision", "colab"]),
)
def test_paste_in_box_is_paste_mask_inside_the_box(
    m64: np.ndarray, loc: tuple[int, int, int, int], height: int, width: int, convention: Any
) -> None:
    full = paste_mask(m64, loc, height, width, convention=convention)
    (t, left, b, r), crop = paste_mask_in_box(m64, loc, height, width, convention=convention)
    assert 0 <= t <= b <= height and 0 <= left <= r <= width
    assert crop.dtype == np.bool_ and crop.shape == (b - t, r - left)
    rebuilt = np.zeros((height, width), bool)
    rebuilt[t:b, left:r] = crop
    np.testing.assert_array_equal(rebuilt, full)  # bit-identical inside, False outside


def test_paste_in_box_validates_like_paste_mask() -> None:
    with pytest.raises(ValueError, match="2-D"):
        paste_mask_in_box(np.zeros(64), (0, 0, 1, 1), 10, 10)
    with pytest.raises(ValueError, match="positive"):
        paste_mask_in_box(np.zeros((64, 64)), (0, 0, 1, 1), 0, 10)
    (t, left, b, r), crop = paste_mask_in_box(np.ones((64, 64)), (0, 0, 1, 1), 10, 10)  # rounds to no pixel
    assert crop.shape == (b - t, r - left) and crop.size == 0


@st.composite
def boxed_masks(draw: st.DrawFn, h: int, w: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    t, b = sorted(draw(st.lists(st.integers(0, h), min_size=2, max_size=2)))
    left, r = sorted(draw(st.lists(st.integers(0, w), min_size=2, max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (t, left, b, r), rng.random((b - t, r - left)) < draw(st.floats(0, 1))


@settings(max_examples=300)
@given(data=st.data(), h=st.integers(1, 40), w=st.integers(1, 40))
def test_box_iou_parts_equal_full_size_counts(data: st.DataObject, h: int, w: int) -> None:
    (abox, a), (bbox, b) = data.draw(boxed_masks(h, w)), data.draw(boxed_masks(h, w))
    fa, fb = np.zeros((h, w), bool), np.zeros((h, w), bool)
    fa[abox[0] : abox[2], abox[1] : abox[3]] = a
    fb[bbox[0] : bbox[2], bbox[1] : bbox[3]] = b
    inter, union = box_iou_parts(abox, a, bbox, b)
    assert (inter, union) == (np.count_nonzero(fa & fb), np.count_nonzero(fa | fb))


def _audit_full_size(objects: list[Any], shape: tuple[int, int], codec: Any) -> list[tuple[float, np.ndarray]]:
    """The audit before box-local pasting: full-size original and pasted masks."""
    from paligemma_segcodec.api import prepare_crop

    prepared = [prepare_crop(o.crop, o.box) for o in objects]
    decoded = codec.decode_indices(codec.encode_indices(np.stack([p.mask64 for p in prepared])))
    h, w = shape
    out = []
    for o, p, m64 in zip(objects, prepared, decoded, strict=True):
        pasted = paste_mask(m64, p.loc, h, w)
        t, left, b, r = crop_pixels(o.box, h, w)
        original = np.zeros((h, w), bool)
        original[t:b, left:r] = o.crop
        out.append((iou(original, pasted), pasted[t:b, left:r].copy()))
    return out


def test_audit_iou_equals_full_size_iou() -> None:
    codec = load_codec(CKPT)
    checked = 0
    for path in sorted((WATER / "masks").iterdir())[:6]:
        values = read_mask_values(path)
        for instances in ("components", "whole"):
            objects, _ = extract_objects(values, label="water", instances=instances, min_area=4)
            got = audit_objects(objects, [values.shape] * len(objects), codec=codec)
            want = _audit_full_size(objects, values.shape, codec)
            assert len(got) == len(want)
            for (score, rt, _), (ref_score, ref_rt) in zip(got, want, strict=True):
                assert score == ref_score  # exactly, not approximately
                np.testing.assert_array_equal(rt, ref_rt)
                checked += 1
    assert checked > 20


def _score_full_size(text: str | None, gt: np.ndarray, codec: Any) -> tuple[int, int, float]:
    """Before: decode at full size and OR the full masks."""
    h, w = gt.shape
    pred = np.zeros((h, w), bool)
    for s in decode_tokens(text or "", height=h, width=w, codec=codec) if text else []:
        if s.mask is not None:
            pred |= s.mask
    inter, union = int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))
    return inter, union, (1.0 if union == 0 else inter / union)


def test_eval_scores_equal_full_size_union() -> None:
    codec = load_codec(CKPT)
    masks = [read_mask_values(p) > 127 for p in sorted((WATER / "masks").iterdir())[:4]]
    rng = np.random.default_rng(0)
    for i, gt in enumerate(masks):
        other = masks[(i + 1) % len(masks)]
        seg = "".join(f"<seg{v:03d}>" for v in rng.integers(0, 128, 16))
        for text in (
            encode_mask(gt, label="water", codec=codec),
            encode_mask(other, codec=codec) + " ; <loc0000><loc0000><loc1023><loc1023>" + seg + " edge",
            "<loc0010><loc0990><loc1023><loc1023>" + seg + " corner ; <loc0100><loc0100><loc0900><loc0900> box",
        ):
            s = score_image("x", text, gt, codec=codec)
            inter, union, ref = _score_full_size(text, gt, codec)
            assert (s.intersection, s.union, s.iou) == (inter, union, ref)


def _draw_full_size(image: Image.Image, segments: list[Segment], alpha: float) -> np.ndarray:
    """Before: the fill composited with full-size masks over the whole image (boxes as today)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
    for i, seg in enumerate(segments):
        if seg.mask is not None:
            fill = np.array(PALETTE[i % len(PALETTE)], np.float32)
            rgb[seg.mask] = (1 - alpha) * rgb[seg.mask] + alpha * fill
    return rgb.round().astype(np.uint8)


@pytest.mark.parametrize("convention", ["big_vision", "colab"])
def test_draw_segments_box_local_is_the_same_picture(convention: Any) -> None:
    codec = load_codec(CKPT)
    name = sorted((WATER / "masks").iterdir())[1]
    mask = read_mask_values(name) > 127
    image = Image.open(next((WATER / "images").glob(name.stem + ".*"))).convert("RGB")
    h, w = mask.shape
    seg = "".join(f"<seg{v:03d}>" for v in np.random.default_rng(1).integers(0, 128, 16))
    text = " ; ".join(
        [
            encode_mask(mask, label="water", codec=codec),
            "<loc0000><loc0000><loc1023><loc1023>" + seg + " all",
            "<loc0500><loc1000><loc1023><loc1023>" + seg + " edge",
            "<loc0100><loc0100><loc0400><loc0400> box",
        ]
    )
    full = decode_tokens(text, height=h, width=w, codec=codec, convention=convention)
    local = decode_tokens(text, codec=codec, convention=convention)
    assert all(s.mask is None for s in local)
    for alpha in (0.5, 0.3):
        drawn = np.asarray(draw_segments(image, full, alpha=alpha, convention=convention, backend="pillow"))
        # mask64-only segments are pasted in their boxes: the same picture
        drawn_local = np.asarray(draw_segments(image, local, alpha=alpha, convention=convention, backend="pillow"))
        np.testing.assert_array_equal(drawn_local, drawn)
        # the fill alone (no boxes, labels) equals the old full-size composite
        fills_only = [Segment(label="", loc=(0, 0, 1, 1), mask=s.mask) for s in full]
        ref = _draw_full_size(image, fills_only, alpha)
        got = np.asarray(draw_segments(image, fills_only, alpha=alpha, convention=convention, backend="pillow"))
        outline = np.zeros((h, w), bool)
        outline[: max(2, min(h, w) // 200 + 2), : max(2, min(h, w) // 200 + 2)] = True  # the tiny loc box
        np.testing.assert_array_equal(got[~outline], ref[~outline])


def test_eval_csv_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("previous\n")
    report = EvalReport([ImageScore("a", 0.5, 0.5, 1, 2, 1, 1, False, 0)])

    def boom(self: Any, row: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(csv.DictWriter, "writerow", boom)
    with pytest.raises(OSError, match="disk full"):
        report.write_csv(out)
    assert out.read_text() == "previous\n" and [p.name for p in tmp_path.iterdir()] == ["scores.csv"]
    monkeypatch.undo()
    report.write_csv(out)
    assert out.read_text().splitlines()[1].startswith("a,0.5,0.5,1,2")
