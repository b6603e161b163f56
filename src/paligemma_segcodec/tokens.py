"""PaliGemma's segmentation text format: formatting and parsing (pure Python, no JAX).

An answer is a list of objects separated by ``;``. Each object is::

    <locY1><locX1><locY2><locX2>[<segNNN> x 16] label

- 4 ``<locNNNN>`` tokens (4 digits, 0..1023): the box, y first (see `paligemma_segcodec.boxes`);
- 16 ``<segNNN>`` tokens (3 digits, 0..127): the VQ-VAE codebook indices of the 64×64 mask, or
  none at all for a detection-only object;
- the label: free text without ``;``, ``<`` or ``>``; surrounding whitespace is dropped.

Whitespace between tokens is allowed. A trailing ``<eos>`` / leading ``<bos>`` (left in by
``skip_special_tokens=False``) is ignored.

`parse_objects` never raises in lenient mode (the default): a malformed object is skipped and
reported in `ParseResult.skipped`; ``strict=True`` raises `MalformedObjectError` naming the
object's index and the character offset of the problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from paligemma_segcodec.boxes import LOC_MAX
from paligemma_segcodec.errors import MalformedObjectError

__all__ = [
    "NUM_LOC",
    "NUM_SEG",
    "SEG_MAX",
    "ParseResult",
    "ParsedObject",
    "SkippedObject",
    "check_label",
    "format_object",
    "loc_token",
    "parse_objects",
    "seg_token",
]

NUM_LOC = 4
NUM_SEG = 16
SEG_MAX = 127

# Tokens are ASCII: [0-9] (re.ASCII), never str.isdigit's fullwidth or Arabic-Indic digits, which
# int() would happily convert. Whitespace is str.isspace's (re's \s on a str pattern is the same set),
# as in check_label's strip().
_TOKEN_RE = re.compile(r"<(loc|seg)([0-9]+)>", re.ASCII)
_LOC_RUN = r"\s*".join([r"<loc([0-9]{4})>"] * NUM_LOC)
_SEG_RUN = "".join([r"\s*<seg([0-9]{3})>"] * NUM_SEG)
# One well-formed object, token values still unchecked for range (the fast path of _parse_span).
_OBJECT_RE = re.compile(_LOC_RUN + "(?:" + _SEG_RUN + ")?" + r"([^<>]*)")
# A ';'-separated object without its surrounding whitespace: first to last non-space character.
_CHUNK_RE = re.compile(r"[^;\s](?:[^;]*[^;\s])?")
_LEADING_RE = re.compile(r"(?:\s+|<bos>)*")
_TRAILING_REVERSED_RE = re.compile(r"(?:\s+|>soe<|>dap<)*")  # <eos> / <pad> run at the end, read backwards
_CHUNK_COUNT_RE = re.compile(r"[^;\s][^;]*")  # one match per object, cheaper than _CHUNK_RE
# An object that starts with 4 loc tokens (the others are malformed), and the ';' before one.
_FOUR_LOCS_RE = re.compile(_LOC_RUN.replace("(", "(?:"))
_BEFORE_FOUR_LOCS_RE = re.compile(r";\s*(?=" + _FOUR_LOCS_RE.pattern + ")")
_ANY_TAG_RE = re.compile(r"<[^<>]*>")
_BRACKET_RE = re.compile(r"[<>]")
_SPACES_RE = re.compile(r"\s*")
_TEXT_MAX = 60  # characters of a skipped object's text kept in SkippedObject.text
_SHOWN_MAX = 20  # characters of a token or junk quoted in a reason
_NO_LOC = f"expected {NUM_LOC} loc tokens, got 0"


_LOC_TOKENS = tuple(f"<loc{k:04d}>" for k in range(LOC_MAX + 1))
_SEG_TOKENS = tuple(f"<seg{k:03d}>" for k in range(SEG_MAX + 1))


def loc_token(k: int) -> str:
    """``<locNNNN>`` for ``k`` in 0..1023.

    Args:
        k: the loc index, an int in 0..1023.

    Returns:
        The token, four digits.

    Raises:
        ValueError: ``k`` is not an int in 0..1023.

    Examples:
        >>> loc_token(7)
        '<loc0007>'
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= LOC_MAX:
        raise ValueError(f"loc index must be an int in 0..{LOC_MAX}, got {k!r}")
    return _LOC_TOKENS[k]


def seg_token(k: int) -> str:
    """``<segNNN>`` for ``k`` in 0..127.

    Args:
        k: the codebook index, an int in 0..127.

    Returns:
        The token, three digits.

    Raises:
        ValueError: ``k`` is not an int in 0..127.

    Examples:
        >>> seg_token(57)
        '<seg057>'
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= SEG_MAX:
        raise ValueError(f"seg index must be an int in 0..{SEG_MAX}, got {k!r}")
    return _SEG_TOKENS[k]


def check_label(label: str, what: str = "label") -> str:
    """Returns ``label`` if it can follow the tokens in PaliGemma's text and parse back unchanged.

    A label is non-empty, has no leading or trailing whitespace (the parser strips it) and no
    ``;`` (separates objects), ``<`` or ``>`` (start tokens).

    Args:
        label: the label to check.
        what: how error messages name it (e.g. ``"labels[3]"``).

    Returns:
        ``label`` itself, unchanged.

    Raises:
        TypeError: not a str.
        ValueError: says what is wrong, prefixed with ``what`` (e.g. ``"labels[3]"``).

    Examples:
        >>> check_label("water body")
        'water body'
        >>> check_label("a;b")
        Traceback (most recent call last):
        ...
        ValueError: label may not contain ';', '<' or '>': 'a;b'
    """
    if not isinstance(label, str):
        raise TypeError(f"{what} must be a str, got {type(label).__name__}")
    stripped = label.strip()
    if not stripped:
        raise ValueError(f"{what} is empty: PaliGemma's objects need a label after their tokens")
    if label != stripped:
        raise ValueError(f"{what} has leading or trailing whitespace, which does not survive parsing: {label!r}")
    if any(c in label for c in ";<>"):
        raise ValueError(f"{what} may not contain ';', '<' or '>': {label!r}")
    return label


def format_object(loc: Sequence[int], seg: Sequence[int] | None = None, label: str | None = None) -> str:
    """4 loc indices (+ 16 seg indices) (+ label) → one object's text.

    The label, when given, follows after one space, as in PaliGemma's answers and big_vision's
    training suffixes.

    Args:
        loc: 4 ints in 0..1023, (y1, x1, y2, x2).
        seg: 16 ints in 0..127, or None for a detection-only object.
        label: the object's label (checked by `check_label`), or None for none.

    Returns:
        The object's text, e.g. ``'<loc0000>…<seg012> cat'``.

    Raises:
        ValueError: not 4 loc or 16 seg indices, an index out of range, or a label that would not
            parse back (see `check_label`).
        TypeError: a label that is not a str.

    Examples:
        >>> format_object((0, 1, 2, 3), label="cat")
        '<loc0000><loc0001><loc0002><loc0003> cat'
    """
    if len(loc) != NUM_LOC:
        raise ValueError(f"need {NUM_LOC} loc indices, got {len(loc)}")
    locs = [int(k) for k in loc]
    if not all(0 <= k <= LOC_MAX for k in locs):
        for k in locs:
            loc_token(k)  # raises, naming the bad value
    text = "".join([_LOC_TOKENS[k] for k in locs])
    if seg is not None:
        if len(seg) != NUM_SEG:
            raise ValueError(f"need {NUM_SEG} seg indices, got {len(seg)}")
        segs = [int(k) for k in seg]
        if not all(0 <= k <= SEG_MAX for k in segs):
            for k in segs:
                seg_token(k)
        text += "".join([_SEG_TOKENS[k] for k in segs])
    if label is not None:
        text += " " + check_label(label)
    return text


@dataclass(frozen=True)
class ParsedObject:
    """One well-formed object of an answer.

    Attributes:
        index (int): 0-based position among the answer's objects (skipped ones count too).
        offset (int): character offset of the object's first token in the text.
        loc (tuple[int, int, int, int]): 4 ints in 0..1023 (y1, x1, y2, x2), with y2 > y1 and x2 > x1.
        seg (tuple[int, ...] | None): 16 ints in 0..127, or None for a detection-only object.
        label (str): the label, stripped of surrounding whitespace (may be empty).

    Examples:
        >>> parse_objects("<loc0001><loc0002><loc0003><loc0004> cat").objects[0]
        ParsedObject(index=0, offset=0, loc=(1, 2, 3, 4), seg=None, label='cat')
    """

    index: int
    offset: int
    loc: tuple[int, int, int, int]
    seg: tuple[int, ...] | None
    label: str


@dataclass(frozen=True)
class SkippedObject:
    """One malformed object that lenient parsing skipped: where it was and why.

    Attributes:
        index (int): 0-based position among the answer's objects.
        offset (int): character offset in the text where the problem was found.
        reason (str): what was wrong, in words (quoted tokens and junk are cut to 20 characters).
        text (str): the object's text without surrounding whitespace, cut to its first 60 characters.

    Examples:
        >>> parse_objects("junk").skipped[0]
        SkippedObject(index=0, offset=0, reason='expected 4 loc tokens, got 0', text='junk')
    """

    index: int
    offset: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"object {self.index} at character {self.offset}: {self.reason} ({self.text[:_TEXT_MAX]!r})"


@dataclass(frozen=True)
class ParseResult:
    """What `parse_objects` found: the well-formed objects and the skipped ones, in text order.

    Attributes:
        objects (list[ParsedObject]): the well-formed objects.
        skipped (list[SkippedObject]): the malformed objects that lenient parsing skipped.

    Examples:
        >>> result = parse_objects("<loc0001><loc0002><loc0003><loc0004> cat ; junk")
        >>> [o.label for o in result.objects], [s.text for s in result.skipped]
        (['cat'], ['junk'])
    """

    objects: list[ParsedObject] = field(default_factory=list)
    skipped: list[SkippedObject] = field(default_factory=list)


def _quote(token: str) -> str:
    """``repr`` of a token or junk, cut to `_SHOWN_MAX` characters (a reason never grows with the input)."""
    return repr(token[:_SHOWN_MAX])


def _parse_span(
    text: str, index: int, start: int, end: int, *, diagnose: bool = True
) -> ParsedObject | tuple[int, str] | None:
    """Parses the object ``text[start:end]`` (no surrounding whitespace, no ``;``).

    Returns the object, or ``(offset, reason)`` for its first defect (offset into ``text``), or
    None for a defect when not ``diagnose``. Linear in ``end - start``: every regex runs once over
    the span, and digits are converted to int only when there are 4 (loc) or 3 (seg) of them.
    """
    m = _OBJECT_RE.fullmatch(text, start, end)
    if m is not None:  # the usual case: the shape is right, check the values
        groups = m.groups()
        y1, x1, y2, x2 = (int(g) for g in groups[:NUM_LOC])
        seg = None if groups[NUM_LOC] is None else tuple(int(g) for g in groups[NUM_LOC : NUM_LOC + NUM_SEG])
        if max(y1, x1, y2, x2) <= LOC_MAX and (seg is None or max(seg) <= SEG_MAX) and y2 > y1 and x2 > x1:
            return ParsedObject(index=index, offset=start, loc=(y1, x1, y2, x2), seg=seg, label=groups[-1].strip())
    return _diagnose(text, index, start, end) if diagnose else None


def _diagnose(text: str, index: int, start: int, end: int) -> ParsedObject | tuple[int, str]:
    """Token by token: the first defect of ``text[start:end]`` as ``(offset, reason)`` (or the object)."""
    pos = start
    locs: list[int] = []
    segs: list[int] = []
    while True:
        m = _TOKEN_RE.match(text, pos, end)
        if m is None:
            break
        kind, digits = m.group(1), m.group(2)
        if kind == "loc":
            if len(digits) != 4:
                return pos, f"loc token {_quote(m.group(0))} must have 4 digits"
            if int(digits) > LOC_MAX:
                return pos, f"loc token {_quote(m.group(0))} is out of range 0..{LOC_MAX}"
            if segs:
                return pos, "loc token after seg tokens"
            if len(locs) == NUM_LOC:
                return pos, f"more than {NUM_LOC} loc tokens"
            locs.append(int(digits))
        else:
            if len(digits) != 3:
                return pos, f"seg token {_quote(m.group(0))} must have 3 digits"
            if int(digits) > SEG_MAX:
                return pos, f"seg token {_quote(m.group(0))} is out of range 0..{SEG_MAX}"
            if len(locs) != NUM_LOC:
                return pos, f"seg token after {len(locs)} loc tokens (need {NUM_LOC} first)"
            if len(segs) == NUM_SEG:
                return pos, f"more than {NUM_SEG} seg tokens"
            segs.append(int(digits))
        pos = _SPACES_RE.match(text, m.end(), end).end()  # type: ignore[union-attr]  # matches ""
    tag = _ANY_TAG_RE.search(text, pos, end) or _BRACKET_RE.search(text, pos, end)
    if tag is not None:
        junk = text[pos : tag.start()].strip() or tag.group(0)
        return pos, f"junk {_quote(junk)} inside the token run (before {_quote(tag.group(0))})"
    if len(locs) != NUM_LOC:
        return pos, _NO_LOC if not locs else f"expected {NUM_LOC} loc tokens, got {len(locs)}"
    if segs and len(segs) != NUM_SEG:
        return pos, f"expected {NUM_SEG} seg tokens, got {len(segs)}"
    y1, x1, y2, x2 = locs
    if y2 <= y1 or x2 <= x1:
        return start, f"empty box: need y2 > y1 and x2 > x1, got (y1, x1, y2, x2) = {tuple(locs)}"
    label = text[pos:end].strip()
    return ParsedObject(index=index, offset=start, loc=(y1, x1, y2, x2), seg=tuple(segs) or None, label=label)


def _body(text: str) -> tuple[int, int]:
    """``(start, end)`` of ``text`` without leading whitespace/``<bos>`` and trailing whitespace/``<eos>``/``<pad>``."""
    start = _LEADING_RE.match(text).end()  # type: ignore[union-attr]  # matches the empty string
    end = len(text)
    if end > start and (text[-1] == ">" or text[-1].isspace()):
        end -= _TRAILING_REVERSED_RE.match(text[::-1]).end()  # type: ignore[union-attr]
    return start, max(start, end)


def parse_objects(text: str, *, strict: bool = False) -> ParseResult:
    """Parses a PaliGemma detection/segmentation answer into objects.

    Time and memory are linear in ``len(text)``, whatever the text (runs of ``;`` or ``<``,
    thousands of digits in a token, NULs, lone surrogates): in lenient mode it never raises on a
    ``str``. Token digits are ASCII ``0-9`` only; whitespace is what `str.isspace` accepts.

    Args:
      text: the model's answer, e.g. ``"<loc0174><loc0015><loc0874><loc1008><seg057>… water ; …"``.
      strict: raise on the first malformed object instead of skipping it.

    Returns:
      A `ParseResult`: ``objects`` (well-formed, in order) and ``skipped`` (malformed, with reasons;
      one small entry per skipped object, its ``text`` cut to 60 characters).
      The empty string gives no objects and nothing skipped.

    Raises:
      TypeError: ``text`` is not a str.
      MalformedObjectError: only with ``strict=True``: names the object index and character offset.

    Examples:
        >>> r = parse_objects("<loc0010><loc0020><loc0500><loc0600> cat ; <loc0001> dog")
        >>> [(o.label, o.loc) for o in r.objects]
        [('cat', (10, 20, 500, 600))]
        >>> print(r.skipped[0])
        object 1 at character 53: expected 4 loc tokens, got 1 ('<loc0001> dog')
    """
    objects, skipped, _ = _scan(text, strict=strict, keep=None)
    return ParseResult(objects=objects, skipped=skipped)


def _scan(text: str, *, strict: bool, keep: int | None) -> tuple[list[ParsedObject], list[SkippedObject], int]:
    """`parse_objects`, keeping only the first ``keep`` skipped objects (all when None).

    Returns ``(objects, skipped, number of skipped objects)``. Once ``keep`` are kept, the rest
    are only counted, in bulk: every object up to the next one that starts with 4 loc tokens is
    malformed, and one that does is checked against the object pattern without a diagnosis.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    # Special tokens that HF's decode leaves in with skip_special_tokens=False are dropped.
    start, end = _body(text)
    objects: list[ParsedObject] = []
    skipped: list[SkippedObject] = []
    n_skipped = index = 0
    pos = start
    while True:
        m = _CHUNK_RE.search(text, pos, end)
        if m is None:
            break
        cs, ce = m.span()
        pos = ce
        counting = keep is not None and n_skipped >= keep
        if counting and _FOUR_LOCS_RE.match(text, cs, ce) is None:
            following = _BEFORE_FOUR_LOCS_RE.search(text, ce, end)
            pos = end if following is None else following.start()
            n = len(_CHUNK_COUNT_RE.findall(text, cs, pos))
            index += n
            n_skipped += n
            continue
        if text[cs] != "<" and _BRACKET_RE.search(text, cs, ce) is None:
            parsed: ParsedObject | tuple[int, str] | None = (cs, _NO_LOC)  # prose: no token can start here
        else:
            parsed = _parse_span(text, index, cs, ce, diagnose=not counting)
        if isinstance(parsed, ParsedObject):
            objects.append(parsed)
        elif strict and parsed is not None:
            raise MalformedObjectError(index, *parsed)
        else:
            if parsed is not None and not counting:
                skipped.append(SkippedObject(index, parsed[0], parsed[1], text[cs : min(ce, cs + _TEXT_MAX)]))
            n_skipped += 1
        index += 1
    return objects, skipped, n_skipped
