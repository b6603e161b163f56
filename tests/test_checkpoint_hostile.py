"""Hostile checkpoint files: each is refused with one CheckpointError line naming the file, the key,
what was expected and what was found, decided before any large read, in bounded memory."""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from paligemma_segcodec import CheckpointError, load_codec
from paligemma_segcodec.checkpoint import read_checkpoint

DATA = Path(__file__).parent / "data"
GOLDEN_CKPT = DATA / "golden" / "checkpoint.npz"  # the real vae-oid.npz layout, float32, stored
FIXTURE = DATA / "fixture-vae.npz"  # same layout, float16, deflated
REAL_SIZE = 8_479_556  # bytes of the published vae-oid.npz
BOMB_BYTES = 2**31  # 2 GiB of zeros, about 2 MB deflated

Member = tuple[str, bytes, int, int, int, int]  # name, payload, method, crc, declared uncompressed size, flag bits


@functools.cache
def _golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_CKPT) as f:
        return {k: f[k] for k in f.files}


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npy_raw(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy member with a hand-written header dict (not checked by numpy)."""
    fixed = 10 if version[0] == 1 else 12
    h = header.encode("latin1")
    h += b" " * (-(fixed + len(h) + 1) % 64) + b"\n"  # padded to 64 bytes, as numpy writes it
    length = struct.pack("<H" if version[0] == 1 else "<I", len(h))
    return b"\x93NUMPY" + bytes(version) + length + h + data


@functools.cache
def _golden_members() -> dict[str, bytes]:
    return {f"{k}.npy": _npy(v) for k, v in _golden().items()}


def _members(replace: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """The golden checkpoint's members as .npy bytes; ``replace`` swaps (bytes) or drops (None) keys."""
    out = dict(_golden_members())
    for key, data in (replace or {}).items():
        if data is None:
            del out[f"{key}.npy"]
        else:
            out[f"{key}.npy"] = data
    return out


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _raw_zip(path: Path, members: list[Member], *, before_end: bytes = b"") -> Path:
    """A zip written by hand, so that a member may declare sizes its data does not have."""
    out, central = bytearray(), bytearray()
    for name, payload, method, crc, size, flags in members:
        n = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0, crc, len(payload), size, len(n), 0)
        out += n + payload
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            flags,
            method,
            0,
            0,
            crc,
            len(payload),
            size,
            len(n),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += n
    cd_offset = len(out)
    out += central + before_end
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), cd_offset, 0)
    path.write_bytes(bytes(out))
    return path


def _stored(name: str, data: bytes, flags: int = 0) -> Member:
    return (name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data), flags)


def _golden_stored() -> list[Member]:
    return [_stored(n, d) for n, d in _members().items()]


@functools.cache
def _bomb_stream(header: bytes) -> bytes:
    """Raw deflate of ``header`` + 2 GiB of zeros (about 2 MB: one 1 MiB block repeated)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)  # refers to nothing before it
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return head + block * (BOMB_BYTES >> 20) + end


@functools.cache
def _crc_of_zeros_after(header: bytes, n: int) -> int:
    crc, zeros = zlib.crc32(header), bytes(1 << 24)
    for _ in range(n // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    return zlib.crc32(bytes(n % len(zeros)), crc)


def _bomb(path: Path, key: str, header: bytes, declared: int | None = None) -> Path:
    """The golden checkpoint with ``key.npy`` replaced by ``header`` + 2 GiB of deflated zeros; its
    directory entry declares (with the matching CRC) the true size, or ``declared`` bytes."""
    size = len(header) + BOMB_BYTES if declared is None else declared
    stream, crc = _bomb_stream(header), _crc_of_zeros_after(header, size - len(header))
    members = [m for m in _golden_stored() if m[0] != f"{key}.npy"]
    members.append((f"{key}.npy", stream, zipfile.ZIP_DEFLATED, crc, size, 0))
    return _raw_zip(path, members)


BOMB_HEADER = _npy_raw(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({BOMB_BYTES // 4},), }}")
SMALL_HEADER = _npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (16, 1, 4, 4), }")  # 128 bytes


def _write(content: bytes) -> Callable[[Path], Path]:
    def build(p: Path) -> Path:
        p.write_bytes(content)
        return p

    return build


def _truncated(n: int) -> Callable[[Path], Path]:
    """The fixture cut to ``n`` bytes (or ``-n`` short of its end)."""

    def build(p: Path) -> Path:
        data = FIXTURE.read_bytes()
        p.write_bytes(data[:n])
        return p

    return build


def _patched(src: Path, member: str, at: float) -> Callable[[Path], Path]:
    """A copy of ``src`` with one byte of ``member``'s (compressed) data flipped, at this fraction of it."""

    def build(p: Path) -> Path:
        data = bytearray(src.read_bytes())
        with zipfile.ZipFile(src) as zf:
            info = zf.getinfo(member)
        name_len, extra_len = struct.unpack_from("<2H", data, info.header_offset + 26)
        data[info.header_offset + 30 + name_len + extra_len + int(info.compress_size * at)] ^= 0xFF
        p.write_bytes(bytes(data))
        return p

    return build


def _arrays(replace: dict[str, np.ndarray | None], method: int = zipfile.ZIP_STORED) -> Callable[[Path], Path]:
    """The golden checkpoint with arrays swapped, or dropped (None)."""

    def build(p: Path) -> Path:
        return _zip(p, _members({k: None if v is None else _npy(v) for k, v in replace.items()}), method)

    return build


def _member(key: str, data: bytes) -> Callable[[Path], Path]:
    """The golden checkpoint with ``key.npy`` replaced by raw bytes."""
    return lambda p: _zip(p, _members({key: data}))


def _extra(extra: dict[str, bytes]) -> Callable[[Path], Path]:
    return lambda p: _zip(p, {**_members(), **extra})


def _many_entries(p: Path) -> Path:
    with zipfile.ZipFile(p, "w") as zf:
        for name, data in _members().items():
            zf.writestr(name, data)
        for i in range(3000):
            zf.writestr(f"padding/{i:05d}.npy", b"")
    return p


def _duplicate(p: Path) -> Path:
    members = _golden_stored()
    return _raw_zip(p, [*members, members[0]])


def _zip64_locator(p: Path) -> Path:
    return _raw_zip(p, _golden_stored(), before_end=b"PK\x06\x07" + bytes(16))


def _encrypted(p: Path) -> Path:
    return _raw_zip(p, [_stored(n, d, flags=int(n == "encoder.0.weight.npy")) for n, d in _members().items()])


def _bzip2(p: Path) -> Path:
    with zipfile.ZipFile(p, "w") as zf:
        for name, data in _members().items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_BZIP2 if name == "decoder.4.bias.npy" else None)
    return p


def _declared_huge(p: Path) -> Path:
    """An honest small member whose directory entry claims 3 GB uncompressed."""
    members = _golden_stored()
    name, data, method, crc, _, flags = members[0]
    members[0] = (name, data, method, crc, 3 * 10**9, flags)
    return _raw_zip(p, members)


def _pt_like(p: Path) -> Path:
    """The shape of a torch.save file: a zip of archive/data.pkl (a pickle) and raw storages."""
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"encoder.0.weight": "storage 0"}, protocol=2))
        zf.writestr("archive/data/0", bytes(64))
        zf.writestr("archive/version", "3\n")
    return p


def _safetensors() -> bytes:
    header = b'{"encoder.0.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    return len(header).to_bytes(8, "little") + header + bytes(4)


def _big_res_blocks() -> dict[str, np.ndarray | None]:
    """Every shape consistent, but 9x9 kernels in the residual blocks: 11.5 M values, over the budget."""
    out: dict[str, np.ndarray | None] = {}
    for block in ("encoder.8", "encoder.9", "decoder.2", "decoder.3"):
        for conv in (0, 2):
            out[f"{block}.net.{conv}.weight"] = np.zeros((128, 128, 9, 9), np.float16)
    return out


W0 = "'encoder.0.weight'"
DEEP = "(" * 1000 + ")" * 1000
LONGDOUBLE = pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 here")

# (builder, what the message must hold besides the file name)
CASES = [
    # --- not a zip at all: said what it looks like
    pytest.param(_write(b""), ["empty file", "expected vae-oid.npz"], id="empty-file"),
    pytest.param(_write(np.random.default_rng(0).bytes(4096)), ["unknown binary data"], id="random-bytes"),
    pytest.param(
        _write(b"version https://git-lfs.github.com/spec/v1\noid sha256:5586010257b8\nsize 8479556\n"),
        ["Git LFS pointer", "expected vae-oid.npz"],
        id="git-lfs-pointer",
    ),
    pytest.param(_write(_safetensors()), [".safetensors", "expected vae-oid.npz"], id="safetensors"),
    pytest.param(_write(pickle.dumps({"w": [1.0]}, protocol=4)), ["pickle", "not unpickled"], id="bare-pickle"),
    pytest.param(_pt_like, ["PyTorch .pt", "archive/data.pkl", "never loaded", "expected vae-oid.npz"], id="torch-pt"),
    pytest.param(_write(b"hello, this is a text file\n"), ["text file", "hello"], id="text-file"),
    pytest.param(_write(b"<!DOCTYPE html><html><body>404</body></html>"), ["HTML page"], id="html-error-page"),
    pytest.param(_write(b"\x89HDF\r\n\x1a\n" + bytes(100)), ["HDF5"], id="hdf5"),
    pytest.param(_write(_npy(np.zeros(3, np.float32))), ["single .npy array"], id="single-npy"),
    pytest.param(lambda p: _zip(p, {"readme.txt": b"hi"}), ["without .npy arrays", "readme.txt"], id="zip-no-npy"),
    # --- truncated or damaged copies of the (deflated) fixture
    pytest.param(_truncated(3), ["unknown binary data"], id="truncated-3"),  # b"PK\x03": not even a zip signature
    pytest.param(_truncated(4), ["truncated or damaged zip"], id="truncated-4"),
    pytest.param(_truncated(100), ["truncated or damaged zip"], id="truncated-100"),
    pytest.param(_truncated(100_000), ["truncated or damaged zip"], id="truncated-100k"),
    pytest.param(_truncated(-1), ["truncated or damaged zip"], id="truncated-minus-1"),
    pytest.param(_truncated(-23), ["truncated or damaged zip"], id="truncated-minus-23"),
    pytest.param(_truncated(-1000), ["truncated or damaged zip"], id="truncated-minus-1000"),
    pytest.param(_write(b"PK\x03\x04" + np.random.default_rng(1).bytes(4092)), ["truncated or damaged"], id="PK-junk"),
    # a flipped byte inside deflate data: zlib error or bad CRC, for the key that holds it
    pytest.param(
        _patched(FIXTURE, "_vq_vae._embedding.npy", 0.5), ["'_vq_vae._embedding'", "cannot be read"], id="bad-deflate"
    ),
    # a flipped byte inside stored data: bad CRC
    pytest.param(
        _patched(GOLDEN_CKPT, "encoder.2.weight.npy", 0.7), ["'encoder.2.weight'", "Bad CRC-32"], id="bad-crc"
    ),
    # --- the zip directory
    pytest.param(_many_entries, ["zip directory is", "3049 entries", "expected at most 65.5 kB"], id="huge-directory"),
    pytest.param(_zip64_locator, ["zip64"], id="zip64"),
    pytest.param(_duplicate, ["'encoder.0.weight.npy' more than once"], id="duplicate-member"),
    pytest.param(_encrypted, ["zip member 'encoder.0.weight.npy' is encrypted"], id="encrypted-member"),
    pytest.param(
        _bzip2, ["'decoder.4.bias.npy' uses compression method 12", "expected stored (0) or deflated (8)"], id="bzip2"
    ),
    # --- zip bombs, and sizes that lie
    pytest.param(_declared_huge, ["'encoder.0.weight.npy' declares 3.0 GB uncompressed", "expected at most"], id="3GB"),
    pytest.param(
        lambda p: _bomb(p, "encoder.0.weight", BOMB_HEADER),
        ["'encoder.0.weight.npy' declares 2.1 GB uncompressed", "expected at most 33.6 MB", "before reading"],
        id="bomb-2GiB",
    ),
    pytest.param(
        lambda p: _bomb(p, "_vq_vae._ema_w", BOMB_HEADER),  # in a key the codec does not even use
        ["'_vq_vae._ema_w.npy' declares 2.1 GB uncompressed"],
        id="bomb-in-unused-key",
    ),
    pytest.param(
        # the directory declares the 1,152 bytes of a right-shaped array; 2 GiB of zeros deflated behind them
        lambda p: _bomb(p, "encoder.0.weight", SMALL_HEADER, declared=len(SMALL_HEADER) + 1024),
        ["'encoder.0.weight.npy' is 2,", "compressed for 1,152 bytes uncompressed", "expected at most 1,217"],
        id="bomb-declared-small",
    ),
    pytest.param(
        _member("encoder.0.weight", _npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }")),
        [W0, "shape (1000000000000,)", "(4.0 TB)", "expected at most 4,194,304 values"],
        id="header-claims-4TB",
    ),
    pytest.param(
        _member("encoder.0.weight", SMALL_HEADER + bytes(1000)),
        [W0, "says 1,128 bytes uncompressed, expected 1,152", "(16, 1, 4, 4)"],
        id="data-short-of-header",
    ),
    pytest.param(
        _member("encoder.0.weight", SMALL_HEADER + bytes(2000)),
        [W0, "says 2,128 bytes uncompressed, expected 1,152"],
        id="data-past-header",
    ),
    pytest.param(
        _arrays(_big_res_blocks(), zipfile.ZIP_DEFLATED),
        ["11,488,113 values in all", "expected at most 4,194,304"],
        id="over-budget",
    ),
    # --- .npy headers
    pytest.param(_member("encoder.0.weight", b"not an npy member"), [W0, "unreadable .npy header"], id="bad-magic"),
    pytest.param(_member("encoder.0.weight", b"\x93NUM"), [W0, "unreadable .npy header"], id="cut-magic"),
    pytest.param(
        _member("encoder.0.weight", _npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", version=(3, 0))),
        [W0, "version 3.0", "expected 1.0 or 2.0"],
        id="npy-version-3",
    ),
    pytest.param(
        _member("encoder.0.weight", _npy_raw("{'descr': '<f4', " + " " * 100_000 + "}", version=(2, 0))),
        [W0, ".npy header of 1000", "expected at most 4096"],
        id="npy-header-100kB",
    ),
    pytest.param(
        _member("encoder.0.weight", _npy_raw("{'descr': '<f4', 'fortran_order': False}")),
        [W0, "unreadable .npy header", "ValueError"],
        id="npy-header-no-shape",
    ),
    pytest.param(_member("encoder.0.weight", _npy_raw(DEEP)), [W0, "unreadable .npy header"], id="npy-header-nested"),
    pytest.param(
        _member("encoder.0.weight", _npy_raw("{'descr': 'bogus', 'fortran_order': False, 'shape': (16,)}")),
        [W0, "unreadable .npy header"],
        id="npy-header-bad-descr",
    ),
    pytest.param(
        _member("encoder.0.weight", _npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (-16, 1, 4, 4)}")),
        [W0, "(-16, 1, 4, 4)", "negative"],
        id="negative-shape",
    ),
    # --- dtypes: only little-endian float16/32/64; nothing unpickled
    pytest.param(
        _arrays({"encoder.0.weight": np.zeros((16, 1, 4, 4), np.int32)}),
        [W0, "dtype int32", "expected floating"],
        id="int",
    ),
    pytest.param(
        _arrays({"encoder.0.weight": np.array([{"x": 1}] * 4, dtype=object)}), [W0, "dtype object"], id="object-pickle"
    ),
    pytest.param(_arrays({"encoder.0.weight": np.zeros((16, 1, 4, 4), np.complex64)}), [W0, "complex64"], id="complex"),
    pytest.param(
        _arrays({"encoder.0.weight": np.zeros((16, 1, 4, 4), ">f4")}),
        [W0, "dtype >f4", "little-endian"],
        id="big-endian",
    ),
    pytest.param(
        _arrays({"encoder.0.weight": np.zeros((16, 1, 4, 4), np.longdouble)}),
        [W0, "float128"],
        id="longdouble",
        marks=LONGDOUBLE,
    ),
    pytest.param(_arrays({"encoder.0.weight": np.zeros((16, 1, 4, 4), bool)}), [W0, "dtype bool"], id="bool"),
    pytest.param(
        _arrays({"encoder.0.weight": np.zeros(16, [("a", "<f4")])}), [W0, "expected floating"], id="structured"
    ),
    # --- shapes and layout
    pytest.param(
        _arrays({"encoder.0.weight": np.zeros((16, 1, 4), np.float32)}), [W0, "(16, 1, 4)", "expected 4-D"], id="3-D"
    ),
    pytest.param(
        _arrays({"encoder.2.weight": np.zeros((32, 8, 4, 4), np.float32)}),
        ["'encoder.2.weight'", "(32, 8, 4, 4)", "should be 16 input channels"],
        id="channel-chain",
    ),
    pytest.param(
        _arrays({"decoder.6.bias": np.zeros(63, np.float32)}),
        ["'decoder.6.bias'", "(63,)", "expected (64,)"],
        id="bias",
    ),
    pytest.param(
        _arrays({"encoder.4.weight": np.zeros((64, 32, 4, 3), np.float32)}), ["'encoder.4'", "non-square"], id="kernel"
    ),
    pytest.param(
        _arrays({"_vq_vae._embedding": np.zeros((64, 512), np.float32)}),
        ["'_vq_vae._embedding'", "shape (64, 512)", "expected (128, 512)"],
        id="codebook-64x512",
    ),
    pytest.param(
        _arrays({"_vq_vae._embedding": np.zeros((128, 512, 1), np.float32)}),
        ["'_vq_vae._embedding'", "shape (128, 512, 1)", "expected (128, 512)"],
        id="codebook-3-D",
    ),
    pytest.param(
        _arrays({"_vq_vae._embedding": np.zeros((128, 256), np.float32)}),
        ["'_vq_vae._embedding'", "shape (128, 256)", "expected (128, 512)"],
        id="codebook-128x256",
    ),
    pytest.param(
        _arrays({"decoder.12.weight": np.zeros((2, 16, 1, 1), np.float32), "decoder.12.bias": np.zeros(2, np.float32)}),
        ["decoder ends with 2 channels, expected 1"],
        id="two-output-channels",
    ),
    # --- keys
    pytest.param(
        _arrays({"decoder.6.weight": None}),
        ["missing key 'decoder.6.weight'", "expected the 47", "found 48"],
        id="missing",
    ),
    pytest.param(
        _arrays({"decoder.6.weight": None, "decoder.6.bias": None, "encoder.0.bias": None}),
        ["missing keys 'decoder.6.bias', 'decoder.6.weight', 'encoder.0.bias'"],
        id="missing-3",
    ),
    pytest.param(_extra({"extra.npy": _npy(np.zeros(3, np.float32))}), ["unexpected key 'extra'"], id="extra-key"),
    pytest.param(_extra({"notes.txt": b"hello"}), ["unexpected key 'notes.txt'"], id="extra-non-npy-member"),
    pytest.param(
        _extra({"encoder.0.weight": b"no .npy suffix"}), ["unexpected key 'encoder.0.weight'"], id="key-without-suffix"
    ),
    pytest.param(
        lambda p: _zip(p, {k.replace("decoder.4.", "decoder.5."): v for k, v in _members().items()}),
        ["missing keys 'decoder.4.bias', 'decoder.4.weight'; unexpected keys 'decoder.5.bias', 'decoder.5.weight'"],
        id="renamed-layer",
    ),
    # --- values
    pytest.param(
        _arrays({"encoder.0.bias": np.full(16, np.inf, np.float32)}), ["'encoder.0.bias'", "infinite"], id="inf"
    ),
]


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_hostile_file_is_refused(tmp_path: Path, build: Callable[[Path], Path], expected: list[str]) -> None:
    path = build(tmp_path / "vae-oid.npz")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{path}: "), msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_load_codec_refuses_too(tmp_path: Path) -> None:
    path = _write(b"version https://git-lfs.github.com/spec/v1\n")(tmp_path / "vae-oid.npz")
    with pytest.raises(CheckpointError, match=r"Git LFS pointer.*expected vae-oid\.npz"):
        load_codec(path)


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not a readable \.npz"):
        read_checkpoint(tmp_path)


def _tiny_checkpoint(path: Path) -> Path:
    """A valid, deflated checkpoint of the vae-oid layout with 2 channels and D = 3 (about 20 kB)."""
    rng = np.random.default_rng(0)
    c, d = 2, 3
    shapes = {f"encoder.{i}": (c, 1 if i == 0 else c, 4, 4) for i in (0, 2, 4, 6)}
    for block in ("encoder.8.net", "encoder.9.net", "decoder.2.net", "decoder.3.net"):
        shapes |= {f"{block}.0": (c, c, 3, 3), f"{block}.2": (c, c, 3, 3), f"{block}.4": (c, c, 1, 1)}
    shapes |= {"encoder.10": (d, c, 1, 1), "decoder.0": (c, d, 1, 1), "decoder.12": (1, c, 1, 1)}
    up = {f"decoder.{i}" for i in (4, 6, 8, 10)}
    shapes |= {name: (c, c, 4, 4) for name in up}
    arrays = {"_vq_vae._embedding": rng.normal(size=(128, d)).astype(np.float32)}
    for name, shape in shapes.items():
        arrays[name + ".weight"] = rng.normal(size=shape).astype(np.float32)
        arrays[name + ".bias"] = rng.normal(size=shape[1] if name in up else shape[0]).astype(np.float32)
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize("seed", range(4))
def test_random_damage_never_escapes(tmp_path: Path, seed: int) -> None:
    """Flipped bytes and cuts anywhere in a small deflated checkpoint: it loads or raises one
    CheckpointError line; never BadZipFile, zlib.error, struct.error, EOFError, TypeError..."""
    good = _tiny_checkpoint(tmp_path / "tiny.npz").read_bytes()
    assert read_checkpoint(tmp_path / "tiny.npz").codebook.shape == (128, 3)
    rng = np.random.default_rng(seed)
    path = tmp_path / "damaged.npz"
    messages: list[str] = []
    for _ in range(150):
        data = bytearray(good)
        if rng.random() < 0.2:
            data = data[: rng.integers(0, len(data))]
        else:
            for at in rng.integers(0, len(data), rng.integers(1, 4)):
                data[at] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        try:
            read_checkpoint(path)
        except CheckpointError as err:
            messages.append(str(err))
    assert all("\n" not in m and m.startswith(f"{path}: ") for m in messages)
    assert len(messages) > 50  # the damage is real: most of it is caught


def test_accepts_fortran_order_float64_and_no_unused_keys(tmp_path: Path) -> None:
    arrays = {k: np.asfortranarray(v.astype(np.float64)) for k, v in _golden().items() if "_ema" not in k}
    got = read_checkpoint(_zip(tmp_path / "f.npz", {f"{k}.npy": _npy(v) for k, v in arrays.items()}))
    want = read_checkpoint(GOLDEN_CKPT)
    np.testing.assert_array_equal(got.codebook, want.codebook)
    np.testing.assert_array_equal(got.decoder[1][0].weight, want.decoder[1][0].weight)
    assert got.decoder[1][0].weight.dtype == np.float32 and got.decoder[1][0].weight.flags.c_contiguous


def test_unused_keys_are_never_decompressed(tmp_path: Path) -> None:
    """vae-oid.npz's EMA statistics are allowed but not read: garbage there does not matter."""
    read_checkpoint(_zip(tmp_path / "c.npz", _members({"_vq_vae._ema_w": b"\x93NUMPY garbage, never read"})))


def _peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy and Python) while ``fn`` runs; a CheckpointError is expected and swallowed."""
    tracemalloc.start()
    try:
        with contextlib.suppress(CheckpointError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded(tmp_path: Path) -> None:
    """Refusing a 2 GiB bomb costs well under 1 MB; reading the real layout, under 2x its file size.

    Not vacuous: 64 MiB read from the bomb member the plain way show up in the same measurement
    (the file really is a bomb), and the former ``np.load`` reader decompressed all 2 GiB of it."""
    bomb = _bomb(tmp_path / "bomb.npz", "encoder.0.weight", BOMB_HEADER)
    with zipfile.ZipFile(bomb) as zf, zf.open("encoder.0.weight.npy") as f:
        assert _peak(lambda: f.read(64 << 20)) > 64 << 20
    with pytest.raises(CheckpointError, match=r"2\.1 GB uncompressed"):
        read_checkpoint(bomb)
    assert _peak(lambda: read_checkpoint(bomb)) < 1 << 20
    small = _bomb(tmp_path / "small.npz", "encoder.0.weight", SMALL_HEADER, declared=len(SMALL_HEADER) + 1024)
    assert _peak(lambda: read_checkpoint(small)) < 1 << 20
    assert 8_000_000 < _peak(lambda: read_checkpoint(GOLDEN_CKPT)) < 2 * REAL_SIZE
    assert _peak(lambda: read_checkpoint(FIXTURE)) < 2 * REAL_SIZE
