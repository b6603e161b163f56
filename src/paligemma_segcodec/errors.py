"""Exceptions raised by paligemma_segcodec.

Every exception and warning class of the package is defined here (and only here; other modules
import them from here). Every error is a subclass of a built-in (`ValueError`, `OSError`,
`FileNotFoundError`) so that callers who do not know this library can still catch it; `Interrupted`
is a `BaseException`, like `KeyboardInterrupt`. This module imports nothing from the package.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ImageTooLargeError",
    "Interrupted",
    "MalformedObjectError",
    "NotARegularFileError",
    "OutputOverInputError",
    "SkippedObjectWarning",
    "SlowPathWarning",
    "ThinObjectWarning",
    "UnsafePathError",
    "UnsupportedMaskError",
]


class CheckpointError(ValueError):
    """The checkpoint file exists but is not a vae-oid checkpoint.

    A missing key, a wrong shape or dtype, a file that is not an ``.npz`` at all, or a sha256 that
    does not match the published file; the message names the file and what was found.

    Examples:
        >>> from paligemma_segcodec.checkpoint import read_checkpoint
        >>> read_checkpoint("README.md")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        paligemma_segcodec.errors.CheckpointError: README.md: not a readable .npz checkpoint: ...
    """


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint could be found: a missing path, or offline and not in the Hugging Face cache.

    The message says where to download ``vae-oid.npz`` and how to point the library at it.

    Examples:
        >>> from paligemma_segcodec.checkpoint import resolve_checkpoint
        >>> resolve_checkpoint("missing.npz")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        paligemma_segcodec.errors.CheckpointNotFoundError: checkpoint path 'missing.npz' does not exist ...
    """


class MalformedObjectError(ValueError):
    """An object in a PaliGemma answer is malformed (raised by ``strict=True`` parsing).

    Args:
        index: 0-based index of the object in the answer.
        offset: character offset of the problem in the text.
        reason: what was wrong, in words.

    Attributes:
        index (int): 0-based index of the object in the answer (objects are separated by ``;``).
        offset (int): character offset in the text where the problem was found.
        reason (str): what was wrong, in words.

    Examples:
        >>> from paligemma_segcodec import parse_objects
        >>> try:
        ...     parse_objects("<loc0001><loc0002> water", strict=True)
        ... except MalformedObjectError as err:
        ...     print(err.index, err.offset, err.reason)
        0 19 expected 4 loc tokens, got 2
    """

    def __init__(self, index: int, offset: int, reason: str) -> None:
        self.index = index
        self.offset = offset
        self.reason = reason
        super().__init__(f"object {index} at character {offset}: {reason}")


class SkippedObjectWarning(UserWarning):
    """Lenient decoding skipped one or more malformed objects; the message lists each one.

    Examples:
        >>> import warnings
        >>> from paligemma_segcodec import parse_objects
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     result = parse_objects("<loc0001><loc0002> water")
        >>> len(result.objects), len(result.skipped)
        (0, 1)
    """


class ThinObjectWarning(UserWarning):
    """An encoded object's box is thinner than one ``<loc>`` step (``y2 == y1`` or ``x2 == x1``
    after big_vision's ``round(b * 1023)``): the tokens are the reference's, but big_vision's
    evaluator and ``decode_tokens(strict=True)`` reject such an answer. Pass ``min_loc_extent=1``
    to widen the box by one bin instead.

    Examples:
        >>> import warnings
        >>> import numpy as np
        >>> from paligemma_segcodec import encode_mask, load_codec
        >>> codec = load_codec("tests/data/fixture-vae.npz")  # the bundled stand-in checkpoint
        >>> mask = np.zeros((2048, 2048), bool)
        >>> mask[100:900, 1000] = True  # one pixel wide: thinner than 1/1023 of the width
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     suffix = encode_mask(mask, label="pole", codec=codec)
        >>> [w.category.__name__ for w in caught]
        ['ThinObjectWarning']
    """


class UnsafePathError(ValueError):
    """A path read from a file (a COCO ``file_name``, a predictions JSONL ``image``) points outside
    the folder it must stay in: an absolute path, a drive letter, ``..`` segments or a symlink
    that escapes the root. The record is refused; nothing outside the root is read.

    Examples:
        >>> from paligemma_segcodec.safeio import resolve_under
        >>> resolve_under("tests/data", "../README.md")
        Traceback (most recent call last):
        ...
        paligemma_segcodec.errors.UnsafePathError: path '../README.md' leaves its folder tests/data ('..')
    """


class NotARegularFileError(OSError):
    """A path named like an image, mask or annotation file is not a regular file (a FIFO, socket,
    device node, folder, or a dangling or looping symlink). It is reported and never opened, so a
    FIFO cannot block the run.

    Examples:
        >>> from paligemma_segcodec.safeio import check_regular
        >>> check_regular("tests/data")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        paligemma_segcodec.errors.NotARegularFileError: [Errno 22] a folder, not a regular file: 'tests/data'
    """


class OutputOverInputError(ValueError):
    """An output path is, or would overwrite, one of the run's input files (the same path, a
    symlink to it or a hard link of it). Refused before any work is done.

    Examples:
        >>> issubclass(OutputOverInputError, ValueError)
        True
    """


class ImageTooLargeError(ValueError):
    """An image or mask file declares more pixels than Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS`` × 2, about 179 million by default); it is not decoded.

    Examples:
        >>> issubclass(ImageTooLargeError, ValueError)
        True
    """


class SlowPathWarning(UserWarning):
    """numba (a dependency) could not be imported, so the host-side resize runs in NumPy: the same
    tokens, about 3-5x slower on the host. Shown once per process; set
    ``PALIGEMMA_SEGCODEC_NUMBA=0`` to choose the NumPy path deliberately (no warning).

    Examples:
        >>> issubclass(SlowPathWarning, UserWarning)
        True
    """


class UnsupportedMaskError(ValueError):
    """The file is an image, but not one a mask can be read from (a colour image, a float mask, …).

    ``str(err)`` is ``"NAME: REASON"``; ``err.reason`` is the reason alone (for reports that name
    the file elsewhere).

    Args:
        name: the file's name, as the message shows it.
        reason: what is wrong with it, in words.

    Attributes:
        reason (str): what is wrong with the file, without its name.

    Examples:
        >>> err = UnsupportedMaskError("a.png", "colour image")
        >>> str(err), err.reason
        ('a.png: colour image', 'colour image')
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason


class Interrupted(BaseException):
    """A stop was requested by a signal (SIGTERM, SIGHUP; SIGINT raises ``KeyboardInterrupt``).

    A `BaseException`, like `KeyboardInterrupt`, so that ``except Exception`` does not swallow it;
    the command line turns it into exit status ``128 + signum``.

    Args:
        signum: the signal's number.

    Attributes:
        signum (int): the signal's number (15 for SIGTERM).

    Examples:
        >>> import signal
        >>> Interrupted(signal.SIGTERM).signum == signal.SIGTERM
        True
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
