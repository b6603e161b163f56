"""One CLI grammar: every error one line, --quiet/--verbose everywhere, lint's --images/--masks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from paligemma_segcodec.cli import main

WATER = Path(__file__).parent / "data" / "water"
CKPT = Path(__file__).parent / "data" / "fixture-vae.npz"
MASK = sorted((WATER / "masks").iterdir())[0]


def run(*args: Any) -> Any:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()
    env = {"PALIGEMMA_SEGCODEC_CHECKPOINT": str(CKPT)}
    return runner.invoke(main, [str(a) for a in args], env=env, prog_name="segcodec")


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if not ln.startswith("warning:")]


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    preds = root / "preds.jsonl"
    preds.write_text(json.dumps({"image": MASK.name, "prediction": "<loc0000><loc0000><loc0500><loc0500> x"}) + "\n")
    broken = root / "broken.jsonl"
    broken.write_text("{not json\n")
    garbage = root / "garbage.png"
    garbage.write_bytes(b"not an image")
    return {"root": root, "preds": preds, "broken": broken, "garbage": garbage}


CASES: list[tuple[str, list[Any], int]] = [
    ("encode: missing file", ["encode", "nope.png"], 2),
    ("encode: folder for a file", ["encode", WATER], 2),
    ("encode: missing MASK", ["encode"], 2),
    ("encode: not an image", ["encode", "{garbage}"], 1),
    ("decode: --output without --image", ["decode", "<loc0001>", "-o", "{root}/o.png"], 2),
    ("decode: missing --image file", ["decode", "x", "--image", "nope.png"], 2),
    ("convert: missing --output", ["convert", "--images", WATER / "images", "--masks", WATER / "masks"], 2),
    (
        "convert: bad --format",
        ["convert", "--images", WATER / "images", "--masks", WATER / "masks", "--label", "w", "--format", "x"],
        2,
    ),
    ("convert: no such option", ["convert", "--bogus"], 2),
    (
        "convert: output over input",
        ["convert", "--images", WATER / "images", "--masks", WATER / "masks", "--label", "w", "-o", MASK],
        2,
    ),
    ("lint: missing folder", ["lint", "--images", "nope", "--masks", WATER / "masks"], 2),
    ("lint: missing --masks", ["lint", "--images", WATER / "images"], 2),
    ("audit: bad --workers", ["audit", "--images", WATER / "images", "--masks", WATER / "masks", "--workers", "0"], 2),
    ("show: neither input", ["show", "-o", "{root}/o"], 2),
    (
        "show: broken predictions",
        ["show", "--predictions", "{broken}", "--images", WATER / "masks", "-o", "{root}/s"],
        1,
    ),
    ("export: folder for --predictions", ["export", "--predictions", WATER, "--images", WATER, "-o", "{root}/c"], 2),
    (
        "export: output over input",
        ["export", "--predictions", "{preds}", "--images", WATER / "masks", "-o", "{preds}"],
        2,
    ),
    ("eval: missing --predictions", ["eval", "--masks", WATER / "masks"], 2),
    ("bench: bad --limit", ["bench", "--limit", "many"], 2),
    ("group: no such command", ["nosuch"], 2),
    ("group: --quiet with --verbose", ["-q", "lint", "-v"], 2),
]


@pytest.mark.parametrize(("name", "args", "code"), CASES, ids=[c[0] for c in CASES])
def test_every_error_is_one_line(bad: dict[str, Path], name: str, args: list[Any], code: int) -> None:
    argv = [str(a).format(**bad) if isinstance(a, str) else a for a in args]
    r = run(*argv)
    lines = error_lines(r.stderr)
    assert r.exit_code == code, (name, r.exit_code, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: "), (name, r.stderr)
    assert "Usage:" not in r.stderr and "Try " not in r.stderr


def test_usage_error_names_the_option_and_what_to_do() -> None:
    r = run("lint", "--images", "nope", "--masks", WATER / "masks")
    assert r.stderr.strip() == "Error: --images: folder 'nope' does not exist (give an existing folder)"
    r = run("convert", "--images", WATER / "images")
    assert r.stderr.startswith("Error: missing option --output / -o: give it (see 'segcodec convert --help')")


def test_hidden_alias_is_never_suggested() -> None:
    r = run("convert", "--outt", "x")
    assert "--output" in r.stderr and "--out " not in r.stderr and "--out?" not in r.stderr


def test_lint_folder_form_is_deprecated_but_works() -> None:
    new = run("lint", "--images", WATER / "images", "--masks", WATER / "masks", "--no-progress")
    old = run("lint", WATER, "--no-progress")
    assert old.exit_code == new.exit_code == 0
    assert old.stdout == new.stdout
    assert old.stderr.count("\n") == 1 and "deprecated" in old.stderr and "--images" in old.stderr
    assert new.stderr == ""
    assert "FOLDER" not in run("lint", "--help").stdout.split("Options:")[0]


@pytest.mark.parametrize("where", ["group", "command"])
def test_quiet_leaves_out_info_lines(tmp_path: Path, where: str) -> None:
    out = tmp_path / "o.jsonl"
    args = ["convert", "--images", WATER / "images", "--masks", WATER / "masks", "--label", "water", "-o", out]
    r = run("-q", *args) if where == "group" else run(*args, "--quiet")
    assert r.exit_code == 0 and out.is_file()
    assert "wrote" not in r.stderr and "convert:" not in r.stderr


def test_verbose_adds_timing_and_per_file_warnings(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    r = run("convert", "--images", WATER / "images", "--masks", WATER / "masks", "--label", "water", "-o", out, "-v")
    assert r.exit_code == 0
    assert "convert: done in" in r.stderr
    normal = run("convert", "--images", WATER / "images", "--masks", WATER / "masks", "--label", "water", "-o", out)
    assert len(r.stderr.splitlines()) >= len(normal.stderr.splitlines())


def test_every_command_takes_quiet_and_verbose() -> None:
    for name in main.list_commands(None):  # type: ignore[arg-type]
        text = run(name, "--help").stdout
        assert "--quiet" in text and "--verbose" in text, name
