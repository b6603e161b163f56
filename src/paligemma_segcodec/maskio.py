"""Reading mask files (Pillow, no JAX)."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["read_mask", "read_mask_values"]


def read_mask_values(path: str | os.PathLike[str]) -> npt.NDArray[np.uint8]:
    """A mask file's grey values as uint8 ``(H, W)`` (colour masks are converted to luminance "L").

    Raises:
      OSError: unreadable or truncated file (Pillow's error, with the file name).
    """
    with Image.open(path) as im:
        im.load()
        if im.mode in ("1", "L"):
            arr = np.asarray(im.convert("L"))
        elif im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            raw = np.asarray(im)
            if raw.min() < 0 or raw.max() > 255:
                raise ValueError(f"{os.fspath(path)}: {im.mode} mask with values outside 0..255; not a mask image")
            arr = raw.astype(np.uint8)
        else:
            arr = np.asarray(im.convert("L"))
    return np.ascontiguousarray(arr, dtype=np.uint8)


def read_mask(path: str | os.PathLike[str], *, threshold: int = 127) -> npt.NDArray[np.bool_]:
    """A mask file → bool ``(H, W)``: pixels whose grey value is ``> threshold``.

    JPEG masks have grey values at the edges, hence the threshold (127 by default). A file whose
    values are only 0 and 1 (a 0/1 label PNG) is read as such: pixels ``> 0``.
    """
    values = read_mask_values(path)
    if values.size and int(values.max()) == 1:
        return values > 0
    return values > threshold
