"""Pictures: decoded segments drawn over an image (Pillow, no JAX)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from paligemma_segcodec.boxes import Convention
from paligemma_segcodec.segment import Segment

__all__ = ["PALETTE", "draw_segments"]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)
"""Colours used per object, in order (cycled)."""


def draw_segments(
    image: Image.Image | npt.ArrayLike,
    segments: Sequence[Segment],
    *,
    alpha: float = 0.5,
    convention: Convention = "big_vision",
    backend: Literal["auto", "pillow", "supervision"] = "auto",
) -> Image.Image:
    """Draws each segment's filled mask (when it has one), box and label over ``image``.

    Args:
      image: a PIL image or an ``(H, W)`` / ``(H, W, 3)`` uint8 array.
      segments: decoded with ``height``/``width`` equal to the image's (masks must match its size).
      alpha: opacity of the mask fill (Pillow backend).
      backend: ``"supervision"`` uses supervision's annotators (extra ``[supervision]``),
        ``"pillow"`` this module's drawing, ``"auto"`` supervision when it is installed.

    Returns:
      A new RGB image of the same size.
    """
    base = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if backend == "supervision" or (backend == "auto" and importlib.util.find_spec("supervision") is not None):
        from paligemma_segcodec.sv import annotate

        return annotate(base, segments, convention=convention)
    rgb = np.asarray(base.convert("RGB"), dtype=np.float32).copy()
    h, w = rgb.shape[:2]
    for i, seg in enumerate(segments):
        if seg.mask is None:
            continue
        if seg.mask.shape != (h, w):
            raise ValueError(f"segment {i} has a {seg.mask.shape} mask but the image is {(h, w)}")
        fill = np.array(PALETTE[i % len(PALETTE)], np.float32)
        rgb[seg.mask] = (1 - alpha) * rgb[seg.mask] + alpha * fill
    out = Image.fromarray(rgb.round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for i, seg in enumerate(segments):
        color = PALETTE[i % len(PALETTE)]
        x1, y1, x2, y2 = seg.xyxy(w, h, convention=convention)
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=color, width=max(1, min(h, w) // 200))
        if seg.label:
            tx, ty = x1 + 2, (y1 - 12 if y1 >= 12 else y1 + 2)
            bbox = draw.textbbox((tx, ty), seg.label)
            draw.rectangle(bbox, fill=color)
            draw.text((tx, ty), seg.label, fill=(255, 255, 255))
    return out
