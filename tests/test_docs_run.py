"""The docs run: every ```python block of README.md and docs/*.md, and every ``>>>`` example.

A page's python blocks run in order in one namespace, as a reader would run them in one session,
from the repository root, with the bundled stand-in checkpoint (``PALIGEMMA_SEGCODEC_CHECKPOINT``)
and no network. A block that truly cannot run here (a download, a GPU) carries
``<!-- not-run: reason -->`` on the line right before its fence; nothing else is skipped, except a
page whose blocks import an optional extra that is not installed (the full CI run installs them all).
Snippets that write files write under a temporary folder, never into the repository.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

import paligemma_segcodec

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CHECKPOINT = "tests/data/fixture-vae.npz"
NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->")
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
# Optional extras: a page (or module) that imports one of these runs only where it is installed.
EXTRAS = ("tensorflow", "ray", "datasets", "supervision", "transformers", "torch")
# Package modules whose examples need an extra's module: test_module_doctests (the one runner of
# the package's docstring examples; pytest's --doctest-modules is not used, it cannot skip a module
# for a missing extra) skips them without it. Examples that cannot be ``>>>`` (tf.data graphs,
# Hugging Face datasets) are ```python blocks, run here where the extra is installed (except a
# block after a not-run marker: one that starts Ray).
MODULE_EXTRAS = {
    "paligemma_segcodec.tf": "tensorflow",
    "paligemma_segcodec._tf_reference": "tensorflow",
    "paligemma_segcodec.hf": "datasets",
    "paligemma_segcodec.ray": "ray",
    "paligemma_segcodec.sv": "supervision",
}
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None  # the not-run marker's line right before the fence, if any

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        return self.lang == "pycon" or (self.lang == "python" and self.code.lstrip().startswith(">>>"))


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2), i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        marker = lines[start - 1] if start and NOT_RUN.search(lines[start - 1]) else None
        out.append(Block(page, start + 1, lang, "\n".join(body) + "\n", marker))
        i += 1
    return out


def _extras_used(code: str) -> set[str]:
    found = re.findall(r"^\s*(?:from|import)\s+(\w+)", code, re.M)
    return {name for name in found if name in EXTRAS}


def _skip_without_extras(code: str) -> None:
    for name in sorted(_extras_used(code)):
        pytest.importorskip(name, reason=f"the page imports {name} (an optional extra)")


def _runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang in ("python", "pycon") and b.marker is None]


@pytest.fixture
def docs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PALIGEMMA_SEGCODEC_CHECKPOINT", CHECKPOINT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network: a download attempt fails at once


def test_every_not_run_marker_has_a_reason_and_sits_on_a_fence() -> None:
    seen = 0
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            m = NOT_RUN.search(line)
            if not m:
                continue
            seen += 1
            where = f"{page.relative_to(ROOT)}:{n + 1}"
            assert m.group(1).strip(), f"{where}: a not-run marker needs a reason"
            nxt = FENCE.match(lines[n + 1]) if n + 1 < len(lines) else None
            assert nxt and nxt.group(2) == "python", (
                f"{where}: a not-run marker goes on the line before a ```python fence"
            )
    assert seen, "the transformers page's download block carries a marker"


def test_only_downloads_and_gpus_are_not_run() -> None:
    marked = [b for page in PAGES for b in blocks(page) if b.marker]
    for b in marked:
        reason = NOT_RUN.search(b.marker or "").group(1).lower()  # type: ignore[union-attr]
        assert re.search(r"download|gpu|network", reason), f"{b.where}: not run for a reason other than a download/GPU"


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: p.name)
@pytest.mark.usefixtures("docs_env")
def test_page_runs(page: Path) -> None:
    runnable = _runnable(page)
    for b in runnable:
        _skip_without_extras(b.code)
    namespace: dict[str, object] = {"__name__": "__main__"}
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    parser = doctest.DocTestParser()
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # a page may show a warning; it must not turn into an error
        for b in runnable:
            if b.is_doctest:
                test = parser.get_doctest(b.code, namespace, b.where, str(page), b.line)
                result = runner.run(test, clear_globs=False)
                assert result.failed == 0, f"{b.where}: doctest failed (see the output above)"
            else:
                try:
                    exec(compile(b.code, b.where, "exec"), namespace)
                except Exception as err:  # pragma: no cover - the message is the point
                    raise AssertionError(f"{b.where}: the block raised {type(err).__name__}: {err}") from err


def _package_modules() -> list[str]:
    names = [paligemma_segcodec.__name__]
    for info in pkgutil.walk_packages(paligemma_segcodec.__path__, prefix="paligemma_segcodec."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _package_modules())
@pytest.mark.usefixtures("docs_env")
def test_module_doctests(name: str) -> None:
    extra = MODULE_EXTRAS.get(name)
    if extra:
        pytest.importorskip(extra, reason=f"{name}'s examples need {extra}")
    try:
        module = importlib.import_module(name)
    except ImportError as err:  # a module that needs an uninstalled extra at import time
        missing = getattr(err, "name", None) or ""
        if missing.split(".")[0] in EXTRAS or "numba" in str(err):
            pytest.skip(f"{name} needs {missing or err}")
        raise
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    tests = [t for t in finder.find(module, name) if t.examples]
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for test in tests:  # the finder keeps objects defined in this module (not re-exports)
            runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} doctest example(s) failed (see the output above)"
    if extra:
        for where, code in _docstring_blocks(module):
            try:
                exec(compile(code, where, "exec"), {"__name__": "__main__"})
            except Exception as err:  # pragma: no cover - the message is the point
                raise AssertionError(f"{where}: the example raised {type(err).__name__}: {err}") from err


def _docstring_blocks(module: object) -> list[tuple[str, str]]:
    """``(where, code)`` of the ```python blocks in the docstrings of a module's public names
    (not those after a ``<!-- not-run: ... -->`` line)."""
    import inspect
    import textwrap

    found = []
    for attr in getattr(module, "__all__", []):
        doc = inspect.getdoc(getattr(module, attr)) or ""
        lines = doc.splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i].strip())
            if not m:
                i += 1
                continue
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].strip().startswith(m.group(1)):
                body.append(lines[i])
                i += 1
            i += 1
            marked = start > 0 and NOT_RUN.search(lines[start - 1])
            if m.group(2) == "python" and not marked:
                where = f"{getattr(module, '__name__', '?')}.{attr}, docstring line {start + 1}"
                found.append((where, textwrap.dedent("\n".join(body))))
    return found
