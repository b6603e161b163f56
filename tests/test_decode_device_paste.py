"""`decode_tokens(device_paste=True)` / `iter_decode_tokens(device_paste=True)`: masks pasted on the
device (`paste_device`) give the host path's segments, up to the documented near-zero pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec.api import decode_tokens, iter_decode_tokens
from paligemma_segcodec.boxes import loc_to_pixels
from paligemma_segcodec.paste_device import PARITY_EPSILON
from paligemma_segcodec.resize import resize
from paligemma_segcodec.segment import paste_mask
from paligemma_segcodec.tokens import format_object


def _answer(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        y1, x1 = (int(v) for v in rng.integers(0, 1000, 2))
        y2, x2 = min(1023, y1 + int(rng.integers(1, 400))), min(1023, x1 + int(rng.integers(1, 400)))
        seg = None if i % 5 == 4 else [int(v) for v in rng.integers(0, 128, 16)]  # some detection-only
        parts.append(format_object((y1, x1, y2, x2), seg, f"obj{i}"))
    return " ; ".join(parts)


def _same(host: list, dev: list) -> None:  # type: ignore[type-arg]
    assert len(host) == len(dev)
    for a, b in zip(host, dev, strict=True):
        assert (a.label, a.loc, a.seg) == (b.label, b.loc, b.seg)
        assert (a.mask is None) == (b.mask is None) and (a.mask64 is None) == (b.mask64 is None)
        if b.mask is not None:
            assert b.mask64 is not None and a.mask64 is not None
            # the device's masks64 row may differ from the host's by the decoder's float32 rounding
            # across batch shapes (documented <= 3e-7 of max|row|)
            np.testing.assert_allclose(a.mask64, b.mask64, rtol=0, atol=1e-5 * float(np.abs(a.mask64).max()))
            ref = paste_mask(b.mask64, b.loc, *b.mask.shape)
            diff = ref != b.mask
            if diff.any():  # only pixels whose value is within PARITY_EPSILON * max|row| of 0
                y1, x1, y2, x2 = loc_to_pixels(b.loc, *b.mask.shape)
                values = np.zeros(b.mask.shape, np.float32)
                values[y1:y2, x1:x2] = resize(b.mask64, y2 - y1, x2 - x1)
                bound = PARITY_EPSILON * float(np.abs(b.mask64).max())
                assert np.abs(values[diff]).max() <= bound


@settings(max_examples=3, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**16), st.sampled_from([(512, 512), (97, 300), (1200, 800)]))
def test_device_paste_equals_host(codec, n: int, seed: int, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    text = _answer(n, seed)
    h, w = size
    host = decode_tokens(text, height=h, width=w, codec=codec, device_paste=False)
    dev = decode_tokens(text, height=h, width=w, codec=codec, device_paste=True)
    _same(host, dev)
    streamed = list(iter_decode_tokens(text, height=h, width=w, codec=codec, chunk=4, device_paste=True))
    _same(host, streamed)


def test_device_paste_without_size_is_plain_decode(codec) -> None:  # type: ignore[no-untyped-def]
    text = _answer(7, 3)
    host = decode_tokens(text, codec=codec, device_paste=False)
    dev = decode_tokens(text, codec=codec, device_paste=True)
    _same(host, dev)
    assert all(s.mask is None for s in dev)


def test_bad_flag(codec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="device_paste must be True, False or None"):
        decode_tokens("", codec=codec, device_paste=1)  # type: ignore[arg-type]
