"""Hugging Face rows (`hf.examples_from_dataset`) follow convert's per-mask rule and warnings
(`convert.mask_objects`), like a folder conversion. A stand-in dataset: the function only needs
``column_names`` and iteration, so this runs without the ``[hf]`` extra."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from paligemma_segcodec.datasets.convert import Example
from paligemma_segcodec.hf import examples_from_dataset


class _Rows:
    column_names = ("image", "mask")

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.rows = [{"image": Image.new("RGB", m.shape[::-1]), "mask": Image.fromarray(m)} for m in masks]

    def __iter__(self) -> Any:
        return iter(self.rows)


def test_rows_warn_like_a_folder() -> None:
    noisy = np.full((40, 50), 90, np.uint8)  # values, none above the threshold
    thin = np.zeros((2000, 60), np.uint8)
    thin[1000, 10:40] = 255  # one row of 2000: thinner than one <loc> step
    both = [examples_from_dataset(_Rows([noisy, thin]), label="water", min_area=1, widen_thin_boxes=w) for w in (0, 1)]
    dropped, widened = (list(items) for items in both)
    assert all(isinstance(x, Example) for x in dropped + widened)
    assert "no pixel above --threshold 127" in dropped[0].warnings[0].reason
    assert dropped[0].warnings[0].file == "row 0" and not dropped[0].objects
    assert "thinner than one <loc> step" in dropped[1].warnings[0].reason and not dropped[1].objects
    assert len(widened[1].objects) == 1 and not widened[1].warnings
