"""supervision integration (extra ``[supervision]``): `Segment` lists → ``supervision.Detections``.

from paligemma_segcodec.sv import to_detections, annotate
detections = to_detections(segments, height, width)   # xyxy, mask, class_id, data["class_name"]
annotate(image, segments).save("overlay.png")         # supervision's mask, box and label annotators
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from paligemma_segcodec._optional import require
from paligemma_segcodec.boxes import Convention
from paligemma_segcodec.segment import Segment, paste_mask_in_box

__all__ = ["annotate", "to_detections"]


def _sv() -> Any:
    import warnings

    with warnings.catch_warnings():  # supervision warns on import when OpenCV is absent: not ours to show
        warnings.filterwarnings("ignore", message=".*OpenCV.*", category=UserWarning)
        return require("supervision", "supervision")


def to_detections(
    segments: Sequence[Segment], height: int, width: int, *, convention: Convention = "big_vision"
) -> Any:
    """Segments (decoded with this ``height``/``width``, or without a size) → ``supervision.Detections``.

    ``xyxy`` in pixels (`Segment.xyxy`), ``mask`` bool ``[N, H, W]`` (all False for detection-only
    objects), ``class_id`` the index of the label in order of first appearance, and
    ``data["class_name"]`` the labels.
    """
    sv = _sv()
    names = list(dict.fromkeys(s.label for s in segments))
    n = len(segments)
    masks = np.zeros((n, height, width), bool)
    for i, s in enumerate(segments):
        if s.mask is not None:
            if s.mask.shape != (height, width):
                raise ValueError(f"segment {i} has a {s.mask.shape} mask, expected {(height, width)}")
            masks[i] = s.mask
        elif s.mask64 is not None:  # decoded without a size: pasted here, inside its box
            (t, left, b, r), crop = paste_mask_in_box(s.mask64, s.loc, height, width, convention=convention)
            masks[i, t:b, left:r] = crop
    boxes = [s.xyxy(height=height, width=width, convention=convention) for s in segments]
    xyxy = np.array(boxes, dtype=np.float32).reshape(n, 4)
    return sv.Detections(
        xyxy=xyxy,
        mask=masks,
        class_id=np.array([names.index(s.label) for s in segments], dtype=int),
        data={"class_name": np.array([s.label for s in segments], dtype=object)},
    )


def annotate(image: Image.Image, segments: Sequence[Segment], *, convention: Convention = "big_vision") -> Image.Image:
    """Draws segments with supervision's ``MaskAnnotator``, ``BoxAnnotator`` and ``LabelAnnotator``."""
    sv = _sv()
    scene = np.asarray(image.convert("RGB")).copy()
    h, w = scene.shape[:2]
    det = to_detections(segments, h, w, convention=convention)
    if len(det):
        scene = sv.MaskAnnotator().annotate(scene=scene, detections=det)
        scene = sv.BoxAnnotator().annotate(scene=scene, detections=det)
        scene = sv.LabelAnnotator().annotate(scene=scene, detections=det, labels=[s.label for s in segments])
    return Image.fromarray(np.asarray(scene))
