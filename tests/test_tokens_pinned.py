"""Pinned cases for `paligemma_segcodec.tokens`: boundaries, offsets, stripping, error messages.

These complement tests/test_tokens.py; each case is here because a mutation of tokens.py survived
the other tests (see docs/contributing.md, "Mutation testing"). They rest on the documented format
(the module docstring, `ParsedObject` / `SkippedObject` / `MalformedObjectError` attributes), not on
how the parser finds it: a defect's offset is pinned where the docstring says where it is (the bad
token, or the object for an empty box) and only bounded to the object otherwise; quoted junk is not
pinned past 20 characters.

Equivalent mutants (mutmut 3.8 names, ``paligemma_segcodec.tokens.x_<function>__mutmut_<n>``, as
numbered on the tokens.py of this commit, with `_parse_span` / `_diagnose` / `_scan`): no test can
kill them. Re-check this list when tokens.py changes (docs/contributing.md has the recipe).

- ``format_object`` 7, 8, 9 (``1 <= k``, ``0 < k``, ``k < LOC_MAX`` in the all-in-range check) and
  21, 22, 23 (the same for seg): that check is only a fast path; when it fails, the loop that
  follows calls `loc_token` / `seg_token` on every value, which raise only for a value that is
  really out of range, and the text is then built the same way.
- ``_parse_span`` 27, 28 (``y1`` / ``x1`` left out of the fast path's ``max(...) <= LOC_MAX``): the
  same line requires ``y2 > y1`` and ``x2 > x1``, so ``y1`` / ``x1`` above 1023 fail it anyway.
- ``_parse_span`` 1 (``diagnose`` defaults to False): every caller passes it.
- ``_parse_span`` 51 (diagnose even when counting), 53 (``index=None`` into `_diagnose`) and
  ``_scan`` 73 (diagnose always), 81 (``or`` in "keep this skipped one"): when counting, a
  diagnosis is computed and then dropped; `_diagnose` uses ``index`` only for a ParsedObject.
- ``_diagnose`` 92..104 (every argument of its final ``ParsedObject(...)``), 49 (``segs`` holds
  None): unreachable. `_diagnose` runs only after the fast-path regex ``_OBJECT_RE`` failed, and
  every well-formed object matches that regex (its regex whitespace is exactly `str.isspace`, the
  whitespace `_diagnose` skips: checked over all code points), so `_diagnose` always finds a defect.
- ``_diagnose`` 11 (token regex without ``end``): a ``<loc…>`` / ``<seg…>`` token cannot straddle
  the end of an object, which is followed by ``;``, whitespace, ``<eos>`` / ``<pad>`` or nothing.
- ``_diagnose`` 82 (``_NO_LOC if not locs and False else f"… got {len(locs)}"``): the same string.
- ``_scan`` 33, 41 (``_FOUR_LOCS_RE.match`` / ``_BEFORE_FOUR_LOCS_RE.search`` without an end):
  four loc tokens cannot run over a ``;``, and nothing after the body's end holds a ``;``.
- ``_scan`` 53, 54, 59, 60 (the prose shortcut's ``text[cs] != "<"`` turned into ``== "<"`` or
  ``!= "XX<XX"``; its bracket search without ``ce``): they only take the shortcut less often, or
  when there is no ``<`` in the object anyway, and `_diagnose` reports prose the same way
  (offset of the object, "expected 4 loc tokens, got 0").

Not pinned on purpose (killable, but the brief asks not to pin them): quoted junk or tokens cut to
21 instead of 20 characters; the exact cut of a junk message is an incidental detail.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paligemma_segcodec import tokens
from paligemma_segcodec.errors import MalformedObjectError
from paligemma_segcodec.tokens import (
    ParsedObject,
    SkippedObject,
    check_label,
    format_object,
    loc_token,
    parse_objects,
    seg_token,
)

LOC = "<loc0010><loc0020><loc0500><loc0600>"  # (10, 20, 500, 600)
SEG = "".join(f"<seg{i:03d}>" for i in range(16))  # 0..15
SEGS = tuple(range(16))

# --- loc_token / seg_token ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "k", "token"),
    [
        (loc_token, 0, "<loc0000>"),  # lower bound is valid
        (loc_token, 1023, "<loc1023>"),  # upper bound is valid
        (loc_token, 42, "<loc0042>"),  # zero-padded to 4 digits
        (seg_token, 0, "<seg000>"),
        (seg_token, 127, "<seg127>"),
        (seg_token, 9, "<seg009>"),  # zero-padded to 3 digits
    ],
)
def test_token_makers_accept_the_bounds(make, k: int, token: str) -> None:  # type: ignore[no-untyped-def]
    assert make(k) == token


@pytest.mark.parametrize(
    ("make", "k", "match"),
    [
        (loc_token, 1024, r"^loc index must be an int in 0\.\.1023, got 1024$"),  # one past the end
        (loc_token, -1, r"^loc index must be an int in 0\.\.1023, got -1$"),  # not the table's last entry
        (loc_token, True, r"^loc index must be an int in 0\.\.1023, got True$"),  # bool is an int subclass
        (loc_token, 5.0, r"^loc index must be an int in 0\.\.1023, got 5\.0$"),  # float, even integral
        (loc_token, "5", r"^loc index must be an int in 0\.\.1023, got '5'$"),  # str
        (seg_token, 128, r"^seg index must be an int in 0\.\.127, got 128$"),
        (seg_token, -1, r"^seg index must be an int in 0\.\.127, got -1$"),
        (seg_token, False, r"^seg index must be an int in 0\.\.127, got False$"),
        (seg_token, 1.0, r"^seg index must be an int in 0\.\.127, got 1\.0$"),
    ],
)
def test_token_makers_reject(make, k: object, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        make(k)


# --- check_label / format_object ---------------------------------------------------------------


@pytest.mark.parametrize("label", ["X-ray", "XX", "a b", "été", "0"])  # 'X' is an ordinary letter
def test_check_label_accepts(label: str) -> None:
    assert check_label(label) == label
    assert format_object((0, 0, 1, 1), label=label).endswith("<loc0001> " + label)


@pytest.mark.parametrize(
    ("loc", "seg", "match"),
    [
        ((1, 2, 3), None, r"^need 4 loc indices, got 3$"),  # 3 loc
        ((1, 2, 3, 4, 5), None, r"^need 4 loc indices, got 5$"),  # 5 loc
        ((1, 2, 3, 4), (1,) * 15, r"^need 16 seg indices, got 15$"),  # 15 seg
        ((1, 2, 3, 4), (1,) * 17, r"^need 16 seg indices, got 17$"),  # 17 seg
        ((1, 2, 3, 1024), None, r"^loc index must be an int in 0\.\.1023, got 1024$"),  # names the bad value
        ((-1, 2, 3, 4), None, r"^loc index must be an int in 0\.\.1023, got -1$"),
        ((1, 2, 3, 4), (0,) * 15 + (128,), r"^seg index must be an int in 0\.\.127, got 128$"),
        ((1, 2, 3, 4), (-1,) + (0,) * 15, r"^seg index must be an int in 0\.\.127, got -1$"),
    ],
)
def test_format_object_rejects(loc: tuple[int, ...], seg: tuple[int, ...] | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        format_object(loc, seg)


def test_format_object_bounds() -> None:
    seg = (0, 127) * 8
    want = "<loc0000><loc0000><loc1023><loc1023>" + "<seg000><seg127>" * 8
    assert format_object((0, 0, 1023, 1023), seg) == want
    assert format_object((0, 0, 1023, 1023), seg, "x") == want + " x"


# --- parse_objects: well-formed answers ---------------------------------------------------------


def _objs(text: str) -> list[tuple[int, int, tuple[int, ...], tuple[int, ...] | None, str]]:
    result = parse_objects(text, strict=True)
    assert result.skipped == []
    return [(o.index, o.offset, o.loc, o.seg, o.label) for o in result.objects]


A = (10, 20, 500, 600)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # three objects: the third one's offset counts every separator before it
        (
            f"{LOC} a ; {LOC}{SEG} bb;{LOC} ccc",
            [(0, 0, A, None, "a"), (1, 36 + 5, A, SEGS, "bb"), (2, 36 + 5 + 36 + 128 + 4, A, None, "ccc")],
        ),
        # four objects, separators with and without spaces, newlines
        (
            f"{LOC} a;{LOC} b ;\n{LOC} c; {LOC}",
            [
                (0, 0, A, None, "a"),
                (1, 36 + 3, A, None, "b"),
                (2, 39 + 36 + 5, A, None, "c"),
                (3, 80 + 36 + 4, A, None, ""),
            ],
        ),
        (f"   {LOC} cat", [(0, 3, A, None, "cat")]),  # 3 leading spaces: the offset counts them all
        (f" \t\n{LOC} cat", [(0, 3, A, None, "cat")]),  # any whitespace
        (f"<bos>{LOC} cat", [(0, 5, A, None, "cat")]),  # <bos> dropped, offsets still into the text
        (f"  <bos>{LOC} cat", [(0, 7, A, None, "cat")]),  # whitespace, then <bos>
        (f"<bos><bos> {LOC} cat", [(0, 11, A, None, "cat")]),  # two <bos>
        (f" <bos> \n<bos>{LOC} cat", [(0, 13, A, None, "cat")]),
        (f"{LOC} cat ", [(0, 0, A, None, "cat")]),  # one trailing space
        (f"{LOC} cat \n\t ", [(0, 0, A, None, "cat")]),  # trailing whitespace of odd length
        (f"{LOC} cat<eos>", [(0, 0, A, None, "cat")]),
        (f"{LOC} cat <eos> \n", [(0, 0, A, None, "cat")]),  # whitespace after <eos> too
        (f"{LOC} cat<eos><pad><pad>", [(0, 0, A, None, "cat")]),
        (f"{LOC} cat <pad> <eos>\n <pad>", [(0, 0, A, None, "cat")]),  # interleaved with whitespace
        (f"<bos> {LOC}{SEG}  two words \t<eos>", [(0, 6, A, SEGS, "two words")]),
        # whitespace between tokens is allowed, the label is stripped
        (
            "<loc0010> <loc0020>\n<loc0500>\t<loc0600>  " + " \n".join(seg_token(k) for k in range(16)) + "  x ",
            [(0, 0, A, SEGS, "x")],
        ),
        (f"{LOC}cat", [(0, 0, A, None, "cat")]),  # no space before the label
        (f"{LOC}{SEG}", [(0, 0, A, SEGS, "")]),  # no label
        (f"{LOC} X-ray;{LOC} XX", [(0, 0, A, None, "X-ray"), (1, 43, A, None, "XX")]),  # 'X' is a letter
        ("<loc0000><loc0000><loc1023><loc1023> all", [(0, 0, (0, 0, 1023, 1023), None, "all")]),  # the bounds
        (f"<loc0000><loc0000><loc0001><loc0001>{'<seg127>' * 16}", [(0, 0, (0, 0, 1, 1), (127,) * 16, "")]),
        (" ; ;; \n", []),  # only separators and whitespace: nothing, nothing skipped
        (f" ; {LOC} a ;; ; {LOC} b", [(0, 3, A, None, "a"), (1, 3 + 36 + 8, A, None, "b")]),  # empty chunks don't count
    ],
)
def test_parse_pinned(text: str, want: list) -> None:  # type: ignore[type-arg]
    assert _objs(text) == want
    for index, offset, *_ in want:
        assert text.startswith("<loc", offset), (index, offset)  # the object's first token


@pytest.mark.parametrize("after", [" ; water", ";water ", " ; water ; ", "; water<eos>", " ; wa ter ; w"])
def test_a_label_ends_at_the_next_semicolon(after: str) -> None:
    """A label never runs into the next object, even a malformed one with no token."""
    result = parse_objects(f"{LOC} a{after}")
    assert [(o.index, o.label) for o in result.objects] == [(0, "a")]
    assert result.skipped[0].index == 1 and result.skipped[0].text.startswith("wa")


def test_index_counts_skipped_objects() -> None:
    result = parse_objects(f"water ; {LOC} a ; <loc0001> ; {LOC} b")
    assert [(o.index, o.label) for o in result.objects] == [(1, "a"), (3, "b")]
    assert [s.index for s in result.skipped] == [0, 2]
    assert all(isinstance(o, ParsedObject) for o in result.objects)


# --- parse_objects: malformed objects -----------------------------------------------------------

GOOD = f"{LOC} keep ; "  # object 0, 44 characters, before the malformed object 1
BAD_AT = len(GOOD)


@pytest.mark.parametrize(
    ("bad", "at", "reason"),
    [
        # at: offset of the defect inside `bad` (None: anywhere inside the object)
        ("<loc0010><loc0020><loc0010><loc0600> w", 0, r"^empty box: need y2 > y1 and x2 > x1, got "),  # y2 == y1
        ("<loc0500><loc0020><loc0010><loc0600> w", 0, r"^empty box: .*\(500, 20, 10, 600\)$"),  # y2 < y1
        ("<loc0010><loc0600><loc0500><loc0600> w", 0, r"^empty box: .*\(10, 600, 500, 600\)$"),  # x2 == x1
        ("<loc0000><loc1023><loc0500><loc0600> w", 0, r"^empty box: .*\(0, 1023, 500, 600\)$"),  # 1023 is in range
        ("<loc0010><loc0700><loc0500><loc0600> w", 0, r"^empty box"),  # x2 < x1
        (f"{LOC}{SEG}<loc0001> w", 36 + 128, r"^loc token after seg tokens$"),  # loc after the segs
        (f"{LOC}<seg000><loc0001> w", 44, r"^loc token after seg tokens$"),  # loc after one seg
        (f"{LOC}<loc0001>", 36, r"^more than 4 loc tokens$"),
        (f"{LOC}{SEG}<seg001> w", 36 + 128, r"^more than 16 seg tokens$"),
        (f"{LOC}<seg01>{SEG[8:]} w", 36, r"^seg token '<seg01>' must have 3 digits$"),  # 2 digits
        (f"{LOC}<seg0001>{SEG[8:]} w", 36, r"^seg token '<seg0001>' must have 3 digits$"),  # 4 digits
        (f"{LOC}{SEG[:8]}<seg128>{SEG[16:]} w", 44, r"^seg token '<seg128>' is out of range 0\.\.127$"),
        ("<loc0010><loc010><loc0500><loc0600> w", 9, r"^loc token '<loc010>' must have 4 digits$"),  # 3 digits
        ("<loc00010><loc0020><loc0500><loc0600> w", 0, r"^loc token '<loc00010>' must have 4 digits$"),  # 5
        ("<loc0010><loc0020><loc1024><loc0600> w", 18, r"^loc token '<loc1024>' is out of range 0\.\.1023$"),
        ("<loc0010><seg000> w", 9, r"^seg token after 1 loc tokens \(need 4 first\)$"),
        (f"{SEG}{LOC} w", 0, r"^seg token after 0 loc tokens \(need 4 first\)$"),
        (f"{LOC} cat > dog", 37, r"^junk 'cat' inside the token run \(before '>'\)$"),  # a lone '>' in the label
        (f"{LOC} a<b", 37, r"^junk 'a' inside the token run \(before '<'\)$"),  # a lone '<'
        (f"{LOC} <b>", 37, r"^junk '<b>' inside the token run \(before '<b>'\)$"),  # an unknown tag
        (f"{LOC} w<eos>", 37, r"^junk 'w' inside the token run \(before '<eos>'\)$"),  # <eos> only at the end
        (f"{LOC} w <bos>", 37, r"^junk 'w' inside the token run \(before '<bos>'\)$"),  # <bos> only at the start
        (f"{LOC}{SEG[:8]} jj {SEG[8:]} w", 36 + 8 + 1, r"^junk 'jj' inside the token run \(before '<seg"),
        ("<loc0010><loc0020><loc0500> w", None, r"^expected 4 loc tokens, got 3$"),
        (f"{LOC}{SEG[:-8]} w", None, r"^expected 16 seg tokens, got 15$"),
        (f"{LOC}{'<seg127>' * 15} w", None, r"^expected 16 seg tokens, got 15$"),  # 127 is in range
        ("water", None, r"^expected 4 loc tokens, got 0$"),  # prose
        (f"w {LOC}", 0, r"^junk 'w' inside the token run \(before '<loc0010>'\)$"),  # words, then tokens
    ],
)
def test_malformed_pinned(bad: str, at: int | None, reason: str) -> None:
    text = f"{GOOD}{bad} ; {LOC} keep"
    result = parse_objects(text)
    assert [(o.index, o.offset, o.label) for o in result.objects] == [
        (0, 0, "keep"),
        (2, BAD_AT + len(bad) + 3, "keep"),
    ]
    [skipped] = result.skipped
    assert skipped.index == 1
    assert re.search(reason, skipped.reason), skipped.reason
    if at is None:
        assert BAD_AT <= skipped.offset <= BAD_AT + len(bad)
    else:
        assert skipped.offset == BAD_AT + at
    assert skipped.text and bad.startswith(skipped.text)  # the object's own text, not its neighbours'
    assert skipped.text == bad[: len(skipped.text)]
    with pytest.raises(MalformedObjectError) as info:
        parse_objects(text, strict=True)
    err = info.value
    assert (err.index, err.offset, err.reason) == (skipped.index, skipped.offset, skipped.reason)
    assert str(err) == f"object 1 at character {skipped.offset}: {skipped.reason}"


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("water", 0),  # the whole text is one malformed object
        ("  water  ", 2),  # surrounding whitespace is not part of it
        ("<bos> water <eos>", 6),
    ],
)
def test_skipped_text_is_the_stripped_object(text: str, offset: int) -> None:
    [skipped] = parse_objects(text).skipped
    assert (skipped.index, skipped.text) == (0, "water")
    assert skipped.offset == offset
    assert str(skipped) == f"object 0 at character {offset}: expected 4 loc tokens, got 0 ('water')"


def test_skipped_object_str_shows_60_characters() -> None:
    skipped = SkippedObject(3, 17, "why", "x" * 100)
    assert str(skipped) == f"object 3 at character 17: why ({'x' * 60!r})"


@pytest.mark.parametrize(("text", "name"), [(b"<loc0001>", "bytes"), (None, "NoneType"), (["a"], "list")])
def test_parse_objects_rejects_non_str(text: object, name: str) -> None:
    with pytest.raises(TypeError, match=rf"^text must be a str, got {name}$"):
        parse_objects(text)  # type: ignore[arg-type]


# --- near-valid answers: valid objects, some of them broken in one small way --------------------

_locs = st.tuples(st.integers(0, 1022), st.integers(0, 1022), st.integers(1, 1023), st.integers(1, 1023)).map(
    lambda t: (t[0], t[1], max(t[2], t[0] + 1), max(t[3], t[1] + 1))
)
_segs = st.none() | st.tuples(*[st.integers(0, 127)] * 16)
_labels = st.text(st.characters(blacklist_characters=";<>", blacklist_categories=("Cs",)), max_size=10).map(str.strip)
_gap = st.sampled_from(["", "", "", " ", "\n", " \t "])  # whitespace between tokens
_junk = st.sampled_from(["x", "junk", "0", "loc", "X Y"])


@st.composite
def _broken(draw: st.DrawFn, loc: tuple[int, ...], seg: tuple[int, ...] | None, label: str) -> tuple[list[str], str]:
    """The tokens and label of an object with one defect that makes it malformed, whatever the rest."""
    locs = [loc_token(k) for k in loc]
    segs = [seg_token(k) for k in seg] if seg is not None else []
    kinds = ["drop loc", "extra loc", "loc range", "loc digits", "empty box", "junk", "bracket", "seg first", "prose"]
    if seg is not None:
        kinds += ["drop seg", "extra seg", "seg range", "seg digits"]
    kind = draw(st.sampled_from(kinds))
    i = draw(st.integers(0, 3))
    j = draw(st.integers(0, 15))
    if kind == "drop loc":
        del locs[i]
    elif kind == "extra loc":
        locs.insert(i, loc_token(draw(st.integers(0, 1023))))
    elif kind == "loc range":
        locs[i] = f"<loc{draw(st.integers(1024, 9999))}>"
    elif kind == "loc digits":
        locs[i] = f"<loc{draw(st.sampled_from(['', '1', '01', '001', '00001', '10000']))}>"
    elif kind == "empty box":
        y1, x1, y2, x2 = loc
        if draw(st.booleans()):
            y2 = draw(st.integers(0, y1))
        else:
            x2 = draw(st.integers(0, x1))
        locs = [loc_token(k) for k in (y1, x1, y2, x2)]
    elif kind == "drop seg":
        del segs[j]
    elif kind == "extra seg":
        segs.insert(j, seg_token(draw(st.integers(0, 127))))
    elif kind == "seg range":
        segs[j] = f"<seg{draw(st.integers(128, 999))}>"
    elif kind == "seg digits":
        segs[j] = f"<seg{draw(st.sampled_from(['', '1', '01', '0001']))}>"
    elif kind == "seg first":
        locs, segs = segs or [seg_token(0)], locs
    tokens = locs + segs
    if kind == "junk":  # between two tokens: before the last one, so it cannot be the label
        tokens.insert(draw(st.integers(1, len(tokens) - 1)), " " + draw(_junk) + " ")
    if kind == "bracket":
        label = draw(st.sampled_from(["<", ">", "a<b", "a > b", "<p>", "x <"]))
    if kind == "prose":  # no token at all
        tokens, label = [], draw(st.sampled_from(["water", "x", "0", "loc0001", "the loc"]))
    return tokens, label


@st.composite
def near_valid_answers(
    draw: st.DrawFn, max_objects: int = 5
) -> tuple[str, list[tuple[int, int, int, ParsedObject | None]]]:
    """An answer of 1..max_objects objects, about 2 in 3 well-formed; each: (index, start, end, object or None)."""
    text = draw(st.sampled_from(["", "", " ", "<bos>", " <bos>\n", "<bos><bos> "]))
    expected = []
    for index in range(draw(st.integers(1, max_objects))):
        if index:
            text += draw(st.sampled_from([";", " ; ", "\n;", " ;; ", "; ;\n"]))  # empty chunks do not count
        loc, seg, label = draw(_locs), draw(_segs), draw(_labels)
        ok = draw(st.integers(0, 2)) > 0
        if ok:
            tokens = [loc_token(k) for k in loc] + ([seg_token(k) for k in seg] if seg is not None else [])
        else:
            tokens, label = draw(_broken(loc, seg, label))
        text += draw(_gap)
        start = len(text)
        for token in tokens:
            text += token + draw(_gap)
        text += label
        end = len(text.rstrip())
        text += draw(_gap)
        parsed = ParsedObject(index=index, offset=start, loc=loc, seg=seg, label=label) if ok else None
        expected.append((index, start, end, parsed))
    text += draw(st.sampled_from(["", "", "<eos>", " <eos>\n", "<eos><pad><pad>", "\n"]))
    return text, expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_answers())
def test_near_valid_answers(answer: tuple[str, list[tuple[int, int, int, ParsedObject | None]]]) -> None:
    """Every well-formed object comes back exactly; every broken one is skipped, located in itself."""
    text, expected = answer
    result = parse_objects(text)
    assert result.objects == [parsed for *_, parsed in expected if parsed is not None]
    bad = [(index, start, end) for index, start, end, parsed in expected if parsed is None]
    assert [s.index for s in result.skipped] == [index for index, _, _ in bad]
    for skipped, (_, start, end) in zip(result.skipped, bad, strict=True):
        assert start <= skipped.offset <= end, (skipped, start, end)
        assert skipped.text and text.startswith(skipped.text, start)
        assert skipped.reason
    if result.skipped:
        first = result.skipped[0]
        with pytest.raises(MalformedObjectError) as info:
            parse_objects(text, strict=True)
        assert (info.value.index, info.value.offset, info.value.reason) == (first.index, first.offset, first.reason)
    else:
        assert parse_objects(text, strict=True) == result


_scan = tokens._scan  # the private parser behind decode_tokens' warning summary


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_answers(max_objects=8), st.integers(0, 3))
def test_scan_keeping_a_few_skipped_objects_agrees_with_parse_objects(
    answer: tuple[str, list[tuple[int, int, int, ParsedObject | None]]], keep: int
) -> None:
    """Counting the skipped objects past the first ``keep`` (without diagnosing them) changes nothing else."""
    text, _ = answer
    full = parse_objects(text)
    objects, skipped, n_skipped = _scan(text, strict=False, keep=keep)
    assert objects == full.objects
    assert skipped == full.skipped[:keep]
    assert n_skipped == len(full.skipped)
    assert _scan(text, strict=False, keep=None) == (full.objects, full.skipped, len(full.skipped))  # type: ignore[misc]
