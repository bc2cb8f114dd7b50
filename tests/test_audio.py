"""Tests for auralise.io.audio: loading real files, every bad-audio case, atomic writes, output folders."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralise.errors import AuraliseError, BadAudioError, BadParameterError, OutputError
from auralise.io.audio import AudioInfo, load_audio, write_audio
from auralise.io.files import atomic_path, check_output_dir

SR = 11025


def tone(sr: int, seconds: float = 1.0, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """(n, channels) test tone; channel c is at freq * (c + 1)."""
    t = np.arange(int(round(sr * seconds))) / sr
    cols = [0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def assert_one_line(exc: AuraliseError) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    "ext, subtype, tol",
    [
        ("wav", "PCM_16", 1e-3),
        ("wav", "FLOAT", 1e-3),
        ("flac", "PCM_24", 1e-3),
        ("ogg", "VORBIS", 0.05),
        ("mp3", "MPEG_LAYER_III", 0.05),
    ],
)
def test_load_formats_at_model_rate(tmp_path: Path, ext: str, subtype: str, tol: float) -> None:
    x = tone(SR, 1.0)
    p = tmp_path / f"a.{ext}"
    sf.write(p, x, SR, subtype=subtype)
    y, info = load_audio(p, sr=SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert isinstance(info, AudioInfo)
    assert info.orig_sr == SR and info.channels == 1 and info.notes == []
    assert info.n_samples == len(y) and info.duration_s == pytest.approx(len(y) / SR)
    # lossy codecs add delay/padding; compare the middle by spectrum peak, lossless by samples
    if tol < 0.01:
        assert len(y) == len(x)
        np.testing.assert_allclose(y, x[:, 0], atol=tol)
    else:
        assert abs(len(y) - len(x)) < 0.1 * SR
        spec = np.abs(np.fft.rfft(y[2000:8000]))
        peak_hz = np.argmax(spec) * SR / 6000
        assert abs(peak_hz - 440) < 5


def test_stereo_downmix_and_resample_44100(tmp_path: Path) -> None:
    x = tone(44100, 2.0, channels=2)
    p = tmp_path / "stereo.flac"
    sf.write(p, x, 44100)
    y, info = load_audio(p, sr=SR)
    assert info.orig_sr == 44100 and info.channels == 2
    assert len(y) == 2 * SR and info.n_samples == 2 * SR and info.duration_s == pytest.approx(2.0)
    assert "downmixed 2 channels to mono" in info.notes
    assert "resampled 44100 Hz -> 11025 Hz" in info.notes
    # the mono mix of 440 Hz + 880 Hz at 0.3 each has both partials at 0.15
    spec = np.abs(np.fft.rfft(y)) / (len(y) / 2)
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    for f0 in (440, 880):
        k = np.argmin(abs(freqs - f0))
        assert spec[k] == pytest.approx(0.15, rel=0.02)


def test_upsample_8000(tmp_path: Path) -> None:
    x = tone(8000, 1.0, freq=1000)
    p = tmp_path / "low.wav"
    sf.write(p, x, 8000, subtype="PCM_16")
    y, info = load_audio(p, sr=SR)
    assert info.orig_sr == 8000 and len(y) == SR
    assert info.notes == ["resampled 8000 Hz -> 11025 Hz"]
    t = np.arange(SR) / SR
    ref = 0.3 * np.sin(2 * np.pi * 1000 * t)
    np.testing.assert_allclose(y[500:-500], ref[500:-500], atol=2e-3)


def test_ogg_and_mp3_stereo_44100(tmp_path: Path) -> None:
    x = tone(44100, 1.0, channels=2)
    for ext in ("ogg", "mp3"):
        p = tmp_path / f"s.{ext}"
        sf.write(p, x, 44100)
        y, info = load_audio(p, sr=SR)
        assert info.channels == 2 and info.orig_sr == 44100
        assert abs(len(y) - SR) < 0.1 * SR
        assert np.isfinite(y).all() and np.abs(y).max() > 0.05


def test_pathlike_and_str(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    sf.write(p, tone(SR), SR)
    y1, _ = load_audio(p, sr=SR)
    y2, _ = load_audio(str(p), sr=SR)
    np.testing.assert_array_equal(y1, y2)


# --------------------------------------------------------------------------- bad files


def expect_bad(path: os.PathLike | str, match: str, **kw) -> str:
    kw.setdefault("sr", SR)
    with pytest.raises(BadAudioError, match=match) as ei:
        load_audio(path, **kw)
    return assert_one_line(ei.value)


def test_missing_file(tmp_path: Path) -> None:
    expect_bad(tmp_path / "nope.wav", "not found")


def test_directory(tmp_path: Path) -> None:
    expect_bad(tmp_path, "is a folder")


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    expect_bad(p, "empty file")


def test_text_renamed_wav(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio at all\n" * 20)
    msg = expect_bad(p, "cannot read .* as audio")
    assert "WAV, FLAC, OGG or MP3" in msg


def test_random_bytes_mp3(tmp_path: Path) -> None:
    p = tmp_path / "noise.mp3"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(BadAudioError) as ei:
        load_audio(p, sr=SR)
    assert_one_line(ei.value)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_wav_truncated_mid_data(tmp_path: Path, subtype: str) -> None:
    p = tmp_path / "full.wav"
    sf.write(p, tone(SR, 1.0, channels=2), SR, subtype=subtype)
    data = p.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    msg = expect_bad(cut, "truncated")
    assert "1.000 s" in msg


def test_aiff_truncated(tmp_path: Path) -> None:
    p = tmp_path / "full.aiff"
    sf.write(p, tone(SR), SR)
    data = p.read_bytes()
    cut = tmp_path / "cut.aiff"
    cut.write_bytes(data[: len(data) // 2])
    expect_bad(cut, "truncated")


def test_flac_truncated(tmp_path: Path) -> None:
    p = tmp_path / "full.flac"
    sf.write(p, tone(SR, 1.0, channels=2) + 0.01, SR)
    data = p.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])
    expect_bad(cut, "corrupt or truncated|truncated")


def test_ogg_truncated(tmp_path: Path) -> None:
    p = tmp_path / "full.ogg"
    sf.write(p, tone(SR, 1.0, channels=2), SR)
    data = p.read_bytes()
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(data[: len(data) // 2])
    expect_bad(cut, "no audio samples|truncated")


def test_mp3_truncated(tmp_path: Path) -> None:
    p = tmp_path / "full.mp3"
    sf.write(p, tone(22050, 1.0, channels=2), 22050)
    data = p.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    expect_bad(cut, "truncated")


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_corrupt_header(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"full.{ext}"
    sf.write(p, tone(SR), SR)
    data = p.read_bytes()
    bad = tmp_path / f"bad.{ext}"
    bad.write_bytes(b"\x00" * 64 + data[64:])
    expect_bad(bad, "cannot read")


def test_streaming_wav_placeholder_size_is_fine(tmp_path: Path) -> None:
    """A WAV from a pipe writer carries 0xFFFFFFFF sizes: libsndfile reads it; not reported as truncated."""
    p = tmp_path / "full.wav"
    sf.write(p, tone(SR), SR, subtype="PCM_16")
    b = bytearray(p.read_bytes())
    i = b.find(b"data")
    b[i + 4 : i + 8] = struct.pack("<I", 0xFFFFFFFF)
    b[4:8] = struct.pack("<I", 0xFFFFFFFF)
    s = tmp_path / "stream.wav"
    s.write_bytes(bytes(b))
    y, _ = load_audio(s, sr=SR)
    assert len(y) == SR


def test_zero_frames(tmp_path: Path) -> None:
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), SR)
    expect_bad(p, "no audio samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_wav(tmp_path: Path, bad: float) -> None:
    x = tone(SR)
    x[100, 0] = bad
    p = tmp_path / "nan.wav"
    sf.write(p, x, SR, subtype="FLOAT")
    expect_bad(p, "NaN or infinite")


def test_silent(tmp_path: Path) -> None:
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(SR, dtype=np.float32), SR)
    msg = expect_bad(p, "silent")
    assert msg == "the audio is silent (all samples are zero); nothing to auralise"


def test_channels_cancel(tmp_path: Path) -> None:
    x = tone(SR)
    p = tmp_path / "anti.wav"
    sf.write(p, np.concatenate([x, -x], axis=1), SR, subtype="FLOAT")
    expect_bad(p, "cancel out")


def test_too_short(tmp_path: Path) -> None:
    p = tmp_path / "short.wav"
    sf.write(p, tone(SR, 0.01), SR)
    msg = expect_bad(p, "too short", min_samples=SR // 2)
    assert "0.500 s" in msg and "0.010 s" in msg


def test_too_short_after_resampling(tmp_path: Path) -> None:
    p = tmp_path / "short.wav"
    sf.write(p, tone(44100, 0.02), 44100)
    expect_bad(p, "too short", min_samples=512)


def test_bad_parameters(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    sf.write(p, tone(SR), SR)
    for bad_sr in (0, -1, 22050.5, True):
        with pytest.raises(BadParameterError):
            load_audio(p, sr=bad_sr)
    with pytest.raises(BadParameterError):
        load_audio(p, sr=SR, min_samples=0)


# --------------------------------------------------------------------------- atomic writes


def test_atomic_path_success(tmp_path: Path) -> None:
    final = tmp_path / "layer1_feature3.wav"
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent
        assert tmp.name.startswith(".") and tmp.name.endswith(".part.wav")
        tmp.write_bytes(b"data")
        assert not final.exists()
    assert final.read_bytes() == b"data"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["layer1_feature3.wav"]


def test_atomic_path_replaces_existing(tmp_path: Path) -> None:
    final = tmp_path / "x.png"
    final.write_bytes(b"old")
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_cleans_up_on_exception(tmp_path: Path, exc_type: type[BaseException]) -> None:
    final = tmp_path / "out.wav"
    final.write_bytes(b"old")
    with pytest.raises(exc_type):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise exc_type("interrupted")
    assert final.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.wav"]


def test_atomic_path_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        with atomic_path(tmp_path / "never.wav"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_write_audio_exception_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(target, *a, **k):  # a half-written file, or a half-encoded buffer of a small file
        if isinstance(target, str | os.PathLike):
            Path(target).write_bytes(b"partial")
        else:
            target.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(KeyboardInterrupt):
        write_audio(tmp_path / "a.wav", np.zeros(10, dtype=np.float32), SR)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_write_audio_round_trip(tmp_path: Path, ext: str) -> None:
    x = tone(SR, 1.0, channels=2).T  # (channels, n)
    p = write_audio(tmp_path / f"out.{ext}", x, SR)
    assert p == tmp_path / f"out.{ext}"
    info = sf.info(p)
    assert info.channels == 2 and info.samplerate == SR
    assert info.format == {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}[ext]
    assert [x.name for x in tmp_path.iterdir()] == [f"out.{ext}"]


@pytest.mark.parametrize("in_memory", [True, False])
@pytest.mark.parametrize("ext, subtype", [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_24"), ("aiff", "PCM_16")])
def test_write_audio_gives_libsndfiles_own_bytes(tmp_path: Path, monkeypatch, ext: str, subtype: str,
                                                 in_memory: bool) -> None:  # fmt: skip
    """Encoded in memory (small files, no fsync per file) or straight into the file (above the threshold): the
    same bytes as ``soundfile.write`` to a path, clipping included."""
    import auralise.io.audio as audio

    if not in_memory:
        monkeypatch.setattr(audio, "ENCODED_IN_MEMORY", 100)
    y = (np.random.default_rng(5).random((2, 30001)).astype(np.float32) - 0.5) * 2.2
    write_audio(tmp_path / f"a.{ext}", y, 22050, subtype=subtype)
    sf.write(tmp_path / f"b.{ext}", y.T, 22050, subtype=subtype)
    assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a.{ext}", f"b.{ext}"]  # no temporary file left


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ext", ["wav", "aiff"])
def test_pcm16_conversion_is_libsndfiles_on_its_edge_cases(tmp_path: Path, ext: str, dtype) -> None:
    """write_audio turns floats into 16-bit samples itself (vectorised): byte for byte libsndfile's own conversion
    of the same floats, on the values where roundings differ: halfway between two steps and just beside, exact
    steps just beside (float64), values that round to 0 from below, the clipping bounds and far beyond."""
    k = np.arange(-33000, 33000, dtype=np.float64)
    near = [k / 32768 + e for e in (0.0, 1e-9, -1e-9, 1e-12, -1e-12)]
    near += [(k + 0.5) / 32768 + e for e in (0, 1e-9, -1e-9)]
    odd = [0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 1e-45, -1e-45, 2.3e-10, -2.3e-10, 65535.6 / 2**31, 65535.4 / 2**31,
           -65535.6 / 2**31, (2**31 - 1) / 2**31, -(2**31 - 1) / 2**31, 1.5, -1.5, 3e38, -3e38]  # fmt: skip
    noise = np.random.default_rng(3).standard_normal(20000) * np.geomspace(1e-9, 2.0, 20000)
    y = np.concatenate([*near, odd, noise]).astype(dtype)
    write_audio(tmp_path / f"a.{ext}", y, SR)  # the default subtype: PCM_16
    sf.write(tmp_path / f"b.{ext}", y, SR, subtype="PCM_16")
    assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()


def test_write_audio_mono_and_subtype(tmp_path: Path) -> None:
    y = tone(SR)[:, 0]
    p = write_audio(tmp_path / "m.wav", y, SR, subtype="FLOAT")
    back, sr = sf.read(p, dtype="float32")
    assert sr == SR and sf.info(p).subtype == "FLOAT"
    np.testing.assert_array_equal(back, y)


def test_write_audio_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown audio extension"):
        write_audio(tmp_path / "a.xyz", np.zeros(10), SR)
    with pytest.raises(BadParameterError):
        write_audio(tmp_path / "a.wav", np.zeros((1, 2, 3)), SR)
    with pytest.raises(BadParameterError):
        write_audio(tmp_path / "a.wav", np.array([0.0, np.nan]), SR)
    with pytest.raises(BadParameterError):
        write_audio(tmp_path / "a.wav", np.zeros(10), SR, subtype="VORBIS")
    with pytest.raises(OutputError, match="cannot write"):
        write_audio(tmp_path / "missing" / "a.wav", np.zeros(10), SR)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- output folders


def test_check_output_dir_creates_parents(tmp_path: Path) -> None:
    d = check_output_dir(tmp_path / "a" / "b" / "c")
    assert d.is_dir() and list(d.iterdir()) == []


def test_check_output_dir_existing(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path, create=False) == tmp_path


def test_check_output_dir_missing_no_create(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        check_output_dir(tmp_path / "x", create=False)


def test_check_output_dir_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(OutputError, match="not a folder") as ei:
        check_output_dir(f)
    assert "--out" in assert_one_line(ei.value)
    with pytest.raises(OutputError, match="cannot write to output folder") as ei:
        check_output_dir(f / "sub")
    assert "--out" in assert_one_line(ei.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_dir_read_only(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write to output folder"):
            check_output_dir(ro)
    finally:
        ro.chmod(0o700)


def test_check_output_dir_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a read-only folder (works as root too)."""
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="cannot write to output folder .*: Permission denied; choose another --out"):
        check_output_dir(tmp_path)
