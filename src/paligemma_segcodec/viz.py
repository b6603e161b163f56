"""Pictures: decoded segments drawn over an image (Pillow, no JAX)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from paligemma_segcodec.boxes import Convention
from paligemma_segcodec.segment import Segment, paste_mask_in_box

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

SUPERVISION_MAX_MASK_BYTES = 256 * 2**20
"""``backend="auto"`` draws with supervision only while its ``[N, H, W]`` bool masks fit in this
many bytes; above it, with Pillow inside each object's box."""


def draw_segments(
    image: Image.Image | npt.ArrayLike,
    segments: Sequence[Segment],
    *,
    alpha: float = 0.5,
    convention: Convention = "big_vision",
    backend: Literal["auto", "pillow", "supervision"] = "auto",
) -> Image.Image:
    """Draws each segment's filled mask (when it has one), box and label over ``image``.

    Masks are composited one object at a time inside their box, so memory is the image's, not
    objects × image.

    Args:
      image: a PIL image or an ``(H, W)`` / ``(H, W, 3)`` uint8 array.
      segments: decoded with ``height``/``width`` equal to the image's (masks must match its size),
        or without them: a segment with ``mask64`` and no ``mask`` is pasted into its box
        (``convention``), the same picture as decoding at the image's size.
      alpha: opacity of the mask fill (Pillow backend).
      backend: ``"supervision"`` uses supervision's annotators (extra ``[supervision]``),
        ``"pillow"`` this module's drawing, ``"auto"`` supervision when it is installed and its
        full-size masks (objects × H × W bytes) fit in `SUPERVISION_MAX_MASK_BYTES`, else Pillow.

    Returns:
      A new RGB image of the same size.

    Examples:
    >>> from paligemma_segcodec import decode_tokens, encode_mask, load_codec
    >>> from paligemma_segcodec.maskio import read_image, read_mask
    >>> codec = load_codec("tests/data/fixture-vae.npz")
    >>> image = read_image("tests/data/water/images/water_body_8892.jpg")
    >>> answer = encode_mask(read_mask("tests/data/water/masks/water_body_8892.jpg"), label="water", codec=codec)
    >>> segments = decode_tokens(answer, height=image.height, width=image.width, codec=codec)
    >>> draw_segments(image, segments, backend="pillow").size
    (72, 89)
    """
    base = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    # supervision's Detections hold one full-size mask per object: "auto" uses it only while that
    # stays small, so that memory grows with the image, not with objects x image.
    small = len(segments) * base.size[0] * base.size[1] <= SUPERVISION_MAX_MASK_BYTES
    line = max(1, min(base.size) // 200)
    if backend == "supervision" or (
        backend == "auto" and small and importlib.util.find_spec("supervision") is not None
    ):
        out = _supervision_fill(base, segments, alpha=alpha, convention=convention, line=line)
        _draw_labels(out, segments, convention=convention, line=line)
        return out
    rgb = np.asarray(base.convert("RGB"), dtype=np.float32).copy()
    h, w = rgb.shape[:2]
    for i, seg in enumerate(segments):
        region = _fill_region(i, seg, h, w, convention)
        if region is None:
            continue
        (t, left, b, r), m = region
        # composite inside the box only: the same pixels and values as over the whole image
        crop = rgb[t:b, left:r]
        fill = np.array(PALETTE[i % len(PALETTE)], np.float32)
        crop[m] = (1 - alpha) * crop[m] + alpha * fill
    out = Image.fromarray(rgb.round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for i, seg in enumerate(segments):
        color = PALETTE[i % len(PALETTE)]
        x1, y1, x2, y2 = seg.xyxy(height=h, width=w, convention=convention)
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=color, width=line)
    _draw_labels(out, segments, convention=convention, line=line)
    return out


def label_font_size(height: int, width: int) -> int:
    """Pixel size of the label font for an image of this size: 2.5 % of its shorter side, at least 11."""
    return max(11, round(0.025 * min(height, width)))


def _label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # Pillow >= 10.1: the default font at any size (FreeType)
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # older Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _draw_labels(out: Image.Image, segments: Sequence[Segment], *, convention: Convention, line: int) -> None:
    """Each label on a box of its object's colour: above the box when there is room, else inside
    it below its top edge (a box touching the top of the image keeps its label); kept inside the
    image horizontally; the font scales with the image (`label_font_size`). Both backends."""
    w, h = out.size
    draw = ImageDraw.Draw(out)
    size = label_font_size(h, w)
    font = _label_font(size)
    pad = max(1, size // 6)
    for i, seg in enumerate(segments):
        if not seg.label:
            continue
        x1, y1, _, _ = seg.xyxy(height=h, width=w, convention=convention)
        left, top, right, bottom = draw.textbbox((0, 0), seg.label, font=font)
        box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
        x = max(0, min(int(x1), w - box_w))
        y = int(y1) - box_h if int(y1) >= box_h else min(int(y1) + line, max(0, h - box_h))
        draw.rectangle([x, y, x + box_w - 1, y + box_h - 1], fill=PALETTE[i % len(PALETTE)])
        draw.text((x + pad - left, y + pad - top), seg.label, fill=(255, 255, 255), font=font)


def _supervision_fill(
    image: Image.Image, segments: Sequence[Segment], *, alpha: float, convention: Convention, line: int
) -> Image.Image:
    """Masks and boxes drawn by supervision's annotators, in `PALETTE`'s colours by object (as the
    Pillow drawing); the labels are drawn by `_draw_labels`."""
    import inspect

    from paligemma_segcodec.sv import _sv, to_detections

    sv = _sv()
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])  # supervision draws on BGR arrays
    det = to_detections(segments, bgr.shape[0], bgr.shape[1], convention=convention)
    if len(det):
        palette = sv.ColorPalette(colors=[sv.Color(r=r, g=g, b=b) for r, g, b in PALETTE])
        lookup = sv.ColorLookup.INDEX
        boxes = sv.BoxAnnotator
        if "skip_label" in inspect.signature(boxes.annotate).parameters:  # supervision < 0.22: the old one
            boxes = sv.BoundingBoxAnnotator
        bgr = sv.MaskAnnotator(color=palette, opacity=alpha, color_lookup=lookup).annotate(scene=bgr, detections=det)
        bgr = boxes(color=palette, thickness=line, color_lookup=lookup).annotate(scene=bgr, detections=det)
    return Image.fromarray(np.ascontiguousarray(np.asarray(bgr)[..., ::-1]))


def _fill_region(
    i: int, seg: Segment, h: int, w: int, convention: Convention
) -> tuple[tuple[int, int, int, int], npt.NDArray[np.bool_]] | None:
    """Where segment ``i`` is filled: ``((top, left, bottom, right), bool crop)`` or None.

    A full-size ``mask`` is cut to its own bounding rectangle (a view, no copy); a segment with only
    ``mask64`` is pasted inside its box (`paste_mask_in_box`, ``convention``).
    """
    if seg.mask is not None:
        if seg.mask.shape != (h, w):
            raise ValueError(f"segment {i} has a {seg.mask.shape} mask but the image is {(h, w)}")
        mask = np.asarray(seg.mask, bool)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        t, left, b, r = int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1
        return (t, left, b, r), mask[t:b, left:r]
    if seg.mask64 is not None:
        return paste_mask_in_box(seg.mask64, seg.loc, h, w, convention=convention)
    return None
