"""paligemma-segcodec: segmentation masks ↔ PaliGemma's ``<loc>``/``<seg>`` tokens.

Pipeline, one module per step (the first four need no JAX)::

    boxes       box conventions: yxyx, round(v * 1023), pixel crops
    tokens      the text format: format and parse <loc>/<seg> objects
    resize      the reference's crop + antialiased bilinear resize
    checkpoint  find / download / verify / read vae-oid.npz
    model       the VQ-VAE encoder and decoder (Flax)
    codec       Codec: jit-compiled, batched encode_indices / decode_indices
    api         encode_mask(s), decode_tokens: masks ↔ text

JAX is imported only when a codec-backed name is first used, so ``import paligemma_segcodec``
and ``paligemma_segcodec.tokens`` stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from paligemma_segcodec._version import __version__
from paligemma_segcodec.boxes import (
    box_to_loc,
    from_coco_xywh,
    loc_to_box,
    loc_to_pixels,
    pixels_to_box,
    tight_box,
    to_coco_xywh,
    xyxy_to_yxyx,
    yxyx_to_xyxy,
)
from paligemma_segcodec.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    ImageTooLargeError,
    MalformedObjectError,
    NotARegularFileError,
    OutputOverInputError,
    SkippedObjectWarning,
    SlowPathWarning,
    ThinObjectWarning,
    UnsafePathError,
)
from paligemma_segcodec.segment import Segment, paste_mask
from paligemma_segcodec.tokens import format_object, parse_objects

if TYPE_CHECKING:
    from paligemma_segcodec.api import decode_tokens, encode_mask, encode_masks, iter_decode_tokens, prepare_mask
    from paligemma_segcodec.codec import Codec, load_codec

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "Codec",
    "ImageTooLargeError",
    "MalformedObjectError",
    "NotARegularFileError",
    "OutputOverInputError",
    "Segment",
    "SkippedObjectWarning",
    "SlowPathWarning",
    "ThinObjectWarning",
    "UnsafePathError",
    "__version__",
    "box_to_loc",
    "decode_tokens",
    "encode_mask",
    "encode_masks",
    "format_object",
    "from_coco_xywh",
    "iter_decode_tokens",
    "load_codec",
    "loc_to_box",
    "loc_to_pixels",
    "parse_objects",
    "paste_mask",
    "pixels_to_box",
    "prepare_mask",
    "tight_box",
    "to_coco_xywh",
    "xyxy_to_yxyx",
    "yxyx_to_xyxy",
]

_LAZY = {
    "Codec": "paligemma_segcodec.codec",
    "load_codec": "paligemma_segcodec.codec",
    "decode_tokens": "paligemma_segcodec.api",
    "encode_mask": "paligemma_segcodec.api",
    "encode_masks": "paligemma_segcodec.api",
    "iter_decode_tokens": "paligemma_segcodec.api",
    "prepare_mask": "paligemma_segcodec.api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paligemma_segcodec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
