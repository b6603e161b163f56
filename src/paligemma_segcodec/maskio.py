"""Reading mask and image files (Pillow, no JAX)."""

from __future__ import annotations

import os
from typing import IO

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["UnsupportedMaskError", "binarize", "read_image", "read_mask", "read_mask_values"]

_GREY_SPREAD = 8  # an RGB mask whose channels differ by at most this is grey (JPEG noise)


class UnsupportedMaskError(ValueError):
    """The file is an image, but not one a mask can be read from (a colour image, CMYK, …)."""


def read_image(path: str | os.PathLike[str]) -> Image.Image:
    """Opens and fully decodes an image (so truncated files fail here, with the file name), as RGB."""
    with Image.open(path) as im:
        im.load()
        rgb: Image.Image = im.convert("RGB")
        return rgb


def read_mask_values(path: str | os.PathLike[str] | IO[bytes]) -> npt.NDArray[np.integer]:
    """A mask file's values as an integer ``(H, W)`` array.

    - ``1``, ``L``: grey values 0..255 (uint8);
    - ``P``: the palette indices (a semantic mask saved with a palette), uint8;
    - ``I``, ``I;16``, integer-valued ``F``: the values (int32), for label maps with many classes;
    - ``RGB`` whose channels are equal up to JPEG noise: grey values (uint8);
    - ``LA``/``RGBA``: like ``L``/``RGB``, except that when the grey values are all equal and the
      alpha channel is not, the mask is in the alpha channel (a cut-out saved as a transparent
      PNG): the alpha values (uint8).

    Raises:
      OSError: unreadable or truncated file (Pillow's error).
      UnsupportedMaskError: a colour image or another mode that is not a mask.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<mask bytes>"
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        if mode in ("1", "L", "P"):
            return np.asarray(im.convert("L") if mode == "1" else im, dtype=np.uint8)
        if mode.startswith("I") or mode == "F":
            raw = np.asarray(im)
            if raw.ndim != 2 or (mode == "F" and not np.all(raw == np.round(raw))):
                raise UnsupportedMaskError(f"{name}: mode {mode} mask with non-integer values")
            return raw.astype(np.int32)
        if mode in ("LA", "RGB", "RGBA"):
            grey = np.asarray(im.convert("L"), dtype=np.uint8)
            if mode != "RGB":  # a transparent cut-out keeps the mask in the alpha channel
                alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
                if grey.min() == grey.max() and alpha.min() != alpha.max():
                    return alpha
            if mode != "LA":
                rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
                spread = np.abs(rgb - rgb[..., :1]).max(axis=-1)
                if np.mean(spread > _GREY_SPREAD) > 0.001:
                    raise UnsupportedMaskError(
                        f"{name}: colour mask (mode {mode} with different R, G, B values); "
                        "save masks as single-channel (L or P) images"
                    )
            return grey
        raise UnsupportedMaskError(f"{name}: unsupported image mode {mode} for a mask")


def binarize(values: npt.NDArray[np.integer], threshold: int = 127) -> npt.NDArray[np.bool_]:
    """Mask values → bool: ``> threshold``, except a 0/1 mask, read as ``> 0``."""
    if values.size and int(values.max()) == 1:
        return np.asarray(values > 0)
    return np.asarray(values > threshold)


def read_mask(path: str | os.PathLike[str], *, threshold: int = 127) -> npt.NDArray[np.bool_]:
    """A mask file → bool ``(H, W)``: pixels whose value is ``> threshold``.

    JPEG masks have grey values at the edges, hence the threshold (127 by default). A file whose
    values are only 0 and 1 (a 0/1 label PNG) is read as such: pixels ``> 0``.
    """
    return binarize(read_mask_values(path), threshold)
