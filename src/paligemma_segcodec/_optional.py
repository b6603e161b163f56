"""Importing an optional dependency with a message naming the extra that installs it, and the
"too old" check against the lower bounds pyproject.toml declares."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

# The lower bound pyproject.toml declares for each module checked at import (its extra's, or for
# huggingface_hub the core dependency's); tests/test_versions.py keeps the two in sync.
MINIMUM = {
    "datasets": "2.19",
    "huggingface_hub": "0.23",
    "ray": "2.9",
    "supervision": "0.20",
    "tensorflow": "2.16",
}


def _release(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version string: ``"2.16.0rc1"`` → ``(2, 16, 0)``."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip().lstrip("vV"))
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def too_old(module: ModuleType, minimum: str) -> str | None:
    """``"<name> is too old: found X, need Y or newer"`` when the module's ``__version__`` is below
    ``minimum``; None when it is new enough or says no version (then nothing is claimed).

    >>> import types
    >>> too_old(types.SimpleNamespace(__name__="ray", __version__="2.8.1"), "2.9")
    'ray is too old: found 2.8.1, need 2.9 or newer'
    """
    found = getattr(module, "__version__", None)
    have = _release(found) if isinstance(found, str) else ()
    if not have:
        return None
    want = _release(minimum)
    width = max(len(have), len(want))
    if have + (0,) * (width - len(have)) >= want + (0,) * (width - len(want)):
        return None
    return f"{module.__name__} is too old: found {found}, need {minimum} or newer"


def require(module: str, extra: str) -> Any:
    """``import module``, or an ImportError saying ``pip install 'paligemma-segcodec[extra]'`` (also
    when the installed version is below the extra's declared lower bound, `MINIMUM`)."""
    try:
        found = importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"this needs {module}: pip install '.[{extra}]' from a clone of the repository "
            f"(pip install 'paligemma-segcodec[{extra}]' once the package is published on PyPI)"
        ) from err
    old = too_old(found, MINIMUM[module]) if module in MINIMUM else None
    if old:
        raise ImportError(
            f"{old}: pip install -U '.[{extra}]' from a clone of the repository "
            f"(pip install -U 'paligemma-segcodec[{extra}]' once the package is published on PyPI)"
        )
    return found
