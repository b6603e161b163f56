"""``segcodec bench``: stage lines on stderr, one JSON object on stdout, with the header (machine,
versions, install flavour), spreads, warnings, host prep and the same-run ratios. Tiny --seconds and
--limit on the golden checkpoint: these check the shape of the report, never a speed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from paligemma_segcodec.bench import MAX_SPREAD, MIN_MASKS, Log, Rate
from paligemma_segcodec.cli import main

DATA = Path(__file__).parent / "data"
CKPT = DATA / "golden" / "checkpoint.npz"


def _bench(*args: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["bench", "--checkpoint", str(CKPT), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr  # stdout: the JSON alone


def test_bench_prints_json_with_rates_and_ratios() -> None:
    out, err = _bench("--only", "codec", "--batch", "8", "--seconds", "0.05")
    assert out["machine"]["cpu_cores"] >= 1 and "jax" in out["machine"]
    assert out["machine"]["xla_matmul_gflops"] > 0 and out["machine"]["xla_matmul_gflops_at_end"] > 0
    assert "cpu_model" in out["machine"] and out["machine"]["platform"]
    enc, dec = out["encode_indices"], out["decode_indices"]
    assert enc["batch"] == dec["batch"] == 8
    for part in (enc, dec):
        assert part["masks_per_s"] > 0 and part["baseline_batch1_masks_per_s"] > 0
        assert part["ratio"] == pytest.approx(part["masks_per_s"] / part["baseline_batch1_masks_per_s"])
        timing = part["timing"]["masks_per_s"]
        assert timing["min"] <= timing["median"] == part["masks_per_s"] <= timing["max"]
        assert part["spread"] == timing["spread"] == pytest.approx((timing["max"] - timing["min"]) / timing["median"])
        assert "baseline_batch1_masks_per_s" in part["timing"]
    assert "encode_masks" not in out and "tf_reference" not in out
    # one stage line per measurement, as it finishes: name, rate, spread, seconds
    lines = err.splitlines()
    assert any(line.startswith("xla_matmul_gflops") and "GFLOP/s" in line for line in lines)
    stage = next(line for line in lines if line.startswith("encode_indices (batch 8)"))
    assert "masks/s" in stage and "spread" in stage and stage.rstrip().endswith("s")
    assert any(line.startswith("decode_indices (batch 1)") for line in lines)


def test_bench_header_records_versions_and_install_flavour() -> None:
    from paligemma_segcodec import __version__
    from paligemma_segcodec.resize import _numba_kernel

    out, _ = _bench("--only", "none")
    versions = out["versions"]
    assert {"python", "numpy", "jax", "jaxlib", "flax", "pillow", "numba", "paligemma_segcodec"} <= set(versions)
    assert versions["paligemma_segcodec"] == __version__ and versions["jax"] and versions["pillow"]
    install = out["install"]
    assert set(install["optional"]) == {"numba", "tensorflow", "supervision", "datasets", "ray"}
    assert install["compiled_resize"] is (_numba_kernel() is not None)
    assert ("fast" in install["extras"]) is (install["optional"]["numba"] is not None)
    assert out["warnings"] == [] or all(isinstance(w, str) for w in out["warnings"])


def test_bench_encode_masks_small_sample_warns_and_reports_host_prep_and_core_ratio() -> None:
    out, err = _bench("--only", "codec,encode_masks", "--limit", "3", "--batch", "8", "--seconds", "0.05")
    em = out["encode_masks"]
    assert em["masks"] == 3 and em["masks_per_s"] > 0 and em["spread"] >= 0
    assert em["host_prep_us_per_mask"] > 0 and em["host_prep"]["function"].endswith("prepare_batch")
    assert em["host_prep_us_per_mask"] == pytest.approx(1e6 / em["host_prep"]["timing"]["masks_per_s"]["median"])
    assert em["ratio_vs_encoder_core"] == pytest.approx(em["masks_per_s"] / out["encode_indices"]["masks_per_s"])
    assert em["encoder_core_batch"] == 8 and em["ratio_vs_encoder_core_target"] == 0.65
    if importlib.util.find_spec("paligemma_segcodec.prep_device") is not None:  # the GPU path's host side
        assert em["device_prep_us_per_mask"] > 0 and "pack_crops" in em["device_prep"]["function"]
    small = [w for w in out["warnings"] if f"3 masks in the sample (< {MIN_MASKS})" in w]
    assert len(small) == 1
    assert f"warning: {small[0]}" in err  # printed as well as recorded
    assert "encode_masks (3 masks)" in err and "encode_masks / encode_indices (batch 8)" in err
    # any other warning is a spread over the limit, and names its measurement
    for w in out["warnings"]:
        assert w in small or f"(> {MAX_SPREAD:.0%};" in w


def test_bench_numpy_fallback_runs_in_a_child_on_the_same_masks() -> None:
    out, err = _bench("--only", "encode_masks,numpy_fallback", "--limit", "2", "--seconds", "0.05")
    fb, em = out["numpy_fallback"], out["encode_masks"]
    assert "failed" not in fb, fb
    assert fb["compiled_resize_in_child"] is False and fb["masks"] == em["masks"] == 2
    assert fb["compiled_masks_per_s"] == em["masks_per_s"]
    assert fb["numpy_fallback_vs_compiled"] == pytest.approx(fb["masks_per_s"] / em["masks_per_s"])
    assert fb["host_prep_us_per_mask"] > 0 and "spread" in fb
    assert "encode_masks, NumPy resize (2 masks)" in err


def test_rate_spread_and_log_warnings() -> None:
    r = Rate((90.0, 100.0, 110.0), elapsed=1.0)
    assert r.median == 100.0 and r.spread == pytest.approx(0.2)
    assert r.json()["min"] == 90.0 and r.json()["repeats"] == 3
    log = Log()  # silent
    log.warn("x")
    assert log.warnings == ["x"]


def test_bench_rejects_unknown_names() -> None:
    result = CliRunner().invoke(main, ["bench", "--only", "codec,nope", "--checkpoint", str(CKPT)])
    assert result.exit_code == 1
    assert "unknown benchmark(s) ['nope']" in result.output and "recompiles" in result.output


def test_bench_tf_calibration_is_skipped_without_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` raises ImportError
    out, err = _bench("--only", "tf", "--limit", "2", "--seconds", "0.05")
    assert "pip install 'paligemma-segcodec[tf]'" in out["tf_reference"]["skipped"]
    assert "tf_reference" in err and "skipped" in err
