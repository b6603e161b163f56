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
from collections.abc import Iterable, Sequence
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

_TOKEN_RE = re.compile(r"<(loc|seg)(\d+)>")
_ANY_TAG_RE = re.compile(r"<[^<>]*>")
_TRAILING_SPECIAL = ("<eos>", "<pad>")


_LOC_TOKENS = tuple(f"<loc{k:04d}>" for k in range(LOC_MAX + 1))
_SEG_TOKENS = tuple(f"<seg{k:03d}>" for k in range(SEG_MAX + 1))


def loc_token(k: int) -> str:
    """``<locNNNN>`` for ``k`` in 0..1023.

    Examples:
        >>> loc_token(7)
        '<loc0007>'
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= LOC_MAX:
        raise ValueError(f"loc index must be an int in 0..{LOC_MAX}, got {k!r}")
    return _LOC_TOKENS[k]


def seg_token(k: int) -> str:
    """``<segNNN>`` for ``k`` in 0..127.

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

    Raises:
      TypeError: not a str.
      ValueError: says what is wrong, prefixed with ``what`` (e.g. ``"labels[3]"``).

    Examples:
        >>> check_label("water body")
        'water body'
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
      index: 0-based position among the answer's objects (skipped ones count too).
      offset: character offset of the object's first token in the text.
      loc: 4 ints in 0..1023 (y1, x1, y2, x2), with y2 > y1 and x2 > x1.
      seg: 16 ints in 0..127, or None for a detection-only object.
      label: the label, stripped of surrounding whitespace (may be empty).
    """

    index: int
    offset: int
    loc: tuple[int, int, int, int]
    seg: tuple[int, ...] | None
    label: str


@dataclass(frozen=True)
class SkippedObject:
    """One malformed object that lenient parsing skipped: where it was and why."""

    index: int
    offset: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"object {self.index} at character {self.offset}: {self.reason} ({self.text[:60]!r})"


@dataclass(frozen=True)
class ParseResult:
    """What `parse_objects` found: the well-formed objects and the skipped ones, in text order."""

    objects: list[ParsedObject] = field(default_factory=list)
    skipped: list[SkippedObject] = field(default_factory=list)


def _split_objects(text: str) -> Iterable[tuple[int, str]]:
    """Yields (offset, chunk) for each ``;``-separated chunk that is not only whitespace."""
    start = 0
    for part in text.split(";"):
        stripped = part.strip()
        if stripped:
            yield start + (len(part) - len(part.lstrip())), stripped
        start += len(part) + 1


def _parse_one(index: int, offset: int, chunk: str) -> ParsedObject:
    """Parses one object; raises MalformedObjectError on any defect."""

    def fail(at: int, reason: str) -> MalformedObjectError:
        return MalformedObjectError(index, offset + at, reason)

    pos = 0
    locs: list[int] = []
    segs: list[int] = []
    while True:
        while pos < len(chunk) and chunk[pos].isspace():
            pos += 1
        m = _TOKEN_RE.match(chunk, pos)
        if m is None:
            break
        kind, digits = m.group(1), m.group(2)
        value = int(digits)
        if kind == "loc":
            if len(digits) != 4:
                raise fail(pos, f"loc token {m.group(0)!r} must have 4 digits")
            if value > LOC_MAX:
                raise fail(pos, f"loc token {m.group(0)!r} is out of range 0..{LOC_MAX}")
            if segs:
                raise fail(pos, "loc token after seg tokens")
            if len(locs) == NUM_LOC:
                raise fail(pos, f"more than {NUM_LOC} loc tokens")
            locs.append(value)
        else:
            if len(digits) != 3:
                raise fail(pos, f"seg token {m.group(0)!r} must have 3 digits")
            if value > SEG_MAX:
                raise fail(pos, f"seg token {m.group(0)!r} is out of range 0..{SEG_MAX}")
            if len(locs) != NUM_LOC:
                raise fail(pos, f"seg token after {len(locs)} loc tokens (need {NUM_LOC} first)")
            if len(segs) == NUM_SEG:
                raise fail(pos, f"more than {NUM_SEG} seg tokens")
            segs.append(value)
        pos = m.end()
    label = chunk[pos:]
    tag = _ANY_TAG_RE.search(label) or re.search(r"[<>]", label)
    if tag is not None:
        junk = label[: tag.start()].strip() or tag.group(0)
        raise fail(pos, f"junk {junk[:20]!r} inside the token run (before {tag.group(0)[:20]!r})")
    if len(locs) != NUM_LOC:
        raise fail(pos, f"expected {NUM_LOC} loc tokens, got {len(locs)}")
    if segs and len(segs) != NUM_SEG:
        raise fail(pos, f"expected {NUM_SEG} seg tokens, got {len(segs)}")
    y1, x1, y2, x2 = locs
    if y2 <= y1 or x2 <= x1:
        raise fail(0, f"empty box: need y2 > y1 and x2 > x1, got (y1, x1, y2, x2) = {tuple(locs)}")
    return ParsedObject(
        index=index,
        offset=offset,
        loc=(y1, x1, y2, x2),
        seg=tuple(segs) if segs else None,
        label=label.strip(),
    )


def parse_objects(text: str, *, strict: bool = False) -> ParseResult:
    """Parses a PaliGemma detection/segmentation answer into objects.

    Args:
      text: the model's answer, e.g. ``"<loc0174><loc0015><loc0874><loc1008><seg057>… water ; …"``.
      strict: raise on the first malformed object instead of skipping it.

    Returns:
      A `ParseResult`: ``objects`` (well-formed, in order) and ``skipped`` (malformed, with reasons).
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
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    # Drop special tokens that HF's decode leaves in with skip_special_tokens=False.
    start, end = 0, len(text)
    while start < end:
        if text[start].isspace():
            start += 1
        elif text.startswith("<bos>", start):
            start += len("<bos>")
        else:
            break
    while end > start:
        if text[end - 1].isspace():
            end -= 1
            continue
        tok = next((t for t in _TRAILING_SPECIAL if text.endswith(t, start, end)), None)
        if tok is None:
            break
        end -= len(tok)
    body = text[start:end]
    result = ParseResult()
    for index, (offset, chunk) in enumerate(_split_objects(body)):
        try:
            result.objects.append(_parse_one(index, start + offset, chunk))
        except MalformedObjectError as err:
            if strict:
                raise
            result.skipped.append(SkippedObject(err.index, err.offset, err.reason, chunk))
    return result
