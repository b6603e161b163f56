"""Importing an optional dependency with a message naming the extra that installs it."""

from __future__ import annotations

import importlib
from typing import Any


def require(module: str, extra: str) -> Any:
    """``import module``, or an ImportError saying ``pip install 'paligemma-segcodec[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"this needs {module}: pip install '.[{extra}]' from a clone of the repository "
            f"(pip install 'paligemma-segcodec[{extra}]' once the package is published on PyPI)"
        ) from err
