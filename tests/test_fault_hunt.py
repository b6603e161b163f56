"""Fault hunt: cases the other fault suites do not plant (see docs/safety.md and docs/cli.md).

Each CLI case runs in a subprocess with a timeout (a FIFO opened for a blocking read fails the test
instead of hanging it); all the subprocess cases run a few at a time in one module fixture (`runs`),
and each test checks one of them.

- outputs over inputs the guard does not see (a file in a subfolder of --images, a --format hf
  dataset folder over an input folder), an output path that is an existing folder;
- file names that are not UTF-8 or hold a newline; predictions files that are nested too deeply;
- signals during the imports and inside show / eval / export / audit, a full disk in audit and in
  convert --split; a stale temporary and two concurrent runs on one output;
- special files (character devices behind a symlink) named like masks; FIFOs given as --image and
  --train-list; hostile library arguments (non-finite or absurd sizes, a ``~user`` checkpoint path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, symlinks, devices and signals: POSIX")

DATA = Path(__file__).resolve().parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"
TIMEOUT = 120
A, B = "water_body_1120", "water_body_1256"
LOC = "<loc0100><loc0100><loc0900><loc0900> water"  # no <seg>: show / export / eval load no codec
PREVIOUS = b"previous output, must survive\n"

# The CLI as `python -m paligemma_segcodec`, with optional faults planted from the environment:
# SEGCODEC_FH_SIGNAL="module:attr:n:signum": the n-th call of module.attr sends signum to the process;
# SEGCODEC_FH_ENOSPC=1: os.fsync fails with ENOSPC (a full disk, seen when the output is flushed);
# SEGCODEC_FH_IMPORT_SIGNAL="module:signum": signum arrives while `module` is being imported;
# SEGCODEC_FH_SWALLOW="module": SIGINT arrives while `module` is imported, and the import turns it into
# an ImportError (what a C extension's initialisation does with a KeyboardInterrupt).
_WRAPPER = r"""
import errno, importlib, importlib.abc, os, runpy, signal, sys, time

class _Hook(importlib.abc.MetaPathFinder):
    def __init__(self, name, action):
        self.name, self.action, self.done = name, action, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name and not self.done:
            self.done = True
            self.action()
        return None

spec = os.environ.get("SEGCODEC_FH_IMPORT_SIGNAL")
if spec:
    name, signum = spec.split(":")
    sys.meta_path.insert(0, _Hook(name, lambda: (os.kill(os.getpid(), int(signum)), time.sleep(0.5))))
swallow = os.environ.get("SEGCODEC_FH_SWALLOW")
if swallow:
    def _swallowed():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except KeyboardInterrupt:
            raise ImportError("Encountered an error while initializing the extension.") from None
    sys.meta_path.insert(0, _Hook(swallow, _swallowed))
if os.environ.get("SEGCODEC_FH_ENOSPC"):
    def _fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.fsync = _fsync
spec = os.environ.get("SEGCODEC_FH_SIGNAL")
if spec:
    module, attr, n, signum = spec.split(":")

    def _patch():
        target = importlib.import_module(module)
        owner, _, name = attr.rpartition(".")
        obj = getattr(target, owner) if owner else target
        original = getattr(obj, name)
        calls = [0]

        def wrapper(*args, **kwargs):
            calls[0] += 1
            if calls[0] == int(n):
                os.kill(os.getpid(), int(signum))
                time.sleep(0.5)  # the handler raises here
            return original(*args, **kwargs)

        setattr(obj, name, wrapper)

    import paligemma_segcodec.cli  # noqa: F401  (every command registered, then the fault planted)
    _patch()
sys.argv[0] = "segcodec"
runpy.run_module("paligemma_segcodec", run_name="__main__", alter_sys=True)
"""
WRAPPED = [sys.executable, "-c", _WRAPPER]
PLAIN = [sys.executable, "-m", "paligemma_segcodec"]


def cli(
    *args: object, env: dict[str, str] | None = None, prefix: list[str] | None = None, stdin: Any = None
) -> subprocess.CompletedProcess[str]:
    cmd = [*(prefix or PLAIN), *(os.fspath(a) if isinstance(a, Path) else str(a) for a in args)]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "", **(env or {})}
    full_env.pop("SEGCODEC_DEBUG", None)
    full_env.pop("PALIGEMMA_SEGCODEC_CHECKPOINT", None)
    full_env.update(env or {})
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            env=full_env,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else str(err.stdout or "")
        return subprocess.CompletedProcess(cmd, -999, out, f"HUNG: killed after {TIMEOUT}s")


def describe(r: subprocess.CompletedProcess[str]) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout[-1500:]}\n--- stderr\n{r.stderr[-3000:]}"


def error_lines(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]


def assert_clean_error(r: subprocess.CompletedProcess[str], codes: int | tuple[int, ...], *needles: str) -> str:
    """Exit code in ``codes``, exactly one ``Error:`` line, no traceback, no "internal error"."""
    codes = (codes,) if isinstance(codes, int) else codes
    assert r.returncode in codes, describe(r)
    assert "Traceback" not in r.stderr, describe(r)
    lines = error_lines(r)
    assert len(lines) == 1, describe(r)
    assert "internal error" not in lines[0], describe(r)
    for needle in needles:
        assert needle in lines[0], describe(r)
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root``: (kind, content hash / link target, mode)."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if os.path.islink(p):
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p)] = ("file", digest(p), st.st_mode)
            else:
                out[str(p)] = ("other", st.st_mode)
    return out


def temporaries(*roots: Path) -> list[str]:
    return [
        str(p)
        for root in roots
        if root.exists()
        for p in root.rglob(".*")
        if p.name.endswith(".tmp") and "stale" not in p.name
    ]


def copy_water(d: Path, stems: tuple[str, ...] = (A, B)) -> Path:
    for sub in ("images", "masks"):
        (d / sub).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            for f in (WATER / sub).glob(stem + ".*"):
                shutil.copy2(f, d / sub / f.name)
    return d


def img(d: Path, stem: str = A) -> Path:
    return next((d / "images").glob(stem + ".*"))


def mask(d: Path, stem: str = A) -> Path:
    return next((d / "masks").glob(stem + ".*"))


def predictions(path: Path, names: list[str], text: str = LOC) -> Path:
    path.write_text("".join(json.dumps({"image": n, "prediction": text}) + "\n" for n in names))
    return path


def convert_args(d: Path, output: Path, *extra: object) -> list[object]:
    return [
        "convert",
        "--images",
        d / "images",
        "--masks",
        d / "masks",
        "--label",
        "water",
        "--output",
        output,
        "--checkpoint",
        CKPT,
        "--no-progress",
        *extra,
    ]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A grey PNG whose header claims ``width`` x ``height`` and whose data is cut short."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


FAKE_DATASETS = """
import os
class Features(dict): pass
def Image(): return "image"
def Value(t): return t
class DatasetDict(dict): pass
class Dataset:
    def __init__(self, n): self._n = n
    @classmethod
    def from_dict(cls, data, features=None): return cls(len(next(iter(data.values()), [])))
    def __len__(self): return self._n
    def save_to_disk(self, path):
        os.makedirs(path)
        with open(os.path.join(path, "dataset.arrow"), "w") as f:
            f.write("fake")
"""


def fake_datasets(d: Path) -> dict[str, str]:
    """PYTHONPATH holding a stand-in ``datasets`` module (from_dict / save_to_disk), for --format hf."""
    (d / "fake" / "datasets").mkdir(parents=True)
    (d / "fake" / "datasets" / "__init__.py").write_text(FAKE_DATASETS)
    return {"PYTHONPATH": str(d / "fake")}


# ------------------------------------------------------------------------------------------------
# The subprocess cases. Each takes a fresh folder and returns what its tests check.

Result = dict[str, Any]
CASES: dict[str, Callable[[Path], Result]] = {}


def case(name: str) -> Callable[[Callable[[Path], Result]], Callable[[Path], Result]]:
    def register(fn: Callable[[Path], Result]) -> Callable[[Path], Result]:
        CASES[name] = fn
        return fn

    return register


def _hf_over(d: Path, which: str) -> Result:
    copy_water(d)
    target = d / which if which else d
    before = tree(d / "images") | tree(d / "masks")
    r = cli(*convert_args(d, target, "--format", "hf"), env=fake_datasets(d))
    return {"r": r, "before": before, "after": tree(d / "images") | tree(d / "masks")}


case("hf-output-is-masks-folder")(lambda d: _hf_over(d, "masks"))


def _in_subfolder(d: Path) -> Path:
    """d/images/sub/x.png: an input image in a subfolder of --images, named "sub/x.png"."""
    copy_water(d)
    (d / "images" / "sub").mkdir()
    with Image.open(img(d)) as im:
        im.save(d / "images" / "sub" / "x.png")
    return d / "images" / "sub" / "x.png"


@case("show-overlay-over-image-in-subfolder")
def _(d: Path) -> Result:
    source = _in_subfolder(d)
    before = digest(source)
    preds = predictions(d / "p.jsonl", ["sub/x.png"])
    r = cli("show", "--predictions", preds, "--images", d / "images", "--output", d / "images", "--no-progress")
    return {"r": r, "before": before, "after": digest(source)}


@case("export-out-is-image-in-subfolder")
def _(d: Path) -> Result:
    source = _in_subfolder(d)
    before = digest(source)
    preds = predictions(d / "p.jsonl", ["sub/x.png"])
    r = cli("export", "--predictions", preds, "--images", d / "images", "--output", source, "--no-progress")
    return {"r": r, "before": before, "after": digest(source)}


@case("convert-coco-output-is-image-in-subfolder")
def _(d: Path) -> Result:
    source = _in_subfolder(d)
    before = digest(source)
    with Image.open(source) as im:
        w, h = im.size
    coco = {
        "images": [{"id": 1, "file_name": "sub/x.png", "width": w, "height": h}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[5, 5, 60, 5, 60, 60, 5, 60]]}],
        "categories": [{"id": 1, "name": "water"}],
    }
    (d / "c.json").write_text(json.dumps(coco))
    args = ["convert", "--coco", d / "c.json", "--images", d / "images", "--output", source]
    r = cli(*args, "--checkpoint", CKPT, "--no-progress")
    return {"r": r, "before": before, "after": digest(source)}


@case("convert-output-is-a-folder")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "out").mkdir()
    r = cli(*convert_args(d, d / "out"))
    return {"r": r, "tmp": temporaries(d)}


@case("convert-errors-list-is-a-folder")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "o").mkdir()
    (d / "o" / "out.jsonl").write_bytes(PREVIOUS)
    (d / "o" / "out.errors.jsonl").mkdir()
    r = cli(*convert_args(d, d / "o" / "out.jsonl"))
    return {"r": r, "out": (d / "o" / "out.jsonl").read_bytes(), "tmp": temporaries(d)}


@case("convert-output-dot")
def _(d: Path) -> Result:
    copy_water(d)
    return {"r": cli(*convert_args(d, Path(".")))}


def _non_utf8(d: Path) -> Path:
    """The pair A renamed to b"bad\\xff" (a name that is not UTF-8); pair B as it is."""
    copy_water(d)
    bad = os.fsdecode(b"bad\xff")
    for sub, f in (("images", img(d)), ("masks", mask(d))):
        f.rename(d / sub / (bad + f.suffix))
    return d


@case("convert-non-utf8-name")
def _(d: Path) -> Result:
    _non_utf8(d)
    r = cli(*convert_args(d, d / "o" / "out.jsonl"))
    out = d / "o" / "out.jsonl"
    return {"r": r, "lines": out.read_text(errors="replace").splitlines() if out.exists() else None}


@case("eval-csv-non-utf8-name")
def _(d: Path) -> Result:
    _non_utf8(d)
    preds = predictions(d / "p.jsonl", [B + ".jpg"])
    r = cli("eval", "--predictions", preds, "--masks", d / "masks", "--csv", d / "o" / "e.csv")
    return {"r": r, "csv": (d / "o" / "e.csv").exists()}


@case("show-newline-in-name")
def _(d: Path) -> Result:
    copy_water(d)
    bad = "tr\nunc.jpg"
    (d / "images" / bad).write_bytes(img(d).read_bytes()[:300])
    preds = predictions(d / "p.jsonl", [bad, A + ".jpg"])
    return {"r": cli("show", "--predictions", preds, "--images", d / "images", "--output", d / "o", "--no-progress")}


@case("export-deeply-nested-predictions")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "p.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    return {"r": cli("export", "--predictions", d / "p.jsonl", "--images", d / "images", "--output", d / "o.json")}


@case("eval-predictions-not-utf8")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "p.jsonl").write_bytes(b'{"image": "a.jpg", "prediction": "\xff"}\n')
    return {"r": cli("eval", "--predictions", d / "p.jsonl", "--masks", d / "masks")}


@case("eval-predictions-huge-integer")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "p.jsonl").write_text('{"image": "a.jpg", "prediction": "", "n": ' + "9" * 5000 + "}\n")
    return {"r": cli("eval", "--predictions", d / "p.jsonl", "--masks", d / "masks")}


@case("eval-same-stem-twice")
def _(d: Path) -> Result:
    copy_water(d)
    preds = predictions(d / "p.jsonl", [A + ".jpg", "sub/" + A + ".png"])
    return {"r": cli("eval", "--predictions", preds, "--masks", d / "masks", "--json", d / "m.json")}


@case("signal-during-imports")
def _(d: Path) -> Result:
    copy_water(d)
    env = {"SEGCODEC_FH_IMPORT_SIGNAL": f"paligemma_segcodec.cli.convert:{int(signal.SIGTERM)}"}
    return {"r": cli("encode", mask(d), "--checkpoint", CKPT, env=env, prefix=WRAPPED)}


@case("sigint-swallowed-by-an-import")
def _(d: Path) -> Result:
    copy_water(d)
    env = {"SEGCODEC_FH_SWALLOW": "paligemma_segcodec.codec"}
    return {"r": cli("encode", mask(d), "--checkpoint", CKPT, env=env, prefix=WRAPPED)}


def _signal_case(d: Path, args: list[object], hook: str, sig: int, watch: list[Path]) -> Result:
    before = {p: p.read_bytes() for p in watch if p.is_file()}
    inputs = tree(d / "images") | tree(d / "masks")
    r = cli(*args, env={"SEGCODEC_FH_SIGNAL": f"{hook}:{int(sig)}"}, prefix=WRAPPED)
    return {
        "r": r,
        "before": before,
        "after": {p: p.read_bytes() if p.is_file() else None for p in watch},
        "inputs": (inputs, tree(d / "images") | tree(d / "masks")),
        "tmp": temporaries(d),
    }


@case("sigterm-show-second-image")
def _(d: Path) -> Result:
    copy_water(d)
    preds = predictions(d / "p.jsonl", [A + ".jpg", B + ".jpg"])
    args = ["show", "--predictions", preds, "--images", d / "images", "--output", d / "o", "--no-progress"]
    res = _signal_case(
        d, args, "PIL.Image:Image.save:2", signal.SIGTERM, [d / "o" / (A + ".png"), d / "o" / (B + ".png")]
    )
    return res


@case("sigint-eval")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "m.json").write_bytes(PREVIOUS)
    (d / "s.csv").write_bytes(PREVIOUS)
    preds = predictions(d / "p.jsonl", [A + ".jpg", B + ".jpg"])
    args = ["eval", "--predictions", preds, "--masks", d / "masks", "--json", d / "m.json", "--csv", d / "s.csv"]
    hook = "paligemma_segcodec.datasets.evaluate:score_image:2"
    return _signal_case(d, args, hook, signal.SIGINT, [d / "m.json", d / "s.csv"])


@case("sigterm-export")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "o.json").write_bytes(PREVIOUS)
    preds = predictions(d / "p.jsonl", [A + ".jpg", B + ".jpg"])
    args = ["export", "--predictions", preds, "--images", d / "images", "--output", d / "o.json", "--no-progress"]
    hook = "paligemma_segcodec.datasets.coco:segments_to_coco:1"
    return _signal_case(d, args, hook, signal.SIGTERM, [d / "o.json"])


@case("sigterm-audit")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "o").mkdir()
    for name in ("audit.csv", "summary.json"):
        (d / "o" / name).write_bytes(PREVIOUS)
    args = ["audit", "--images", d / "images", "--masks", d / "masks", "--output", d / "o", "--checkpoint", CKPT]
    hook = "paligemma_segcodec.datasets.audit:read_mask_values:2"
    watch = [d / "o" / n for n in ("audit.csv", "summary.json", "histogram.png", "worst.png")]
    return _signal_case(d, [*args, "--no-progress"], hook, signal.SIGTERM, watch)


def _enospc_case(d: Path, args: list[object], watch: list[Path]) -> Result:
    before = {p: p.read_bytes() for p in watch if p.is_file()}
    r = cli(*args, env={"SEGCODEC_FH_ENOSPC": "1"}, prefix=WRAPPED)
    return {
        "r": r,
        "before": before,
        "after": {p: p.read_bytes() if p.is_file() else None for p in watch},
        "tmp": temporaries(d),
    }


@case("enospc-convert-split")
def _(d: Path) -> Result:
    copy_water(d)
    (d / "o").mkdir()
    for n in ("out.jsonl", "train.jsonl", "val.jsonl", "out.errors.jsonl"):
        (d / "o" / n).write_bytes(PREVIOUS)
    watch = [d / "o" / n for n in ("out.jsonl", "train.jsonl", "val.jsonl", "out.errors.jsonl")]
    return _enospc_case(d, convert_args(d, d / "o" / "out.jsonl", "--split", "0.5"), watch)


@case("convert-stale-temporary-and-concurrent-runs")
def _(d: Path) -> Result:
    copy_water(d)
    out = d / "o" / "out.jsonl"
    out.parent.mkdir()
    stale = out.parent / ".out.jsonl.stale1234.tmp"
    stale.write_bytes(b"half a line from a killed run")
    cmd = [*PLAIN, *(os.fspath(a) if isinstance(a, Path) else str(a) for a in convert_args(d, out))]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    results = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
        results.append(subprocess.CompletedProcess(cmd, p.returncode, o, e))
    return {
        "runs": results,
        "out": out.read_bytes() if out.exists() else None,
        "stale": stale.read_bytes() if stale.exists() else None,
        "tmp": temporaries(d),
    }


def _device_masks(d: Path) -> Path:
    """A's mask replaced by a symlink to /dev/zero, B's by one to /dev/stdin (a FIFO here)."""
    copy_water(d)
    for stem, target in ((A, "/dev/zero"), (B, "/dev/stdin")):
        m = mask(d, stem)
        m.unlink()
        os.symlink(target, m)
    return d


def _run_with_pipe_stdin(*args: object) -> subprocess.CompletedProcess[str]:
    r_fd, w_fd = os.pipe()  # stdin a pipe that never ends: /dev/stdin opened for reading would block
    try:
        with os.fdopen(r_fd, "rb") as stdin:
            return cli(*args, stdin=stdin)
    finally:
        os.close(w_fd)


@case("devices-as-masks-lint")
def _(d: Path) -> Result:
    _device_masks(d)
    return {"r": _run_with_pipe_stdin("lint", d, "--no-progress")}


@case("devices-as-masks-eval")
def _(d: Path) -> Result:
    _device_masks(d)
    shutil.copy2(WATER / "masks" / "water_body_1280.jpg", d / "masks")
    preds = predictions(d / "p.jsonl", ["water_body_1280.jpg"])
    return {"r": _run_with_pipe_stdin("eval", "--predictions", preds, "--masks", d / "masks")}


@case("devices-as-masks-convert")
def _(d: Path) -> Result:
    _device_masks(d)
    for sub in ("images", "masks"):
        shutil.copy2(WATER / sub / "water_body_1280.jpg", d / sub)
    out = d / "o" / "out.jsonl"
    r = _run_with_pipe_stdin(*convert_args(d, out))
    return {"r": r, "lines": out.read_text().splitlines() if out.exists() else None}


@case("fifo-as-show-image")
def _(d: Path) -> Result:
    copy_water(d)
    os.mkfifo(d / "f.png")
    return {"r": cli("show", "--text", LOC, "--image", d / "f.png", "--output", d / "o.png")}


@case("fifo-as-train-list")
def _(d: Path) -> Result:
    copy_water(d)
    os.mkfifo(d / "train.txt")
    return {"r": cli(*convert_args(d, d / "o" / "out.jsonl", "--train-list", d / "train.txt"))}


@case("split-out-of-range")
def _(d: Path) -> Result:
    copy_water(d)
    return {"r": cli(*convert_args(d, d / "o" / "out.jsonl", "--split", "1.5")), "o": (d / "o").exists()}


@case("between-bomb-limits-mask")
def _(d: Path) -> Result:
    copy_water(d)
    m = png_header_only(d / "mid.png", 12_000, 12_000)  # 144 Mpx: over MAX_IMAGE_PIXELS, under twice it
    return {"r": cli("encode", m, "--checkpoint", CKPT)}


@case("decode-10MB-stdin")
def _(d: Path) -> Result:
    text = ("<loc0001>junk ; " * 640_000).encode()
    t0 = time.perf_counter()
    with open(d / "t.txt", "wb") as f:
        f.write(text)
    with open(d / "t.txt", "rb") as stdin:
        r = cli("decode", "-", stdin=stdin)
    return {"r": r, "seconds": time.perf_counter() - t0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    base = tmp_path_factory.mktemp("hunt")

    def one(name: str) -> Result:
        d = base / name
        d.mkdir()
        return CASES[name](d)

    names = sorted(CASES, key=lambda n: ("concurrent" not in n, n))
    with ThreadPoolExecutor(max_workers=max(2, min(6, (os.cpu_count() or 2) * 2))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


# ------------------------------------------------------------------------------------------------
# 1. Outputs never land on inputs


def test_hf_dataset_folder_never_replaces_an_input_folder(runs: dict[str, Result]) -> None:
    res = runs["hf-output-is-masks-folder"]
    assert res["after"] == res["before"], describe(res["r"])
    assert_clean_error(res["r"], 2)


@pytest.mark.parametrize(
    "name",
    [
        "show-overlay-over-image-in-subfolder",
        "export-out-is-image-in-subfolder",
        "convert-coco-output-is-image-in-subfolder",
    ],
)
def test_input_in_a_subfolder_is_never_overwritten(runs: dict[str, Result], name: str) -> None:
    res = runs[name]
    assert res["after"] == res["before"], describe(res["r"])
    assert_clean_error(res["r"], 2)


def test_convert_output_that_is_a_folder_is_refused(runs: dict[str, Result]) -> None:
    res = runs["convert-output-is-a-folder"]
    assert_clean_error(res["r"], (1, 2))
    assert res["tmp"] == []


def test_convert_errors_list_that_is_a_folder_keeps_the_previous_output(runs: dict[str, Result]) -> None:
    res = runs["convert-errors-list-is-a-folder"]
    assert res["out"] == PREVIOUS, describe(res["r"])
    assert_clean_error(res["r"], (1, 2))
    assert res["tmp"] == []


def test_atomic_write_onto_a_folder_raises_oserror(tmp_path: Path) -> None:
    from paligemma_segcodec.safeio import atomic_write

    (tmp_path / "out").mkdir()
    with pytest.raises(OSError, match="out"), atomic_write(tmp_path / "out") as f:
        f.write("x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_convert_output_dot_is_refused_usage(runs: dict[str, Result]) -> None:
    line = assert_clean_error(runs["convert-output-dot"]["r"], 2)
    assert "PosixPath" not in line


# ------------------------------------------------------------------------------------------------
# 2. Outputs are all or nothing: signals, full disk, stale temporaries, concurrent runs


def test_sigterm_in_show_keeps_the_finished_overlay_only(runs: dict[str, Result]) -> None:
    res = runs["sigterm-show-second-image"]
    line = assert_clean_error(res["r"], 143)
    first, second = res["after"].values()
    assert first is not None and first.startswith(b"\x89PNG"), describe(res["r"])
    assert second is None
    assert A in line
    assert res["tmp"] == []
    assert res["inputs"][0] == res["inputs"][1]


@pytest.mark.parametrize("name", ["sigint-eval", "sigterm-export", "sigterm-audit"])
def test_signal_mid_run_leaves_previous_outputs(runs: dict[str, Result], name: str) -> None:
    res = runs[name]
    assert_clean_error(res["r"], 130 if "sigint" in name else 143)
    for path, content in res["after"].items():
        assert content == res["before"].get(path), f"{path} changed\n{describe(res['r'])}"
    assert res["tmp"] == []
    assert res["inputs"][0] == res["inputs"][1]


def test_full_disk_in_convert_split_leaves_previous_outputs(runs: dict[str, Result]) -> None:
    res = runs["enospc-convert-split"]
    assert_clean_error(res["r"], 1, "No space left on device")
    for path, content in res["after"].items():
        assert content == res["before"].get(path), f"{path} changed\n{describe(res['r'])}"
    assert res["tmp"] == []


def test_signal_during_the_imports_is_143(runs: dict[str, Result]) -> None:
    assert_clean_error(runs["signal-during-imports"]["r"], 143)


def test_sigint_swallowed_by_an_import_is_one_line(runs: dict[str, Result]) -> None:
    assert_clean_error(runs["sigint-swallowed-by-an-import"]["r"], 130, "SIGINT")


def test_stale_temporary_and_two_concurrent_runs(runs: dict[str, Result]) -> None:
    res = runs["convert-stale-temporary-and-concurrent-runs"]
    for r in res["runs"]:
        assert r.returncode == 0, describe(r)
    lines = res["out"].decode().splitlines()  # one complete run's output, never a mix
    assert [json.loads(ln)["image"] for ln in lines] == [A + ".jpg", B + ".jpg"]
    assert res["stale"] == b"half a line from a killed run"  # not ours to delete, and it broke nothing
    assert res["tmp"] == []


# ------------------------------------------------------------------------------------------------
# 3-5. Names, special files and hostile files


@pytest.mark.parametrize("name", ["convert-non-utf8-name", "eval-csv-non-utf8-name"])
def test_a_name_that_is_not_utf8_does_not_sink_the_run(runs: dict[str, Result], name: str) -> None:
    res = runs[name]
    assert res["r"].returncode in (0, 1), describe(res["r"])
    assert "surrogates not allowed" not in res["r"].stderr, describe(res["r"])
    assert res.get("lines") or res.get("csv"), describe(res["r"])


def test_a_name_with_a_newline_is_one_line(runs: dict[str, Result]) -> None:
    r = runs["show-newline-in-name"]["r"]
    assert r.returncode == 1, describe(r)
    assert any("unreadable image" in ln and "images/tr" in ln for ln in r.stderr.splitlines()), describe(r)


def test_devices_named_like_masks_are_listed_never_read(runs: dict[str, Result]) -> None:
    for name in ("devices-as-masks-lint", "devices-as-masks-eval", "devices-as-masks-convert"):
        r = runs[name]["r"]
        assert r.returncode == 1, f"{name}\n{describe(r)}"
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, describe(r)
    assert "device" in runs["devices-as-masks-eval"]["r"].stderr
    assert len(runs["devices-as-masks-convert"]["lines"]) == 1  # the good pair is still converted


@pytest.mark.parametrize("name", ["fifo-as-show-image", "fifo-as-train-list"])
def test_fifo_options_are_refused_without_blocking(runs: dict[str, Result], name: str) -> None:
    r = runs[name]["r"]
    assert r.returncode == 2, describe(r)
    assert "FIFO" in r.stderr and "Traceback" not in r.stderr


def test_deeply_nested_predictions_line_is_a_clean_error(runs: dict[str, Result]) -> None:
    assert_clean_error(runs["export-deeply-nested-predictions"]["r"], 1, "p.jsonl")


def test_read_predictions_raises_only_valueerror(tmp_path: Path) -> None:
    from paligemma_segcodec.datasets.evaluate import read_predictions

    (tmp_path / "p.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ValueError, match=r"p\.jsonl"):
        read_predictions(tmp_path / "p.jsonl")


@pytest.mark.parametrize("name", ["eval-predictions-not-utf8", "eval-predictions-huge-integer"])
def test_bad_predictions_file_error_names_the_file(runs: dict[str, Result], name: str) -> None:
    assert_clean_error(runs[name]["r"], 1, "p.jsonl")


def test_eval_two_predictions_for_one_stem_is_an_error(runs: dict[str, Result]) -> None:
    res = runs["eval-same-stem-twice"]
    assert_clean_error(res["r"], 1, A)


def test_image_between_the_bomb_limits_is_one_line(runs: dict[str, Result]) -> None:
    r = runs["between-bomb-limits-mask"]["r"]
    assert_clean_error(r, 1)
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, describe(r)


def _third_party_warning_expected() -> bool:
    import importlib.util

    return importlib.util.find_spec("supervision") is not None and importlib.util.find_spec("cv2") is None


@pytest.mark.skipif(not _third_party_warning_expected(), reason="needs supervision without OpenCV")
def test_show_prints_no_third_party_warnings(runs: dict[str, Result]) -> None:
    r = runs["sigterm-show-second-image"]["r"]
    assert "Warning" not in r.stderr, describe(r)


def test_split_out_of_range_is_refused_usage(runs: dict[str, Result]) -> None:
    r = runs["split-out-of-range"]["r"]
    assert r.returncode == 2, describe(r)


def test_10MB_answer_on_stdin_is_one_short_warning(runs: dict[str, Result]) -> None:
    res = runs["decode-10MB-stdin"]
    r = res["r"]
    assert r.returncode == 0, describe(r)
    assert r.stdout == ""
    assert len(r.stderr) < 2000 and r.stderr.count("\n") <= 8, describe(r)


# ------------------------------------------------------------------------------------------------
# 7. The library raises only its documented exceptions


def test_load_codec_unknown_user_raises_not_found() -> None:
    from paligemma_segcodec.codec import load_codec
    from paligemma_segcodec.errors import CheckpointNotFoundError

    with pytest.raises(CheckpointNotFoundError):
        load_codec("~no_such_user_fh/vae-oid.npz")


@pytest.fixture(scope="module")
def codec() -> Any:
    from paligemma_segcodec.codec import load_codec

    return load_codec(CKPT)


SEG_TEXT = "<loc0100><loc0100><loc0900><loc0900>" + "<seg001>" * 16 + " a"


def test_decode_tokens_infinite_size_is_valueerror(codec: Any) -> None:
    from paligemma_segcodec.api import decode_tokens

    with pytest.raises(ValueError, match="height"):
        decode_tokens(SEG_TEXT, height=float("inf"), width=5, codec=codec)


def test_decode_tokens_absurd_size_is_valueerror(codec: Any) -> None:
    from paligemma_segcodec.api import decode_tokens

    with pytest.raises(ValueError, match=r"height|size|large"):
        decode_tokens(SEG_TEXT, height=10**7, width=10**7, codec=codec)


@pytest.mark.parametrize(
    ("mask", "box"),
    [
        (np.array(1), None),  # 0-d
        (np.zeros((2, 3, 3)), None),  # 3-D
        ([[1, 0], [1]], None),  # ragged
        (np.full((3, 3), np.nan), None),
        (np.full((3, 3), 7, np.uint8), None),
        (np.zeros((0, 5), bool), None),
        (np.ones((4, 4), bool), (float("nan"), 0, 1, 1)),
        (np.ones((4, 4), bool), (0, 0, float("inf"), 1)),
        (np.ones((4, 4), bool), (-0.5, 0, 1.5, 1)),
        (np.ones((4, 4), bool), (0, 0, 1e308, 1)),
        (np.ones((4, 4), bool), (0, 0, 1)),
        (np.ones((4, 4), bool), "0011"),
        (np.ones((4, 4), bool), (None, 0, 1, 1)),
    ],
)
def test_encode_mask_bad_arguments_are_valueerror(codec: Any, mask: Any, box: Any) -> None:
    from paligemma_segcodec.api import encode_mask

    with pytest.raises(ValueError, match=r"mask|box|shape|sequence"):
        encode_mask(mask, box, codec=codec)


@pytest.mark.parametrize("mask", [[["a", "b"]], np.array([[None, 1]]), np.ones((3, 3), complex), "mask"])
def test_encode_mask_non_numeric_is_an_explicit_typeerror(codec: Any, mask: Any) -> None:
    from paligemma_segcodec.api import encode_mask

    with pytest.raises((TypeError, ValueError), match="mask"):
        encode_mask(mask, codec=codec)


@pytest.mark.parametrize("text", [b"<loc0001>", None, 5])
def test_decode_tokens_non_str_is_an_explicit_typeerror(text: Any) -> None:
    from paligemma_segcodec.api import decode_tokens

    with pytest.raises(TypeError, match="text must be a str"):
        decode_tokens(text)


def test_16_bit_mask_reads_as_a_mask(tmp_path: Path) -> None:
    from paligemma_segcodec.maskio import read_mask

    a = np.zeros((32, 32), np.uint16)
    a[8:24, 8:24] = 65535
    Image.fromarray(a).save(tmp_path / "m16.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = read_mask(tmp_path / "m16.png")
    assert m.sum() == 256
