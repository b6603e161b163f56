"""The parser on hostile text: never raises in lenient mode, linear time, short reports; streamed decoding.

Sizes here are 1 MB or less; the slow tests run 10 MB inputs under a generous bound that only
catches quadratic blowups (a shared, noisy machine: no tight wall-clock assertions).
"""

from __future__ import annotations

import time
import tracemalloc
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec import MalformedObjectError, SkippedObjectWarning, decode_tokens, iter_decode_tokens
from paligemma_segcodec.api import encode_masks
from paligemma_segcodec.tokens import (
    _CHUNK_RE,
    _diagnose,
    _parse_span,
    _scan,
    format_object,
    parse_objects,
)

LOC = "<loc0010><loc0020><loc0500><loc0600>"
SEG = "".join(f"<seg{i:03d}>" for i in range(16))
CAT = f"{LOC} cat"
MB = 1_000_000

# (text, labels of the objects it yields, number of skipped objects); each with why it is hostile.
HOSTILE = [
    # int() of more than 4300 digits raises ValueError on Python 3.11+: digits are counted first
    pytest.param("<loc" + "1" * 5000 + ">", [], 1, id="loc-5000-digits"),
    pytest.param("<seg" + "1" * 5000 + ">", [], 1, id="seg-5000-digits"),
    pytest.param(f"{CAT} ; {LOC}<seg{'7' * 5000}> dog", ["cat"], 1, id="valid-then-5000-digit-seg"),
    pytest.param("<loc" + "1" * MB, [], 1, id="loc-1M-digits-unclosed"),
    pytest.param(";" * MB, [], 0, id="1M-semicolons"),  # 1M empty objects are not objects
    pytest.param("; \t\n" * (MB // 4), [], 0, id="blank-objects"),
    pytest.param(";x" * 100_000, [], 100_000, id="100k-junk-objects"),
    pytest.param(f"{CAT};" + "x;" * 1000 + CAT, ["cat", "cat"], 1000, id="valid-junk-valid"),
    pytest.param(f"{CAT} ; " + "<" * MB, ["cat"], 1, id="valid-then-1M-lt"),
    pytest.param("<" * (MB // 2) + ">" * (MB // 2), [], 1, id="1MB-nested-brackets"),
    pytest.param("<" + "a" * MB, [], 1, id="unclosed-tag"),
    pytest.param("<a>" * (MB // 3), [], 1, id="300k-tags"),
    pytest.param("<loc0001>" * (MB // 9), [], 1, id="100k-loc-tokens-one-object"),
    pytest.param(f"{LOC}{SEG * 1000} x", [], 1, id="16000-seg-tokens"),
    pytest.param("<seg" * (MB // 4), [], 1, id="seg-prefixes"),
    pytest.param(" " * MB + CAT + " " * MB, ["cat"], 0, id="1M-spaces-around"),
    pytest.param("<bos>" * 1000 + CAT + "<eos>" * 1000 + "<pad>" * 1000, ["cat"], 0, id="special-token-runs"),
    pytest.param("<eos>" * 1000, [], 0, id="only-eos"),
    pytest.param("\x00" * 1000, [], 1, id="NULs"),
    pytest.param(f"{LOC} a\x00b", ["a\x00b"], 0, id="NUL-in-label"),
    pytest.param("\ud800" * 1000, [], 1, id="lone-surrogates"),
    pytest.param(f"{LOC} \udfff", ["\udfff"], 0, id="lone-surrogate-label"),
    pytest.param(f"{LOC}\ud800{SEG} x", [], 1, id="surrogate-inside-token-run"),
    pytest.param(f"{CAT} > 3", [], 1, id="gt-in-label"),
    pytest.param(f"<{CAT}>", [], 1, id="object-in-brackets"),
    pytest.param(f"{CAT}\r\n;\r\n{LOC} dog\r\n", ["cat", "dog"], 0, id="crlf"),
    # whitespace is str.isspace's, as in check_label: behaviour kept for the usual kinds
    pytest.param(LOC.replace("><", ">\u3000<") + "\u3000cat\u3000", ["cat"], 0, id="ideographic-space"),
    pytest.param(LOC.replace("><", ">\x1c<") + " cat", ["cat"], 0, id="file-separator-is-space"),
    pytest.param(f"{LOC}\u200b cat", ["\u200b cat"], 0, id="zero-width-space-is-not-space"),
    pytest.param(f"{LOC} " + "a" * MB, ["a" * MB], 0, id="1M-label"),
]

# Digits that str.isdigit (and re's \d, and int()) accept, but PaliGemma's tokens never contain.
NON_ASCII_DIGITS = {
    "fullwidth": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
    "math-bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
    "superscript": "⁰¹²³⁴⁵⁶⁷⁸⁹",
}


@pytest.mark.parametrize(("text", "labels", "n_skipped"), HOSTILE)
def test_hostile_text(codec: Any, text: str, labels: list[str], n_skipped: int) -> None:
    result = parse_objects(text)
    assert [o.label for o in result.objects] == labels
    assert len(result.skipped) == n_skipped
    for s in result.skipped[:100]:
        assert len(s.text) <= 60 and len(s.reason) <= 200 and len(str(s)) <= 1000  # repr: up to 12 characters each
        assert 0 <= s.offset <= len(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segs = decode_tokens(text, height=16, width=16, codec=codec)
    assert [s.label for s in segs] == labels
    assert len(caught) == (1 if n_skipped else 0)
    if n_skipped:
        assert caught[0].category is SkippedObjectWarning and len(str(caught[0].message)) < 2000
    if n_skipped:
        with pytest.raises(MalformedObjectError) as info:
            parse_objects(text, strict=True)
        first = result.skipped[0]
        assert (info.value.index, info.value.offset, info.value.reason) == (first.index, first.offset, first.reason)
        assert len(str(info.value)) < 400
    else:
        assert parse_objects(text, strict=True) == result


@pytest.mark.parametrize("digits", NON_ASCII_DIGITS.values(), ids=NON_ASCII_DIGITS.keys())
@pytest.mark.parametrize(
    "template",
    [
        "<loc{0}{0}1{0}><loc{0}{0}2{0}><loc{0}5{0}{0}><loc{0}6{0}{0}> cat",  # every loc digit
        "<loc0010><loc0020><loc0500><loc06{0}0> cat",  # one digit of one loc token
        LOC + SEG[:-8] + "<seg0{0}5> cat",  # one digit of one seg token
    ],
    ids=["all", "one-loc-digit", "one-seg-digit"],
)
def test_non_ascii_digits_are_not_token_digits(template: str, digits: str) -> None:
    text = template.format(digits[0])
    assert digits[0].isdigit()  # and int() takes all but the superscripts: the parser must not
    result = parse_objects(f"{CAT} ; {text}")
    assert [o.label for o in result.objects] == ["cat"]
    assert len(result.skipped) == 1 and "junk" in result.skipped[0].reason
    with pytest.raises(MalformedObjectError, match="junk"):
        parse_objects(text, strict=True)


def test_strict_offsets_count_bos_and_whitespace() -> None:
    bad = f"{LOC}<seg01x> dog"
    text = f"<bos>  \n{CAT} ;\t {bad} ; {CAT}<eos>"
    with pytest.raises(MalformedObjectError) as info:
        parse_objects(text, strict=True)
    assert (info.value.index, info.value.offset) == (1, text.index("<seg01x>"))
    assert parse_objects(text).objects[1].offset == text.rindex(CAT)
    assert parse_objects(text).skipped[0].offset == text.index("<seg01x>")
    digits = f"{CAT};  <loc{'5' * 6000}>"
    with pytest.raises(MalformedObjectError, match="must have 4 digits") as info:
        parse_objects(digits, strict=True)
    assert info.value.offset == digits.index("<loc5") and len(str(info.value)) < 200


# Near-valid text: token fragments, ASCII and other digits, separators, special tokens, labels.
PIECES = [
    LOC, SEG, CAT, "<loc", "<seg", "<loc0010>", "<loc1023>", "<loc1024>", "<seg127>", "<seg128>", "<seg07>",
    "0", "123", "0600", "9999", "１", "٣", "𝟎", "०", "<", ">", ";", " ; ", " ", "\u3000", "\n", "\x00", "\ud800",
    "<bos>", "<eos>", "<pad>", " cat", "dog", "a b", "<loc" + "1" * 40 + ">",
]  # fmt: skip
near_valid = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=40).map("".join)


@settings(max_examples=400)
@given(near_valid)
def test_lenient_objects_reformat_and_strict_agrees(text: str) -> None:
    lenient = parse_objects(text)
    for o in lenient.objects:
        again = parse_objects(format_object(o.loc, o.seg, o.label or None), strict=True).objects
        assert [(a.loc, a.seg, a.label) for a in again] == [(o.loc, o.seg, o.label)]
        assert 0 <= o.offset < len(text) and text.startswith("<loc", o.offset)
    if lenient.skipped:  # strict raises for the first skipped object, at the same place
        with pytest.raises(MalformedObjectError) as info:
            parse_objects(text, strict=True)
        first = lenient.skipped[0]
        assert 0 <= info.value.offset <= len(text)
        assert (info.value.index, info.value.offset, info.value.reason) == (first.index, first.offset, first.reason)
    else:
        assert parse_objects(text, strict=True) == lenient
    # What decode_tokens uses: the first few skipped objects kept, the rest counted.
    for keep in (0, 2):
        objects, shown, n = _scan(text, strict=False, keep=keep)
        assert (objects, shown, n) == (lenient.objects, lenient.skipped[:keep], len(lenient.skipped))


@settings(max_examples=400)
@given(st.lists(st.sampled_from([*PIECES[:12], " ", "\u3000", " x", "<", ">", "0"]), min_size=1, max_size=25))
def test_object_pattern_agrees_with_the_token_by_token_parser(parts: list[str]) -> None:
    text = "".join(parts)
    for index, m in enumerate(_CHUNK_RE.finditer(text)):
        assert _parse_span(text, index, *m.span()) == _diagnose(text, index, *m.span())


def test_warning_for_100k_skipped_objects_is_short(codec: Any) -> None:
    text = f"{CAT};" + ";x" * 100_000 + ";<seg" * 10
    with pytest.warns(SkippedObjectWarning) as record:
        segs = decode_tokens(text, codec=codec)
    assert [s.label for s in segs] == ["cat"] and len(record) == 1
    message = str(record[0].message)
    assert len(message) < 2000
    assert message.startswith("skipped 100010 malformed object(s):")
    assert f"object 1 at character {len(CAT) + 2}: expected 4 loc tokens, got 0 ('x')" in message
    assert "and 100005 more" in message


class CountingCodec:
    """The session codec, counting `decode_indices` calls and their sizes."""

    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.calls: list[int] = []

    def decode_indices(self, indices: Any) -> Any:
        self.calls.append(len(indices))
        return self.codec.decode_indices(indices)


def _answer(codec: Any, n: int) -> str:
    rng = np.random.default_rng(0)
    masks = [rng.random((int(rng.integers(4, 40)), int(rng.integers(4, 40)))) > 0.3 for _ in range(n)]
    texts = encode_masks(masks, labels=[f"m{i}" for i in range(n)], codec=codec)
    texts[3] = texts[3].split("<seg")[0] + " box only"  # detection-only objects in between
    texts[4] = "junk"
    return " ; ".join(texts)


def test_iter_decode_tokens_equals_decode_tokens(codec: Any) -> None:
    text = _answer(codec, 11)
    with pytest.warns(SkippedObjectWarning):
        eager = decode_tokens(text, height=30, width=50, convention="colab", codec=codec)
    for chunk in (3, 4, 256):  # compiled batch sizes: 4 and 16
        with pytest.warns(SkippedObjectWarning):
            lazy = list(iter_decode_tokens(text, height=30, width=50, convention="colab", codec=codec, chunk=chunk))
        assert lazy == eager and len(lazy) == 10
        for a, b in zip(lazy, eager, strict=True):
            assert (a.mask is None) == (b.mask is None) and (a.mask64 is None) == (b.mask64 is None)
            if a.mask64 is not None and b.mask64 is not None:
                np.testing.assert_allclose(a.mask64, b.mask64, atol=1e-5)
                assert a.mask is not None and b.mask is not None
                assert np.mean(a.mask != b.mask) < 0.01  # batch sizes may differ in the last float bits


def test_iter_decode_tokens_is_lazy(codec: Any) -> None:
    text = _answer(codec, 11)  # 9 objects with <seg>, 1 box only, 1 junk
    counting = CountingCodec(codec)
    with pytest.warns(SkippedObjectWarning, match="skipped 1 malformed"):
        it = iter_decode_tokens(text, codec=counting, chunk=4)  # type: ignore[arg-type]
    assert counting.calls == []  # parsed and checked at the call, nothing decoded yet
    first = next(it)
    assert first.label == "m0" and counting.calls == [4]
    assert [s.label for s in (next(it), next(it), next(it), next(it))] == ["m1", "m2", "box only", "m5"]
    assert counting.calls == [4]  # m0, m1, m2, m5
    assert next(it).label == "m6" and counting.calls == [4, 4]
    assert [s.label for s in it] == ["m7", "m8", "m9", "m10"] and counting.calls == [4, 4, 1]


def test_iter_decode_tokens_checks_at_the_call(codec: Any) -> None:
    with pytest.raises(MalformedObjectError, match="object 1"):
        iter_decode_tokens(f"{CAT} ; {LOC}<seg1> x", strict=True, codec=codec)
    with pytest.raises(ValueError, match="both height and width"):
        iter_decode_tokens(CAT, height=3, codec=codec)
    for chunk in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="chunk"):
            iter_decode_tokens(CAT, codec=codec, chunk=chunk)  # type: ignore[arg-type]


def test_streamed_pasting_holds_one_chunk(codec: Any) -> None:
    """60 objects pasted on 400x400 (160 kB each): streaming holds a chunk, not 60 masks."""
    one = format_object((0, 0, 1023, 1023), [5] * 16, "x")
    text = " ; ".join([one] * 60)
    list(iter_decode_tokens(" ; ".join([one] * 4), height=400, width=400, codec=codec, chunk=4))  # compile
    tracemalloc.start()
    try:
        for s in iter_decode_tokens(text, height=400, width=400, codec=codec, chunk=4):
            assert s.mask is not None and s.mask.shape == (400, 400)
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        eager = decode_tokens(text, height=400, width=400, codec=codec)
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(eager) == 60
    assert held > 60 * 400 * 400 and streamed < held / 4, (streamed, held)


BIG = 10 * MB
SLOW_JUNK = {
    "semicolons": ";" * BIG,
    "x-objects": ";x" * (BIG // 2),
    "lt-objects": ";<" * (BIG // 2),
    "loc-objects": ";<loc0001>" * (BIG // 10),
    "lt": "<" * BIG,
    "nested": "<" * (BIG // 2) + ">" * (BIG // 2),
    "loc-digits": "<loc" + "1" * BIG,
    "spaces": " " * BIG + "x",
    "special-tokens": "x" + "<eos> " * (BIG // 6),
    "surrogates": "\ud800" * BIG,
    "tags": "<a>" * (BIG // 3),
}


@pytest.mark.slow
@pytest.mark.parametrize("text", SLOW_JUNK.values(), ids=SLOW_JUNK.keys())
def test_10MB_of_junk_decodes_in_linear_time(text: str) -> None:
    """decode_tokens counts skipped objects past the first few in bulk: ~0.1-1 s here. The bound
    only catches quadratic behaviour, which takes minutes on 10 MB."""
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedObjectWarning)
        assert decode_tokens(text) == []
    assert time.perf_counter() - t < 10


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lt", "nested", "loc-digits", "spaces", "special-tokens", "surrogates", "tags"])
def test_10MB_of_junk_parses_in_linear_time(name: str) -> None:
    """parse_objects keeps one SkippedObject per skipped object (µs each): few objects here."""
    t = time.perf_counter()
    result = parse_objects(SLOW_JUNK[name])
    assert result.objects == [] and len(result.skipped) == 1
    assert time.perf_counter() - t < 10
