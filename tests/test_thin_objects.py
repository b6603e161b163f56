"""Objects thinner than one <loc> step: the reference's tokens (y2 == y1 or x2 == x1) come with a
ThinObjectWarning naming the object; min_loc_extent=1 widens the box by one bin instead."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec.api import encode_mask, encode_masks, encode_prepared, prepare_mask, widen_loc
from paligemma_segcodec.boxes import box_to_loc, tight_box
from paligemma_segcodec.errors import MalformedObjectError, ThinObjectWarning
from paligemma_segcodec.tokens import parse_objects


def _parses(text: str) -> bool:
    try:
        parse_objects(text, strict=True)
    except MalformedObjectError:
        return False
    return True


def _thin_warned(caught: list[warnings.WarningMessage]) -> set[int]:
    """Mask indices named by the ThinObjectWarnings caught."""
    out = []
    for w in caught:
        if issubclass(w.category, ThinObjectWarning):
            m = re.match(r"mask (\d+): ", str(w.message))
            assert m, str(w.message)
            out.append(int(m.group(1)))
    assert len(out) == len(set(out)), "one warning per object"
    return set(out)


def _row_mask(h: int, w: int, row: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[row, :] = True
    return m


def test_widen_loc_rule() -> None:
    assert widen_loc((10, 20, 10, 30)) == (10, 20, 11, 30)
    assert widen_loc((10, 20, 11, 20)) == (10, 20, 11, 21)
    assert widen_loc((1023, 1023, 1023, 1023)) == (1022, 1022, 1023, 1023)
    assert widen_loc((0, 0, 0, 0)) == (0, 0, 1, 1)
    assert widen_loc((5, 6, 900, 901)) == (5, 6, 900, 901)  # not thin: unchanged
    assert widen_loc((10, 20, 10, 30), 0) == (10, 20, 10, 30)
    with pytest.raises(ValueError, match="min_loc_extent"):
        widen_loc((0, 0, 0, 0), -1)
    with pytest.raises(TypeError, match="min_loc_extent"):
        widen_loc((0, 0, 0, 0), 1.0)  # type: ignore[arg-type]


def test_thin_row_warns_and_widens(codec) -> None:  # type: ignore[no-untyped-def]
    mask = _row_mask(4000, 7, 2000)  # one row of 4000: 0.26 of a <loc> step
    loc = box_to_loc(tight_box(mask))
    assert loc[2] == loc[0]
    with pytest.warns(ThinObjectWarning, match=rf"mask 0: .*{re.escape(str(loc))}.*min_loc_extent=1"):
        text = encode_mask(mask, codec=codec)
    assert not _parses(text)
    assert text.startswith("".join(f"<loc{v:04d}>" for v in loc))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wide = encode_mask(mask, codec=codec, min_loc_extent=1)
    obj = parse_objects(wide, strict=True).objects[0]
    assert obj.loc == widen_loc(loc) == (loc[0], loc[1], loc[0] + 1, loc[3])
    assert wide[40:] == text[40:]  # the <seg> tokens come from the same crop: only <loc> changes


def test_bottom_edge_widens_upwards(codec) -> None:  # type: ignore[no-untyped-def]
    mask = _row_mask(4000, 5, 3999)
    assert box_to_loc(tight_box(mask))[0::2] == (1023, 1023)
    obj = parse_objects(encode_mask(mask, codec=codec, min_loc_extent=1), strict=True).objects[0]
    assert (obj.loc[0], obj.loc[2]) == (1022, 1023)


def test_encode_masks_names_the_thin_index(codec) -> None:  # type: ignore[no-untyped-def]
    wide_ok = np.ones((30, 40), bool)
    masks = [wide_ok, _row_mask(3000, 9, 1500).T, wide_ok, _row_mask(5000, 3, 4321)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = encode_masks(masks, codec=codec)
    assert _thin_warned(caught) == {1, 3}
    assert [_parses(t) for t in texts] == [True, False, True, False]
    assert all(w.filename == __file__ for w in caught if issubclass(w.category, ThinObjectWarning))  # the caller


def test_encode_prepared(codec) -> None:  # type: ignore[no-untyped-def]
    prepared = [prepare_mask(np.ones((8, 8), bool)), prepare_mask(_row_mask(4096, 4, 7))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = encode_prepared(prepared, codec=codec)
    assert _thin_warned(caught) == {1}
    assert not _parses(texts[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(_parses(t) for t in encode_prepared(prepared, codec=codec, min_loc_extent=1))
    assert encode_prepared([], min_loc_extent=1) == []


def test_bad_min_loc_extent(codec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="min_loc_extent"):
        encode_mask(np.ones((4, 4), bool), codec=codec, min_loc_extent=2000)
    with pytest.raises(TypeError, match="min_loc_extent"):
        encode_masks([np.ones((4, 4), bool)], codec=codec, min_loc_extent=True)


@st.composite
def _objects(draw: st.DrawFn) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """Thin strips, single pixels, border objects and blobs on images from 1×N to 5000×N."""
    long_side = draw(st.sampled_from([1, 2, 17, 1023, 1024, 1500, 2046, 2047, 3000, 5000]))
    short = draw(st.integers(1, 24))
    h, w = (long_side, short) if draw(st.booleans()) else (short, long_side)
    m = np.zeros((h, w), bool)
    kind = draw(st.sampled_from(["pixel", "row", "col", "edge", "block"]))
    y = draw(st.integers(0, h - 1))
    x = draw(st.integers(0, w - 1))
    if kind == "pixel":
        m[y, x] = True
    elif kind == "row":
        m[y, x:] = True
    elif kind == "col":
        m[y:, x] = True
    elif kind == "edge":
        m[draw(st.sampled_from([0, h - 1])), :] = True
        m[:, draw(st.sampled_from([0, w - 1]))] = True
    else:
        m[y : y + draw(st.integers(1, 3)), x : x + draw(st.integers(1, 3))] = True
    box = None
    if draw(st.booleans()):  # an explicit box: the tight box, or a bit looser
        y1, x1, y2, x2 = tight_box(m)
        pad = draw(st.sampled_from([0.0, 1e-5, 1e-3]))
        box = (max(0.0, y1 - pad), max(0.0, x1 - pad), min(1.0, y2 + pad), min(1.0, x2 + pad))
    return m, box


@settings(max_examples=40)
@given(st.lists(_objects(), min_size=1, max_size=5))
def test_every_answer_parses_or_was_warned(codec, objects) -> None:  # type: ignore[no-untyped-def]
    masks = [m for m, _ in objects]
    boxes = [b for _, b in objects]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = encode_masks(masks, boxes, codec=codec)
    warned = _thin_warned(caught)
    assert {i for i, t in enumerate(texts) if not _parses(t)} == warned
    for i, box in enumerate(boxes):  # warned exactly for the reference's degenerate boxes
        y1, x1, y2, x2 = box_to_loc(tight_box(masks[i]) if box is None else box)
        assert (i in warned) == (y2 == y1 or x2 == x1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wide = encode_masks(masks, boxes, codec=codec, min_loc_extent=1)
    assert not _thin_warned(caught)
    assert all(_parses(t) for t in wide)
    for i, (t, w) in enumerate(zip(texts, wide, strict=True)):
        assert t[40:] == w[40:]  # same <seg> tokens
        assert (t == w) == (i not in warned)
