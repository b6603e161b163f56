"""Safe file I/O: atomic outputs, outputs that never land on inputs, paths kept under their root,
and inputs opened only when they are regular files. The one home of these rules (no JAX, no Pillow).

- `atomic_write`: every output is written to a hidden temporary file in its destination folder and
  renamed into place after ``flush`` + ``fsync``; on any exception (``KeyboardInterrupt``, a full
  disk, a signal turned into an exception) the temporary is removed and the previous file, if any,
  is untouched.
- `InputGuard`: the set of a run's input files (by real path and by ``(device, inode)``, so hard
  links and symlinks count); `InputGuard.check_output` refuses an output that is, or would
  overwrite, one of them.
- `resolve_under`: a path read from a file (COCO ``file_name``, a predictions ``image``) resolved
  under its root, or `UnsafePathError` (absolute, drive letter, ``..`` or a symlink escaping it).
- `check_regular` / `open_regular`: ``stat`` first, then open non-blocking and check again, so a
  FIFO, socket, device node or folder named like an image is reported and never read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any, BinaryIO

from paligemma_segcodec.errors import NotARegularFileError, OutputOverInputError, UnsafePathError

__all__ = [
    "InputGuard",
    "atomic_symlink",
    "atomic_write",
    "check_regular",
    "committed_files",
    "copy_file",
    "describe_special",
    "open_regular",
    "resolve_under",
]

# Files committed (renamed into place) by `atomic_write` in this process, in order: what an
# interrupted CLI run reports as kept.
_COMMITTED: list[Path] = []


def committed_files() -> list[Path]:
    """The outputs `atomic_write` has completed in this process, in order."""
    return list(_COMMITTED)


def describe_special(mode: int) -> str | None:
    """What a non-regular file is, in words (``"a FIFO (named pipe)"``), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` of ``path`` (following symlinks) when it is a regular file.

    Raises:
      FileNotFoundError: no such file ("broken link" when a symlink's target is missing).
      NotARegularFileError: a folder, FIFO, socket, device node, or a symlink loop.
      PermissionError: as ``os.stat``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(errno.ENOENT, "broken link (its target does not exist)", os.fspath(path)) from None
        raise
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotARegularFileError(errno.ELOOP, "a symlink loop, not a file", os.fspath(path)) from None
        raise
    kind = describe_special(st.st_mode)
    if kind is not None:
        raise NotARegularFileError(errno.EINVAL, f"{kind}, not a regular file", os.fspath(path))
    return st


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Opens a regular file for binary reading, never blocking on a FIFO or a device.

    The file is checked with `check_regular`, opened with ``O_NONBLOCK`` and checked again with
    ``fstat`` (a file swapped for a FIFO in between is still refused). The caller closes it.

    Raises:
      FileNotFoundError, NotARegularFileError, PermissionError: see `check_regular`.
    """
    check_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        kind = describe_special(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotARegularFileError(errno.EINVAL, f"{kind}, not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def resolve_under(root: str | os.PathLike[str], name: object, *, what: str = "path") -> Path:
    """``root / name`` for a ``name`` read from an untrusted file, when it stays inside ``root``.

    Refused: a non-string or empty name, NUL bytes, absolute paths (POSIX or Windows), drive
    letters and UNC paths, ``..`` segments that leave the root, and paths whose symlinks resolve
    outside the root's real path. A name that stays inside (``sub/a.jpg``, ``./a.jpg``) is fine.

    Raises:
      UnsafePathError: with what was wrong, naming ``what`` (e.g. ``"file_name"``).
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"{what} must be a string, got {type(name).__name__}")
    if not name or not name.strip():
        raise UnsafePathError(f"{what} is empty")
    if "\x00" in name:
        raise UnsafePathError(f"{what} {name[:80]!r} contains a NUL character")
    win = PureWindowsPath(name)
    if PurePosixPath(name).is_absolute() or win.is_absolute() or win.drive or win.root:
        raise UnsafePathError(f"{what} {name[:80]!r} is an absolute path: it must be relative to {os.fspath(root)}")
    parts = name.replace("\\", "/").split("/")
    depth = 0
    for part in parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                raise UnsafePathError(f"{what} {name[:80]!r} leaves its folder {os.fspath(root)} ('..')")
        elif part not in ("", "."):
            depth += 1
    root_real = os.path.realpath(root)
    candidate = Path(root) / name
    real = os.path.realpath(candidate)
    if os.path.commonpath([root_real, real]) != root_real:
        raise UnsafePathError(
            f"{what} {name[:80]!r} resolves outside its folder {os.fspath(root)} (through a symlink or '..')"
        )
    return candidate


class InputGuard:
    """A run's input files, to refuse outputs that would land on one of them.

    Files are known by real path and by ``(st_dev, st_ino)`` so that a symlink or a hard link to
    an input is caught too. Folders given as inputs add their direct files (what the run lists).
    """

    def __init__(self) -> None:
        self._paths: set[str] = set()
        self._inodes: set[tuple[int, int]] = set()

    def add(self, path: str | os.PathLike[str] | None) -> None:
        """Adds one input file (a missing path is ignored: it cannot be overwritten)."""
        if path is None:
            return
        self._paths.add(os.path.realpath(path))
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode):
                self._inodes.add((st.st_dev, st.st_ino))

    def add_folder(self, folder: str | os.PathLike[str] | None) -> None:
        """Adds every entry of ``folder`` (not recursive)."""
        if folder is None:
            return
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                self.add(entry.path)

    def add_all(self, paths: Iterable[str | os.PathLike[str] | None]) -> None:
        for p in paths:
            self.add(p)

    def is_input(self, path: str | os.PathLike[str]) -> bool:
        """Whether writing ``path`` would replace one of the inputs."""
        if os.path.realpath(path) in self._paths:
            return True
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self._inodes

    def check_output(self, path: str | os.PathLike[str], option: str) -> None:
        """Raises `OutputOverInputError` naming ``option`` when ``path`` is one of the inputs."""
        if self.is_input(path):
            raise OutputOverInputError(
                f"{option} {os.fspath(path)} is one of this run's input files; refusing to overwrite it "
                "(choose another output path)"
            )


def _fsync_dir(folder: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    guard: InputGuard | None = None,
) -> Iterator[IO[Any]]:
    """Writes ``path`` all or nothing: yields a temporary file in the same folder, renamed onto
    ``path`` after ``flush`` + ``fsync`` when the block ends without an exception.

    On any exception (including ``KeyboardInterrupt`` and ``SystemExit``) the temporary is removed
    and ``path`` keeps its previous content (or stays absent). The folder is created if missing.

    Args:
      path: the final file.
      mode: ``"w"`` (text) or ``"wb"`` (bytes).
      encoding: of text mode.
      guard: when given, refuse (`OutputOverInputError`) to replace one of its inputs.

    Raises:
      OutputOverInputError: ``path`` is an input of ``guard``.
      OSError: creating, writing (e.g. ``ENOSPC``) or renaming failed; nothing was replaced.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    final = Path(path)
    if guard is not None:
        guard.check_output(final, "output")
    folder = final.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name[:100]}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None, newline="" if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if guard is not None:  # checked again: the path may have become a link to an input meanwhile
            guard.check_output(final, "output")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
    _COMMITTED.append(final)


def copy_file(source: str | os.PathLike[str], dest: str | os.PathLike[str], *, guard: InputGuard | None = None) -> bool:
    """Copies a regular file atomically; nothing happens when ``dest`` already is ``source``.

    Returns:
      True when a copy was written, False when ``dest`` is the same file as ``source``.
    """
    if os.path.exists(dest) and os.path.samefile(source, dest):
        return False
    with open_regular(source) as src, atomic_write(dest, "wb", guard=guard) as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    with contextlib.suppress(OSError):
        st = os.stat(source)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    return True


def atomic_symlink(target: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Makes ``dest`` a symlink to ``target``, atomically (a temporary link renamed onto ``dest``).

    Nothing happens when ``dest`` already is ``target`` (the same file): a file is never replaced
    by a link to itself.
    """
    final = Path(dest)
    if os.path.lexists(final) and os.path.exists(final) and os.path.samefile(target, final):
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name[:100]}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _COMMITTED.append(final)
