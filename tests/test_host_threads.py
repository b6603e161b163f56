"""`encode_masks` preparing chunks on a thread pool (``PALIGEMMA_SEGCODEC_HOST_THREADS``, the default
on an accelerator) gives the strings of the one-thread pipeline, in order, and errors at the same mask."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec import api
from paligemma_segcodec.api import encode_masks
from paligemma_segcodec.codec import Codec, load_codec

FIXTURE = Path(__file__).parent / "data" / "fixture-vae.npz"


@pytest.fixture(scope="module")
def small_chunks() -> Codec:
    codec = load_codec(FIXTURE, max_batch=8)  # host_chunk 8: many chunks from few masks
    assert codec.host_chunk == 8
    return codec


def _masks(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = rng.random((int(rng.integers(3, 80)), int(rng.integers(3, 80)))) < rng.uniform(0.05, 0.7)
        out.append(m if m.any() else np.ones_like(m))
    return out


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 60), st.integers(2, 4), st.integers(0, 2**16))
def test_threads_give_the_same_strings(small_chunks: Codec, n: int, threads: int, seed: int) -> None:
    ms = _masks(n, seed)
    labels = [f"o{i}" for i in range(n)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PALIGEMMA_SEGCODEC_HOST_THREADS", "1")
        one = encode_masks(ms, labels=labels, codec=small_chunks)
        mp.setenv("PALIGEMMA_SEGCODEC_HOST_THREADS", str(threads))
        many = encode_masks(ms, labels=labels, codec=small_chunks)
    assert many == one


def test_prep_runs_on_the_pool_and_the_pool_is_gone(small_chunks: Codec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALIGEMMA_SEGCODEC_HOST_THREADS", "3")
    seen: set[str] = set()
    real = api._prepare

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "_prepare", spy)
    encode_masks(_masks(40, 1), codec=small_chunks)
    assert any(name.startswith("segcodec-prep") for name in seen)
    assert not any(t.name.startswith("segcodec-prep") for t in threading.enumerate())


def test_error_names_the_same_mask(small_chunks: Codec, monkeypatch: pytest.MonkeyPatch) -> None:
    ms = _masks(50, 2)
    ms[37] = np.zeros((10, 10), bool)  # empty: no tight box
    for threads in ("1", "4"):
        monkeypatch.setenv("PALIGEMMA_SEGCODEC_HOST_THREADS", threads)
        with pytest.raises(ValueError, match=r"^mask 37 is empty"):
            encode_masks(ms, codec=small_chunks)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_thread_count_is_refused(small_chunks: Codec, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PALIGEMMA_SEGCODEC_HOST_THREADS", value)
    with pytest.raises(ValueError, match="PALIGEMMA_SEGCODEC_HOST_THREADS must be an integer >= 1"):
        encode_masks(_masks(20, 3), codec=small_chunks)


def test_default_is_one_thread_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PALIGEMMA_SEGCODEC_HOST_THREADS", raising=False)
    import jax

    expected = 1 if jax.default_backend() == "cpu" else None
    if expected is not None:
        assert api._host_threads() == 1
    else:
        assert 1 <= api._host_threads() <= 8
