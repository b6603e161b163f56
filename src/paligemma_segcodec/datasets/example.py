"""`Example`: one image's objects on their way to a JSONL line (the item every dataset source
yields and `paligemma_segcodec.datasets.convert.write_examples` consumes), and `prepare_example`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from paligemma_segcodec.datasets.files import MaskObject, Problem
from paligemma_segcodec.prep import PreparedMask, prepare_crop

__all__ = ["Example", "prepare_example"]


@dataclass(frozen=True)
class Example:
    """One image's objects, ready to encode."""

    image: str  # name written in the "image" field
    image_path: Path | None  # the source file (None for in-memory images, e.g. from a datasets.Dataset)
    labels: tuple[str, ...]  # labels named in the prefix
    objects: tuple[MaskObject, ...]
    pil: Any = None  # an in-memory PIL image, written to OUT_DIR/images/ (when image_path is None)
    warnings: tuple[Problem, ...] = ()  # written to OUT.errors.jsonl; the line is still written
    # the objects' encoder inputs (`prepare_example`, done on a reading thread), or None: prepared
    # when encoded
    prepared: tuple[PreparedMask, ...] | None = field(default=None, repr=False, compare=False)


def prepare_example(ex: Example) -> Example:
    """``ex`` with each object's encoder input (`paligemma_segcodec.prep.prepare_crop`) computed, so
    that a reading thread does the crop and resize and the encoding thread only encodes."""
    if ex.prepared is not None:
        return ex
    return replace(ex, prepared=tuple(prepare_crop(o.crop, o.box) for o in ex.objects))
