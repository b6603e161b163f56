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
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paligemma_segcodec.errors import CheckpointError, CheckpointNotFoundError

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
    """

    encoder: tuple[tuple[ConvWeights, ...], ...]
    decoder: tuple[tuple[ConvWeights, ...], ...]
    codebook: npt.NDArray[np.float32]
    source: str


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_default() -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as err:  # pragma: no cover - huggingface_hub is a dependency
        raise CheckpointNotFoundError(f"huggingface_hub is not installed. {_HOW_TO_GET}") from err
    try:
        local = hf_hub_download(repo_id=HF_REPO_ID, filename=HF_FILENAME, repo_type=HF_REPO_TYPE)
    except LocalEntryNotFoundError as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        why = (
            "HF_HUB_OFFLINE is set"
            if offline
            else "the Hugging Face Hub could not be reached (on a machine without network, set HF_HUB_OFFLINE=1 "
            "to fail at once instead of after huggingface_hub's retries)"
        )
        raise CheckpointNotFoundError(
            f"The default checkpoint {HF_FILENAME} is not in the Hugging Face cache and {why}. {_HOW_TO_GET}"
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
    """
    for given, what in ((path, "checkpoint path"), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if given is None:
            continue
        p = Path(given).expanduser()
        if not p.is_file():
            raise CheckpointNotFoundError(f"{what} {str(p)!r} does not exist or is not a file. {_HOW_TO_GET}")
        return p
    return _download_default()


def _array(arrays: Mapping[str, npt.NDArray[np.generic]], key: str, source: str) -> npt.NDArray[np.float32]:
    if key not in arrays:
        raise CheckpointError(f"{source}: missing key {key!r}: not a vae-oid checkpoint")
    arr = np.asarray(arrays[key])
    if not np.issubdtype(arr.dtype, np.floating):
        raise CheckpointError(f"{source}: key {key!r} has dtype {arr.dtype}, expected floating point")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise CheckpointError(f"{source}: key {key!r} contains NaN or infinite values")
    return arr


def _conv(
    arrays: Mapping[str, npt.NDArray[np.generic]], name: str, source: str, *, transposed: bool = False
) -> ConvWeights:
    weight = _array(arrays, name + ".weight", source)
    bias = _array(arrays, name + ".bias", source)
    if weight.ndim != 4 or weight.shape[2] < 1 or weight.shape[3] < 1:
        raise CheckpointError(f"{source}: key {name + '.weight'!r} has shape {weight.shape}, expected 4-D conv")
    conv = ConvWeights(name, weight, bias, transposed)
    if bias.shape != (conv.out_channels,):
        raise CheckpointError(
            f"{source}: key {name + '.bias'!r} has shape {bias.shape}, expected ({conv.out_channels},)"
        )
    return conv


def _layers(
    arrays: Mapping[str, npt.NDArray[np.generic]],
    spec: tuple[tuple[str, str], ...],
    in_channels: int,
    source: str,
) -> tuple[tuple[tuple[ConvWeights, ...], ...], int]:
    layers: list[tuple[ConvWeights, ...]] = []
    channels = in_channels
    for name, kind in spec:
        if kind == "res":
            convs = tuple(_conv(arrays, name + s, source) for s in _RES_CONVS)
        else:
            convs = (_conv(arrays, name, source, transposed=kind == "up"),)
        for conv in convs:
            if conv.in_channels != channels:
                axis = 0 if conv.transposed else 1
                raise CheckpointError(
                    f"{source}: key {conv.name + '.weight'!r} has shape {conv.weight.shape}: "
                    f"axis {axis} should be {channels} input channels"
                )
            channels = conv.out_channels
        if kind == "res" and channels != convs[0].in_channels:
            raise CheckpointError(
                f"{source}: residual block {name!r} maps {convs[0].in_channels} to {channels} channels; they must match"
            )
        if kind in ("down", "up") and convs[0].kernel_size[0] != convs[0].kernel_size[1]:
            raise CheckpointError(f"{source}: {name!r} has a non-square kernel {convs[0].kernel_size}")
        layers.append(convs)
    return tuple(layers), channels


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Reads and validates a vae-oid-layout ``.npz`` (``allow_pickle=False``; float16 is upcast).

    Raises:
      CheckpointNotFoundError: no such file.
      CheckpointError: not an npz, a missing key, a wrong shape or dtype (the key is named).
    """
    source = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError as err:
        raise CheckpointNotFoundError(f"checkpoint {source!r} does not exist. {_HOW_TO_GET}") from err
    except (ValueError, OSError, EOFError) as err:
        raise CheckpointError(f"{source}: not a readable .npz checkpoint ({err})") from err
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{source}: not an .npz archive of named arrays (got a single {type(loaded).__name__})")
    try:
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{source}: not a readable .npz checkpoint ({err})") from err
    encoder, enc_out = _layers(arrays, ENCODER_LAYERS, 1, source)
    codebook = _array(arrays, CODEBOOK_KEY, source)
    if codebook.ndim != 2 or codebook.shape[1] != enc_out:
        raise CheckpointError(
            f"{source}: key {CODEBOOK_KEY!r} has shape {codebook.shape}, expected (K, {enc_out}) "
            f"to match the encoder's {enc_out} output channels"
        )
    decoder, dec_out = _layers(arrays, DECODER_LAYERS, enc_out, source)
    if dec_out != 1:
        raise CheckpointError(f"{source}: the decoder ends with {dec_out} channels, expected 1")
    return Checkpoint(encoder=encoder, decoder=decoder, codebook=codebook, source=source)
