"""The resize: separable TF weights, and the bit-packed binary fast path equal to it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from paligemma_segcodec.resize import resize, resize_binary, resize_weights

shapes = st.tuples(st.integers(1, 300), st.integers(1, 300))


@settings(max_examples=60)
@given(hnp.arrays(bool, shapes), st.integers(1, 80), st.integers(1, 80))
def test_binary_fast_path_equals_separable_resize(mask: np.ndarray, oh: int, ow: int) -> None:
    np.testing.assert_allclose(resize_binary(mask, oh, ow), resize(mask, oh, ow), atol=2e-6)


@given(st.integers(1, 3000), st.integers(1, 100))
def test_weights_are_normalized_and_banded(n: int, out: int) -> None:
    w = resize_weights(n, out)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    nz = (w != 0).sum(1)
    assert nz.max() <= 2 * int(np.ceil(max(n / out, 1))) + 1


def test_resize_constant_and_soft_values() -> None:
    np.testing.assert_allclose(resize(np.full((37, 91), 0.25), 64, 64), 0.25, atol=1e-6)
    assert resize_binary(np.ones((1000, 17), bool), 64, 64).min() > 0.999999
    assert resize_binary(np.zeros((5, 5), bool), 64, 64).max() == 0
