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
import functools
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any, BinaryIO

from paligemma_segcodec.errors import Interrupted, NotARegularFileError, OutputOverInputError, UnsafePathError

__all__ = [
    "AtomicFiles",
    "InputGuard",
    "Interrupted",
    "atomic_symlink",
    "atomic_write",
    "check_regular",
    "check_stop",
    "clear_stop",
    "committed_files",
    "copy_file",
    "describe_special",
    "install_stop_handlers",
    "open_regular",
    "request_stop",
    "resolve_under",
    "same_entry",
    "stop_handler",
    "stop_requested",
]

# Files committed (renamed into place) by `atomic_write` in this process, in order: what an
# interrupted CLI run reports as kept.
_COMMITTED: list[Path] = []
# The signal a stop was requested with (SIGINT, SIGTERM), or 0. A signal handler's exception can
# be swallowed (Python drops exceptions raised inside a gc callback), so the request is also kept
# here and checked before every commit: after a stop request no output replaces a previous one.
_STOP = [0]


def stop_handler(signum: int, frame: object) -> None:
    """A signal handler for SIGINT / SIGTERM / SIGHUP: records the stop (`request_stop`, checked
    again before every commit in case this exception is swallowed, e.g. in a gc callback) and
    unwinds like Ctrl-C (``KeyboardInterrupt`` for SIGINT, `Interrupted` otherwise)."""
    import signal

    request_stop(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


def install_stop_handlers() -> dict[int, Any]:
    """Installs `stop_handler` for SIGINT, SIGTERM and SIGHUP (main thread only); returns the
    previous handlers, to restore."""
    import signal
    import threading

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, stop_handler)
    return previous


def request_stop(signum: int) -> None:
    """Records that the process was asked to stop (called by the CLI's signal handlers)."""
    _STOP[0] = signum


def stop_requested() -> int:
    """The signal a stop was requested with, or 0."""
    return _STOP[0]


def clear_stop() -> None:
    """Forgets a stop request (the CLI calls it when a command starts)."""
    _STOP[0] = 0


def check_stop() -> None:
    """Raises ``KeyboardInterrupt`` / `Interrupted` when a stop was requested (long loops call it
    between items, so a signal whose exception was swallowed still ends the run soon)."""
    signum = _STOP[0]
    if signum:
        import signal

        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _named(err: OSError, path: Path) -> OSError:
    """A write error that names the output (``No space left on device writing out.jsonl``)."""
    if err.errno in _WRITE_ERRNOS and not err.filename:
        return OSError(err.errno, f"{err.strerror or err} writing {path}", os.fspath(path))
    return err


@functools.cache
def _default_mode() -> int:
    """``0o666`` less the umask, read once (``os.umask`` can only be read by setting it, which is
    not thread-safe, so not per file)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


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


def resolve_under(
    root: str | os.PathLike[str], name: object, *, what: str = "path", final_link_ok: bool = False
) -> Path:
    """``root / name`` for a ``name`` read from an untrusted file, when it stays inside ``root``.

    Refused: a non-string or empty name, NUL bytes, absolute paths (POSIX or Windows), drive
    letters and UNC paths, ``..`` segments that leave the root, and paths whose symlinks resolve
    outside the root's real path. A name that stays inside (``sub/a.jpg``, ``./a.jpg``) is fine.

    With ``final_link_ok`` (a destination that will be replaced by a rename, never written
    through) only the folders on the way must stay inside; the last component may be a symlink.

    Raises:
      UnsafePathError: with what was wrong, naming ``what`` (e.g. ``"file_name"``).
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"{what} must be a string, got {type(name).__name__}")
    if not name or not name.strip():
        raise UnsafePathError(f"{what} is empty")
    if "\x00" in name:
        raise UnsafePathError(f"{what} {name[:80]!r} contains a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePathError(f"{what} {name[:80]!r} is not valid UTF-8") from None
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
    real = (
        os.path.join(os.path.realpath(candidate.parent), candidate.name)
        if final_link_ok
        else os.path.realpath(candidate)
    )
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
        self._entries: set[str] = set()  # folder entries (a symlink given as an input is one)
        self._folders: set[str] = set()

    def add(self, path: str | os.PathLike[str] | None) -> None:
        """Adds one input file (a missing path is ignored: it cannot be overwritten)."""
        if path is None:
            return
        self._paths.add(os.path.realpath(path))
        self._entries.add(_entry(path))
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode):
                self._inodes.add((st.st_dev, st.st_ino))

    def add_folder(self, folder: str | os.PathLike[str] | None) -> None:
        """Adds ``folder`` itself and every file below it (its subfolders too: a COCO
        ``file_name`` or a prediction may name ``sub/x.png``; symlinked folders are not walked,
        but a symlink's target file is known by its real path)."""
        if folder is None:
            return
        self._folders.add(os.path.realpath(folder))
        for top, dirs, files in os.walk(folder, onerror=lambda err: None):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
            for name in files:
                self.add(os.path.join(top, name))
            for name in dirs:
                self._folders.add(os.path.realpath(os.path.join(top, name)))

    def holds_input(self, path: str | os.PathLike[str]) -> bool:
        """Whether the folder ``path`` is, or contains, an input folder or file (replacing or
        deleting it would lose inputs)."""
        real = os.path.realpath(path)
        inside = [p for p in (*self._folders, *self._paths) if p == real or p.startswith(real.rstrip(os.sep) + os.sep)]
        return bool(inside)

    def add_all(self, paths: Iterable[str | os.PathLike[str] | None]) -> None:
        for p in paths:
            self.add(p)

    def is_input(self, path: str | os.PathLike[str], *, through_links: bool = True) -> bool:
        """Whether writing ``path`` would replace one of the inputs.

        ``through_links=False``: ``path`` will be replaced by a rename, so a symlink there is not
        followed; only the folder entry itself counts (it may be an input entry, e.g. a symlink
        the user's images folder holds)."""
        if _entry(path) in self._entries:
            return True
        if not through_links and os.path.islink(path):
            return False
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


def _entry(path: str | os.PathLike[str]) -> str:
    """A folder entry's canonical name: the real path of its folder, then its own name."""
    p = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))


def same_entry(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same folder entry (the last component is not followed, so a
    symlink is its own entry, not its target's)."""
    return _entry(a) == _entry(b)


def _fsync_dir(folder: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicFiles:
    """Several outputs committed together: each is written to a hidden temporary file in its
    folder; when the block ends without an exception every file is flushed and fsynced first, and
    only then renamed into place (so a full disk fails before any previous output is replaced).
    On any exception every temporary is removed and every previous file is untouched.

    Examples:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with AtomicFiles() as files:
        ...     _ = files.open(folder / "out.jsonl").write("{}\\n")
        ...     _ = files.open(folder / "out.errors.jsonl").write("")
        >>> sorted(p.name for p in folder.iterdir())
        ['out.errors.jsonl', 'out.jsonl']
    """

    def __init__(self, *, guard: InputGuard | None = None) -> None:
        self._guard = guard
        self._open: list[tuple[Path, str, IO[Any], int | None]] = []

    def open(
        self, path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8", perm: int | None = None
    ) -> IO[Any]:
        """A temporary file that becomes ``path`` at the end of the block (``mode`` "w" or "wb";
        ``perm``: permission bits, default ``0o666`` less the umask)."""
        if mode not in ("w", "wb"):
            raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
        final = Path(path)
        if self._guard is not None:
            self._guard.check_output(final, "output")
        if final.name in ("", ".", "..") or final.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", os.fspath(final))
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name[:100]}.", suffix=".tmp", dir=final.parent)
        try:
            f = os.fdopen(fd, mode, encoding=encoding if mode == "w" else None, newline="" if mode == "w" else None)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._open.append((final, tmp, f, perm))
        return f

    def __enter__(self) -> AtomicFiles:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            for final, _tmp, f, perm in self._open:
                try:
                    f.flush()
                    os.fsync(f.fileno())
                    os.fchmod(f.fileno(), _default_mode() if perm is None else perm)
                except OSError as err:
                    raise _named(err, final) from None
                f.close()
            check_stop()  # a stop request (even a swallowed one) replaces nothing
            if self._guard is not None:  # again: a path may have become a link to an input meanwhile
                for final, *_ in self._open:
                    self._guard.check_output(final, "output")
        except BaseException:
            self._discard()
            raise
        pending = list(self._open)
        self._open.clear()
        for i, (final, tmp, _f, _perm) in enumerate(pending):
            try:
                os.replace(tmp, final)
            except OSError as err:
                self._open = pending[i:]
                self._discard()
                raise _named(err, final) from None
            _COMMITTED.append(final)
        for folder in {final.parent for final, *_ in pending}:
            _fsync_dir(folder)

    def _discard(self, items: list[tuple[Path, str, IO[Any], int | None]] | None = None) -> None:
        for _final, tmp, f, _perm in self._open if items is None else items:
            with contextlib.suppress(OSError):
                f.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._open.clear()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    guard: InputGuard | None = None,
    perm: int | None = None,
) -> Iterator[IO[Any]]:
    """Writes ``path`` all or nothing: yields a temporary file in the same folder, renamed onto
    ``path`` after ``flush`` + ``fsync`` when the block ends without an exception.

    On any exception (including ``KeyboardInterrupt`` and ``SystemExit``), or when a stop was
    requested by a signal meanwhile (`request_stop`), the temporary is removed and ``path`` keeps
    its previous content (or stays absent). The folder is created if missing. One file of
    `AtomicFiles`.

    Args:
      path: the final file.
      mode: ``"w"`` (text) or ``"wb"`` (bytes).
      encoding: of text mode.
      guard: when given, refuse (`OutputOverInputError`) to replace one of its inputs.
      perm: permission bits of the new file (default ``0o666`` less the umask, as ``open`` would).

    Raises:
      OutputOverInputError: ``path`` is an input of ``guard``.
      OSError: creating, writing (e.g. ``ENOSPC``, the message names ``path``) or renaming failed;
        nothing was replaced.
    """
    with AtomicFiles(guard=guard) as files:
        f = files.open(path, mode, encoding=encoding, perm=perm)
        try:
            yield f
        except OSError as err:
            raise _named(err, Path(path)) from None


def copy_file(source: str | os.PathLike[str], dest: str | os.PathLike[str], *, guard: InputGuard | None = None) -> bool:
    """Copies a regular file atomically (mode and times kept); nothing happens when ``dest``
    already is ``source`` (the same path or a hard link). A symlink at ``dest`` is replaced by the
    copy, never written through.

    Returns:
      True when a copy was written, False when ``dest`` is the same file as ``source``.
    """
    if os.path.exists(dest) and not os.path.islink(dest) and os.path.samefile(source, dest):
        return False
    perm = stat.S_IMODE(os.stat(source).st_mode)
    with open_regular(source) as src, atomic_write(dest, "wb", guard=guard, perm=perm) as out:
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
        return  # already that file (a link to it, or the file itself)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name[:100]}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    os.symlink(target, tmp)
    try:
        check_stop()
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _COMMITTED.append(final)
