"""Reading mask and image files (Pillow, no JAX)."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from struct import error as struct_error
from typing import IO

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from paligemma_segcodec.errors import ImageTooLargeError, UnsupportedMaskError
from paligemma_segcodec.safeio import open_regular

__all__ = [
    "ImageTooLargeError",
    "UnsupportedMaskError",
    "binarize",
    "mask_values",
    "open_image",
    "read_image",
    "read_mask",
    "read_mask_values",
]

_OPEN_LOCK = threading.Lock()
_GREY_SPREAD = 8  # an RGB mask whose channels differ by at most this is grey (JPEG noise)


@contextlib.contextmanager
def open_image(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Image.Image]:
    """Opens and fully decodes an image file, safely: the one place images and masks are read.

    A path is opened only when it is a regular file (`paligemma_segcodec.safeio.open_regular`: a
    FIFO, socket, device or folder named like an image is refused, never read), and Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS`` × 2 pixels, ~179 M by default) is
    reported as `ImageTooLargeError` instead of Pillow's own exception.

    Raises:
      FileNotFoundError, PermissionError, NotARegularFileError: see ``open_regular``.
      ImageTooLargeError: more pixels than Pillow's decompression-bomb limit.
      OSError: not an image Pillow can read (``PIL.UnidentifiedImageError``), truncated data.

    Args:
        source: a path, or a binary file object.

    Returns:
        A context manager giving the decoded Pillow image (closed on exit).

    Examples:
        >>> with open_image("tests/data/water/masks/water_body_8892.jpg") as im:
        ...     im.mode, im.size
        ('RGB', (72, 89))
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<image bytes>"
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open_regular(source)) if isinstance(source, (str, os.PathLike)) else source
        try:
            # Pillow warns at open (from the header) about an image within its limit: fine, and not a
            # 2-line warning. catch_warnings swaps process-wide state, so the open is serialized
            # across threads; the decoding (load, which releases the GIL) is not.
            with _OPEN_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = stack.enter_context(Image.open(f))
            im.load()
        except UnidentifiedImageError:
            raise UnidentifiedImageError(f"cannot identify image file {name!r}") from None
        except OSError as err:  # Pillow's decoding errors name the file object, not the file
            raise OSError(f"{name}: {err}") from None
        except Image.DecompressionBombError as err:
            raise ImageTooLargeError(f"{name}: {err}") from None
        except (SyntaxError, ValueError, EOFError, IndexError, TypeError, ZeroDivisionError, struct_error) as err:
            # Pillow's plugins raise these on crafted headers; they mean "broken file".
            raise OSError(f"broken image data ({type(err).__name__}: {str(err)[:200]})") from None
        yield im


def read_image(path: str | os.PathLike[str]) -> Image.Image:
    """Opens and fully decodes an image (so truncated files fail here, with the file name), as RGB.

    Args:
        path: the image file.

    Returns:
        An RGB Pillow image, fully decoded.

    Raises:
        FileNotFoundError, NotARegularFileError: see `open_image`.
        ImageTooLargeError: more pixels than Pillow's decompression-bomb limit.
        OSError: not an image Pillow can read, or truncated.

    Examples:
        >>> read_image("tests/data/water/images/water_body_8892.jpg").size
        (72, 89)
    """
    with open_image(path) as im:
        rgb: Image.Image = im.convert("RGB")
        return rgb


def read_mask_values(path: str | os.PathLike[str] | IO[bytes]) -> npt.NDArray[np.integer]:
    """A mask file's values as an integer ``(H, W)`` array (see `mask_values` for each mode).

    Raises:
      OSError: unreadable or truncated file (Pillow's error).
      UnsupportedMaskError: a colour image or another mode that is not a mask.

    Args:
        path: a mask file, or a binary file object.

    Returns:
        Integer ``(H, W)`` values (uint8 for 8-bit masks).

    Examples:
        >>> values = read_mask_values("tests/data/water/masks/water_body_8892.jpg")
        >>> values.shape, values.dtype, int(values.max())
        ((89, 72), dtype('uint8'), 255)
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<mask bytes>"
    with open_image(path) as im:
        return mask_values(im, name)


def mask_values(im: Image.Image, name: str = "mask") -> npt.NDArray[np.integer]:
    """A decoded mask image's values as an integer ``(H, W)`` array.

    - ``1``, ``L``: grey values 0..255 (uint8);
    - ``P``: the palette indices (a semantic mask saved with a colour palette, as in VOC), uint8;
      except when every palette entry used is grey (R = G = B): then the image is a grey image
      stored with a palette (GIF always stores one so) and the values are the grey levels it
      shows, uint8. A 0/1 index mask whose entry 1 is the brighter keeps its indices 0/1;
    - ``I``, ``I;16``, integer-valued ``F``: the values (int32), for label maps with many classes;
    - ``RGB`` (or ``CMYK``, ``YCbCr``, … converted to RGB) whose channels are equal up to JPEG
      noise: grey values (uint8);
    - ``LA``/``RGBA``: like ``L``/``RGB``, except that when the grey values are all equal and the
      alpha channel is not, the mask is in the alpha channel (a cut-out saved as a transparent
      PNG): the alpha values (uint8).

    Raises:
      UnsupportedMaskError: a colour image or another mode that is not a mask (``name`` says
        which).

    Args:
        im: a decoded Pillow image.
        name: how error messages name it.

    Returns:
        Integer ``(H, W)`` values.

    Examples:
        >>> from PIL import Image
        >>> import numpy as np
        >>> mask_values(Image.fromarray(np.array([[0, 255]], np.uint8))).tolist()
        [[0, 255]]
    """
    if im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):  # e.g. a grey mask exported as a CMYK JPEG
        im = im.convert("RGB")
    mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L") if mode == "1" else im, dtype=np.uint8)
    if mode == "P":
        return _palette_values(np.asarray(im, dtype=np.uint8), im.getpalette())
    if mode.startswith("I") or mode == "F":
        raw = np.asarray(im)
        if raw.ndim != 2 or (mode == "F" and not np.all(raw == np.round(raw))):
            raise UnsupportedMaskError(
                name,
                f"mode {mode} mask with non-integer values ({_value_range(raw)}); "
                "save masks as 8-bit images (0/255) or integer label maps",
            )
        return raw.astype(np.int32)
    if mode in ("LA", "RGB", "RGBA"):
        grey = np.asarray(im.convert("L"), dtype=np.uint8)
        if mode != "RGB":  # a transparent cut-out keeps the mask in the alpha channel
            alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
            if grey.min() == grey.max() and alpha.min() != alpha.max():
                return alpha
        if mode != "LA":
            # per channel, in uint8 (|g - r| as max - min): ~5x faster than one int16 (H, W, 3) array
            r, g, b = (np.asarray(c, dtype=np.uint8) for c in im.convert("RGB").split())
            colour = ((np.maximum(g, r) - np.minimum(g, r)) > _GREY_SPREAD) | (
                (np.maximum(b, r) - np.minimum(b, r)) > _GREY_SPREAD
            )
            if np.count_nonzero(colour) / colour.size > 0.001:
                raise UnsupportedMaskError(
                    name,
                    f"colour mask (mode {mode} with different R, G, B values); "
                    "save masks as single-channel (L or P) images",
                )
        return grey
    raise UnsupportedMaskError(name, f"unsupported image mode {mode} for a mask")


def _value_range(raw: npt.NDArray[np.floating]) -> str:
    finite = raw[np.isfinite(raw)]
    span = f"{finite.min():g}..{finite.max():g}" if finite.size else "no finite value"
    return span + (", NaN or infinite values" if finite.size < raw.size else "")


def _palette_values(indices: npt.NDArray[np.uint8], palette: list[int] | None) -> npt.NDArray[np.uint8]:
    """A ``P`` image's values: its indices, or the grey levels of an all-grey palette (see above)."""
    if not palette or len(palette) % 3:
        return indices
    entries = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    used = np.flatnonzero(np.bincount(indices.ravel(), minlength=256))
    if used[-1] >= len(entries) or np.any(entries[used] != entries[used, :1]):
        return indices  # a colour palette (class colours): the indices are the classes
    levels = entries[:, 0]
    if np.array_equal(levels[used], used):
        return indices  # grey palette in index order: indices and grey levels agree
    if used[-1] <= 1 and len(levels) > 1 and levels[1] > levels[0]:
        return indices  # a 0/1 mask, entry 1 the brighter: 0/1 reads as the grey levels would
    return np.asarray(levels[indices], dtype=np.uint8)


def binarize(values: npt.NDArray[np.integer], threshold: int = 127) -> npt.NDArray[np.bool_]:
    """Mask values → bool: ``> threshold``, except a 0/1 mask, read as ``> 0``.

    Args:
        values: integer mask values, as `mask_values` gives them.
        threshold: foreground is ``> threshold``.

    Returns:
        bool, the shape of ``values``.

    Examples:
        >>> import numpy as np
        >>> binarize(np.array([0, 100, 200])).tolist(), binarize(np.array([0, 1])).tolist()
        ([False, False, True], [False, True])
    """
    if values.size and int(values.max()) == 1:
        return np.asarray(values > 0)
    return np.asarray(values > threshold)


def read_mask(path: str | os.PathLike[str], *, threshold: int = 127) -> npt.NDArray[np.bool_]:
    """A mask file → bool ``(H, W)``: pixels whose value is ``> threshold``.

    JPEG masks have grey values at the edges, hence the threshold (127 by default). A file whose
    values are only 0 and 1 (a 0/1 label PNG) is read as such: pixels ``> 0``.

    Args:
        path: the mask file (PNG, JPEG, TIFF, BMP, GIF, WebP).
        threshold: foreground is ``> threshold`` (except 0/1 masks, see above).

    Returns:
        bool ``(H, W)``.

    Examples:
        >>> mask = read_mask("tests/data/water/masks/water_body_8892.jpg")
        >>> mask.shape, mask.dtype
        ((89, 72), dtype('bool'))
    """
    return binarize(read_mask_values(path), threshold)
