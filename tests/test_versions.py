"""Declared versions are true: constraints-lowest.txt pins pyproject's lower bounds (CI installs with
it and runs the suite), the import-time checks use the same bounds, and "too old" says what it found."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from paligemma_segcodec._optional import MINIMUM, require, too_old

ROOT = Path(__file__).resolve().parent.parent
# Pinned with a dependency, not declared by us: jaxlib is jax's companion (same version).
COMPANIONS = {"jaxlib": "jax"}
# Not ours either: flax's dependencies at the versions pip's resolver picks for these pins, pinned so
# that it does not backtrack for minutes (CI time).
RESOLVER_HINTS = {"chex", "optax", "orbax-checkpoint"}


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)  # type: ignore[no-any-return]


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in version.split("."))
    while parts and parts[-1] == 0:
        parts = parts[:-1]
    return parts


def _lower_bounds(requirements: list[str]) -> dict[str, str]:
    """``{"numpy": "1.24", ...}`` from ``["numpy>=1.24", ...]`` (markers and extras dropped); a
    requirement without a ``>=`` bound fails the test: every dependency declares its lowest version."""
    bounds: dict[str, str] = {}
    for req in requirements:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)\s*(?:,[^;]*)?(?:;.*)?", req)
        assert m, f"{req!r}: declare a lower bound (name>=X)"
        bounds[_name(m.group(1))] = m.group(2)
    return bounds


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints-lowest.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([0-9][0-9.]*)", line)
        assert m, f"constraints-lowest.txt: {line!r} is not NAME==VERSION"
        assert _name(m.group(1)) not in pins, f"constraints-lowest.txt pins {m.group(1)} twice"
        pins[_name(m.group(1))] = m.group(2)
    return pins


def test_constraints_pin_every_dependency_at_its_declared_lower_bound() -> None:
    project = _pyproject()["project"]
    core = _lower_bounds(project["dependencies"])
    test_tools = _lower_bounds(project["optional-dependencies"]["test"])
    pins = _pins()
    for name, bound in {**core, **test_tools}.items():
        assert name in pins, f"constraints-lowest.txt does not pin {name} (pyproject: {name}>={bound})"
        assert _release(pins[name]) == _release(bound), (
            f"constraints-lowest.txt pins {name}=={pins[name]}, pyproject declares {name}>={bound}"
        )
    for name, version in pins.items():
        if name in COMPANIONS:
            assert _release(version) == _release(pins[COMPANIONS[name]]), f"{name} goes with {COMPANIONS[name]}"
        elif name not in RESOLVER_HINTS:
            assert name in core or name in test_tools, f"constraints-lowest.txt pins {name}, not a direct dependency"


def test_import_time_minimums_are_the_declared_bounds() -> None:
    project = _pyproject()["project"]
    declared = _lower_bounds(project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        if extra in ("tf", "hf", "ray", "supervision"):
            declared.update(_lower_bounds(reqs))
    declared["tensorflow"] = declared.pop("tensorflow-cpu", declared.get("tensorflow", ""))
    for module, minimum in MINIMUM.items():
        assert _release(minimum) == _release(declared[_name(module)]), (
            f"_optional.MINIMUM[{module!r}] is {minimum}, pyproject declares {declared[_name(module)]}"
        )


def _module(name: str, version: str | None) -> types.ModuleType:
    module = types.ModuleType(name)
    if version is not None:
        module.__version__ = version  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("version", "old"),
    [("0.19.0", True), ("0.19.99", True), ("0.20", False), ("0.20.0", False), ("0.21.0rc1", False), ("1.0", False)],
)
def test_too_old_compares_release_numbers(version: str, old: bool) -> None:
    message = too_old(_module("supervision", version), "0.20")
    assert (message == f"supervision is too old: found {version}, need 0.20 or newer") if old else message is None


def test_too_old_claims_nothing_without_a_version() -> None:
    assert too_old(_module("supervision", None), "0.20") is None
    assert too_old(_module("supervision", "unknown"), "0.20") is None


def test_require_refuses_an_extra_below_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", _module("supervision", "0.18.0"))
    with pytest.raises(
        ImportError, match=r"supervision is too old: found 0\.18\.0, need 0\.20 or newer: pip install -U"
    ):
        require("supervision", "supervision")
    monkeypatch.setitem(sys.modules, "supervision", _module("supervision", "0.25.1"))
    assert require("supervision", "supervision") is sys.modules["supervision"]


def test_checkpoint_download_path_says_huggingface_hub_is_too_old(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    from paligemma_segcodec import checkpoint as ck
    from paligemma_segcodec.errors import CheckpointNotFoundError

    monkeypatch.setattr(huggingface_hub, "__version__", "0.22.2")
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    with pytest.raises(
        CheckpointNotFoundError, match=r"huggingface_hub is too old: found 0\.22\.2, need 0\.23 or newer"
    ):
        ck.resolve_checkpoint()
