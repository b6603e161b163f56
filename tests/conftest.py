"""Shared fixtures: golden sets (tests/data/golden, plus ../shared/golden and $SEGCODEC_GOLDEN when present)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click.testing
import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings


def _click_82_streams() -> None:
    """click < 8.2 (pyproject allows 8.1): its CliRunner mixes stderr into stdout unless
    ``mix_stderr=False``, which 8.2 removed. Give every runner 8.2's streams: ``result.stdout`` and
    ``result.stderr`` apart, ``result.output`` both (here stdout then stderr, not interleaved)."""
    if "mix_stderr" not in inspect.signature(click.testing.CliRunner.__init__).parameters:
        return  # click >= 8.2
    init = click.testing.CliRunner.__init__

    def __init__(self: CliRunner, *args: Any, mix_stderr: bool = False, **kwargs: Any) -> None:
        init(self, *args, mix_stderr=mix_stderr, **kwargs)

    def output(self: Result) -> str:
        return self.stdout + (self.stderr if self.stderr_bytes is not None else "")

    click.testing.CliRunner.__init__ = __init__  # type: ignore[method-assign]
    click.testing.Result.output = property(output)  # type: ignore[assignment,method-assign]


_click_82_streams()

# huggingface_hub 0.23 copies constants.HF_HUB_CACHE into its file_download module when that is first
# imported (lazily, on first use): import it now, before a test patches the constant for a while.
importlib.import_module("huggingface_hub.file_download")

# Shared, noisy machines: no per-example deadlines. In CI, derandomized so a run is reproducible.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
GOLDEN_DIRS = [DATA / "golden"]
if (ROOT.parent / "shared" / "golden" / "golden.json").is_file():
    GOLDEN_DIRS.append(ROOT.parent / "shared" / "golden")
GOLDEN_DIRS += [Path(p) for p in os.environ.get("SEGCODEC_GOLDEN", "").split(os.pathsep) if p]


@dataclass
class GoldenSet:
    path: Path
    meta: dict[str, Any]
    inputs: Any  # NpzFile
    decode: Any  # NpzFile

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.npz"


def load_golden(path: Path) -> GoldenSet:
    return GoldenSet(
        path=path,
        meta=json.loads((path / "golden.json").read_text()),
        inputs=np.load(path / "encode_inputs.npz"),
        decode=np.load(path / "decode.npz"),
    )


@pytest.fixture(
    scope="session",
    params=GOLDEN_DIRS,
    ids=lambda p: str(p.relative_to(ROOT.parent)) if p.is_relative_to(ROOT.parent) else str(p),
)
def golden(request: pytest.FixtureRequest) -> GoldenSet:
    return load_golden(request.param)


@pytest.fixture(scope="session")
def golden_codec(golden: GoldenSet):  # type: ignore[no-untyped-def]
    from paligemma_segcodec import load_codec

    return load_codec(golden.checkpoint)


@pytest.fixture(scope="session")
def codec():  # type: ignore[no-untyped-def]
    """The codec of the bundled synthetic checkpoint (random weights, reference layout)."""
    from paligemma_segcodec import load_codec

    return load_codec(DATA / "golden" / "checkpoint.npz")


@pytest.fixture
def segcodec() -> Any:
    """Runs ``segcodec ARGS --checkpoint <the bundled synthetic checkpoint>`` in-process (click's runner)."""
    from paligemma_segcodec.cli import main

    def run(*args: object) -> Result:
        return CliRunner().invoke(
            main, [*(str(a) for a in args), "--checkpoint", str(DATA / "golden" / "checkpoint.npz")]
        )

    return run
