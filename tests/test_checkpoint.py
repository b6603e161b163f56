"""Checkpoint resolution, download (with a fake hub), sha256 and layout validation."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest

import paligemma_segcodec.checkpoint as ck
from paligemma_segcodec import CheckpointError, CheckpointNotFoundError, load_codec
from paligemma_segcodec.checkpoint import read_checkpoint, resolve_checkpoint, sha256_of

GOLDEN_CKPT = Path(__file__).parent / "data" / "golden" / "checkpoint.npz"


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_CKPT) as f:
        return {k: f[k] for k in f.files}


def _save(tmp_path: Path, arrays: dict[str, np.ndarray], name: str = "c.npz") -> Path:
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_explicit_path_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ck.ENV_VAR, str(tmp_path / "nope.npz"))
    assert resolve_checkpoint(GOLDEN_CKPT) == GOLDEN_CKPT
    with pytest.raises(CheckpointNotFoundError, match=r"\$PALIGEMMA_SEGCODEC_CHECKPOINT .*nope.npz.* does not exist"):
        resolve_checkpoint()


def test_env_var_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ck.ENV_VAR, str(GOLDEN_CKPT))
    assert resolve_checkpoint() == GOLDEN_CKPT


def test_missing_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"does not exist.*big-vision/paligemma-hf"):
        load_codec(tmp_path / "missing.npz")


def _fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: bytes) -> list[dict[str, str]]:
    """A stand-in for hf_hub_download that serves `content` from a temporary cache folder."""
    calls: list[dict[str, str]] = []

    LocalEntryNotFoundError = ck._hf_imports()[1]  # its module differs across huggingface_hub versions

    def fake_download(repo_id: str, filename: str, repo_type: str, local_files_only: bool = False) -> str:
        path = tmp_path / "hub" / f"spaces--{repo_id.replace('/', '--')}" / filename
        if local_files_only:  # the cache lookup: a miss until the first download
            if not path.exists():
                raise LocalEntryNotFoundError("not in the cache")
            return str(path)
        calls.append({"repo_id": repo_id, "filename": filename, "repo_type": repo_type})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return str(path)

    import huggingface_hub

    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(ck, "_hub_reachable", lambda endpoint, seconds=1.5: True)
    return calls


def test_download_verifies_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = GOLDEN_CKPT.read_bytes()
    calls = _fake_hub(monkeypatch, tmp_path, content)
    monkeypatch.setattr(ck, "SHA256", sha256_of(GOLDEN_CKPT))  # pretend the golden file is the published one
    path = resolve_checkpoint()
    assert path.read_bytes() == content
    assert calls == [{"repo_id": "big-vision/paligemma-hf", "filename": "vae-oid.npz", "repo_type": "space"}]
    assert resolve_checkpoint() == path and len(calls) == 1  # the second time from the cache, no download


def test_download_rejects_tampered_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = bytearray(GOLDEN_CKPT.read_bytes())
    content[-100] ^= 1
    _fake_hub(monkeypatch, tmp_path, bytes(content))
    with pytest.raises(CheckpointError, match=f"sha256 expected {ck.SHA256}, got [0-9a-f]{{64}}"):
        resolve_checkpoint()


def test_real_published_hash_is_pinned() -> None:
    assert ck.SHA256 == "5586010257b8536dddefab65e7755077f21d5672d5674dacf911f73ae95a4447"


def test_offline_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real huggingface_hub, offline, with an empty cache: a clear message saying how to get the file."""
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint()
    msg = str(info.value)
    assert "HF_HUB_OFFLINE is set" in msg and "big-vision/paligemma-hf" in msg
    assert "PALIGEMMA_SEGCODEC_CHECKPOINT" in msg and "--checkpoint" in msg


def test_unreachable_hub_suggests_hf_hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe said the Hub is up, then huggingface_hub failed anyway: the message says how to get
    the file and how to skip the network next time."""
    import huggingface_hub

    LocalEntryNotFoundError = ck._hf_imports()[1]  # its module differs across huggingface_hub versions

    def unreachable(**_: object) -> str:
        raise LocalEntryNotFoundError("cannot reach the Hub and the file is not in the cache")

    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    monkeypatch.setattr(ck, "_hub_reachable", lambda endpoint, seconds=1.5: True)
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint()
    msg = str(info.value)
    assert "could not be reached" in msg and "set HF_HUB_OFFLINE=1" in msg and "--checkpoint" in msg


def test_no_network_fails_fast_without_hf_hub_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real huggingface_hub, an empty cache, HF_HUB_OFFLINE unset and the Hub's host unreachable
    (a closed local port as the endpoint): huggingface_hub is asked only for the cache (no download
    and its retries), and one message names the three ways out."""
    import huggingface_hub
    import huggingface_hub.constants as c

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    real = huggingface_hub.hf_hub_download
    asked: list[bool] = []

    def spy(**kwargs: object) -> str:
        asked.append(bool(kwargs.get("local_files_only")))
        return str(real(**kwargs))  # type: ignore[arg-type]

    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint()
    msg = str(info.value)
    assert asked == [True]
    assert "cannot be reached" in msg and f"127.0.0.1:{port}" in msg
    assert "--checkpoint" in msg and "PALIGEMMA_SEGCODEC_CHECKPOINT" in msg and "HF_HUB_OFFLINE" in msg


def test_no_probe_behind_a_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTPS_PROXY set a direct connection says nothing: huggingface_hub is asked to download."""
    calls = _fake_hub(monkeypatch, tmp_path, GOLDEN_CKPT.read_bytes())
    monkeypatch.setattr(ck, "SHA256", sha256_of(GOLDEN_CKPT))
    monkeypatch.setattr(ck, "_hub_reachable", lambda endpoint, seconds=1.5: False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert resolve_checkpoint().read_bytes() == GOLDEN_CKPT.read_bytes()
    assert len(calls) == 1


def test_hub_probe_gives_up_on_a_silent_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name lookup or connect that hangs does not hold the caller past the probe's time."""
    release = threading.Event()

    def hang(*_: object, **__: object) -> socket.socket:
        release.wait(10)
        raise OSError("gave up")

    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        assert ck._hub_reachable("https://huggingface.co", seconds=0.2) is False
    finally:
        release.set()


def test_offline_but_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file already in a (hand-made) HF cache is found offline and its hash checked."""
    import huggingface_hub.constants as c

    cache = tmp_path / "hub"
    repo = cache / "spaces--big-vision--paligemma-hf"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "vae-oid.npz").write_bytes(GOLDEN_CKPT.read_bytes())
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(ck, "SHA256", sha256_of(GOLDEN_CKPT))
    assert resolve_checkpoint().read_bytes() == GOLDEN_CKPT.read_bytes()


def test_float16_checkpoint_is_upcast(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    half = {k: v.astype(np.float16) for k, v in arrays.items()}
    c = read_checkpoint(_save(tmp_path, half))
    assert c.codebook.dtype == np.float32
    assert c.encoder[0][0].weight.dtype == np.float32


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda a: a.pop("decoder.6.weight"), "missing key 'decoder.6.weight'"),  # missing key
        (lambda a: a.pop("_vq_vae._embedding"), "missing key '_vq_vae._embedding'"),  # missing codebook
        (
            lambda a: a.__setitem__("encoder.2.weight", np.zeros((32, 8, 4, 4), np.float32)),
            "'encoder.2.weight' has shape",
        ),
        (lambda a: a.__setitem__("encoder.2.bias", np.zeros((31,), np.float32)), "'encoder.2.bias' has shape"),
        (
            lambda a: a.__setitem__("_vq_vae._embedding", np.zeros((128, 256), np.float32)),
            "'_vq_vae._embedding' has shape",
        ),
        (lambda a: a.__setitem__("decoder.12.weight", np.zeros((1, 16), np.float32)), "expected 4-D"),
        (lambda a: a.__setitem__("encoder.0.bias", np.zeros((16,), np.int32)), "dtype int32"),
        (lambda a: a.__setitem__("encoder.0.bias", np.full((16,), np.nan, np.float32)), "NaN"),
    ],
)
def test_bad_layouts_name_the_key(tmp_path: Path, arrays: dict[str, np.ndarray], mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    mutate(arrays)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(_save(tmp_path, arrays))


def test_not_an_npz(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    p.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match=r"not a readable \.npz"):
        read_checkpoint(p)
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match=r"not an \.npz archive"):
        read_checkpoint(tmp_path / "a.npy")


def test_load_codec_is_cached() -> None:
    assert load_codec(GOLDEN_CKPT) is load_codec(str(GOLDEN_CKPT))
