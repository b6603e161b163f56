"""Fault tests of the real ``segcodec`` command line, each run in a subprocess.

The data-safety rules under test: an input is never modified, moved or deleted; an output is the
complete new file or the previous file untouched (temporaries are hidden ``.NAME.*.tmp`` files in
the destination folder, gone afterwards); a bad input is one line and a non-zero exit; no traceback
without ``--debug``; exit 1 for bad input files in a run that finished the rest, 2 for refused usage
(an output over an input), 130 / 143 for SIGINT / SIGTERM with one line saying what was kept.

Every run has a timeout, so a command that opens a FIFO (and would block) fails its test instead of
hanging CI. Inputs are hashed (with inode, size, mtime, mode) before and after each run. Answers are
``<loc>``-only where possible, so show / export / eval / decode never load the codec (fast); the
runs of a table are made a few at a time by module fixtures (`fast_runs`, `heavy_runs`), and each
test checks one case.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, sockets, symlinks and signals: POSIX")

DATA = Path(__file__).resolve().parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"
TIMEOUT = 120  # seconds per run: a hang (a FIFO opened for reading) fails instead of blocking
LOC = "<loc0100><loc0100><loc0900><loc0900> water"  # an answer without <seg>: no codec is loaded
A, B = "water_body_1120", "water_body_1256"  # two of the bundled pairs
WORKERS = max(2, min(4, (os.cpu_count() or 2) + 1))
ENOSPC_AFTER = "64"  # bytes the "disk" of the ENOSPC wrapper takes before it is full
PREVIOUS = b"previous output, must survive\n"

_MAIN = "import sys\nfrom paligemma_segcodec.cli import main\nsys.argv[0] = 'segcodec'\nsys.exit(main())\n"

# The CLI on a full disk, without mount: every file under SEGCODEC_TEST_ENOSPC_DIR opened for writing
# (open, io.open, os.fdopen, Path.open) writes through a raw layer that takes SEGCODEC_TEST_ENOSPC_AFTER
# bytes in all, then cuts the write that crosses it short and raises OSError(ENOSPC) on the next, as a
# full disk does. Files elsewhere (numba's cache, …) are written normally.
_ENOSPC_MAIN = """
import builtins, errno, io, os, sys

_left = [int(os.environ["SEGCODEC_TEST_ENOSPC_AFTER"])]
_full = os.path.realpath(os.environ["SEGCODEC_TEST_ENOSPC_DIR"])
_real_open = io.open


def _on_full_disk(file):
    if isinstance(file, int):
        try:
            path = os.readlink(f"/proc/self/fd/{file}")
        except OSError:
            return True
    else:
        path = os.path.realpath(os.fsdecode(file))
    return path == _full or path.startswith(_full + os.sep)


class _FullDisk(io.RawIOBase):
    def __init__(self, raw):
        self._raw = raw
        self.name = raw.name
        self.mode = raw.mode

    def write(self, b):
        data = memoryview(b).cast("B")
        n = min(len(data), _left[0])
        if n == 0 and len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _left[0] -= n
        return self._raw.write(data[:n])

    def readinto(self, b):
        return self._raw.readinto(b)

    def readable(self):
        return self._raw.readable()

    def writable(self):
        return self._raw.writable()

    def seekable(self):
        return self._raw.seekable()

    def seek(self, *args):
        return self._raw.seek(*args)

    def tell(self):
        return self._raw.tell()

    def truncate(self, *args):
        return self._raw.truncate(*args)

    def fileno(self):
        return self._raw.fileno()

    def isatty(self):
        return False

    def close(self):
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


def _open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
    if not set(mode) & set("wax+") or not _on_full_disk(file):
        return _real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
    rawmode = mode.replace("t", "").replace("b", "") + "b"
    raw = _FullDisk(_real_open(file, rawmode, 0, closefd=closefd, opener=opener))
    buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
    return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding, errors, newline)


io.open = builtins.open = _open
from paligemma_segcodec.cli import main

sys.argv[0] = "segcodec"
sys.exit(main())
"""
ENOSPC_PREFIX = [sys.executable, "-c", _ENOSPC_MAIN]


# The CLI with a signal that arrives while a gc callback runs (as JAX's _xla_gc_callback, which runs on
# every collection, often does): once the hidden temporary of OUT.jsonl exists, the next collection
# sends SEGCODEC_TEST_SIGNAL to the process itself, and its Python handler runs inside the callback.
_SIGNAL_IN_GC_MAIN = (
    """
import gc, os, signal

_dir = os.environ["SEGCODEC_TEST_SIGNAL_DIR"]
_sig = int(os.environ["SEGCODEC_TEST_SIGNAL"])
_sent = []
signal.signal(signal.SIGINT, signal.default_int_handler)  # even where the parent shell ignores SIGINT


def _signal_during_gc(phase, info):
    if _sent or phase != "start" or not any(n.endswith(".tmp") for n in os.listdir(_dir)):
        return
    _sent.append(True)
    os.kill(os.getpid(), _sig)
    for _ in range(1000):  # the handler runs here, inside the callback
        pass


gc.callbacks.append(_signal_during_gc)
"""
    + _MAIN
)
SIGNAL_IN_GC_PREFIX = [sys.executable, "-c", _SIGNAL_IN_GC_MAIN]


def enospc_env(full: Path) -> dict[str, str]:
    """The environment of an ENOSPC_PREFIX run whose disk is full under ``full``."""
    return {"SEGCODEC_TEST_ENOSPC_AFTER": ENOSPC_AFTER, "SEGCODEC_TEST_ENOSPC_DIR": str(full)}


def cli_prefix() -> list[str]:
    """The installed ``segcodec`` console script (``python -m paligemma_segcodec.cli`` lacks the
    dataset commands: see `test_python_dash_m_has_every_command`), else the same entry point via -c."""
    script = Path(sys.executable).with_name("segcodec")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", _MAIN]


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PALIGEMMA_SEGCODEC_CHECKPOINT", "SEGCODEC_DEBUG")}
    env.update({"HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"})
    env.update(extra or {})
    return env


def _default_sigint() -> None:
    """preexec_fn of the signal test (run from the main thread only): a child of a shell that ignores
    SIGINT would ignore it too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def segcodec(
    *args: object, cwd: Path, prefix: list[str] | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One CLI run; a run over TIMEOUT is killed and returned with returncode -999 (never raises)."""
    cmd = [*(prefix or cli_prefix()), *(os.fspath(a) if isinstance(a, Path) else str(a) for a in args)]
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            env=base_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else str(err.stdout or "")
        return subprocess.CompletedProcess(cmd, -999, out, f"HUNG: killed after {TIMEOUT}s (a FIFO opened?)")


def describe(r: subprocess.CompletedProcess[str]) -> str:
    args = [a if len(a) < 200 else a[:60] + "…" for a in r.args[1:]]
    return f"\nrc={r.returncode} args={args}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-4000:]}"


# -- files: snapshots, temporaries, faults ---------------------------------------------------------------------


def _state(path: Path) -> tuple[object, ...]:
    """What must not change about an input: kind, inode, size, mtime, mode, and the bytes' hash
    (lstat only: a FIFO or socket is never opened)."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return ("file", st.st_ino, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), digest)
    if stat.S_ISLNK(st.st_mode):
        return ("symlink", os.readlink(path), st.st_ino)
    if stat.S_ISDIR(st.st_mode):
        return ("folder", st.st_ino)
    return (stat.S_IFMT(st.st_mode), st.st_ino, st.st_mtime_ns)


def snapshot(*roots: Path) -> dict[str, tuple[object, ...]]:
    """``_state`` of every entry under ``roots`` (and of the roots), not following symlinks."""
    out: dict[str, tuple[object, ...]] = {}
    for root in roots:
        out[str(root)] = _state(root)
        if not os.path.isdir(root) or os.path.islink(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                out[os.path.join(dirpath, name)] = _state(Path(dirpath, name))
    return out


def assert_unchanged(before: dict[str, tuple[object, ...]], what: str = "") -> None:
    changed = {}
    for path, was in before.items():
        try:
            now: object = _state(Path(path))
        except FileNotFoundError:
            now = "DELETED"
        if now != was:
            changed[path] = (was, now)
    assert not changed, f"inputs changed{what}: {changed}"


def temporaries(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            found += [
                os.path.join(dirpath, n) for n in dirnames + filenames if n.startswith(".") and n.endswith(".tmp")
            ]
    return found


def error_lines(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.startswith("Error:")]


def assert_one_error(r: subprocess.CompletedProcess[str], codes: int | tuple[int, ...], *needles: str) -> str:
    """Exit code in ``codes``, exactly one ``Error:`` line (containing each needle), no traceback."""
    codes = (codes,) if isinstance(codes, int) else codes
    assert r.returncode in codes, describe(r)
    assert "Traceback" not in r.stderr, describe(r)
    lines = error_lines(r)
    assert len(lines) == 1, describe(r)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in the error line{describe(r)}"
    return lines[0]


def copy_water(dest: Path, stems: tuple[str, ...] | None = (A, B)) -> Path:
    """The bundled pairs (``stems``, or all) copied into ``dest/images`` and ``dest/masks``."""
    for sub in ("images", "masks"):
        (dest / sub).mkdir(parents=True)
        for p in sorted((WATER / sub).iterdir()):
            if stems is None or p.stem in stems:
                shutil.copy2(p, dest / sub / p.name)
    return dest


def write_predictions(path: Path, names: list[str], text: str = LOC) -> Path:
    path.write_text("".join(json.dumps({"image": n, "prediction": text}) + "\n" for n in names))
    return path


def make_bomb(path: Path) -> None:
    """A PNG whose header claims 100000x100000 pixels (a decompression bomb; ~70 bytes on disk)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    struct.pack_into(">II", data, 16, 100_000, 100_000)  # IHDR width, height
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)  # its CRC
    path.write_bytes(bytes(data))


def make_truncated(path: Path) -> None:
    data = (WATER / "images" / f"{A}.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def make_empty(path: Path) -> None:
    path.write_bytes(b"")


def make_text(path: Path) -> None:
    path.write_text("this is a text file, not an image\n")


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    old = os.getcwd()  # bind by a short relative name (AF_UNIX paths are limited to ~108 bytes)
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path.name)
    finally:
        os.chdir(old)


def make_dangling(path: Path) -> None:
    path.symlink_to("nowhere" + path.suffix)


def make_loop(path: Path) -> None:
    other = path.with_name(path.stem + "_loop" + path.suffix)
    path.symlink_to(other.name)
    other.symlink_to(path.name)


def make_folder(path: Path) -> None:
    path.mkdir()


HOSTILE: dict[str, Callable[[Path], None]] = {
    "bomb": make_bomb,  # header claims 10^10 pixels (> Pillow's limit): refused before decoding
    "truncated": make_truncated,  # the first half of a real JPEG
    "empty": make_empty,  # zero bytes
    "text": make_text,  # a text file named like an image
}
SPECIAL: dict[str, Callable[[Path], None]] = {
    "fifo": make_fifo,  # a named pipe: opening it for reading would block forever
    "socket": make_socket,  # a bound AF_UNIX socket
    "dangling": make_dangling,  # a symlink to a missing file
    "loop": make_loop,  # a -> b -> a
    "folder": make_folder,  # a directory named like an image
}
SUFFIX = {"bomb": ".png", "text": ".png", "folder": ".png"}  # else .jpg


# -- running tables of cases, a few at a time ---------------------------------------------------------------------


@dataclass
class Case:
    """Runs (made one after the other) in a prepared folder, and what they left."""

    root: Path
    runs: list[list[object]]
    watch: list[Path] | None = None  # inputs to compare before/after (default: all of root)
    prefix: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    capture: list[Path] = field(default_factory=list)  # files read back after each run
    before: dict[str, tuple[object, ...]] = field(default_factory=dict)
    results: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    captured: list[dict[Path, bytes | None]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def r(self) -> subprocess.CompletedProcess[str]:
        return self.results[-1]


def _run_case(case: Case) -> None:
    t0 = time.perf_counter()
    for args in case.runs:
        case.results.append(segcodec(*args, cwd=case.root, prefix=case.prefix, env=case.env))
        case.captured.append({p: p.read_bytes() if p.is_file() else None for p in case.capture})
    case.seconds = time.perf_counter() - t0


def run_table(base: Path, table: dict[str, Callable[[Path], Case]]) -> dict[str, Case]:
    cases = {}
    for name, setup in table.items():
        case = setup(base / name)
        case.before = snapshot(*(case.watch or [case.root]))
        cases[name] = case
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(_run_case, cases.values()))
    return cases


# -- the fast table: no codec, a couple of seconds each -----------------------------------------------------------

FAST: dict[str, Callable[[Path], Case]] = {}


def fast(name: str) -> Callable[[Callable[[Path], Case]], Callable[[Path], Case]]:
    def register(setup: Callable[[Path], Case]) -> Callable[[Path], Case]:
        FAST[name] = setup
        return setup

    return register


def _convert(d: Path, *extra: object, images: Path | None = None, output: Path | None = None) -> list[object]:
    args = ["convert", "--images", images or d / "images", "--masks", d / "masks", "--label", "water"]
    return [*args, "--output", output or d / "out.jsonl", "--checkpoint", CKPT, "--no-progress", *extra]


def _img(d: Path, stem: str = A) -> Path:
    return d / "images" / f"{stem}.jpg"


def _mask(d: Path, stem: str = A) -> Path:
    return d / "masks" / f"{stem}.jpg"


def _preds(d: Path, names: list[str] | None = None) -> Path:
    return write_predictions(d / "preds.jsonl", names or [f"{A}.jpg", f"{B}.jpg"])


# 2. Inputs are sacred: an output pointed at an input is refused (exit 2) before any work.
def _conv(d: Path, output: Path, *extra: object) -> list[object]:
    return [*_convert(d, output=output), *extra]


def _hardlink(src: Path, dest: Path) -> Path:
    os.link(src, dest)
    return dest


def _symlink(src: Path, dest: Path) -> Path:
    dest.symlink_to(src)
    return dest


def _png_copy(src: Path, dest: Path) -> Path:
    Image.open(src).save(dest)
    return dest


def _text(dest: Path, text: str) -> Path:
    dest.write_text(text)
    return dest


def _swap_images_and_masks(d: Path) -> Path:  # masks in d/images, images in d/pics
    (d / "images").rename(d / "pics")
    (d / "masks").rename(d / "images")
    return d


def _coco(d: Path) -> list[object]:
    coco = _text(d / "coco.json", '{"images": [], "annotations": [], "categories": []}\n')
    return ["convert", "--images", d / "images", "--coco", coco, "--output", coco]


def _refused_copy_into_masks(d: Path) -> list[object]:
    _swap_images_and_masks(d)
    args = ["convert", "--images", d / "pics", "--masks", d / "images", "--label", "water"]
    return [*args, "--output", d / "out.jsonl", "--copy-images"]


def _show_into_images(d: Path) -> list[object]:
    _png_copy(_img(d), d / "images" / f"{B}.png")
    return ["show", "--predictions", _preds(d), "--images", d / "images", "--output", d / "images"]


def _predictions_and(d: Path, command: str, *extra: object) -> list[object]:
    folder = ["--masks", d / "masks"] if command == "eval" else ["--images", d / "images"]
    return [command, "--predictions", _preds(d), *folder, *extra]


REFUSED: dict[str, Callable[[Path], list[object]]] = {
    # decode --out pointed at its own --image
    "decode-out-is-image": lambda d: ["decode", LOC, "--image", _img(d), "--output", _img(d)],
    # decode --out a symlink to the --image
    "decode-out-symlink-to-image": lambda d: [
        "decode",
        LOC,
        "--image",
        _img(d),
        "--output",
        _symlink(_img(d), d / "o.png"),
    ],
    # show --text: the overlay (--out folder / NAME.png) would be the --image itself
    "show-text-out-is-image": lambda d: [
        "show",
        "--text",
        LOC,
        "--image",
        _png_copy(_img(d), d / "p.png"),
        "--output",
        d,
    ],
    # show --out = --images, which holds B.png: the overlay of B.jpg would replace it
    "show-out-is-images-folder": _show_into_images,
    # export --out = the predictions file
    "export-out-is-predictions": lambda d: _predictions_and(d, "export", "--output", d / "preds.jsonl"),
    # export --out a hard link (os.link) of the predictions file
    "export-out-hardlink-of-predictions": lambda d: [
        *_predictions_and(d, "export"),
        *["--output", _hardlink(d / "preds.jsonl", d / "coco.json")],
    ],
    # eval --json = the predictions file
    "eval-json-is-predictions": lambda d: _predictions_and(d, "eval", "--json", d / "preds.jsonl"),
    # eval --csv = a ground-truth mask
    "eval-csv-is-mask": lambda d: _predictions_and(d, "eval", "--csv", _mask(d)),
    # eval --json a symlink to a mask
    "eval-json-symlink-to-mask": lambda d: _predictions_and(d, "eval", "--json", _symlink(_mask(d), d / "m.json")),
    # lint --json = a mask file
    "lint-json-is-mask": lambda d: ["lint", "--images", d / "images", "--masks", d / "masks", "--json", _mask(d)],
    # convert --output = the --coco JSON
    "convert-output-is-coco": _coco,
    # convert --output = a mask
    "convert-output-is-mask": lambda d: _conv(d, _mask(d)),
    # convert --output = the --checkpoint (a copy of it, not the repository's)
    "convert-output-is-checkpoint": lambda d: _conv(d, shutil.copy2(CKPT, d / "c.npz"), "--checkpoint", d / "c.npz"),
    # convert --output a symlink to an input
    "convert-output-symlink-to-mask": lambda d: _conv(d, _symlink(_mask(d), d / "out.jsonl")),
    # convert --output a hard link of an input
    "convert-output-hardlink-of-mask": lambda d: _conv(d, _hardlink(_mask(d), d / "out.jsonl")),
    # convert --errors (where the errors list goes) = a mask
    "convert-errors-is-mask": lambda d: _conv(d, d / "out.jsonl", "--errors", _mask(d)),
    # the default errors list OUT.errors.jsonl would replace the --train-list
    "convert-errors-list-is-train-list": lambda d: _conv(
        d, d / "out.jsonl", "--train-list", _text(d / "out.errors.jsonl", f"{A}.jpg\n")
    ),
    # --image-size: OUT/images IS the --images folder (resized copies would replace the sources)
    "convert-image-size-into-images-folder": lambda d: _conv(d, d / "out.jsonl", "--image-size", "224"),
    # --copy-images: OUT/images IS the --masks folder
    "convert-copy-images-into-masks-folder": _refused_copy_into_masks,
}
for _name, _args in REFUSED.items():
    fast("refused-" + _name)(lambda d, a=_args: Case(copy_water(d), [a(d)]))


# 3. Untrusted paths in a predictions file: refused and listed, never read (outside targets are FIFOs).
UNSAFE_NAMES = {
    "dotdot": "../outside.jpg",
    "absolute": "/etc/passwd",
    "drive-letter": "C:\\x.jpg",
    "dotdot-inside-sub": "sub/../../outside.jpg",
    "backslash-dotdot": "..\\outside.jpg",
    "unc": "\\\\server\\share\\x.jpg",
    "symlink-out": "escape.jpg",  # a symlink inside --images to a FIFO outside it
}


def _untrusted(d: Path, command: str) -> Case:
    copy_water(d)
    make_fifo(d / "outside.jpg")
    (d / "elsewhere").mkdir()
    make_fifo(d / "elsewhere" / "x.jpg")
    (d / "images" / "escape.jpg").symlink_to(Path("..", "elsewhere", "x.jpg"))
    preds = write_predictions(d / "preds.jsonl", [f"{A}.jpg", *UNSAFE_NAMES.values(), f"{B}.jpg"])
    out = d / ("overlays" if command == "show" else "coco.json")
    return Case(d, [[command, "--predictions", preds, "--images", d / "images", "--output", out, "--no-progress"]])


fast("untrusted-show")(lambda d: _untrusted(d, "show"))
fast("untrusted-export")(lambda d: _untrusted(d, "export"))


# 4. A FIFO given as an argument: a clean error (exit 1 or 2), never a blocked read.
FIFO_ARGS: dict[str, Callable[[Path, Path], list[object]]] = {
    "encode": lambda d, f: ["encode", f, "--checkpoint", CKPT],  # the mask to encode
    "decode-image": lambda d, f: ["decode", LOC, "--image", f],  # the image to draw over
    "eval-predictions": lambda d, f: ["eval", "--predictions", f, "--masks", d / "masks"],  # --predictions
    "checkpoint": lambda d, f: ["encode", _mask(d), "--checkpoint", f],  # --checkpoint
    "convert-coco": lambda d, f: ["convert", "--images", d / "images", "--coco", f, "--output", d / "o.jsonl"],
}


def _fifo_arg(d: Path, name: str) -> Case:
    copy_water(d)
    make_fifo(d / "fifo.png")
    return Case(d, [FIFO_ARGS[name](d, d / "fifo.png")])


for _name in FIFO_ARGS:
    fast("fifo-arg-" + _name)(lambda d, n=_name: _fifo_arg(d, n))

# 4./5. eval --masks with every special and hostile file among two good masks (one run).
EVAL_BAD = {kind: f"water_body_90{i:02d}{SUFFIX.get(kind, '.jpg')}" for i, kind in enumerate([*SPECIAL, *HOSTILE])}


@fast("eval-bad-masks")
def _(d: Path) -> Case:
    copy_water(d)
    for kind, name in EVAL_BAD.items():
        (HOSTILE | SPECIAL)[kind](d / "masks" / name)
    return Case(d, [["eval", "--predictions", _preds(d), "--masks", d / "masks", "--json", d / "m.json"]])


# 5. Hostile images given to encode / decode --image; and to show / export through predictions.
def _hostile_file(d: Path, kind: str) -> Path:
    copy_water(d)
    path = d / ("bad" + SUFFIX.get(kind, ".jpg"))
    HOSTILE[kind](path)
    return path


for _kind in HOSTILE:
    fast("hostile-encode-" + _kind)(lambda d, k=_kind: Case(d, [["encode", _hostile_file(d, k), "--checkpoint", CKPT]]))
fast("hostile-decode-bomb")(lambda d: Case(d, [["decode", LOC, "--image", _hostile_file(d, "bomb")]]))


def _hostile_images(d: Path, command: str) -> Case:
    copy_water(d)
    names = [f"{A}.jpg"]
    for kind, make in HOSTILE.items():
        names.append(f"{kind}{SUFFIX.get(kind, '.jpg')}")
        make(d / "images" / names[-1])
    preds = write_predictions(d / "preds.jsonl", [*names, f"{B}.jpg"])
    out = d / ("overlays" if command == "show" else "coco.json")
    return Case(d, [[command, "--predictions", preds, "--images", d / "images", "--output", out, "--no-progress"]])


fast("hostile-show")(lambda d: _hostile_images(d, "show"))
fast("hostile-export")(lambda d: _hostile_images(d, "export"))

# 6. --debug, before or after the command, shows the traceback (hostile-encode-empty: the same without).
fast("debug-before-command")(lambda d: Case(d, [["--debug", "encode", _hostile_file(d, "empty")]]))
fast("debug-after-command")(lambda d: Case(d, [["encode", _hostile_file(d, "empty"), "--debug"]]))


# 1b. A full disk (the ENOSPC wrapper): exit 1, one line, the previous output untouched, no temporary.
ENOSPC: dict[str, Callable[[Path], tuple[list[object], Path]]] = {
    # export --out: the COCO JSON
    "export": lambda d: (
        ["export", "--predictions", _preds(d), "--images", d / "images", "--output", d / "c.json"],
        d / "c.json",
    ),
    # eval --csv: the per-image scores
    "eval-csv": lambda d: (
        ["eval", "--predictions", _preds(d), "--masks", d / "masks", "--csv", d / "m.csv"],
        d / "m.csv",
    ),
    # lint --json: the findings
    "lint-json": lambda d: (
        ["lint", "--images", d / "images", "--masks", d / "masks", "--json", d / "l.json"],
        d / "l.json",
    ),
    # decode --out: the overlay PNG
    "decode-out": lambda d: (["decode", LOC, "--image", _img(d), "--output", d / "o.png"], d / "o.png"),
    # show --out: an overlay PNG, a previous A.png there
    "show-out": lambda d: (
        ["show", "--predictions", _preds(d), "--images", d / "images", "--output", d / "ov", "--no-progress"],
        d / "ov" / f"{A}.png",
    ),
}


def _enospc(d: Path, name: str) -> Case:
    copy_water(d)
    args, target = ENOSPC[name](d)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(PREVIOUS)
    return Case(d, [args], prefix=ENOSPC_PREFIX, env=enospc_env(d), capture=[target])


for _name in ENOSPC:
    fast("enospc-" + _name)(lambda d, n=_name: _enospc(d, n))


@fast("python-dash-m")  # python -m paligemma_segcodec.cli lint --help
def _(d: Path) -> Case:
    d.mkdir()
    return Case(d, [["lint", "--help"]], prefix=[sys.executable, "-m", "paligemma_segcodec.cli"])


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return run_table(tmp_path_factory.mktemp("fast"), FAST)


# -- the heavy table: convert / audit (the codec is loaded) -----------------------------------------------------

PLANTED = {  # stem: (folder of the fault, kind); the other folder gets a good partner file
    "water_body_9001": ("masks", "fifo"),
    "water_body_9002": ("images", "socket"),
    "water_body_9003": ("masks", "dangling"),
    "water_body_9004": ("images", "loop"),
    "water_body_9005": ("images", "folder"),
    "water_body_9006": ("images", "bomb"),
    "water_body_9007": ("masks", "truncated"),
    "water_body_9008": ("images", "empty"),
    "water_body_9009": ("masks", "text"),
    "water_body_9010": ("masks", "bomb"),
}


AUDIT_UNREAD = ("water_body_9006", "water_body_9008")  # bad images: audit opens them to check them


def planted_name(stem: str) -> str:
    return stem + SUFFIX.get(PLANTED[stem][1], ".jpg")


def faulty_dataset(d: Path) -> Path:
    """All ten bundled pairs, plus one unusable file per PLANTED entry."""
    copy_water(d, stems=None)
    for stem, (folder, kind) in PLANTED.items():
        (HOSTILE | SPECIAL)[kind](d / folder / planted_name(stem))
        partner = "masks" if folder == "images" else "images"
        shutil.copy2(WATER / partner / f"{A}.jpg", d / partner / f"{stem}.jpg")
    return d


HEAVY: dict[str, Callable[[Path], Case]] = {}


def _heavy_faulty(d: Path) -> Case:
    faulty_dataset(d)
    return Case(
        d,
        [
            _convert(d),
            ["lint", "--images", d / "images", "--masks", d / "masks", "--json", d / "lint.json", "--no-progress"],
            ["audit", "--images", d / "images", "--masks", d / "masks", "--output", d / "audit", "--checkpoint", CKPT],
        ],
        watch=[d / "images", d / "masks"],
    )


def _heavy_enospc(d: Path) -> Case:  # convert on a full disk, a previous out.jsonl and errors list there
    copy_water(d)
    (d / "out.jsonl").write_bytes(PREVIOUS)
    (d / "out.errors.jsonl").write_bytes(b'{"file": "old", "reason": "an earlier run", "severity": "error"}\n')
    return Case(d, [_convert(d)], prefix=ENOSPC_PREFIX, env=enospc_env(d), watch=[d / "images", d / "masks"])


def _heavy_same_folder(d: Path, mode: str) -> Case:  # OUT/images IS the --images folder; run twice
    copy_water(d)
    (d / "out.errors.jsonl").write_text('{"file": "stale", "reason": "an earlier run", "severity": "error"}\n')
    return Case(
        d,
        [_convert(d, mode), _convert(d, mode)],
        watch=[d / "images", d / "masks"],
        capture=[d / "out.jsonl", d / "out.errors.jsonl"],
    )


def _heavy_inside(d: Path) -> Case:  # OUT/images inside the --images folder (output written in it)
    copy_water(d)
    return Case(d, [_convert(d, "--copy-images", output=d / "images" / "out.jsonl")])


def _heavy_containing(d: Path) -> Case:  # OUT/images contains the --images folder (d/images/src)
    copy_water(d)
    (d / "images").rename(d / "src")
    (d / "images").mkdir()
    (d / "src").rename(d / "images" / "src")
    src = d / "images" / "src"
    return Case(d, [_convert(d, "--link-images", images=src)], watch=[src, d / "masks"])


def _heavy_signal_in_gc(d: Path, sig: int) -> Case:  # a signal during a gc callback, a previous out.jsonl
    copy_water(d)
    (d / "out").mkdir()
    (d / "out" / "out.jsonl").write_bytes(PREVIOUS)
    env = {"SEGCODEC_TEST_SIGNAL_DIR": str(d / "out"), "SEGCODEC_TEST_SIGNAL": str(int(sig))}
    args = _convert(d, "--batch-size", "1", output=d / "out" / "out.jsonl")
    return Case(d, [args], prefix=SIGNAL_IN_GC_PREFIX, env=env, watch=[d / "images", d / "masks"])


def _heavy_link_reruns(d: Path) -> Case:  # --link-images into d/out, the same again, then --image-size 224
    copy_water(d)
    out = d / "out" / "out.jsonl"
    runs = [_convert(d, "--link-images", output=out)] * 2 + [_convert(d, "--image-size", "224", output=out)]
    return Case(d, runs, watch=[d / "images", d / "masks"], capture=[out])


HEAVY["faulty"] = _heavy_faulty
HEAVY["link-reruns"] = _heavy_link_reruns
HEAVY["signal-in-gc-SIGINT"] = lambda d: _heavy_signal_in_gc(d, signal.SIGINT)
HEAVY["signal-in-gc-SIGTERM"] = lambda d: _heavy_signal_in_gc(d, signal.SIGTERM)
HEAVY["enospc-convert"] = _heavy_enospc
HEAVY["copy-same-folder"] = lambda d: _heavy_same_folder(d, "--copy-images")
HEAVY["link-same-folder"] = lambda d: _heavy_same_folder(d, "--link-images")
HEAVY["copy-inside"] = _heavy_inside
HEAVY["link-containing"] = _heavy_containing


@pytest.fixture(scope="module")
def heavy_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return run_table(tmp_path_factory.mktemp("heavy"), HEAVY)


# == 1. Atomic outputs ===========================================================================================


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 copies of the ten bundled pairs (400 pairs): a --batch-size 1 convert runs long enough to be signalled."""
    d = tmp_path_factory.mktemp("big")
    for sub in ("images", "masks"):
        (d / sub).mkdir()
        for p in sorted((WATER / sub).iterdir()):
            data = p.read_bytes()
            for i in range(40):
                (d / sub / f"{p.stem}_{i:02d}{p.suffix}").write_bytes(data)
    return d


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code"),
    [
        (signal.SIGINT, 130),  # Ctrl-C
        (signal.SIGTERM, 143),  # kill, a scheduler's stop
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_mid_convert_keeps_previous_output(big: Path, tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "out.jsonl").write_bytes(PREVIOUS)
    before = snapshot(big)
    cmd = [*cli_prefix(), *map(str, _convert(big, "--batch-size", "1", output=out / "out.jsonl"))]
    with (tmp_path / "stdout").open("w") as so, (tmp_path / "stderr").open("w") as se:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=so,
            stderr=se,
            preexec_fn=_default_sigint,
        )
        try:
            deadline = time.monotonic() + TIMEOUT
            while not list(out.glob(".out.jsonl.*.tmp")):  # the run has started writing
                assert proc.poll() is None, f"convert ended (rc {proc.returncode}) before it was signalled"
                assert time.monotonic() < deadline, "convert never started writing"
                time.sleep(0.02)
            time.sleep(0.2)
            assert proc.poll() is None, "convert finished before the signal: make the run longer"
            proc.send_signal(sig)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    r = subprocess.CompletedProcess(cmd, rc, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text())
    line = assert_one_error(r, code, signal.Signals(sig).name)
    assert "kept" in line or "unchanged" in line, describe(r)
    assert (out / "out.jsonl").read_bytes() == PREVIOUS
    assert not (out / "out.errors.jsonl").exists(), "a partial errors list was left"
    assert sorted(p.name for p in out.iterdir()) == ["out.jsonl"]
    assert not temporaries(out, big)
    assert_unchanged(before)


def fill_up(path: Path) -> None:
    """Writes ``path`` until its file system is full."""
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_during_gc_callback_still_stops_the_run(heavy_runs: dict[str, Case], sig: int, code: int) -> None:
    case = heavy_runs[f"signal-in-gc-{signal.Signals(sig).name}"]
    assert_one_error(case.r, code, signal.Signals(sig).name)
    assert (case.root / "out" / "out.jsonl").read_bytes() == PREVIOUS
    assert not temporaries(case.root)
    assert_unchanged(case.before)


@pytest.mark.slow
def test_full_disk_tmpfs_keeps_previous_output(tmp_path: Path) -> None:
    """convert into a real full file system (a 64 KiB tmpfs, filled up after the previous out.jsonl)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    data = copy_water(tmp_path / "data")
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], capture_output=True, text=True, timeout=30
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        (full / "out.jsonl").write_bytes(PREVIOUS)
        fill_up(full / "filler")
        before = snapshot(data)
        r = segcodec(*_convert(data, output=full / "out.jsonl"), cwd=tmp_path)
        assert_one_error(r, 1, "No space left")
        assert (full / "out.jsonl").read_bytes() == PREVIOUS
        assert not temporaries(full)
        assert_unchanged(before)
    finally:
        subprocess.run(["umount", "-l", str(full)], capture_output=True, timeout=30)


@pytest.mark.slow
def test_full_disk_convert_keeps_previous_output(heavy_runs: dict[str, Case]) -> None:
    """The same without mount: the ENOSPC wrapper, a previous out.jsonl there."""
    case = heavy_runs["enospc-convert"]
    assert_one_error(case.r, 1, "No space left")
    assert (case.root / "out.jsonl").read_bytes() == PREVIOUS
    assert not temporaries(case.root)
    assert_unchanged(case.before)


@pytest.mark.slow
def test_full_disk_convert_keeps_previous_errors_list(heavy_runs: dict[str, Case]) -> None:
    case = heavy_runs["enospc-convert"]
    assert case.r.returncode == 1, describe(case.r)
    assert (case.root / "out.errors.jsonl").read_text().startswith('{"file": "old"'), "errors list replaced"


@pytest.mark.parametrize("name", list(ENOSPC))
def test_full_disk_keeps_previous_output(fast_runs: dict[str, Case], name: str) -> None:
    case = fast_runs["enospc-" + name]
    assert_one_error(case.r, 1, "No space left")
    target = case.capture[0]
    assert case.captured[0][target] == PREVIOUS, f"{target.name} is not the previous file{describe(case.r)}"
    assert not temporaries(case.root)
    assert_unchanged(case.before)


def test_full_disk_error_names_the_output(fast_runs: dict[str, Case]) -> None:
    case = fast_runs["enospc-export"]
    assert "c.json" in assert_one_error(case.r, 1, "No space left")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["copy-same-folder", "link-same-folder"])
def test_stale_errors_list_replaced_and_reruns_identical(heavy_runs: dict[str, Case], name: str) -> None:
    """--copy-images / --link-images where OUT/images IS the --images folder, run twice, with a stale
    OUT.errors.jsonl from an earlier run: sources stay regular files, untouched; the errors list is
    this run's (empty); the second run's JSONL is byte-identical."""
    case = heavy_runs[name]
    for r in case.results:
        assert r.returncode == 0, describe(r)
        assert "Traceback" not in r.stderr and not error_lines(r), describe(r)
    first, second = case.captured
    out, errors = case.capture
    assert first[errors] == b"", "the stale errors list was not replaced"
    assert first[out] and first[out] == second[out], "a second run gave different bytes"
    assert len(first[out].splitlines()) == 2
    assert_unchanged(case.before)
    assert sorted(p.name for p in (case.root / "images").iterdir()) == [f"{A}.jpg", f"{B}.jpg"]
    assert all(p.is_file() and not p.is_symlink() for p in (case.root / "images").iterdir())
    assert not temporaries(case.root)


@pytest.mark.slow
def test_link_images_rerun_is_identical(heavy_runs: dict[str, Case]) -> None:
    case = heavy_runs["link-reruns"]
    first, second = case.results[:2]
    assert first.returncode == 0, describe(first)
    assert second.returncode == 0, describe(second)
    out = case.capture[0]
    assert case.captured[0][out] and case.captured[0][out] == case.captured[1][out]
    assert_unchanged(case.before)


@pytest.mark.slow
def test_image_size_after_link_images_replaces_the_links(heavy_runs: dict[str, Case]) -> None:
    case = heavy_runs["link-reruns"]
    r = case.results[2]
    assert r.returncode == 0, describe(r)
    for stem in (A, B):
        placed = case.root / "out" / "images" / f"{stem}.jpg"
        assert placed.is_file() and not placed.is_symlink()
        with Image.open(placed) as im:
            assert im.size == (224, 224)
    assert_unchanged(case.before)


@pytest.mark.slow
def test_link_images_reruns_never_touch_sources(heavy_runs: dict[str, Case]) -> None:
    case = heavy_runs["link-reruns"]
    assert case.results[0].returncode == 0, describe(case.results[0])
    for r in case.results:
        assert "Traceback" not in r.stderr, describe(r)
    assert_unchanged(case.before)
    assert not temporaries(case.root)


@pytest.mark.slow
def test_outputs_follow_the_umask(heavy_runs: dict[str, Case]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE(os.stat(heavy_runs["copy-same-folder"].root / "out.jsonl").st_mode)
    assert mode == 0o666 & ~umask, oct(mode)


@pytest.mark.slow
def test_copy_images_inside_the_images_folder(heavy_runs: dict[str, Case]) -> None:
    """--output in the --images folder: OUT/images is a folder inside it; sources untouched, copies equal."""
    case = heavy_runs["copy-inside"]
    assert case.r.returncode == 0, describe(case.r)
    images = case.root / "images"
    for stem in (A, B):
        src, copy = images / f"{stem}.jpg", images / "images" / f"{stem}.jpg"
        assert src.is_file() and not src.is_symlink()
        assert copy.read_bytes() == (WATER / "images" / f"{stem}.jpg").read_bytes()
    assert_unchanged(case.before)
    assert not temporaries(case.root)


@pytest.mark.slow
def test_link_images_into_a_folder_containing_the_images(heavy_runs: dict[str, Case]) -> None:
    """--images d/images/src, --output d/out.jsonl: links land in d/images beside src; sources untouched."""
    case = heavy_runs["link-containing"]
    assert case.r.returncode == 0, describe(case.r)
    assert_unchanged(case.before)
    for stem in (A, B):
        link = case.root / "images" / f"{stem}.jpg"
        assert link.is_symlink() and link.resolve() == (case.root / "images" / "src" / f"{stem}.jpg").resolve()
    assert not temporaries(case.root)


# == 2. Inputs are sacred =========================================================================================


@pytest.mark.parametrize("name", list(REFUSED))
def test_output_over_input_is_refused(fast_runs: dict[str, Case], name: str) -> None:
    case = fast_runs["refused-" + name]
    assert_one_error(case.r, 2)
    assert_unchanged(case.before)
    assert set(snapshot(case.root)) == set(case.before), "files were created by a refused run"


# == 3. Untrusted paths ===========================================================================================


@pytest.mark.parametrize("command", ["show", "export"])
def test_untrusted_prediction_paths_are_refused_and_never_read(fast_runs: dict[str, Case], command: str) -> None:
    case = fast_runs["untrusted-" + command]
    r = case.r
    assert r.returncode == 1, describe(r)
    assert "Traceback" not in r.stderr, describe(r)
    listed = [line for line in r.stderr.splitlines() if "refused" in line]
    for name in UNSAFE_NAMES.values():
        assert any(line.strip().startswith(name + ":") for line in listed), f"{name!r} not listed{describe(r)}"
    if command == "show":
        assert sorted(p.name for p in (case.root / "overlays").iterdir()) == [f"{A}.png", f"{B}.png"]
    else:
        document = json.loads((case.root / "coco.json").read_text())
        assert [im["file_name"] for im in document["images"]] == [f"{A}.jpg", f"{B}.jpg"]
    assert_unchanged(case.before)
    assert not temporaries(case.root)


def test_show_counts_what_it_drew(fast_runs: dict[str, Case]) -> None:
    assert "wrote 2 image(s)" in fast_runs["untrusted-show"].r.stderr


# == 4. Special files =============================================================================================


@pytest.mark.slow
@pytest.mark.parametrize("stem", list(PLANTED), ids=[f"{kind}-in-{folder}" for folder, kind in PLANTED.values()])
def test_convert_lint_audit_list_a_bad_file_and_go_on(heavy_runs: dict[str, Case], stem: str) -> None:
    """One run of each over the ten good pairs plus every planted file (FIFO, socket, broken link,
    link loop, folder named like an image, bomb, truncated, empty, text): each is listed, the good
    pairs are converted, nothing blocks, no traceback."""
    case = heavy_runs["faulty"]
    convert, lint, audit = case.results
    name = planted_name(stem)
    assert convert.returncode == 1 and "Traceback" not in convert.stderr, describe(convert)
    errors = [json.loads(line) for line in (case.root / "out.errors.jsonl").read_text().splitlines()]
    assert any(Path(e["file"]).name == name for e in errors), f"{name} not in the errors list: {errors}"
    assert len((case.root / "out.jsonl").read_text().splitlines()) == 10  # the bundled pairs
    assert lint.returncode == 1 and "Traceback" not in lint.stderr, describe(lint)
    found = json.loads((case.root / "lint.json").read_text())["problems"]
    assert any(Path(p["file"]).name == name for p in found), f"{name} not found by lint: {found}"
    assert audit.returncode == 1 and "Traceback" not in audit.stderr, describe(audit)
    assert any(line.startswith("skipped") and name in line for line in audit.stderr.splitlines()), describe(audit)
    assert (case.root / "audit" / "audit.csv").is_file()
    assert_unchanged(case.before)
    assert not temporaries(case.root)


@pytest.mark.slow
def test_audit_lists_unreadable_images(heavy_runs: dict[str, Case]) -> None:
    audit = heavy_runs["faulty"].results[2]
    skipped = [line for line in audit.stderr.splitlines() if line.startswith("skipped")]
    for stem in AUDIT_UNREAD:
        assert any(planted_name(stem) in line for line in skipped), describe(audit)


@pytest.mark.slow
def test_audit_exits_1_when_it_skipped_inputs(heavy_runs: dict[str, Case]) -> None:
    assert heavy_runs["faulty"].results[2].returncode == 1


@pytest.mark.parametrize("kind", list(EVAL_BAD))
def test_eval_lists_a_bad_mask_and_scores_the_rest(fast_runs: dict[str, Case], kind: str) -> None:
    """eval --masks over two good masks and one of each special / hostile file (one run)."""
    case = fast_runs["eval-bad-masks"]
    r = case.r
    assert r.returncode == 1 and "Traceback" not in r.stderr, describe(r)
    name = EVAL_BAD[kind]
    assert any(name in line for line in r.stderr.splitlines() if line.startswith("skipped")), describe(r)
    assert json.loads(r.stdout)["images"] == 2.0, describe(r)
    assert json.loads((case.root / "m.json").read_text())["images"] == 2.0
    assert_unchanged(case.before)
    assert not temporaries(case.root)


@pytest.mark.parametrize("name", list(FIFO_ARGS))
def test_fifo_argument_is_a_clean_error(fast_runs: dict[str, Case], name: str) -> None:
    case = fast_runs["fifo-arg-" + name]
    assert_one_error(case.r, (1, 2), "fifo.png")
    assert_unchanged(case.before)


# == 5. Hostile images ============================================================================================


@pytest.mark.parametrize("name", [*(f"encode-{kind}" for kind in HOSTILE), "decode-bomb"])
def test_hostile_image_argument_is_one_line(fast_runs: dict[str, Case], name: str) -> None:
    case = fast_runs["hostile-" + name]
    assert_one_error(case.r, 1, "bad")
    assert_unchanged(case.before)


@pytest.mark.parametrize("command", ["show", "export"])
def test_hostile_images_in_predictions_are_listed(fast_runs: dict[str, Case], command: str) -> None:
    case = fast_runs["hostile-" + command]
    r = case.r
    assert r.returncode == 1 and "Traceback" not in r.stderr and not error_lines(r), describe(r)
    for kind in HOSTILE:
        name = f"{kind}{SUFFIX.get(kind, '.jpg')}"
        assert any(line.strip().startswith(str(case.root / "images" / name)) for line in r.stderr.splitlines()), (
            f"{name} not listed{describe(r)}"
        )
    if command == "show":
        assert sorted(p.name for p in (case.root / "overlays").iterdir()) == [f"{A}.png", f"{B}.png"]
    else:
        document = json.loads((case.root / "coco.json").read_text())
        assert [im["file_name"] for im in document["images"]] == [f"{A}.jpg", f"{B}.jpg"]
    assert_unchanged(case.before)
    assert not temporaries(case.root)


# == 6. --debug ===================================================================================================


@pytest.mark.parametrize(
    ("name", "traceback"),
    [
        ("debug-before-command", True),  # segcodec --debug encode BAD
        ("debug-after-command", True),  # segcodec encode BAD --debug
        ("hostile-encode-empty", False),  # segcodec encode BAD: the one line only
    ],
)
def test_debug_shows_the_traceback(fast_runs: dict[str, Case], name: str, traceback: bool) -> None:
    r = fast_runs[name].r
    assert r.returncode == 1, describe(r)
    assert len(error_lines(r)) == 1, describe(r)
    assert ("Traceback (most recent call last)" in r.stderr) is traceback, describe(r)


def test_python_dash_m_has_every_command(fast_runs: dict[str, Case]) -> None:
    r = fast_runs["python-dash-m"].r
    assert r.returncode == 0, describe(r)
