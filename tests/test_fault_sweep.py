"""Real masks with faults planted at random: `convert` and `lint` lose nothing and explain everything.

Hypothesis picks a fault (or none) for each bundled water pair. A fault either breaks the pair
(it must be listed, under the broken file's name, and get no line) or only changes how the same
mask is stored (the line must be byte-identical to the untouched pair's).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from paligemma_segcodec import load_codec
from paligemma_segcodec.datasets import convert_folder, lint_folder

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"
STEMS = sorted(p.stem for p in (WATER / "masks").iterdir())


def _grey(mask: Path) -> np.ndarray:
    with Image.open(mask) as im:
        return np.asarray(im.convert("L"))


def _restore(save: Callable[[np.ndarray, Path], None], suffix: str) -> Callable[[Path, Path], Path]:
    """A fault that stores the same grey values in another format: the mask file it leaves."""

    def plant(image: Path, mask: Path) -> Path:
        grey = _grey(mask)
        mask.unlink()
        save(grey, mask.with_suffix(suffix))
        return mask.with_suffix(suffix)

    return plant


def _break(action: Callable[[Path, Path], Path | None], broken: str) -> Callable[[Path, Path], Path]:
    """A fault that breaks the pair: the file the problem must name (``broken``: image or mask;
    the file ``action`` returns when it writes the mask under another name)."""

    def plant(image: Path, mask: Path) -> Path:
        moved = action(image, mask)
        return image if broken == "image" else moved or mask

    return plant


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _relink(mask: Path) -> None:
    mask.unlink()
    mask.symlink_to(mask.parent / "nowhere.jpg")


def _to_folder(mask: Path) -> None:
    mask.unlink()
    mask.mkdir()


def _resized(mask: Path) -> None:
    with Image.open(mask) as im:
        im.resize((im.width + 3, im.height)).save(mask, "JPEG")


def _colour(mask: Path) -> None:
    grey = _grey(mask)
    Image.fromarray(np.stack([grey, grey // 2, 255 - grey], -1).astype(np.uint8)).save(mask, "JPEG")


def _float(mask: Path) -> Path:
    grey = _grey(mask)
    mask.unlink()
    Image.fromarray(grey.astype(np.float32) / 255).save(mask.with_suffix(".tif"))
    return mask.with_suffix(".tif")


SAME_MASK = {
    "palette": _restore(lambda g, p: Image.fromarray(g).convert("P").save(p), ".png"),
    "gif": _restore(lambda g, p: Image.fromarray(g).save(p), ".gif"),
    "bmp": _restore(lambda g, p: Image.fromarray(g).save(p), ".bmp"),
    "grey+alpha": _restore(lambda g, p: Image.fromarray(g).convert("LA").save(p), ".png"),
    "webp": _restore(lambda g, p: Image.fromarray(g).save(p, lossless=True), ".webp"),
    "cmyk": _restore(lambda g, p: Image.fromarray(g).convert("CMYK").save(p), ".tif"),
}
BROKEN = {
    "truncated mask": _break(lambda i, m: _truncate(m), "mask"),
    "empty mask": _break(lambda i, m: _write(m, b""), "mask"),
    "text as mask": _break(lambda i, m: _write(m, b"not an image"), "mask"),
    "broken link": _break(lambda i, m: _relink(m), "mask"),
    "folder as mask": _break(lambda i, m: _to_folder(m), "mask"),
    "size mismatch": _break(lambda i, m: _resized(m), "mask"),
    "colour mask": _break(lambda i, m: _colour(m), "mask"),
    "float mask": _break(lambda i, m: _float(m), "mask"),
    "truncated image": _break(lambda i, m: _truncate(i), "image"),
    "missing mask": _break(lambda i, m: m.unlink(), "image"),
}
FAULTS = {**SAME_MASK, **BROKEN}


def _lines(path: Path) -> dict[str, str]:
    return {r["image"]: json.dumps(r) for r in map(json.loads, path.read_text().splitlines())}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.none() | st.sampled_from(sorted(FAULTS)), min_size=len(STEMS), max_size=len(STEMS)))
def test_planted_faults_are_reported_and_nothing_else_is_lost(tmp_path_factory, plan: list[str | None]) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("sweep")
    shutil.copytree(WATER, root / "water")
    images, masks = root / "water" / "images", root / "water" / "masks"
    codec = load_codec(CKPT)
    clean = _clean_lines()

    broken: dict[str, str] = {}  # file that must be named → fault
    for stem, fault in zip(STEMS, plan, strict=True):
        if fault is not None:
            named = FAULTS[fault](images / f"{stem}.jpg", masks / f"{stem}.jpg")
            if fault in BROKEN:
                broken[str(named)] = fault

    report = convert_folder(images, masks, root / "out.jsonl", label="water", codec=codec, progress=False)
    got = _lines(root / "out.jsonl")
    intact = {f"{stem}.jpg" for stem, fault in zip(STEMS, plan, strict=True) if fault not in BROKEN}
    assert got == {name: clean[name] for name in intact}  # every readable pair, byte-identical
    named = {p.file for p in report.skipped}
    assert set(broken) <= named, {f: broken[f] for f in set(broken) - named}
    # nothing is listed that was not planted (an image whose mask is missing is the only extra name)
    assert named <= set(broken) | {str(images / f"{stem}.jpg") for stem, f in zip(STEMS, plan, strict=True) if f}
    assert report.ok == (not broken)
    lint = lint_folder(images, masks, progress=False)
    assert {p.file for p in lint.errors} == named  # lint finds the same broken files


@functools.cache
def _clean_lines() -> dict[str, str]:
    """The untouched pairs' lines, image name → JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clean.jsonl"
        convert_folder(WATER / "images", WATER / "masks", out, label="water", codec=load_codec(CKPT), progress=False)
        return _lines(out)
