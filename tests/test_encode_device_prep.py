"""`encode_masks(device_prep=True)`: the public API's device path (bit-packed crops resized on the
device, `prep_device`) gives the host path's strings, also for mixed float/binary lists and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paligemma_segcodec.api import encode_masks
from paligemma_segcodec.maskio import binarize, read_mask_values

WATER = Path(__file__).parent / "data" / "water" / "masks"


def _masks(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, 140, 2))
        m = rng.random((h, w)) < rng.uniform(0.02, 0.8)
        out.append(m if m.any() else np.ones_like(m))
    return out


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**16))
def test_device_prep_equals_host_path(codec, n: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    ms = _masks(n, seed)
    labels = [f"o{i}" for i in range(n)]
    assert encode_masks(ms, labels=labels, codec=codec, device_prep=True) == encode_masks(
        ms, labels=labels, codec=codec, device_prep=False
    )


def test_device_prep_on_water_masks_with_boxes_and_floats(codec) -> None:  # type: ignore[no-untyped-def]
    ms: list[np.ndarray] = [binarize(read_mask_values(p), 127) for p in sorted(WATER.iterdir())]
    ms += [ms[0].astype(np.float32) * 0.7, ms[1].astype(np.uint8) * 255]  # a soft mask goes to the host
    boxes = [None] * len(ms)
    boxes[1] = (0.1, 0.2, 0.8, 0.9)
    host = encode_masks(ms, boxes, codec=codec, device_prep=False)
    assert encode_masks(ms, boxes, codec=codec, device_prep=True) == host
    assert encode_masks([], codec=codec, device_prep=True) == []


def test_device_prep_errors_name_the_mask(codec) -> None:  # type: ignore[no-untyped-def]
    ms = _masks(5, 1)
    ms[3] = np.zeros((7, 7), bool)
    with pytest.raises(ValueError, match=r"^mask 3 is empty"):
        encode_masks(ms, codec=codec, device_prep=True)
    with pytest.raises(TypeError, match="device_prep must be True, False or None"):
        encode_masks(ms, codec=codec, device_prep="yes")  # type: ignore[arg-type]
