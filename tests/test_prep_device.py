"""The device prep path (`paligemma_segcodec.prep_device`) against the host path, on the CPU backend.

Parity: the device weights equal `resize_weights` bit for bit; the device 64×64 inputs are within float32
rounding of the host's `prepare_crop`; the tokens equal ``codec.encode_indices`` of the host inputs on the
golden crops, the water masks and random shapes (1×N, N×1, bucket edges, odd sizes, strided and flipped
views, giant crops left to the host). The 65k-crop sweep is ``benchmarks/device_parity.py`` (and the
slow test here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paligemma_segcodec.bench import load_masks
from paligemma_segcodec.boxes import crop_pixels, tight_box
from paligemma_segcodec.prep import _as_mask, prepare_crop
from paligemma_segcodec.prep_device import (
    SIDES,
    compile_count,
    device_weights,
    encode_crops,
    encode_crops_async,
    host_prep_us,
    pack_crops,
    resize_crops,
    warm_up,
)
from paligemma_segcodec.resize import resize_weights

CHUNK = 16  # small pipeline steps: several chunks in flight even for a few dozen crops
WATER = Path(__file__).resolve().parent / "data" / "water" / "masks"
EDGES = sorted({1, 2, 7, 8, 9, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513})


def _host_tokens(codec: Any, crops: list[npt.NDArray[np.bool_]]) -> npt.NDArray[np.int32]:
    box = (0.0, 0.0, 1.0, 1.0)  # only the loc tokens depend on it
    out: npt.NDArray[np.int32] = codec.encode_indices(np.stack([prepare_crop(c, box).mask64 for c in crops]))
    return out


def _golden_crops(golden: Any) -> list[npt.NDArray[np.bool_]]:
    crops = []
    for case in golden.meta["encode"]:
        m = _as_mask(golden.inputs[case["key"]], "mask")
        t, left, b, r = crop_pixels(case["bbox_yxyx"], *m.shape)
        if b > t and r > left:
            crops.append(np.asarray(m[t:b, left:r], dtype=bool))
    return crops


def _water_crops(folder: Path) -> list[npt.NDArray[np.bool_]]:
    out = []
    for m in load_masks(folder):
        t, left, b, r = crop_pixels(tight_box(m), *m.shape)
        out.append(m[t:b, left:r])
    return out


def _random_crops(rng: np.random.Generator, n: int, max_side: int = 520) -> list[npt.NDArray[np.bool_]]:
    crops = []
    for _ in range(n):
        h, w = (int(v) for v in np.exp(rng.uniform(0, np.log(max_side), 2)))
        base = rng.random((h + 3, w + 5)) < rng.uniform(0.05, 0.95)
        crops.append(base[1 : 1 + h, 2 : 2 + w])
    return crops


def test_weights_bit_exact() -> None:
    for i, side in enumerate(SIDES[:4]):
        lo = 1 if i == 0 else SIDES[i - 1] + 1
        sizes = list(range(lo, side + 1))
        got = device_weights(sizes, side)
        for n, w in zip(sizes, got, strict=True):
            want = resize_weights(n, 64)
            assert np.array_equal(w[:, :n], want), n
            assert not w[:, n:].any()


def test_weights_large_sides_bit_exact() -> None:
    for side in SIDES[4:]:
        sizes = [side // 2 + 1, side // 2 + 2, side - 1, side, 3 * side // 4 + 1]
        for n, w in zip(sizes, device_weights(sizes, side), strict=True):
            assert np.array_equal(w[:, :n], resize_weights(n, 64)), n


def test_masks64_match_host() -> None:
    rng = np.random.default_rng(1)
    crops = [*_random_crops(rng, 40), np.ones((1, 1), bool), np.zeros((3, 600), bool), np.eye(700, dtype=bool)]
    host = np.stack([prepare_crop(c, (0.0, 0.0, 1.0, 1.0)).mask64 for c in crops])
    dev = resize_crops(crops, chunk=CHUNK)
    assert dev.shape == host.shape and dev.dtype == np.float32
    diff = float(np.abs(dev - host).max())
    assert diff < 2e-6, diff  # measured 2.4e-7: float32 matmul sums vs the host's float64 prefix sums


def test_golden_tokens(golden: Any, golden_codec: Any) -> None:
    crops = _golden_crops(golden)
    assert len(crops) >= 20
    got = encode_crops(golden_codec, crops, chunk=CHUNK)
    np.testing.assert_array_equal(got, _host_tokens(golden_codec, crops))


def test_water_tokens(codec: Any) -> None:
    crops = _water_crops(WATER)
    shared = WATER.parents[3].parent / "shared" / "water" / "masks"
    if shared.is_dir():
        crops += _water_crops(shared)[:30]
    got = encode_crops(codec, crops, chunk=CHUNK)
    np.testing.assert_array_equal(got, _host_tokens(codec, crops))


@st.composite
def _crop(draw: st.DrawFn) -> npt.NDArray[np.bool_]:
    side = st.one_of(st.sampled_from(EDGES), st.integers(1, 300))
    h, w = draw(side), draw(side)
    kind = draw(st.sampled_from(["plain", "strided", "flipped", "transposed", "fortran"]))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.02, 0.5, 0.98, 1.0]))
    rng = np.random.default_rng(seed)
    if kind == "strided":
        return (rng.random((2 * h, 3 * w)) < density)[::2, ::3]
    if kind == "flipped":
        return (rng.random((h, w)) < density)[::-1, ::-1]
    if kind == "transposed":
        return (rng.random((w, h)) < density).T
    if kind == "fortran":
        return np.asfortranarray(rng.random((h, w)) < density)
    return (rng.random((h + 2, w + 2)) < density)[1:-1, 1:-1]


@given(st.lists(_crop(), min_size=1, max_size=40))
def test_random_shapes_tokens(codec: Any, crops: list[npt.NDArray[np.bool_]]) -> None:
    got = encode_crops(codec, crops, chunk=CHUNK)
    assert got.shape == (len(crops), 16) and got.dtype == np.int32
    np.testing.assert_array_equal(got, _host_tokens(codec, crops))


def test_giant_and_thin_crops(codec: Any) -> None:
    rng = np.random.default_rng(3)
    crops = [
        rng.random((2100, 5)) < 0.5,  # taller than the largest bucket: resized on the host
        rng.random((3, 2500)) < 0.5,
        rng.random((1025, 1)) < 0.5,
        rng.random((1, 1024)) < 0.5,
        np.ones((1, 1), bool),
    ]
    np.testing.assert_array_equal(encode_crops(codec, crops, chunk=CHUNK), _host_tokens(codec, crops))


def test_pack_crops_layout() -> None:
    rng = np.random.default_rng(4)
    crops = [rng.random((h, w)) < 0.5 for h, w in [(5, 9), (64, 65), (130, 3), (7, 7), (3000, 2)]]
    packed = pack_crops(crops, threads=2)
    assert packed.count == 5 and packed.host.tolist() == [4]
    seen = []
    for b in packed.buckets:
        assert b.bits.dtype == np.uint8 and b.bits.shape[1:] == (b.height, b.width // 8)
        assert b.bits.shape[0] % 8 == 0 and b.sizes.shape == (b.bits.shape[0], 2)
        for row, i in enumerate(b.index.tolist()):
            if i < 0:
                continue
            seen.append(i)
            h, w = crops[i].shape
            assert b.sizes[row].tolist() == [h, w] and h <= b.height and w <= b.width
            bits = np.unpackbits(b.bits[row, :h], axis=1)[:, :w].astype(bool)
            np.testing.assert_array_equal(bits, crops[i])
    assert sorted(seen) == [0, 1, 2, 3]


def test_rejects_non_bool_and_empty(codec: Any) -> None:
    with pytest.raises(TypeError, match="bool"):
        encode_crops_async(codec, [np.ones((4, 4), np.float32)])
    with pytest.raises(TypeError, match="bool"):
        pack_crops([np.ones((4, 4), np.uint8)])
    with pytest.raises(TypeError):
        pack_crops([[[True]]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="non-empty 2-D"):
        pack_crops([np.ones((0, 4), bool)])
    with pytest.raises(ValueError, match="non-empty 2-D"):
        pack_crops([np.ones(4, bool)])
    assert encode_crops(codec, []).shape == (0, 16)


def test_no_recompiles_after_warm_up(codec: Any) -> None:
    warm_up(codec, chunk=CHUNK, max_side=128)
    before = compile_count(codec)
    rng = np.random.default_rng(5)
    for n in (1, 7, 8, 9, 16, 17, 40, 3):
        crops = [rng.random((int(h), int(w))) < 0.5 for h, w in rng.integers(1, 129, (n, 2))]
        wait = encode_crops_async(codec, crops, chunk=CHUNK)
        assert wait().shape == (n, 16)
    assert compile_count(codec) == before


def test_many_calls_before_waiting(codec: Any) -> None:
    """More chunks than `MAX_QUEUED` dispatched by several calls before any result is read."""
    rng = np.random.default_rng(7)
    batches = [_random_crops(rng, 3 * CHUNK + 5, max_side=100) for _ in range(4)]
    waits = [encode_crops_async(codec, crops, chunk=CHUNK) for crops in batches]
    for crops, wait in zip(batches[::-1], waits[::-1], strict=True):
        np.testing.assert_array_equal(wait(), _host_tokens(codec, crops))
        np.testing.assert_array_equal(wait(), _host_tokens(codec, crops))  # a second call returns the same


def test_host_prep_us_runs() -> None:
    crops = _water_crops(WATER)
    assert host_prep_us(crops, threads=1, repeat=1) > 0
    assert host_prep_us(crops, threads=2, repeat=1) > 0


@pytest.mark.slow
def test_many_random_crops(codec: Any) -> None:
    rng = np.random.default_rng(6)
    crops = _random_crops(rng, 4096, max_side=1100)
    got = encode_crops(codec, crops, chunk=256)
    np.testing.assert_array_equal(got, _host_tokens(codec, crops))
