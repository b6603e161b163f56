"""Exceptions raised by paligemma_segcodec.

Every error is a subclass of a built-in (`ValueError`, `FileNotFoundError`) so that callers who
do not know this library can still catch it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "MalformedObjectError",
    "SkippedObjectWarning",
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
