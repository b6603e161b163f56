"""Text format: formatting, parsing, malformed objects (no JAX needed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec.errors import MalformedObjectError
from paligemma_segcodec.tokens import check_label, format_object, loc_token, parse_objects, seg_token

LOC = "<loc0010><loc0020><loc0500><loc0600>"
SEG = "".join(f"<seg{i:03d}>" for i in range(16))

locs = st.tuples(st.integers(0, 1022), st.integers(0, 1022), st.integers(1, 1023), st.integers(1, 1023)).map(
    lambda t: (t[0], t[1], max(t[2], t[0] + 1), max(t[3], t[1] + 1))
)
segs = st.none() | st.tuples(*[st.integers(0, 127)] * 16)
labels = st.text(st.characters(blacklist_characters=";<>", blacklist_categories=("Cs",)), max_size=20).map(str.strip)


def test_import_tokens_does_not_import_jax() -> None:
    code = (
        "import sys, paligemma_segcodec, paligemma_segcodec.tokens, paligemma_segcodec.boxes; "
        "assert 'jax' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(st.lists(st.tuples(locs, segs, labels), max_size=6))
def test_format_parse_round_trip(objects: list) -> None:  # type: ignore[type-arg]
    text = " ; ".join(format_object(loc, seg, label or None) for loc, seg, label in objects)
    result = parse_objects(text, strict=True)
    assert result.skipped == []
    assert [(o.loc, o.seg, o.label) for o in result.objects] == [(tuple(l), s, lab) for l, s, lab in objects]


@given(locs, segs, st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
def test_a_label_is_accepted_exactly_when_it_parses_back_unchanged(loc: tuple, seg: tuple | None, label: str) -> None:  # type: ignore[type-arg]
    """A non-blank label is accepted iff the object's text parses back to it; a blank one never is."""
    try:
        check_label(label)
        accepted = True
    except ValueError:
        accepted = False
    hand_made = parse_objects(format_object(loc, seg) + " " + label)  # what the text would parse to
    parses_back = [(o.loc, o.seg, o.label) for o in hand_made.objects] == [(tuple(loc), seg, label)]
    assert accepted == (parses_back and bool(label.strip()))
    if accepted:
        assert format_object(loc, seg, label) == format_object(loc, seg) + " " + label
    else:
        with pytest.raises(ValueError, match="label"):
            format_object(loc, seg, label)


@pytest.mark.parametrize(
    ("label", "error"),
    [
        ("water body", None),  # inner spaces are fine
        ("", "is empty"),
        ("   ", "is empty"),
        (" water", "leading or trailing whitespace"),
        ("water\n", "leading or trailing whitespace"),
        ("a;b", "may not contain"),  # ';' separates objects
        ("a<b", "may not contain"),  # '<' starts a token
        ("b>", "may not contain"),
    ],
)
def test_check_label(label: str, error: str | None) -> None:
    if error is None:
        assert check_label(label) == label
    else:
        with pytest.raises(ValueError, match=error):
            check_label(label, "labels[3]")
        with pytest.raises(ValueError, match=r"^labels\[3\]"):
            check_label(label, "labels[3]")


def test_check_label_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="label must be a str, got int"):
        check_label(3)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("<>;lcoseg0123456789 abx\n")) | st.characters(), max_size=300))
def test_lenient_parser_never_raises(text: str) -> None:
    result = parse_objects(text)
    for o in result.objects:
        assert len(o.loc) == 4 and o.loc[2] > o.loc[0] and o.loc[3] > o.loc[1]
        assert o.seg is None or len(o.seg) == 16


@given(
    st.lists(
        st.sampled_from([LOC, SEG, "<loc1023>", "<seg127>", "<seg128>", "<loc9999>", " water", ";", " ; "]), max_size=30
    )
)
def test_lenient_parser_on_token_soup(parts: list[str]) -> None:
    text = "".join(parts)
    lenient = parse_objects(text)
    if lenient.skipped:  # strict mode raises for the first skipped object, at the same place
        first = lenient.skipped[0]
        with pytest.raises(MalformedObjectError) as info:
            parse_objects(text, strict=True)
        assert (info.value.index, info.value.offset) == (first.index, first.offset)
    else:
        assert parse_objects(text, strict=True) == lenient


def test_examples() -> None:
    text = f"{LOC}{SEG} water ; {LOC} boat;{LOC}{SEG}"
    objs = parse_objects(text, strict=True).objects
    assert [o.label for o in objs] == ["water", "boat", ""]
    assert objs[0].seg == tuple(range(16)) and objs[1].seg is None
    assert objs[1].offset == text.index(f"{LOC} boat")
    assert parse_objects("").objects == [] and parse_objects("   ").objects == []
    # HF decode with skip_special_tokens=False leaves these around
    assert [o.label for o in parse_objects(f"<bos>{LOC} cat<eos><pad>").objects] == ["cat"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{LOC}{SEG[:-8]} water", "expected 16 seg tokens, got 15"),  # 15 seg tokens
        ("<loc0010><loc0020><loc0500> water", "expected 4 loc tokens, got 3"),  # 3 loc
        (f"{LOC}<loc0001>{SEG} water", "more than 4 loc tokens"),  # 5 loc
        ("<loc0500><loc0020><loc0010><loc0600> w", "empty box"),  # y2 <= y1
        ("<loc0010><loc0600><loc0500><loc0600> w", "empty box"),  # x2 == x1
        (f"{LOC}<seg128>{SEG[8:]} w", "out of range 0..127"),  # seg > 127
        ("<loc0010><loc0020><loc1024><loc0600> w", "out of range 0..1023"),  # loc > 1023
        (f"{LOC}{SEG[:40]} junk {SEG[40:]} w", "junk 'junk' inside the token run"),  # junk inside the token run
        (f"{SEG}{LOC} w", "seg token after 0 loc tokens"),  # wrong order
        ("<loc010><loc0020><loc0500><loc0600> w", "must have 4 digits"),  # 3-digit loc
        ("water", "expected 4 loc tokens, got 0"),  # text only
        (f"{LOC}{SEG}{SEG[:8]} w", "more than 16 seg tokens"),  # 17 seg
    ],
)
def test_malformed_objects(text: str, reason: str) -> None:
    good = f"{LOC} keep"
    full = f"{good} ; {text} ; {good}"
    result = parse_objects(full)
    assert [o.label for o in result.objects] == ["keep", "keep"]
    assert len(result.skipped) == 1 and reason in result.skipped[0].reason
    with pytest.raises(MalformedObjectError) as info:
        parse_objects(full, strict=True)
    assert info.value.index == 1 and reason in str(info.value)
    assert full.find(text) <= info.value.offset <= full.find(text) + len(text)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: loc_token(1024), ValueError),
        (lambda: loc_token(-1), ValueError),
        (lambda: seg_token(128), ValueError),
        (lambda: format_object((1, 2, 3)), ValueError),
        (lambda: format_object((1, 2, 3, 4), (1,) * 15), ValueError),
        (lambda: format_object((1, 2, 3, 4), label="a;b"), ValueError),
        (lambda: format_object((1, 2, 3, -1)), ValueError),  # not index -1 of the token table
        (lambda: format_object((1, 2, 3, 1024)), ValueError),
        (lambda: format_object((1, 2, 3, 4), (0,) * 15 + (128,)), ValueError),
        (lambda: format_object((1, 2, 3, 4), (0,) * 15 + (-1,)), ValueError),
        (lambda: parse_objects(b"<loc0001>"), TypeError),  # bytes, not str
    ],
)
def test_bad_arguments(call, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        call()


def test_format_object_takes_numpy_integers() -> None:
    loc = np.array([0, 1, 1022, 1023], np.int64)
    seg = np.arange(0, 128, 8, dtype=np.int32)
    want = "<loc0000><loc0001><loc1022><loc1023>" + "".join(f"<seg{k:03d}>" for k in range(0, 128, 8)) + " x"
    assert format_object(loc, seg, "x") == format_object(loc.tolist(), seg.tolist(), "x") == want
