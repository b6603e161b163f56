"""The resize: separable TF weights, and the bit-packed binary fast path equal to it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from paligemma_segcodec import resize as resize_mod
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


def _tf_weights_loop(in_size: int, out_size: int) -> np.ndarray:
    """TensorFlow's ComputeSpans (scale_and_translate_op.cc), one output at a time, float32 throughout:
    the triangle kernel widened by the downscale factor, weights summed in order, then normalized."""
    f32 = np.float32
    scale = f32(out_size) / f32(in_size)
    inv_scale = f32(1.0) / scale
    kernel_scale = max(inv_scale, f32(1.0))
    out = np.zeros((out_size, in_size), f32)
    for j in range(out_size):
        sample = (f32(j) + f32(0.5)) * inv_scale
        start = int(np.clip(np.ceil(sample - kernel_scale - f32(0.5)), 0, in_size - 1))
        stop = int(np.clip(np.floor(sample + kernel_scale - f32(0.5)), 0, in_size - 1)) + 1
        total = f32(0.0)
        ws = []
        for src in range(start, stop):
            w = max(f32(0.0), f32(1.0) - abs((f32(src) + f32(0.5) - sample) * (f32(1.0) / kernel_scale)))
            total = f32(total + w)
            ws.append(w)
        if abs(total) >= 1000.0 * np.finfo(f32).tiny:
            ws = [f32(w * (f32(1.0) / total)) for w in ws]
        out[j, start:stop] = ws
    return out


@settings(max_examples=40)
@given(st.integers(1, 2500), st.integers(1, 100))
def test_weights_equal_tf_loop_bit_for_bit(n: int, out: int) -> None:
    np.testing.assert_array_equal(resize_weights(n, out), _tf_weights_loop(n, out))


@settings(max_examples=60)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 400), st.integers(1, 400))), st.data())
def test_compiled_and_numpy_binary_paths_agree(mask: np.ndarray, data: st.DataObject) -> None:
    """The numba row loop (``fast`` extra) and the NumPy one give the same resize, also on crop views."""
    compiled = pytest.importorskip("paligemma_segcodec._resize_numba")  # also under PALIGEMMA_SEGCODEC_NUMBA=0
    top = data.draw(st.integers(0, mask.shape[0] - 1))
    left = data.draw(st.integers(0, mask.shape[1] - 1))
    crop = mask[top:, left:]  # a non-contiguous view, as encode_mask passes
    oh, ow = data.draw(st.integers(1, 80)), data.draw(st.integers(1, 80))
    with _path(compiled):
        assert resize_mod._numba_kernel() is compiled.resize_packed
        fast = resize_binary(crop, oh, ow)
    with _numpy_path():
        slow = resize_binary(crop, oh, ow)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast, resize(crop, oh, ow), atol=2e-6)


def test_numba_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALIGEMMA_SEGCODEC_NUMBA", "0")
    monkeypatch.setattr(resize_mod, "_NUMBA", [])
    assert resize_mod._numba_kernel() is None
    assert resize_binary(np.ones((9, 9), bool), 4, 4).min() > 0.999999


@contextlib.contextmanager
def _path(module: ModuleType | None) -> Iterator[None]:
    """Runs the resize with the compiled loops of ``module`` (None: the NumPy path)."""
    saved = list(resize_mod._NUMBA)
    resize_mod._NUMBA[:] = [module]
    try:
        yield
    finally:
        resize_mod._NUMBA[:] = saved


def _numpy_path() -> contextlib.AbstractContextManager[None]:
    return _path(None)
