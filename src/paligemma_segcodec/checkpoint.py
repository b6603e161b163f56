"""Finding, verifying and reading the vae-oid checkpoint (NumPy + huggingface_hub, no JAX).

Where the checkpoint comes from, in order (`resolve_checkpoint`):

1. an explicit ``path`` (any checkpoint with vae-oid.npz's layout);
2. the environment variable ``PALIGEMMA_SEGCODEC_CHECKPOINT``;
3. ``huggingface_hub.hf_hub_download("big-vision/paligemma-hf", "vae-oid.npz", repo_type="space")``,
   which uses the Hugging Face cache and honours ``HF_HUB_OFFLINE``; the file must have the
   published sha256.

The file is an ``.npz`` of PyTorch-layout float arrays (conv ``(out, in, kh, kw)``, transposed conv
``(in, out, kh, kw)``). The layer *names* are fixed (`ENCODER_LAYERS`, `DECODER_LAYERS`); kernel
sizes and channel counts are read from the arrays. `read_checkpoint` validates every array and
returns a `Checkpoint`, the only place that knows the PyTorch layout.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import socket
import struct
import threading
import urllib.parse
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from paligemma_segcodec._optional import MINIMUM, too_old
from paligemma_segcodec.errors import CheckpointError, CheckpointNotFoundError
from paligemma_segcodec.safeio import open_regular

__all__ = [
    "ENV_VAR",
    "HF_FILENAME",
    "HF_REPO_ID",
    "HF_REPO_TYPE",
    "SHA256",
    "Checkpoint",
    "ConvWeights",
    "read_checkpoint",
    "resolve_checkpoint",
    "sha256_of",
]

ENV_VAR = "PALIGEMMA_SEGCODEC_CHECKPOINT"
HF_REPO_ID = "big-vision/paligemma-hf"
HF_REPO_TYPE = "space"
HF_FILENAME = "vae-oid.npz"
SHA256 = "5586010257b8536dddefab65e7755077f21d5672d5674dacf911f73ae95a4447"
"""sha256 of the published vae-oid.npz (8,479,556 bytes)."""

_HOW_TO_GET = (
    f"Download {HF_FILENAME} from the Hugging Face Space {HF_REPO_ID} "
    f"(https://huggingface.co/spaces/{HF_REPO_ID}/blob/main/{HF_FILENAME}) on a machine with network, then "
    f"point to it with load_codec(path=...), the environment variable {ENV_VAR}=/path/to/{HF_FILENAME}, "
    f"or the CLI option --checkpoint PATH (or copy it into the Hugging Face cache with network once)."
)

# (name, kind) in forward order. kind: "down" stride-2 conv + ReLU, "res" residual block,
# "conv" plain conv (ReLU when followed by another layer), "up" stride-2 transposed conv + ReLU.
ENCODER_LAYERS: tuple[tuple[str, str], ...] = (
    ("encoder.0", "down"),
    ("encoder.2", "down"),
    ("encoder.4", "down"),
    ("encoder.6", "down"),
    ("encoder.8.net", "res"),
    ("encoder.9.net", "res"),
    ("encoder.10", "conv"),
)
DECODER_LAYERS: tuple[tuple[str, str], ...] = (
    ("decoder.0", "conv"),
    ("decoder.2.net", "res"),
    ("decoder.3.net", "res"),
    ("decoder.4", "up"),
    ("decoder.6", "up"),
    ("decoder.8", "up"),
    ("decoder.10", "up"),
    ("decoder.12", "conv"),
)
CODEBOOK_KEY = "_vq_vae._embedding"
_RES_CONVS = (".0", ".2", ".4")


@dataclass(frozen=True)
class ConvWeights:
    """One convolution in the checkpoint's PyTorch layout.

    ``weight`` is float32 ``(out, in, kh, kw)`` for a conv and ``(in, out, kh, kw)`` for a
    transposed conv (``transposed=True``); ``bias`` is float32 ``(out,)``.

    Attributes:
        name (str): the layer's key prefix in the ``.npz`` (``"encoder.0"``).
        weight (numpy.ndarray): float32, in the PyTorch layout above.
        bias (numpy.ndarray): float32 ``(out,)``.
        transposed (bool): a transposed convolution (the decoder's upsampling layers).

    Examples:
        >>> conv = read_checkpoint("tests/data/fixture-vae.npz").encoder[0][0]
        >>> conv.name, conv.weight.shape, conv.transposed
        ('encoder.0', (16, 1, 4, 4), False)
    """

    name: str
    weight: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    transposed: bool = False

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[0 if self.transposed else 1])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[1 if self.transposed else 0])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))


@dataclass(frozen=True)
class Checkpoint:
    """A validated vae-oid checkpoint.

    Attributes:
      encoder: per entry of `ENCODER_LAYERS`, a tuple of convs (one, or three for a residual block).
      decoder: likewise for `DECODER_LAYERS`.
      codebook: float32 ``(K, D)``, K codebook entries (128) of dimension D (512).
      source: where it was read from.

    Examples:
    >>> ckpt = read_checkpoint("tests/data/fixture-vae.npz")
    >>> ckpt.codebook.shape, len(ckpt.encoder), ckpt.source
    ((128, 512), 7, 'tests/data/fixture-vae.npz')
    """

    encoder: tuple[tuple[ConvWeights, ...], ...]
    decoder: tuple[tuple[ConvWeights, ...], ...]
    codebook: npt.NDArray[np.float32]
    source: str


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks.

    Args:
        path: the file.

    Returns:
        64 lowercase hex digits.

    Raises:
        OSError: the file cannot be read.

    Examples:
        >>> len(sha256_of("tests/data/fixture-vae.npz"))
        64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_PROBE_SECONDS = 1.5  # how long the Hub may take to accept a TCP connection before we call it unreachable


def _hf_imports() -> tuple[Any, type[Exception], str]:
    """``hf_hub_download``, its "not in the cache" error type and the Hub endpoint, across
    huggingface_hub versions (the error moved to ``huggingface_hub.errors`` in 0.24); a
    huggingface_hub older than the declared lower bound is a `CheckpointNotFoundError` that says
    "too old: found X, need Y"."""
    try:
        import huggingface_hub
        from huggingface_hub import hf_hub_download
    except ImportError as err:  # pragma: no cover - huggingface_hub is a dependency
        raise CheckpointNotFoundError(f"huggingface_hub cannot be imported ({err}). {_HOW_TO_GET}") from err
    old = too_old(huggingface_hub, MINIMUM["huggingface_hub"])
    if old:
        raise CheckpointNotFoundError(f"{old} (pip install -U huggingface_hub). {_HOW_TO_GET}")
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # huggingface_hub < 0.24
        from huggingface_hub.utils import LocalEntryNotFoundError  # type: ignore[attr-defined]
    endpoint = str(getattr(huggingface_hub.constants, "ENDPOINT", "https://huggingface.co"))
    return hf_hub_download, LocalEntryNotFoundError, endpoint


def _hf_cache_dir() -> dict[str, str]:
    """``{"cache_dir": ...}`` when ``huggingface_hub.constants.HF_HUB_CACHE`` was changed after
    import and this huggingface_hub (0.23) reads the import-time copy its ``file_download`` module
    keeps; ``{}`` otherwise (the default is already the current value)."""
    try:
        from huggingface_hub import constants, file_download
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return {}
    current = getattr(constants, "HF_HUB_CACHE", None)
    frozen = getattr(file_download, "HF_HUB_CACHE", current)
    return {"cache_dir": str(current)} if current is not None and frozen != current else {}


def _hub_reachable(endpoint: str, seconds: float = _PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the Hub's host opens within ``seconds`` (name lookup included: it
    runs on a daemon thread, so a hanging DNS cannot hold the caller longer)."""
    url = urllib.parse.urlsplit(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=seconds).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, name="segcodec-hub-probe", daemon=True)
    thread.start()
    thread.join(seconds + 0.25)
    return bool(ok)


def _behind_proxy() -> bool:
    """A proxy is configured (``HTTPS_PROXY`` …): a direct probe says nothing, so huggingface_hub decides."""
    return any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    )


def _download_default() -> Path:
    hf_hub_download, not_cached, endpoint = _hf_imports()
    where = {"repo_id": HF_REPO_ID, "filename": HF_FILENAME, "repo_type": HF_REPO_TYPE, **_hf_cache_dir()}
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:  # the cache first: no network, no retries
        local = hf_hub_download(**where, local_files_only=True)
    except (not_cached, FileNotFoundError):
        local = None
    if local is None:
        if offline:
            why = "HF_HUB_OFFLINE is set"
        elif not _behind_proxy() and not _hub_reachable(endpoint):
            why = (
                f"the Hugging Face Hub ({endpoint}) cannot be reached from this machine (set HF_HUB_OFFLINE=1 on "
                "machines without network to skip this check)"
            )
        else:
            why = ""
        if why:
            raise CheckpointNotFoundError(
                f"The default checkpoint {HF_FILENAME} is not in the Hugging Face cache and {why}. {_HOW_TO_GET}"
            )
        try:
            local = hf_hub_download(**where)
        except not_cached as err:
            raise CheckpointNotFoundError(
                f"The default checkpoint {HF_FILENAME} is not in the Hugging Face cache and the Hugging Face Hub "
                f"could not be reached (on a machine without network, set HF_HUB_OFFLINE=1). {_HOW_TO_GET}"
            ) from err
        except OSError as err:  # network errors that are not wrapped as LocalEntryNotFoundError
            raise CheckpointNotFoundError(f"Could not download {HF_FILENAME}: {err}. {_HOW_TO_GET}") from err
    actual = sha256_of(local)
    if actual != SHA256:
        raise CheckpointError(
            f"{local} does not match the published {HF_FILENAME}: sha256 expected {SHA256}, got {actual}. "
            "Delete it from the Hugging Face cache and download it again."
        )
    return Path(local)


def resolve_checkpoint(path: str | os.PathLike[str] | None = None) -> Path:
    """Where to read the checkpoint from: ``path`` → ``$PALIGEMMA_SEGCODEC_CHECKPOINT`` → Hugging Face.

    Raises:
      CheckpointNotFoundError: the path does not exist, or offline and not cached (says how to get it).
      CheckpointError: the downloaded default does not have the published sha256.

    Args:
        path: an explicit file; None to look at the environment variable, then Hugging Face.

    Returns:
        The checkpoint file's path (not yet read or validated, except the download's sha256).

    Examples:
        >>> resolve_checkpoint("tests/data/fixture-vae.npz")
        PosixPath('tests/data/fixture-vae.npz')
    """
    for given, what in ((path, "checkpoint path"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if given is None:
            continue
        try:
            p = Path(given).expanduser()
        except RuntimeError:  # "~nosuchuser/…": no such home folder
            raise CheckpointNotFoundError(f"{what} {str(given)!r}: cannot expand '~'. {_HOW_TO_GET}") from None
        if not p.is_file():
            raise CheckpointNotFoundError(f"{what} {str(p)!r} does not exist or is not a file. {_HOW_TO_GET}")
        return p
    return _download_default()


# --------------------------------------------------------------------------- reading, hostile files included
#
# Everything below decides from the zip directory and the .npy headers (a few hundred bytes a member)
# before any array data is read: the names, each array's dtype and shape, the layer layout and the
# total size. Only the arrays the codec needs are decompressed, each exactly as many bytes as its
# header announces, so a zip bomb or a header claiming terabytes costs nothing.

_UNUSED_KEYS = frozenset({"_vq_vae._ema_w", "_vq_vae._ema_cluster_size"})
"""Keys of vae-oid.npz the codec does not use (the VQ's training statistics): allowed, never read."""
CODEBOOK_SIZE = 128
"""Codebook entries of vae-oid (PaliGemma's ``<seg000>``..``<seg127>``)."""
_FLOAT_DTYPES = ("<f2", "<f4", "<f8")
_MAX_VALUES = 4 * 2**20
"""Most values the needed arrays may hold, each and all together: twice vae-oid.npz's 2,050,929 (the
arrays are read into float32, so the result stays under 17 MB)."""
_MAX_HEADER = 4096  # .npy header dict, in bytes (vae-oid.npz's: 118)
_MAX_MEMBER_BYTES = _MAX_VALUES * 8 + _MAX_HEADER + 16  # any member's declared uncompressed size
_MAX_DIRECTORY = 64 * 1024  # zip central directory, in bytes (vae-oid.npz's: about 3 kB for 49 members)
_EOCD = struct.Struct("<4s4H2LH")  # zip end-of-central-directory record (as zipfile.structEndArchive)
_NPY_MAGIC = b"\x93NUMPY"
# What zipfile, zlib and numpy's header parser raise on damaged or hostile input; all become CheckpointError.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    ZeroDivisionError,
    UnicodeDecodeError,
    SyntaxError,
    MemoryError,
    RecursionError,
    NotImplementedError,
    RuntimeError,
)


@dataclass(frozen=True)
class _Member:
    """One needed ``key.npy`` member, known from the zip directory and its .npy header only."""

    key: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def _size(n: int) -> str:
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _quoted(keys: Iterable[str], most: int = 5) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _expected_keys() -> list[str]:
    keys: list[str] = []
    for spec in (ENCODER_LAYERS, DECODER_LAYERS):
        for name, kind in spec:
            for conv in [name + s for s in _RES_CONVS] if kind == "res" else [name]:
                keys += [conv + ".weight", conv + ".bias"]
    return [*keys, CODEBOOK_KEY]


def _sniff(head: bytes, size: int) -> str | None:
    """What a file that is not a zip looks like, in words; None for a zip."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return None
    if size == 0:
        return "an empty file (0 bytes)"
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return "a Git LFS pointer, not the file itself (run `git lfs pull`, or download the file)"
    if head.startswith(_NPY_MAGIC):
        return "a single .npy array"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 file"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle (a PyTorch .pt/.pth?); it was not unpickled"
    if len(head) > 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= size - 8:
        return "a .safetensors file"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (a failed download?)"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut at the end of the 512 bytes is still text
        decoded = head[: err.start].decode("utf-8") if err.start >= len(head) - 3 else ""
    if decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
        first = decoded.strip().splitlines()[0][:40] if decoded.strip() else ""
        return f"a text file (starting {first!r})"
    return f"unknown binary data (starting {head[:8].hex(' ')})"


def _check_directory(f: BinaryIO, size: int, source: str) -> None:
    """Finds the zip end record as `zipfile` does and refuses a central directory over `_MAX_DIRECTORY`
    bytes (zipfile reads all of it, one object per entry, before anything can be checked) and zip64."""
    tail_len = min(size, _EOCD.size + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    if tail[-_EOCD.size : -_EOCD.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        pos = tail_len - _EOCD.size
    else:
        pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + _EOCD.size > tail_len:
        raise CheckpointError(
            f"{source}: not a readable .npz checkpoint: a truncated or damaged zip archive "
            f"(no end-of-central-directory record in its {size} bytes); expected {HF_FILENAME}"
        )
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, pos)
    if cd_size > _MAX_DIRECTORY:
        raise CheckpointError(
            f"{source}: the zip directory is {_size(cd_size)} ({entries} entries), expected at most "
            f"{_size(_MAX_DIRECTORY)} ({HF_FILENAME}: 49 entries); not a vae-oid checkpoint"
        )
    start = size - tail_len + pos
    if start >= 20:
        f.seek(start - 20)
        if f.read(4) == b"PK\x06\x07":
            raise CheckpointError(f"{source}: a zip64 archive; {HF_FILENAME} is a plain zip, not a vae-oid checkpoint")


def _read_header(zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo, source: str) -> _Member:
    """Reads and checks the .npy header of ``key.npy`` (at most ``_MAX_HEADER`` + 12 bytes)."""
    where = f"{source}: key {key!r}"
    with zf.open(info) as fp:
        major, minor = np.lib.format.read_magic(fp)
        if (major, minor) not in ((1, 0), (2, 0)):
            raise CheckpointError(f"{where}: .npy format version {major}.{minor}, expected 1.0 or 2.0")
        width = 2 if major == 1 else 4
        length_bytes = fp.read(width)
        if len(length_bytes) != width:
            raise CheckpointError(f"{where}: the .npy header is cut short")
        header_len = int.from_bytes(length_bytes, "little")
        if header_len > _MAX_HEADER:
            raise CheckpointError(
                f"{where}: .npy header of {header_len} bytes, expected at most {_MAX_HEADER} (a normal one is ~120)"
            )
        header = fp.read(header_len)
        if len(header) != header_len:
            raise CheckpointError(f"{where}: the .npy header is cut short")
    reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's note on Python 2 headers
        shape, fortran_order, dtype = reader(io.BytesIO(length_bytes + header), max_header_size=_MAX_HEADER)
    if dtype.hasobject or dtype.str not in _FLOAT_DTYPES:
        raise CheckpointError(
            f"{where} has dtype {dtype}, expected floating point (little-endian float16, float32 or float64)"
        )
    if any(d < 0 for d in shape):
        raise CheckpointError(f"{where} has shape {shape} with a negative size")
    count = math.prod(shape)
    if count > _MAX_VALUES:
        raise CheckpointError(
            f"{where} declares shape {shape} = {count:,} values ({_size(count * dtype.itemsize)}), "
            f"expected at most {_MAX_VALUES:,} values; refused before reading"
        )
    expected = 8 + width + header_len + count * dtype.itemsize
    if info.file_size != expected:
        raise CheckpointError(
            f"{where}: the zip directory says {info.file_size:,} bytes uncompressed, expected {expected:,} "
            f"from its .npy header (shape {shape}, {dtype})"
        )
    return _Member(key, info, tuple(shape), dtype, bool(fortran_order))


def _read_data(zf: zipfile.ZipFile, m: _Member) -> npt.NDArray[np.float32]:
    """Reads exactly the bytes of ``m``'s header and data (zipfile checks the CRC at the end)."""
    with zf.open(m.info) as fp:
        raw = fp.read(m.info.file_size)
        if len(raw) != m.info.file_size or fp.read(1):
            raise EOFError(f"{len(raw):,} bytes read, {m.info.file_size:,} expected")
    data_len = math.prod(m.shape) * m.dtype.itemsize
    flat = np.frombuffer(raw, dtype=m.dtype, count=math.prod(m.shape), offset=len(raw) - data_len)
    order: Literal["C", "F"] = "F" if m.fortran_order else "C"
    return np.array(flat.reshape(m.shape, order=order), dtype=np.float32, order="C")


def _conv_shape(shapes: Mapping[str, tuple[int, ...]], name: str, transposed: bool, source: str) -> tuple[int, int]:
    """(in, out) channels of one conv, after checking its weight and bias shapes."""
    weight, bias = shapes[name + ".weight"], shapes[name + ".bias"]
    if len(weight) != 4 or weight[2] < 1 or weight[3] < 1:
        raise CheckpointError(f"{source}: key {name + '.weight'!r} has shape {weight}, expected 4-D conv")
    cin, cout = (weight[0], weight[1]) if transposed else (weight[1], weight[0])
    if bias != (cout,):
        raise CheckpointError(f"{source}: key {name + '.bias'!r} has shape {bias}, expected ({cout},)")
    return cin, cout


def _check_layers(
    shapes: Mapping[str, tuple[int, ...]], spec: tuple[tuple[str, str], ...], in_channels: int, source: str
) -> int:
    """Checks one half's shapes (channels chain from layer to layer); returns its output channels."""
    channels = in_channels
    for name, kind in spec:
        convs = [name + s for s in _RES_CONVS] if kind == "res" else [name]
        first_in = channels
        for conv in convs:
            transposed = kind == "up"
            cin, cout = _conv_shape(shapes, conv, transposed, source)
            if cin != channels:
                raise CheckpointError(
                    f"{source}: key {conv + '.weight'!r} has shape {shapes[conv + '.weight']}: "
                    f"axis {0 if transposed else 1} should be {channels} input channels"
                )
            channels = cout
        if kind == "res" and channels != first_in:
            raise CheckpointError(
                f"{source}: residual block {name!r} maps {first_in} to {channels} channels; they must match"
            )
        kh, kw = shapes[convs[0] + ".weight"][2:]
        if kind in ("down", "up") and kh != kw:
            raise CheckpointError(f"{source}: {name!r} has a non-square kernel {(kh, kw)}")
    return channels


def _build_layers(
    arrays: Mapping[str, npt.NDArray[np.float32]], spec: tuple[tuple[str, str], ...]
) -> tuple[tuple[ConvWeights, ...], ...]:
    layers = []
    for name, kind in spec:
        convs = [name + s for s in _RES_CONVS] if kind == "res" else [name]
        layers.append(
            tuple(ConvWeights(c, arrays[c + ".weight"], arrays[c + ".bias"], transposed=kind == "up") for c in convs)
        )
    return tuple(layers)


def _check_layout(members: Mapping[str, _Member], source: str) -> None:
    shapes = {k: m.shape for k, m in members.items()}
    enc_out = _check_layers(shapes, ENCODER_LAYERS, 1, source)
    codebook = shapes[CODEBOOK_KEY]
    if codebook != (CODEBOOK_SIZE, enc_out):
        raise CheckpointError(
            f"{source}: key {CODEBOOK_KEY!r} has shape {codebook}, expected ({CODEBOOK_SIZE}, {enc_out}): "
            f"{CODEBOOK_SIZE} codebook entries of the encoder's {enc_out} output channels"
        )
    dec_out = _check_layers(shapes, DECODER_LAYERS, enc_out, source)
    if dec_out != 1:
        raise CheckpointError(f"{source}: the decoder ends with {dec_out} channels, expected 1")
    total = sum(math.prod(s) for s in shapes.values())
    if total > _MAX_VALUES:
        raise CheckpointError(
            f"{source}: the arrays hold {total:,} values in all, expected at most {_MAX_VALUES:,} "
            f"({HF_FILENAME}: 2,050,929); refused before reading"
        )


def _read_zip(f: BinaryIO, size: int, source: str) -> Checkpoint:
    _check_directory(f, size, source)
    f.seek(0)
    with zipfile.ZipFile(f) as zf:
        return _read_members(zf, source)


def _read_members(zf: zipfile.ZipFile, source: str) -> Checkpoint:
    infos = zf.infolist()
    names = [i.filename for i in infos]
    pickles = [n for n in names if n.endswith(".pkl")]
    if pickles:
        raise CheckpointError(
            f"{source}: not a readable .npz checkpoint: it looks like a PyTorch .pt/.pth file (a zip holding "
            f"{pickles[0]!r}, a pickle, which is never loaded); expected {HF_FILENAME}"
        )
    if not any(n.endswith(".npy") for n in names):
        raise CheckpointError(
            f"{source}: not a readable .npz checkpoint: a zip archive without .npy arrays "
            f"({len(names)} members: {_quoted(names, 3) or 'none'}); expected {HF_FILENAME}"
        )
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise CheckpointError(f"{source}: the zip holds {_quoted(duplicated)} more than once")
    for info in infos:
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{source}: zip member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(
                f"{source}: zip member {info.filename!r} uses compression method {info.compress_type}, "
                "expected stored (0) or deflated (8) as numpy writes"
            )
        if info.file_size > _MAX_MEMBER_BYTES:
            raise CheckpointError(
                f"{source}: zip member {info.filename!r} declares {_size(info.file_size)} uncompressed, "
                f"expected at most {_size(_MAX_MEMBER_BYTES)}; refused before reading"
            )
        # Stored data is its own size; deflate never needs more than ~0.1 % over it (zlib's deflateBound).
        bound = info.file_size if info.compress_type == zipfile.ZIP_STORED else info.file_size * 1001 // 1000 + 64
        if info.compress_size > bound:
            raise CheckpointError(
                f"{source}: zip member {info.filename!r} is {info.compress_size:,} bytes compressed for "
                f"{info.file_size:,} bytes uncompressed, expected at most {bound:,} (a zip bomb?)"
            )
    by_key = {i.filename[: -len(".npy")]: i for i in infos if i.filename.endswith(".npy")}
    needed = _expected_keys()
    missing = [k for k in needed if k not in by_key]
    extra = sorted(set(by_key) - set(needed) - _UNUSED_KEYS) + [n for n in names if not n.endswith(".npy")]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing key{'s' if len(missing) > 1 else ''} {_quoted(missing)}")
        if extra:
            problems.append(f"unexpected key{'s' if len(extra) > 1 else ''} {_quoted(extra)}")
        raise CheckpointError(
            f"{source}: {'; '.join(problems)}: not a vae-oid checkpoint (expected the {len(needed)} arrays "
            f"of {HF_FILENAME}'s layout, found {len(by_key)} members)"
        )
    members: dict[str, _Member] = {}
    for key in needed:
        try:
            members[key] = _read_header(zf, key, by_key[key], source)
        except CheckpointError:
            raise
        except _READ_ERRORS as err:
            raise CheckpointError(f"{source}: key {key!r}: unreadable .npy header ({_one_line(err)})") from err
    _check_layout(members, source)
    arrays: dict[str, npt.NDArray[np.float32]] = {}
    for key, m in members.items():
        try:
            arrays[key] = _read_data(zf, m)
        except _READ_ERRORS as err:
            raise CheckpointError(f"{source}: key {key!r} cannot be read ({_one_line(err)})") from err
        if not np.all(np.isfinite(arrays[key])):
            raise CheckpointError(f"{source}: key {key!r} contains NaN or infinite values")
    return Checkpoint(
        encoder=_build_layers(arrays, ENCODER_LAYERS),
        decoder=_build_layers(arrays, DECODER_LAYERS),
        codebook=arrays[CODEBOOK_KEY],
        source=source,
    )


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Reads and validates a vae-oid-layout ``.npz``; float16 and float64 arrays become float32.

    The zip directory and each needed array's ``.npy`` header are checked before any array data is
    read; only the arrays the codec uses are decompressed, each exactly the size its header gives
    (at most 4 Mi values in all, twice vae-oid.npz), so memory stays under about twice the real
    checkpoint's size whatever the file claims. Nothing is unpickled.

    Raises:
      CheckpointNotFoundError: no such file.
      CheckpointError: (a ValueError) one line naming the file and, where there is one, the key with
        what was expected and what was found: not a zip (an empty, text, Git LFS pointer, .npy,
        .safetensors, pickle, HTML... file is named as such), a PyTorch ``.pt`` zip, a truncated or
        damaged zip (bad CRC, cut-short or corrupt compressed data), an oversized zip directory or
        zip64, a member declaring more than the limit (a zip bomb), a missing or unknown key, a
        dtype other than little-endian float16/32/64 (object/pickled arrays included), a shape
        or size that disagrees with the layout or with the zip directory, a codebook that is not
        128 × D, NaN or infinite values; a folder, FIFO or device, or a file that cannot be read.

    Args:
        path: the ``.npz`` file.

    Returns:
        The validated weights, float32, with ``source`` the path as given.

    Examples:
        >>> read_checkpoint("tests/data/fixture-vae.npz").codebook.dtype
        dtype('float32')
    """
    source = str(path)
    try:
        f = open_regular(path)
    except FileNotFoundError as err:
        raise CheckpointNotFoundError(f"checkpoint {source!r} does not exist. {_HOW_TO_GET}") from err
    except OSError as err:
        raise CheckpointError(f"{source}: not a readable .npz checkpoint ({err.strerror or err})") from err
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
            head = f.read(512)
            what = _sniff(head, size)
            if what == "a single .npy array":
                raise CheckpointError(
                    f"{source}: not an .npz archive of named arrays: it is {what}; expected {HF_FILENAME}"
                )
            if what is not None:
                raise CheckpointError(
                    f"{source}: not a readable .npz checkpoint: it looks like {what}; expected {HF_FILENAME} "
                    "(a zip of .npy arrays)"
                )
            return _read_zip(f, size, source)
        except CheckpointError:
            raise
        except _READ_ERRORS as err:
            raise CheckpointError(
                f"{source}: not a readable .npz checkpoint ({_one_line(err)}); expected {HF_FILENAME}"
            ) from err
