"""safeio: atomic writes, the input guard, paths kept under their root, regular-file opens."""

from __future__ import annotations

import errno
import os
import socket
import threading
from pathlib import Path

import pytest

from paligemma_segcodec.errors import NotARegularFileError, OutputOverInputError, UnsafePathError
from paligemma_segcodec.safeio import (
    InputGuard,
    atomic_symlink,
    atomic_write,
    check_regular,
    copy_file,
    open_regular,
    resolve_under,
)


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_atomic_write_replaces_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    with atomic_write(out) as f:
        f.write("new\n")
        assert out.read_text() == "previous\n"  # nothing visible under the final name yet
        assert len(_temps(tmp_path)) == 1
    assert out.read_text() == "new\n"
    assert _temps(tmp_path) == []


@pytest.mark.parametrize(
    "exc",
    [
        KeyboardInterrupt(),  # Ctrl-C mid-write
        SystemExit(143),  # a signal turned into an exit
        OSError(errno.ENOSPC, "No space left on device"),  # full disk
        ValueError("bad input"),  # any error of the run
    ],
)
def test_atomic_write_keeps_the_previous_file_on_any_exception(tmp_path: Path, exc: BaseException) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"complete previous output")

    def interrupted_write() -> None:
        with atomic_write(out, "wb") as f:
            f.write(b"half of the new")
            raise exc

    with pytest.raises(type(exc)):
        interrupted_write()
    assert out.read_bytes() == b"complete previous output"
    assert _temps(tmp_path) == []


def test_atomic_write_enospc_from_the_write_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up after N bytes: the error reaches the caller, nothing partial is left."""
    out = tmp_path / "out.txt"
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"), atomic_write(out) as f:
        f.write("x" * 100_000)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not out.exists()
    assert _temps(tmp_path) == []


def test_atomic_write_never_creates_absent_file_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "new.json"

    def failed_write() -> None:
        with atomic_write(out) as f:
            f.write("{")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failed_write()
    assert not out.exists()
    assert _temps(out.parent) == []


def test_atomic_write_refuses_an_input(tmp_path: Path) -> None:
    src = tmp_path / "mask.png"
    src.write_bytes(b"precious")
    guard = InputGuard()
    guard.add(src)
    with pytest.raises(OutputOverInputError, match=r"mask\.png"), atomic_write(src, "wb", guard=guard) as f:
        f.write(b"clobbered")
    assert src.read_bytes() == b"precious"


def test_input_guard_sees_symlinks_and_hard_links(tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(b"x")
    os.symlink(src, tmp_path / "link.jpg")
    os.link(src, tmp_path / "hard.jpg")
    (tmp_path / "other.jpg").write_bytes(b"y")
    guard = InputGuard()
    guard.add(src)
    assert guard.is_input(src)
    assert guard.is_input(tmp_path / "link.jpg")  # a symlink to an input
    assert guard.is_input(tmp_path / "hard.jpg")  # a hard link of an input
    assert guard.is_input(tmp_path / "." / "a.jpg")  # another spelling
    assert not guard.is_input(tmp_path / "other.jpg")
    assert not guard.is_input(tmp_path / "new.jpg")
    with pytest.raises(OutputOverInputError, match="--json"):
        guard.check_output(tmp_path / "hard.jpg", "--json")


def test_input_guard_folder(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.png").write_bytes(b"x")
    guard = InputGuard()
    guard.add_folder(tmp_path / "m")
    assert guard.is_input(tmp_path / "m" / "a.png")
    assert not guard.is_input(tmp_path / "m" / "b.png")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../outside.jpg", "leaves its folder"),  # parent folder
        ("sub/../../x.jpg", "leaves its folder"),  # dips back out
        ("..\\x.jpg", "leaves its folder"),  # Windows separators
        ("/etc/passwd", "absolute"),  # POSIX absolute
        ("C:\\x.jpg", "absolute"),  # drive letter
        ("C:x.jpg", "absolute"),  # drive-relative
        ("\\\\server\\share\\x.jpg", "absolute"),  # UNC
        ("", "empty"),  # nothing
        ("a\x00.jpg", "NUL"),  # NUL byte
    ],
)
def test_resolve_under_refuses_escapes(tmp_path: Path, name: str, match: str) -> None:
    with pytest.raises(UnsafePathError, match=match):
        resolve_under(tmp_path, name, what="file_name")


@pytest.mark.parametrize("name", [7, None, ["a.jpg"], {"a": 1}])
def test_resolve_under_refuses_non_strings(tmp_path: Path, name: object) -> None:
    with pytest.raises(UnsafePathError, match="must be a string"):
        resolve_under(tmp_path, name)


@pytest.mark.parametrize("name", ["a.jpg", "./a.jpg", "sub/a.jpg", "sub/../a.jpg", "sub//a.jpg"])
def test_resolve_under_accepts_names_inside(tmp_path: Path, name: str) -> None:
    assert resolve_under(tmp_path, name) == tmp_path / name


def test_resolve_under_refuses_a_symlink_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"s")
    os.symlink(tmp_path / "secret.jpg", root / "a.jpg")
    os.symlink(tmp_path, root / "up")
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_under(root, "a.jpg")
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_under(root, "up/secret.jpg")


def _special(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.png"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    elif kind == "dir":
        p.mkdir()
    elif kind == "dangling":
        os.symlink(tmp_path / "nowhere", p)
    elif kind == "loop":
        os.symlink(tmp_path / "loop2.png", p)
        os.symlink(p, tmp_path / "loop2.png")
    elif kind == "device":
        os.symlink("/dev/zero", p)
    return p


@pytest.mark.parametrize(
    ("kind", "error", "match"),
    [
        ("fifo", NotARegularFileError, "FIFO"),
        ("socket", NotARegularFileError, "socket"),
        ("dir", NotARegularFileError, "folder"),
        ("dangling", FileNotFoundError, "broken link"),
        ("loop", NotARegularFileError, "loop"),
        ("device", NotARegularFileError, "character device"),
    ],
)
def test_special_files_are_refused_without_blocking(
    tmp_path: Path, kind: str, error: type[BaseException], match: str
) -> None:
    p = _special(tmp_path, kind)
    with pytest.raises(error, match=match):
        check_regular(p)
    result: list[BaseException] = []

    def attempt() -> None:
        try:
            open_regular(p).close()
        except BaseException as err:
            result.append(err)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "open_regular blocked on a special file"
    assert result and isinstance(result[0], error)


def test_open_regular_reads_a_file(tmp_path: Path) -> None:
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc")
    with open_regular(p) as f:
        assert f.read() == b"abc"


def test_copy_file_skips_itself_and_copies_otherwise(tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(b"original")
    assert copy_file(src, src) is False  # onto itself: nothing happens (no truncation)
    assert src.read_bytes() == b"original"
    os.link(src, tmp_path / "hard.jpg")
    assert copy_file(src, tmp_path / "hard.jpg") is False
    assert copy_file(src, tmp_path / "out" / "a.jpg") is True
    assert (tmp_path / "out" / "a.jpg").read_bytes() == b"original"
    assert src.read_bytes() == b"original"


def test_atomic_symlink_never_links_a_file_to_itself(tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(b"original")
    atomic_symlink(src, src)
    assert src.is_file() and not src.is_symlink() and src.read_bytes() == b"original"
    dest = tmp_path / "images" / "a.jpg"
    atomic_symlink(src, dest)
    assert dest.is_symlink() and dest.read_bytes() == b"original"
    atomic_symlink(src, dest)  # again: unchanged
    assert dest.is_symlink() and _temps(dest.parent) == []
