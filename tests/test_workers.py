"""Reading on threads (``--workers``): byte-identical outputs whatever the number, `ordered_map`'s
order, errors, early close and stop requests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from paligemma_segcodec import load_codec
from paligemma_segcodec.cli import main
from paligemma_segcodec.datasets import audit_folder, convert_coco, convert_folder, evaluate, lint_folder
from paligemma_segcodec.datasets.parallel import WORKERS_HELP, default_workers, ordered_map, resolve_workers
from paligemma_segcodec.safeio import Interrupted, clear_stop, request_stop

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"
WATER = DATA / "water"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def codec():  # type: ignore[no-untyped-def]
    return load_codec(CKPT)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good pairs (some with several objects), empty masks, a truncated PNG, a mask without image,
    an image without mask, a size mismatch and a thin object, in one folder pair."""
    root = tmp_path_factory.mktemp("workers")
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(7)
    for i in range(14):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(images / f"p{i:02d}.png")
        m = np.zeros((h, w), np.uint8)
        if i % 5 != 4:  # every fifth mask is empty
            for _ in range(1 + i % 3):
                y, x = int(rng.integers(0, h - 10)), int(rng.integers(0, w - 10))
                m[y : y + int(rng.integers(3, 10)), x : x + int(rng.integers(3, 10))] = 255
        Image.fromarray(m).save(masks / f"p{i:02d}.png")
    # a truncated PNG mask
    data = (masks / "p01.png").read_bytes()
    (masks / "p01.png").write_bytes(data[: len(data) // 2])
    # a size mismatch
    Image.new("L", (33, 21), 255).save(masks / "p06.png")
    # a mask without image, an image without mask
    Image.new("L", (10, 10), 255).save(masks / "orphan.png")
    Image.new("RGB", (10, 10)).save(images / "lonely.png")
    # a thin object (one pixel high on a 2000-pixel-high mask: dropped with a warning)
    Image.new("RGB", (20, 2000)).save(images / "thin.png")
    thin = np.zeros((2000, 20), np.uint8)
    thin[1000, 2:18] = 255
    thin[1500:1600, 5:15] = 255
    Image.fromarray(thin).save(masks / "thin.png")
    return root


def _convert_outputs(out: Path) -> dict[str, bytes]:
    names = [out.name, out.name.removesuffix(".jsonl") + ".errors.jsonl", "train.jsonl", "val.jsonl"]
    return {n: (out.parent / n).read_bytes() for n in names}


def test_convert_folder_is_byte_identical_whatever_the_workers(folder: Path, tmp_path: Path, codec: object) -> None:
    outputs, reports = {}, {}
    for workers in (1, 2, 4):
        out = tmp_path / f"w{workers}" / "out.jsonl"
        out.parent.mkdir()
        report = convert_folder(
            folder / "images",
            folder / "masks",
            out,
            label="water",
            min_area=4,
            split=0.5,
            batch_size=3,  # several flushes
            codec=codec,
            progress=False,
            workers=workers,
        )
        outputs[workers] = _convert_outputs(out)
        reports[workers] = (
            report.lines,
            report.objects,
            report.empty,
            report.dropped_small,
            report.skipped,
            report.warnings,
            report.splits,
        )
    assert outputs[1] == outputs[2] == outputs[4]
    assert reports[1] == reports[2] == reports[4]
    errors = [json.loads(line) for line in outputs[1]["out.errors.jsonl"].decode().splitlines()]
    reasons = " | ".join(e["reason"] for e in errors)
    for expected in ("truncated", "size mismatch", "mask without image", "image without mask", "thinner"):
        assert expected in reasons
    lines = outputs[1]["out.jsonl"].decode().splitlines()
    assert any(json.loads(line)["suffix"] == "" for line in lines)  # the empty masks: negative examples
    assert reports[1][3] >= 1  # the thin object was dropped and counted


def test_convert_coco_is_byte_identical_whatever_the_workers(tmp_path: Path, codec: object) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    anns, infos = [], []
    for i in range(9):
        w, h = 40 + 3 * i, 30 + 2 * i
        if i != 4:  # image 4 is missing: an error line in the middle
            Image.new("RGB", (w, h), (i * 20, 90, 160)).save(images / f"i{i}.png")
        infos.append({"id": i + 1, "file_name": f"i{i}.png", "width": w, "height": h})
        for k in range(i % 3):
            x, y = 2 + 5 * k, 3 + 4 * k
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": 1 + k % 2,
                    "iscrowd": int(i == 5 and k == 1),
                    "segmentation": [[x, y, x + 10, y, x + 10, y + 8, x, y + 8]],
                }
            )
    anns.append({"id": 99, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 2]]})  # a bad polygon
    coco = {"images": infos, "annotations": anns, "categories": [{"id": 1, "name": "lake"}, {"id": 2, "name": "boat"}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    outputs = {}
    for workers in (1, 2, 4):
        out = tmp_path / f"w{workers}" / "out.jsonl"
        out.parent.mkdir()
        report = convert_coco(path, images, out, codec=codec, progress=False, batch_size=2, split=0.5, workers=workers)
        outputs[workers] = (_convert_outputs(out), report.skipped, report.warnings)
    assert outputs[1] == outputs[2] == outputs[4]
    errors = outputs[1][0]["out.errors.jsonl"].decode()
    assert "i4.png" in errors and "crowd" in errors and "annotation 99" in errors


def test_lint_is_identical_whatever_the_workers(folder: Path) -> None:
    reports = [lint_folder(folder / "images", folder / "masks", progress=False, workers=w) for w in (1, 2, 4)]
    assert reports[0].to_json() == reports[1].to_json() == reports[2].to_json()
    assert reports[0].pairs == 15 and reports[0].errors and reports[0].warnings


def test_audit_is_byte_identical_whatever_the_workers(folder: Path, tmp_path: Path, codec: object) -> None:
    files = {}
    skipped = {}
    for workers in (1, 2, 4):
        out = tmp_path / f"w{workers}"
        report = audit_folder(
            folder / "images", folder / "masks", out, min_area=4, worst=5, codec=codec, progress=False, workers=workers
        )
        files[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        skipped[workers] = report.skipped
    assert files[1] == files[2] == files[4]
    assert skipped[1] == skipped[2] == skipped[4]
    assert set(files[1]) == {"audit.csv", "summary.json", "histogram.png", "worst.png"}


def test_eval_is_identical_whatever_the_workers(folder: Path, tmp_path: Path, codec: object) -> None:
    out = tmp_path / "gt.jsonl"
    convert_folder(
        folder / "images", folder / "masks", out, label="water", min_area=4, codec=codec, progress=False, workers=1
    )
    preds = {json.loads(line)["image"]: json.loads(line)["suffix"] for line in out.read_text().splitlines()}
    preds["p00.png"] = "<loc0001><loc0002> broken"
    reports = [evaluate(preds, masks_dir=folder / "masks", codec=codec, workers=w) for w in (1, 2, 4)]
    for r in reports[1:]:
        assert r.scores == reports[0].scores and r.skipped == reports[0].skipped
        assert json.dumps(r.metrics()) == json.dumps(reports[0].metrics())
    assert reports[0].skipped and any(s.invalid for s in reports[0].scores)


def test_eval_coco_warnings_in_order_whatever_the_workers(tmp_path: Path) -> None:
    infos = [{"id": i + 1, "file_name": f"i{i}.png", "width": 30, "height": 20} for i in range(8)]
    anns = []
    for i in range(8):
        anns.append(
            {"id": 2 * i + 1, "image_id": i + 1, "category_id": 1, "segmentation": [[2, 2, 12, 2, 12, 9, 2, 9]]}
        )
        if i % 2:  # a point outside the image: one warning for this image
            anns.append({"id": 2 * i + 2, "image_id": i + 1, "category_id": 1, "segmentation": [[2, 2, 90, 2, 9, 9]]})
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({"images": infos, "annotations": anns, "categories": [{"id": 1, "name": "lake"}]}))
    preds = {f"i{i}.png": "" for i in range(8)}
    reports = [evaluate(preds, coco=path, workers=w) for w in (1, 2, 4)]
    assert [p.reason for p in reports[0].skipped] == [p.reason for p in reports[1].skipped]
    assert reports[0].skipped == reports[1].skipped == reports[2].skipped
    assert [p.reason.split(" (")[0].split("#annotation ")[1] for p in reports[0].skipped] == ["4", "8", "12", "16"]
    assert reports[0].scores == reports[1].scores == reports[2].scores


# ---------------------------------------------------------------------------------------------
# ordered_map


@settings(max_examples=25)
@given(
    delays=st.lists(st.integers(0, 3), min_size=0, max_size=30),
    workers=st.integers(1, 5),
    prefetch=st.none() | st.integers(1, 6),
)
def test_ordered_map_keeps_input_order(delays: list[int], workers: int, prefetch: int | None) -> None:
    def slow(item: tuple[int, int]) -> int:
        i, d = item
        time.sleep(d / 1000)
        return i * 10

    got = list(ordered_map(slow, iter(enumerate(delays)), workers=workers, prefetch=prefetch))
    assert got == [i * 10 for i in range(len(delays))]


def test_ordered_map_serial_uses_no_thread() -> None:
    seen = []
    got = list(ordered_map(lambda x: seen.append(threading.current_thread()) or x, range(4), workers=1))
    assert got == [0, 1, 2, 3] and set(seen) == {threading.current_thread()}


def test_ordered_map_reads_lazily_with_a_bounded_window() -> None:
    pulled = []

    def source() -> Iterator[int]:
        for i in range(1000):
            pulled.append(i)
            yield i

    results = ordered_map(lambda x: x, source(), workers=2, prefetch=4)
    assert next(results) == 0
    assert len(pulled) <= 5  # at most the window (4) submitted, plus nothing more
    results.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_ordered_map_raises_at_the_failing_items_position(workers: int) -> None:
    def fn(x: int) -> int:
        if x == 5:
            raise ValueError("five")
        time.sleep(0.002 * (x % 3))
        return x

    got: list[int] = []
    with pytest.raises(ValueError, match="five"):
        got.extend(ordered_map(fn, range(20), workers=workers))
    assert got == [0, 1, 2, 3, 4]


def test_ordered_map_raises_what_the_input_raises_after_the_results_before_it() -> None:
    def source() -> Iterator[int]:
        yield from range(3)
        raise OSError("listing failed")

    got: list[int] = []
    with pytest.raises(OSError, match="listing failed"):
        got.extend(ordered_map(lambda x: x * 2, source(), workers=2))
    assert got == [0, 2, 4]


def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("segcodec-read")]


def test_ordered_map_early_close_leaves_no_thread() -> None:
    started = []

    def fn(x: int) -> int:
        started.append(x)
        time.sleep(0.01)
        return x

    before = threading.active_count()
    results = ordered_map(fn, range(10_000), workers=3, prefetch=6)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    assert _pool_threads()
    results.close()
    assert not _pool_threads() and threading.active_count() == before
    assert len(started) < 20  # the rest was cancelled, not computed


def test_ordered_map_consumer_error_leaves_no_thread() -> None:
    def consume() -> None:
        for v in ordered_map(lambda x: x, range(1000), workers=2):
            if v == 7:
                raise KeyError(v)

    with pytest.raises(KeyError):
        consume()
    assert not _pool_threads()


def test_ordered_map_honours_a_stop_request() -> None:
    def fn(x: int) -> int:
        if x == 3:
            request_stop(signal.SIGTERM)
        time.sleep(0.002)
        return x

    got: list[int] = []
    try:
        with pytest.raises(Interrupted):
            got.extend(ordered_map(fn, range(100), workers=2))
    finally:
        clear_stop()
    assert len(got) <= 4 and not _pool_threads()


def test_stop_mid_convert_commits_nothing(
    folder: Path, tmp_path: Path, codec: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    from paligemma_segcodec.datasets import convert as convert_module

    real = convert_module.example_for_pair
    calls = []

    def stopping(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 4:  # as the CLI's SIGTERM handler does, from a reading thread
            request_stop(signal.SIGTERM)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convert_module, "example_for_pair", stopping)
    try:
        with pytest.raises(Interrupted):
            convert_folder(
                folder / "images", folder / "masks", out, label="water", codec=codec, progress=False, workers=3
            )
    finally:
        clear_stop()
    assert out.read_text() == "previous\n"
    assert not (tmp_path / "out.errors.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporaries left
    assert not _pool_threads()


def test_workers_argument_is_checked() -> None:
    assert default_workers() >= 1 and resolve_workers(None) == default_workers() and resolve_workers(3) == 3
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="workers"):
            resolve_workers(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="workers"):
            ordered_map(lambda x: x, [], workers=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the command line


def _cli(*args: object, checkpoint: bool = True) -> Result:
    extra = ["--checkpoint", str(CKPT)] if checkpoint else []
    return CliRunner().invoke(main, [*(str(a) for a in args), *extra])


@pytest.mark.parametrize("command", ["convert", "lint", "audit", "eval"])
def test_workers_option_is_the_same_everywhere(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--workers" in result.output and " ".join(WORKERS_HELP.split()) in " ".join(result.output.split())
    bad = CliRunner().invoke(main, [command, "--workers", "0"])
    assert bad.exit_code == 2 and "--workers" in bad.output


def test_lint_and_eval_cli_outputs_identical_whatever_the_workers(folder: Path, tmp_path: Path) -> None:
    outs = {}
    for w in (1, 3):
        lint_json = tmp_path / f"lint{w}.json"
        r = _cli(
            "lint",
            "--images",
            folder / "images",
            "--masks",
            folder / "masks",
            "--json",
            lint_json,
            "--workers",
            w,
            checkpoint=False,
        )
        assert r.exit_code == 1, r.output  # errors were planted
        outs[w] = lint_json.read_bytes()
    assert outs[1] == outs[3]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"image": f"p{i:02d}.png", "prediction": ""}) + "\n" for i in range(14)))
    for w in (1, 3):
        r = _cli(
            "eval", "--predictions", preds, "--masks", folder / "masks", "--csv", tmp_path / f"s{w}.csv", "--workers", w
        )
        assert r.exit_code == 1, r.output  # the truncated mask
        outs[w] = (tmp_path / f"s{w}.csv").read_bytes() + r.output.encode()
    assert outs[1] == outs[3]


def test_convert_cli_subprocess_same_bytes_with_three_workers(folder: Path, tmp_path: Path) -> None:
    """``python -m paligemma_segcodec convert --workers 3`` (a real process, real threads) writes the
    bytes the in-process ``--workers 1`` run writes."""
    outputs = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}" / "out.jsonl"
        out.parent.mkdir()
        args: list[object] = ["convert", "--images", folder / "images", "--masks", folder / "masks", "--label", "water"]
        args += ["--output", out, "--split", "0.5", "--no-progress", "--workers", workers]
        if workers == 1:
            result = _cli(*args)
            assert result.exit_code == 1, result.output  # bad items were planted
        else:
            env = {**os.environ, "PALIGEMMA_SEGCODEC_CHECKPOINT": str(CKPT)}
            command = [sys.executable, "-m", "paligemma_segcodec", *(str(a) for a in args)]
            proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
            assert proc.returncode == 1, proc.stderr
            assert "skipped 4 item(s)" in proc.stderr, proc.stderr
        outputs[workers] = _convert_outputs(out)
    assert outputs[1] == outputs[3]


def test_water_sample_cli_convert_identical(tmp_path: Path) -> None:
    """The bundled real masks (JPEG, several components each) through the CLI, 1 vs 4 workers."""
    got = {}
    for w in (1, 4):
        out = tmp_path / f"w{w}.jsonl"
        r = _cli(
            "convert",
            "--images",
            WATER / "images",
            "--masks",
            WATER / "masks",
            "--label",
            "water",
            "--output",
            out,
            "--no-progress",
            "--workers",
            w,
        )
        assert r.exit_code == 0, r.output
        got[w] = out.read_bytes()
    assert got[1] == got[4] and got[1].count(b"\n") == 10


def test_bench_stream_items_identical_whatever_the_workers(tmp_path: Path) -> None:
    from paligemma_segcodec.bench_stream import _stream_items

    masks = tmp_path / "masks"
    shutil.copytree(WATER / "masks", masks)
    one = [(e.image, [o.box for o in e.objects]) for e in _stream_items(masks, 23, 127, 1)]
    three = [(e.image, [o.box for o in e.objects]) for e in _stream_items(masks, 23, 127, 3)]
    assert one == three and len(one) == 23
