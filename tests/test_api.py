"""High-level API: encode_mask(s), decode_tokens, Codec: invariances and bad input."""

from __future__ import annotations

import re
import warnings

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from paligemma_segcodec import Segment, decode_tokens, encode_mask, encode_masks
from paligemma_segcodec.errors import MalformedObjectError, SkippedObjectWarning
from paligemma_segcodec.segment import paste_mask

masks = hnp.arrays(bool, st.tuples(st.integers(1, 120), st.integers(1, 120)), elements=st.booleans()).filter(
    lambda m: m.any()
)


@settings(max_examples=25, deadline=None)
@given(st.lists(masks, min_size=1, max_size=5))
def test_encode_masks_equals_encode_mask(codec, ms: list[np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    batch = encode_masks(ms, labels=[f"l{i}" for i in range(len(ms))], codec=codec)
    single = [encode_mask(m, label=f"l{i}", codec=codec) for i, m in enumerate(ms)]
    assert batch == single


def test_encode_masks_across_pipeline_chunks(codec) -> None:  # type: ignore[no-untyped-def]
    """More masks than one host chunk: several overlapped device calls, same strings, same order."""
    rng = np.random.default_rng(7)
    ms = [rng.random((int(rng.integers(5, 90)), int(rng.integers(5, 90)))) > 0.5 for _ in range(codec.host_chunk + 9)]
    ms = [m if m.any() else np.ones_like(m) for m in ms]
    batch = encode_masks(ms, codec=codec)
    assert len(batch) == len(ms)
    for i in (0, codec.host_chunk - 1, codec.host_chunk, len(ms) - 1):
        assert batch[i] == encode_mask(ms[i], codec=codec)


def test_mask_dtypes_agree(codec) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    m = rng.random((50, 70)) > 0.6
    as_bool = encode_mask(m, codec=codec)
    assert encode_mask(m.astype(np.uint8), codec=codec) == as_bool
    assert encode_mask(m.astype(np.uint8) * 255, codec=codec) == as_bool
    assert encode_mask(m.astype(np.float64), codec=codec) == as_bool
    assert encode_mask(m[..., None], codec=codec) == as_bool
    assert re.fullmatch(r"(<loc\d{4}>){4}(<seg\d{3}>){16} water", encode_mask(m, label="water", codec=codec))


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_bucketed_batch_equals_single(codec, n: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(seed).random((n, 64, 64)).astype(np.float32)
    batched = codec.encode_indices(x)
    assert batched.shape == (n, 16)
    np.testing.assert_array_equal(batched[n // 2], codec.encode_indices(x[n // 2 : n // 2 + 1])[0])
    dec = codec.decode_indices(batched)
    np.testing.assert_allclose(dec[-1], codec.decode_indices(batched[-1:])[0], atol=1e-5)


def test_jit_equals_eager(codec) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(1).random((3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(codec.encode_indices(x), codec.encode_indices(x, jit=False))
    with jax.disable_jit():
        np.testing.assert_array_equal(codec.encode_indices(x), codec.encode_indices(x, jit=True))
    idx = codec.encode_indices(x)
    np.testing.assert_allclose(codec.decode_indices(idx), codec.decode_indices(idx, jit=False), atol=1e-5)


def test_no_recompile_after_warmup(codec) -> None:  # type: ignore[no-untyped-def]
    for n in (1, 2, 4, 8):  # one call per bucket up to 8
        codec.encode_indices(np.zeros((n, 64, 64)))
    before = codec.compile_count
    for n in (1, 3, 7, 8, 2, 5, 6):  # each lands in a compiled bucket
        codec.encode_indices(np.zeros((n, 64, 64)))
    assert codec.compile_count == before


def test_empty_inputs(codec) -> None:  # type: ignore[no-untyped-def]
    assert encode_masks([], codec=codec) == []
    assert codec.encode_indices(np.zeros((0, 64, 64))).shape == (0, 16)
    assert codec.decode_indices(np.zeros((0, 16), np.int32)).shape == (0, 64, 64)
    assert decode_tokens("", codec=codec) == []


def test_decode_tokens_round_trip_and_paste(codec) -> None:  # type: ignore[no-untyped-def]
    m = np.zeros((120, 200), bool)
    m[30:90, 50:150] = True
    texts = encode_masks([m, m[::-1]], labels=["a", "b"], codec=codec)
    answer = " ; ".join([*texts, "<loc0100><loc0100><loc0500><loc0600> det"])
    segs = decode_tokens(answer, height=120, width=200, codec=codec)
    assert [s.label for s in segs] == ["a", "b", "det"]
    assert " ; ".join(s.to_text() for s in segs) == answer
    a = segs[0]
    assert a.mask64 is not None and a.mask64.shape == (64, 64) and a.mask64.dtype == np.float32
    np.testing.assert_allclose(a.mask64, codec.decode_indices(np.array([a.seg]))[0], atol=1e-6)
    assert a.mask is not None and a.mask.shape == (120, 200) and a.mask.dtype == bool
    np.testing.assert_array_equal(a.mask, paste_mask(a.mask64, a.loc, 120, 200))
    y1, x1, y2, x2 = (int(v / 1023 * s) for v, s in zip(a.loc, (120, 200, 120, 200), strict=True))
    assert not a.mask[:y1].any() and not a.mask[y2:].any() and not a.mask[:, :x1].any() and not a.mask[:, x2:].any()
    assert segs[2].seg is None and segs[2].mask is None and segs[2].mask64 is None
    assert a.xyxy(height=120, width=200) == (x1, y1, x2, y2)


def test_detection_only_needs_no_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    import paligemma_segcodec.api as api

    def boom() -> None:
        raise AssertionError("codec loaded for a detection-only answer")

    monkeypatch.setattr(api, "default_codec", boom)
    segs = decode_tokens("<loc0000><loc0000><loc1023><loc1023> cat ; <loc0001><loc0001><loc0002><loc0002> dog")
    assert [s.label for s in segs] == ["cat", "dog"]


def test_lenient_decode_warns_and_keeps_the_rest(codec) -> None:  # type: ignore[no-untyped-def]
    good = encode_mask(np.ones((10, 10), bool), label="ok", codec=codec)
    bad = "<loc0001><loc0002><loc0003><loc0004>" + "<seg001>" * 15 + " broken"
    with pytest.warns(SkippedObjectWarning, match=r"object 1 at character \d+: expected 16 seg tokens, got 15"):
        segs = decode_tokens(f"{good} ; {bad} ; {good}", codec=codec)
    assert [s.label for s in segs] == ["ok", "ok"]
    with pytest.raises(MalformedObjectError, match="object 1 at character"):
        decode_tokens(f"{good} ; {bad}", strict=True, codec=codec)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_decode_tokens_total_in_lenient_mode(codec, text: str) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedObjectWarning)
        segs = decode_tokens(text, height=32, width=48, codec=codec)
    assert all(isinstance(s, Segment) for s in segs)


@pytest.mark.parametrize(
    ("mask", "box", "error", "match"),
    [
        (np.zeros((3, 64, 64), bool), None, ValueError, r"2-D \(H, W\), got shape \(3, 64, 64\)"),  # 3-D
        (np.zeros((10, 10), bool), None, ValueError, "empty"),  # empty without box
        (np.full((4, 4), np.nan), (0, 0, 1, 1), ValueError, "NaN"),  # NaN
        (np.full((4, 4), 2.0), (0, 0, 1, 1), ValueError, r"outside \[0, 1\]"),  # float > 1
        (np.full((4, 4), 128, np.uint8), (0, 0, 1, 1), ValueError, "threshold it first"),  # grey uint8
        (np.array([["a"]]), None, TypeError, "dtype"),  # strings
        (np.ones((4, 4), bool), (0, 0, 1.5, 1), ValueError, r"\[0, 1\]"),  # box outside
        (np.ones((4, 4), bool), (0.5, 0, 0.5, 1), ValueError, "zero or negative area"),  # zero-area box
        (np.ones((4, 4), bool), (0.1, 0.1, 0.12, 0.9), ValueError, "rounds to an empty crop"),  # < 1 px
        (np.ones((0, 4), bool), (0, 0, 1, 1), ValueError, "no pixels"),  # no pixels
    ],
)
def test_encode_mask_bad_input(codec, mask, box, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        encode_mask(mask, box, codec=codec)


def test_encode_masks_names_the_bad_mask_and_lengths(codec) -> None:  # type: ignore[no-untyped-def]
    good = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="mask 1 is empty"):
        encode_masks([good, np.zeros((4, 4), bool)], codec=codec)
    with pytest.raises(ValueError, match="2 masks but 1 boxes"):
        encode_masks([good, good], [None], codec=codec)
    with pytest.raises(ValueError, match="2 masks but 3 labels"):
        encode_masks([good, good], labels=["a", "b", "c"], codec=codec)
    with pytest.raises(ValueError, match=r"labels\[1\] is empty"):
        encode_masks([good, good], labels=["a", ""], codec=codec)
    with pytest.raises(ValueError, match=r"labels\[0\] has leading or trailing whitespace"):
        encode_mask(good, label="water ", codec=codec)


@pytest.mark.parametrize(
    ("indices", "error", "match"),
    [
        (np.full((2, 16), 128), ValueError, r"0\.\.127; got 128 at \(0, 0\)"),  # index too large
        (np.full((2, 16), -1), ValueError, "got -1"),  # negative
        (np.zeros((2, 15), int), ValueError, r"\[N, 16\]"),  # wrong length
        (np.zeros((2, 16), float), TypeError, "integers"),  # floats
    ],
)
def test_decode_indices_bad_input(codec, indices, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        codec.decode_indices(indices)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((2, 32, 32)), r"\[N, 64, 64\]"),  # wrong size
        (np.full((1, 64, 64), np.nan), "NaN"),  # NaN
        (np.full((1, 64, 64), 255.0), r"\[0, 1\]"),  # 0..255 scale
    ],
)
def test_encode_indices_bad_input(codec, x, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        codec.encode_indices(x)


def test_decode_tokens_size_arguments(codec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="both height and width"):
        decode_tokens("", height=10, codec=codec)
    with pytest.raises(ValueError, match="positive"):
        decode_tokens("", height=0, width=5, codec=codec)


def test_segment_validates_itself() -> None:
    with pytest.raises(ValueError, match="y2 > y1"):
        Segment(label="x", loc=(5, 0, 5, 10))
    with pytest.raises(ValueError, match="16 ints"):
        Segment(label="x", loc=(0, 0, 5, 10), seg=(1, 2))
    with pytest.raises(ValueError, match=r"0\.\.1023"):
        Segment(label="x", loc=(0, 0, 5, 1024))
    assert Segment(label="x", loc=(0, 0, 5, 10)) == Segment(label="x", loc=(0, 0, 5, 10), mask=np.zeros((2, 2), bool))


def test_paste_conventions_and_tiny_boxes() -> None:
    m64 = np.ones((64, 64), np.float32)
    full = paste_mask(m64, (0, 0, 1023, 1023), 10, 2000)
    assert full.all()
    colab = paste_mask(m64, (0, 0, 1023, 1023), 10, 2000, convention="colab")
    assert colab[:, :1998].all() and not colab[:, 1998:].any()  # round(1023 / 1024 * 2000) = 1998
    assert not paste_mask(m64, (0, 0, 1, 1), 10, 20).any()  # rounds to no pixel


def test_xyxy_is_keyword_only_with_a_deprecated_positional_form() -> None:
    s = Segment(label="", loc=(0, 0, 1023, 1023))
    assert s.xyxy(height=480, width=640) == (0, 0, 640, 480)
    with pytest.warns(DeprecationWarning, match=r"xyxy\(height=..., width=...\)"):
        assert s.xyxy(640, 480) == (0, 0, 640, 480)  # the old (width, height) order
    with pytest.raises(TypeError, match="height= and width="):
        s.xyxy(height=480)
    with pytest.raises(TypeError):
        s.xyxy(640, 480, height=480)
