"""Exceptions raised by paligemma_segcodec.

Every error is a subclass of a built-in (`ValueError`, `FileNotFoundError`) so that callers who
do not know this library can still catch it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ImageTooLargeError",
    "MalformedObjectError",
    "NotARegularFileError",
    "OutputOverInputError",
    "SkippedObjectWarning",
    "SlowPathWarning",
    "ThinObjectWarning",
    "UnsafePathError",
]


class CheckpointError(ValueError):
    """The checkpoint file exists but is not a vae-oid checkpoint (missing key, wrong shape,
    wrong dtype, or a sha256 that does not match the published file)."""


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint could be found: a missing path, or offline and not in the Hugging Face cache."""


class MalformedObjectError(ValueError):
    """An object in a PaliGemma answer is malformed (raised by ``strict=True`` parsing).

    Attributes:
      index: 0-based index of the object in the answer (objects are separated by ``;``).
      offset: character offset in the text where the problem was found.
      reason: what was wrong, in words.
    """

    def __init__(self, index: int, offset: int, reason: str) -> None:
        self.index = index
        self.offset = offset
        self.reason = reason
        super().__init__(f"object {index} at character {offset}: {reason}")


class SkippedObjectWarning(UserWarning):
    """Lenient decoding skipped one or more malformed objects; the message lists each one."""


class ThinObjectWarning(UserWarning):
    """An encoded object's box is thinner than one ``<loc>`` step (``y2 == y1`` or ``x2 == x1``
    after big_vision's ``round(b * 1023)``): the tokens are the reference's, but big_vision's
    evaluator and ``decode_tokens(strict=True)`` reject such an answer. Pass ``min_loc_extent=1``
    to widen the box by one bin instead."""


class UnsafePathError(ValueError):
    """A path read from a file (a COCO ``file_name``, a predictions JSONL ``image``) points outside
    the folder it must stay in: an absolute path, a drive letter, ``..`` segments or a symlink
    that escapes the root. The record is refused; nothing outside the root is read."""


class NotARegularFileError(OSError):
    """A path named like an image, mask or annotation file is not a regular file (a FIFO, socket,
    device node, folder, or a dangling or looping symlink). It is reported and never opened, so a
    FIFO cannot block the run."""


class OutputOverInputError(ValueError):
    """An output path is, or would overwrite, one of the run's input files (the same path, a
    symlink to it or a hard link of it). Refused before any work is done."""


class ImageTooLargeError(ValueError):
    """An image or mask file declares more pixels than Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS`` × 2, about 179 million by default); it is not decoded."""


class SlowPathWarning(UserWarning):
    """numba (a dependency) could not be imported, so the host-side resize runs in NumPy: the same
    tokens, about 3-5x slower on the host. Shown once per process; set
    ``PALIGEMMA_SEGCODEC_NUMBA=0`` to choose the NumPy path deliberately (no warning)."""
