"""The TensorFlow tensor-bundle reader: CRC32C, hand-built bundles, and the four musicnn 0.1.0 checkpoints."""

from __future__ import annotations

import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import musicnn_variables

from auralise.errors import BadModelError
from auralise.importers import tfbundle
from auralise.importers.musicnn import cache_dir

# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def musicnn_wheel() -> Path:
    """The musicnn 0.1.0 wheel: $AURALISE_MUSICNN_WHEEL, else ~/.cache/auralise/, else pip download there."""
    from auralise.errors import AuraliseError
    from auralise.importers.musicnn import musicnn_wheel as find_wheel

    try:
        return find_wheel()
    except AuraliseError as exc:
        pytest.skip(f"musicnn 0.1.0 wheel not obtainable (no access to PyPI): {exc}")


@pytest.fixture(scope="session")
def musicnn(musicnn_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four musicnn checkpoints extracted (and hash-checked) into a session folder."""
    try:
        return tfbundle.extract_musicnn(musicnn_wheel, tmp_path_factory.mktemp("musicnn"))
    except BadModelError as exc:
        if musicnn_wheel.parent == cache_dir():
            musicnn_wheel.unlink(missing_ok=True)  # a damaged download: fetch it afresh next run
        pytest.fail(f"{exc} (a cached copy has been removed; run again to re-download)")


# ------------------------------------------------------------------------------ a tiny bundle writer


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    tag = _varint(number << 3 | wire)
    if wire == 0:
        return tag + _varint(payload)
    if wire == 5:
        return tag + struct.pack("<I", payload)
    return tag + _varint(len(payload)) + payload


def _block(entries: list[tuple[bytes, bytes]], kind: int = 0) -> bytes:
    """A block with one restart point (no prefix sharing), plus its trailer."""
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    body += struct.pack("<II", 0, 1)
    trailer = bytes([kind])
    return body + trailer + struct.pack("<I", tfbundle.masked_crc32c(body + trailer))


def _write_bundle(prefix: Path, tensors: dict[str, np.ndarray], *, big_endian: bool = False, kind: int = 0) -> None:
    """Write ``tensors`` as a single-shard TF bundle at ``prefix`` (enough of the format to test the reader)."""
    codes = {np.dtype(v): k for k, v in tfbundle._DTYPES.items()}
    data = bytearray()
    entries = [(b"", _field(1, 0, 1) + _field(2, 0, int(big_endian)) + _field(3, 2, _field(1, 0, 1)))]
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])  # (ascontiguousarray would make a scalar 1-d)
        raw = arr.astype(arr.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
        shape = b"".join(_field(2, 2, _field(1, 0, d)) for d in arr.shape)
        proto = _field(1, 0, codes[arr.dtype.newbyteorder("<")]) + _field(2, 2, shape)
        proto += _field(4, 0, len(data)) + _field(5, 0, len(raw)) + _field(6, 5, tfbundle.masked_crc32c(raw))
        entries.append((name.encode(), proto))
        data += raw
    data_block = _block(entries, kind)
    meta_block = _block([])
    handle = _varint(0) + _varint(len(data_block) - 5)
    index_block = _block([(entries[-1][0], handle)])
    meta_handle = _varint(len(data_block)) + _varint(len(meta_block) - 5)
    index_handle = _varint(len(data_block) + len(meta_block)) + _varint(len(index_block) - 5)
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    Path(f"{prefix}.index").write_bytes(data_block + meta_block + index_block + footer)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
        "conv/kernel/Adam": np.zeros((3, 3, 2, 4), np.float32),
        "conv/kernel/Adam_1": np.ones((3, 3, 2, 4), np.float32),
        "beta1_power": np.array(0.9, np.float32),
        "global_step": np.array(1000, np.int64),
        "dense/bias": rng.standard_normal(1000).astype(np.float64),
        "flags": np.array([True, False, True]),
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
        "half": np.array([0.5, -2.0], np.float16),
        "empty": np.zeros((0, 5), np.float32),
    }


def _flip(path: Path, offset: int) -> None:
    buf = bytearray(path.read_bytes())
    buf[offset] ^= 0x40
    path.write_bytes(bytes(buf))


# ------------------------------------------------------------------------------------------ CRC32C


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", 0x00000000),
        (b"a", 0xC1D04330),
        (b"123456789", 0xE3069283),
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_vectors(data, expected):
    assert tfbundle.crc32c(data) == expected


def test_crc32c_long_inputs_match_table_loop_and_extend():
    rng = np.random.default_rng(1)
    for n in (4095, 4096, 4097, 65537, 300_001):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        slow = tfbundle._crc_raw_small(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
        assert tfbundle.crc32c(data) == slow
        assert tfbundle.crc32c(np.frombuffer(data, np.uint8)) == slow
        k = n // 3
        assert tfbundle.crc32c(data[k:], tfbundle.crc32c(data[:k])) == slow


def test_masked_crc_round_trip():
    # LevelDB's masking of crc32c(b"123456789"), computed by hand: rotate right by 15, add 0xa282ead8.
    c = 0xE3069283
    assert tfbundle.masked_crc32c(b"123456789") == ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) % 2**32
    for v in (0, 1, 0xFFFFFFFF, 0xE3069283, 0x12345678):
        assert tfbundle.unmask_crc32c(tfbundle._mask(v)) == v
    assert tfbundle.masked_crc32c(b"x") != tfbundle.crc32c(b"x")


def test_crc32c_speed():
    data = np.random.default_rng(2).integers(0, 256, 8_000_000, dtype=np.uint8).tobytes()
    tfbundle.crc32c(data)  # builds the merge tables
    t0 = time.perf_counter()
    tfbundle.crc32c(data)
    assert time.perf_counter() - t0 < 2.0  # about 0.04 s on a laptop-class CPU


# -------------------------------------------------------------------------------- synthetic bundles


def test_default_skip():
    skipped = ["a/kernel/Adam", "a/kernel/Adam_1", "beta1_power", "beta2_power_3", "global_step", "w/Momentum"]
    kept = ["a/kernel", "batch_normalization/moving_mean", "Adamant/kernel", "beta1", "dense/bias"]
    assert all(tfbundle.default_skip(n) for n in skipped)
    assert not any(tfbundle.default_skip(n) for n in kept)


@pytest.mark.parametrize("big_endian", [False, True])
def test_synthetic_bundle_round_trip(tmp_path, big_endian):
    tensors = _tensors()
    _write_bundle(tmp_path / "model.ckpt", tensors, big_endian=big_endian)
    listing = tfbundle.list_bundle(tmp_path / "model.ckpt")
    assert list(listing) == sorted(tensors)
    assert listing["counts"] == (np.dtype(np.int32), (2, 3))
    everything = tfbundle.read_bundle(tmp_path / "model.ckpt", skip=None)
    assert set(everything) == set(tensors)
    for name, arr in tensors.items():
        got = everything[name]
        assert got.dtype == arr.dtype.newbyteorder("=") and got.shape == arr.shape, name
        np.testing.assert_array_equal(got, arr)
        assert got.dtype.isnative
    weights = tfbundle.read_bundle(str(tmp_path / "model.ckpt.index"))
    assert set(weights) == {"conv/kernel", "dense/bias", "flags", "counts", "half", "empty"}
    weights["conv/kernel"][0, 0, 0, 0] = 1.0  # writable


def test_synthetic_bundle_errors(tmp_path):
    prefix = tmp_path / "model.ckpt"
    with pytest.raises(BadModelError, match="not found"):
        tfbundle.read_bundle(prefix)
    _write_bundle(prefix, _tensors())
    data = Path(f"{prefix}.data-00000-of-00001")
    entry = next(e for e in tfbundle._bundle(prefix)[3] if e.name == "dense/bias")
    _flip(data, entry.offset + 17)
    with pytest.raises(BadModelError, match=r"checksum of tensor 'dense/bias' does not match"):
        tfbundle.read_bundle(prefix)
    assert "dense/bias" in tfbundle.read_bundle(prefix, verify=False)
    data.write_bytes(data.read_bytes()[: entry.offset + 10])
    with pytest.raises(BadModelError, match="truncated"):
        tfbundle.read_bundle(prefix)
    data.unlink()
    with pytest.raises(BadModelError, match="cannot open checkpoint data"):
        tfbundle.read_bundle(prefix)


def test_compressed_block_is_named(tmp_path):
    _write_bundle(tmp_path / "m", _tensors(), kind=1)
    with pytest.raises(BadModelError, match="snappy-compressed"):
        tfbundle.list_bundle(tmp_path / "m")


# ------------------------------------------------------------------------------ musicnn checkpoints


def test_musicnn_all_checkpoints_read(musicnn):
    assert set(musicnn) == set(tfbundle.MUSICNN_MODELS)
    counts = {"musicnn": (150, 64), "vgg": (86, 36)}
    for model, prefix in musicnn.items():
        listing = tfbundle.list_bundle(prefix)
        weights = tfbundle.read_bundle(prefix)  # verifies every tensor's CRC32C
        arch = model.split("_", 1)[1]
        assert (len(listing), len(weights)) == counts[arch], model
        assert all(dtype == np.float32 for dtype, _ in listing.values())
        assert not any("Adam" in n or "power" in n for n in weights), model
        assert any(n.endswith("/Adam_1") for n in listing) and "beta1_power" in listing
        for name, arr in weights.items():
            assert arr.shape == listing[name][1] and np.isfinite(arr).all(), (model, name)
        assert {n: a.shape for n, a in weights.items()} == musicnn_variables(arch), model
        assert (weights["batch_normalization_1/moving_variance"] > 0).all()
    # all tensors, optimiser state included, pass their checksums too
    assert len(tfbundle.read_bundle(musicnn["MTT_vgg"], skip=None)) == 86


def test_musicnn_mtt_and_msd_share_structure_but_not_weights(musicnn):
    for arch in ("musicnn", "vgg"):
        mtt, msd = (tfbundle.read_bundle(musicnn[f"{d}_{arch}"]) for d in ("MTT", "MSD"))
        assert {k: v.shape for k, v in mtt.items()} == {k: v.shape for k, v in msd.items()}
        assert not np.array_equal(mtt["dense/bias"], msd["dense/bias"])


def test_musicnn_prefix_forms(musicnn):
    folder = musicnn["MTT_vgg"]
    a = tfbundle.list_bundle(folder)
    assert tfbundle.list_bundle(str(folder) + os.sep) == a
    assert tfbundle.list_bundle(folder / ".index") == a


def test_extract_rejects_wrong_wheel(tmp_path, musicnn_wheel):
    with pytest.raises(BadModelError, match="not found"):
        tfbundle.extract_musicnn(tmp_path / "nope.whl", tmp_path / "out")
    (tmp_path / "bad.whl").write_bytes(b"not a zip")
    with pytest.raises(BadModelError, match="not a readable wheel"):
        tfbundle.extract_musicnn(tmp_path / "bad.whl", tmp_path / "out")
    import zipfile

    with zipfile.ZipFile(tmp_path / "other.whl", "w") as zf:
        zf.writestr("other-1.0.dist-info/METADATA", "Name: other\nVersion: 1.0\n")
    with pytest.raises(BadModelError, match="not the musicnn 0.1.0 wheel"):
        tfbundle.extract_musicnn(tmp_path / "other.whl", tmp_path / "out")


@pytest.fixture
def vgg_copy(musicnn, tmp_path) -> Path:
    return Path(shutil.copytree(musicnn["MTT_vgg"], tmp_path / "MTT_vgg"))


def test_musicnn_corrupt_tensor(vgg_copy):
    entry = next(e for e in tfbundle._bundle(vgg_copy)[3] if e.name == "3CNN/kernel")
    _flip(vgg_copy / ".data-00000-of-00001", entry.offset + entry.size // 2)
    with pytest.raises(BadModelError, match=r"checksum of tensor '3CNN/kernel' does not match") as info:
        tfbundle.read_bundle(vgg_copy)
    assert "\n" not in str(info.value)
    # a corrupt tensor that is skipped does not stop the others
    weights = tfbundle.read_bundle(vgg_copy, skip=lambda n: n.startswith("3CNN") or tfbundle.default_skip(n))
    assert "1CNN/kernel" in weights


def test_musicnn_corrupt_index_block(vgg_copy):
    _flip(vgg_copy / ".index", 40)
    with pytest.raises(BadModelError, match="block checksum does not match"):
        tfbundle.list_bundle(vgg_copy)


def test_musicnn_truncated_index(vgg_copy):
    index = vgg_copy / ".index"
    whole = index.read_bytes()
    index.write_bytes(whole[:-100])
    with pytest.raises(BadModelError, match="truncated"):
        tfbundle.read_bundle(vgg_copy)
    index.write_bytes(whole[:20])
    with pytest.raises(BadModelError, match="truncated"):
        tfbundle.read_bundle(vgg_copy)
    index.write_bytes(b"")
    with pytest.raises(BadModelError, match="truncated"):
        tfbundle.list_bundle(vgg_copy)


def test_musicnn_truncated_data(vgg_copy):
    data = vgg_copy / ".data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1000])  # the last tensors are optimiser state, skipped by default
    assert "dense/kernel" in tfbundle.read_bundle(vgg_copy)
    with pytest.raises(BadModelError, match="truncated"):
        tfbundle.read_bundle(vgg_copy, skip=None)
