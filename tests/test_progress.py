"""Progress: a tqdm bar on a terminal, a plain line every few seconds in a log, nothing under --quiet."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from paligemma_segcodec.progress import ENV_INTERVAL, track, wrap

WATER = Path(__file__).parent / "data" / "water"
CKPT = Path(__file__).parent / "data" / "fixture-vae.npz"
LINT = ["-m", "paligemma_segcodec", "lint", "--images", str(WATER / "images"), "--masks", str(WATER / "masks")]


def env(interval: str) -> dict[str, str]:
    return {**os.environ, ENV_INTERVAL: interval, "PALIGEMMA_SEGCODEC_CHECKPOINT": str(CKPT)}


def test_plain_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_INTERVAL, "0")
    out = io.StringIO()
    assert list(track(range(3), desc="convert", stream=out)) == [0, 1, 2]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("convert: 1/3 img (33%), ") and lines[-1].startswith("convert: 3/3 img (100%)")
    assert "\r" not in out.getvalue()


def test_nothing_when_disabled_short_or_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setenv(ENV_INTERVAL, "0")
    assert list(track([1, 2, 3], enabled=False, stream=out)) == [1, 2, 3]
    assert list(track([1], stream=out)) == [1]
    monkeypatch.setenv(ENV_INTERVAL, "3600")
    assert list(track([1, 2, 3], stream=out)) == [1, 2, 3]
    assert out.getvalue() == ""


def test_wrap_takes_a_bool_or_a_factory() -> None:
    seen: list[tuple[int | None, str, str]] = []

    def factory(items: Iterable[int], *, total: int | None, desc: str, unit: str) -> Iterable[int]:
        seen.append((total, desc, unit))
        return items

    assert list(wrap(factory, [1, 2], total=2, desc="lint", unit="pair")) == [1, 2]
    assert seen == [(2, "lint", "pair")]
    assert list(wrap(False, [1, 2], desc="lint")) == [1, 2]


def test_cli_to_a_pipe_prints_periodic_lines_and_no_bars() -> None:
    r = subprocess.run([sys.executable, *LINT], capture_output=True, text=True, env=env("0"), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    assert "lint: 10/10 pair (100%)" in r.stderr
    quiet = subprocess.run([sys.executable, *LINT, "-q"], capture_output=True, text=True, env=env("0"), timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_cli_on_a_terminal_draws_a_tqdm_bar() -> None:
    import fcntl
    import pty
    import select
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    proc = subprocess.Popen(
        [sys.executable, *LINT], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, env=env("0")
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text
    assert "\r" in text and "10/10" in text and "pair/s" in text  # tqdm's bar, not the plain line
    assert "lint: 10/10 pair (100%)" not in text
