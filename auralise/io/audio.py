"""Audio in and out: reading with validation, decoding and resampling to mono; writing in any libsndfile format.

Everything a user can get wrong about an audio file (missing, a folder, not audio, truncated, empty,
non-finite, silent, too short) is reported as one :class:`~auralise.errors.BadAudioError` line; nothing
from soundfile/libsndfile escapes as a traceback. A part of a file (``offset``/``duration``, librosa's names; every
command's ``--offset``/``--duration``) is sought and only that part decoded (:func:`check_region` checks the two
numbers). :func:`write_audio` writes through :func:`auralise.io.files.atomic_path`, so an interrupted run never
leaves a half-written output.

soundfile and soxr are imported lazily so that importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auralise.errors import BadAudioError, BadParameterError, OutputError
from auralise.io.files import _one_line, _sndfile_reason, _sndfile_write_error, atomic_path

__all__ = ["AudioInfo", "check_region", "load_audio", "write_audio"]

# Audio formats ``write_audio`` accepts, by file extension (libsndfile format names).
_WRITE_FORMATS = {
    ".wav": "WAV",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".mp3": "MP3",
    ".aif": "AIFF",
    ".aiff": "AIFF",
}

# Containers whose 16-bit PCM samples libsndfile converts as :func:`pcm16` does (not FLAC: it rounds differently).
_PCM16_AS_SHORTS = frozenset({"WAV", "AIFF"})
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# libsndfile's parser log reports a data chunk whose declared size exceeds the file, e.g.
# "data : 176400 (should be 88156)" (WAV) or "SSND : 44108 (should be 22031)" (AIFF).
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Containers whose seek lands on the exact frame (PCM, float, FLAC); others are decoded from SEEK_PREROLL before.
_EXACT_SEEK = frozenset({"WAV", "WAVEX", "AIFF", "AU", "W64", "RF64", "CAF", "RAW", "FLAC", "NIST", "IRCAM", "SVX"})
ENCODED_IN_MEMORY = 32 * 2**20  # bytes of samples up to which a file is encoded in memory, then written at once
SEEK_PREROLL = 10.0  # seconds decoded and dropped before an --offset in a lossy file
# Streaming writers put a placeholder (0xFFFFFFFF, or 0x7FFFFFFF..) in the size field: not truncation.
_PLACEHOLDER_SIZE = 0x7FFFFFFF


@dataclass
class AudioInfo:
    """What :func:`load_audio` found and did.

    Attributes
    ----------
    path : Path
        The file that was read.
    orig_sr : int
        The file's sample rate in Hz.
    channels : int
        Number of channels in the file (before downmixing).
    n_samples : int
        Number of mono samples returned (after resampling).
    duration_s : float
        ``n_samples / sr``.
    notes : list of str
        Human-readable notes on what was done, e.g. ``"downmixed 2 channels to mono"``.
    format : str
        libsndfile's container name, e.g. ``"WAV"``, ``"FLAC"``, ``"MP3"``.
    subtype : str
        libsndfile's sample encoding, e.g. ``"PCM_16"``, ``"FLOAT"``.
    offset : float
        Where the samples start in the file, in seconds (``--offset``, rounded onto the file's and the target's
        sample grids; 0.0 for the whole file).
    duration : float or None
        The ``--duration`` asked for (None: to the end of the file); ``duration_s`` is what was read.
    """

    path: Path
    orig_sr: int
    channels: int
    n_samples: int
    duration_s: float
    notes: list[str] = field(default_factory=list)
    format: str = ""
    subtype: str = ""
    offset: float = 0.0
    duration: float | None = None


def _declared_short(extra_info: str) -> tuple[int, int] | None:
    """(declared, available) data-chunk bytes when the header promises more data than the file holds."""
    for match in _SHORT_CHUNK.finditer(extra_info or ""):
        declared, available = int(match.group(1)), int(match.group(2))
        if available < declared < _PLACEHOLDER_SIZE:
            return declared, available
    return None


@dataclass
class _Decoded:
    y: np.ndarray  # mono float32 at the target rate
    n_read: int  # frames decoded at the file's rate
    non_finite: int  # NaN or infinite sample values
    any_sample: bool  # some sample of some channel is non-zero
    any_mono: bool  # some sample of the mono mix is non-zero


def _decode_mono(f, sr: int, block: int = 1 << 18, frames: int | None = None) -> _Decoded:
    """Decode an open SoundFile block by block into mono float32 at ``sr``, never holding the whole multichannel
    file or the file-rate signal: channels are averaged per block and soxr resamples as a stream (the same
    samples as ``librosa.resample(res_type="soxr_hq")`` of the whole signal).

    Decoding starts where ``f`` stands (after a seek, the part's first frame) and stops after ``frames`` frames
    (None: at the end of the file); resampling applies to those frames only."""
    resampler = None
    if int(f.samplerate) != sr:
        import soxr

        resampler = soxr.ResampleStream(int(f.samplerate), sr, 1, dtype="float32", quality="HQ")
    parts, n_read, non_finite, any_sample, any_mono = [], 0, 0, False, False
    while True:
        want = block if frames is None else min(block, frames - n_read)
        data = f.read(want, dtype="float32", always_2d=True)
        last = len(data) < want or (frames is not None and n_read + len(data) >= frames)
        n_read += len(data)
        finite = np.isfinite(data)
        non_finite += int(data.size - np.count_nonzero(finite))
        any_sample = any_sample or bool(np.any(data))
        if data.shape[1] > 1:
            mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
        else:
            mono = np.ascontiguousarray(data[:, 0])
        any_mono = any_mono or bool(np.any(mono))
        if resampler is not None and not non_finite:
            mono = resampler.resample_chunk(mono, last=last)
        parts.append(mono)
        if last:
            break
    y = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if resampler is not None and not non_finite:  # librosa's length: ceil(n * sr / orig_sr), zero-padded
        n_out = -(-n_read * sr // int(f.samplerate))
        y = np.pad(y, (0, n_out - len(y))) if len(y) < n_out else y[:n_out]
    return _Decoded(np.asarray(y, dtype=np.float32), n_read, non_finite, any_sample, any_mono)


def check_region(offset: float = 0.0, duration: float | None = None) -> tuple[float, float | None]:
    """``--offset`` and ``--duration`` checked: (offset, duration) as floats, or one :class:`BadParameterError` line.

    ``offset`` is a finite number of seconds >= 0; ``duration`` None (to the end of the file) or finite and > 0.
    Whether the offset lies inside a given file is checked when it is read (:func:`load_audio`).
    """
    for name, value in (("--offset", offset), ("--duration", duration)):
        if value is None and name == "--duration":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise BadParameterError(f"{name} must be a number of seconds, got {value!r}")
    if not (np.isfinite(offset) and offset >= 0):
        raise BadParameterError(f"--offset must be a number of seconds >= 0 (where to start reading), got {offset!r}")
    if duration is not None and not (np.isfinite(duration) and duration > 0):
        raise BadParameterError(f"--duration must be a number of seconds > 0 (how much to read), got {duration!r}")
    return float(offset), None if duration is None else float(duration)


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int,
    min_samples: int = 1,
    allow_silent: bool = False,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, AudioInfo]:
    """Read an audio file (or the part ``offset``..``offset + duration`` of it) as mono float32 at sample rate ``sr``.

    Any format libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...) is accepted. Channels are averaged
    to mono; a different sample rate is resampled with ``librosa.resample(res_type="soxr_hq")``. A part of the file
    (librosa's ``offset``/``duration``) is read by seeking to its first frame and decoding only its frames, then
    resampling those: at the file's rate the samples are exactly those of the whole file's decode; at another rate
    they equal the whole file's resampled signal, cut, except within the resampler's filter length (under 100
    samples) of the part's edges.

    Parameters
    ----------
    path : str or PathLike
        The audio file.
    sr : int
        Target sample rate in Hz (the model's).
    min_samples : int
        Minimum number of samples at ``sr`` (e.g. the front-end's window); shorter audio is an error.
    allow_silent : bool
        Accept all-zero audio (a tagger may be asked about silence; auralising it is an error).
    offset : float
        Seconds into the file where reading starts; 0 by default. It is rounded to the nearest instant on both the
        file's and ``sr``'s sample grid (every ``1 / gcd(file rate, sr)`` s: one sample when the rates are equal,
        1/11025 s from 44.1 to 11.025 kHz, 10 ms from 44.1 to 16 kHz); ``info.offset`` is where it starts.
    duration : float, optional
        Seconds to read (rounded to the file's frames); None reads to the end. A part that runs past the end of the
        file is read up to the end, with a note saying so.

    Returns
    -------
    y : np.ndarray, shape (n,), float32
        Mono audio at ``sr``.
    info : AudioInfo
        What was read and what was done to it.

    Raises
    ------
    BadAudioError
        Missing file, folder, not audio, truncated/corrupt, empty, NaN/Inf samples, silent, too short.
    BadParameterError
        ``sr`` or ``min_samples`` is not a positive integer; ``offset`` negative or at or past the end of the file;
        ``duration`` not positive.

    Examples
    --------
    >>> y, info = load_audio("song.flac", sr=11025)  # doctest: +SKIP
    >>> y.shape, info.notes  # doctest: +SKIP
    ((330750,), ['downmixed 2 channels to mono', 'resampled 44100 Hz -> 11025 Hz'])
    """
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise BadParameterError(f"sample rate must be a positive integer number of Hz, got {sr!r}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int | np.integer) or min_samples < 1:
        raise BadParameterError(f"min_samples must be a positive integer, got {min_samples!r}")
    sr = int(sr)
    offset, duration = check_region(offset, duration)
    p = Path(path)
    name = str(path)
    _check_readable(p, name)
    header, decoded = _read(p, name, sr, offset, duration)
    _check_decoded(name, header, decoded, allow_silent=allow_silent)

    notes = _region_notes(header, duration, decoded.n_read)
    if header.channels > 1:
        notes.append(f"downmixed {header.channels} channels to mono")
        if not decoded.any_mono:
            raise BadAudioError(
                f"{name}'s channels cancel out when downmixed to mono (e.g. left = -right); "
                "give a file whose mono mix is not silent"
            )
    if header.orig_sr != sr:
        notes.append(f"resampled {header.orig_sr} Hz -> {sr} Hz")

    y = decoded.y
    n = int(y.shape[0])
    if n < min_samples:
        what = f"the part of {name} read ({_span(header, decoded.n_read)})" if header.start or duration else name
        raise BadAudioError(
            f"{what} is too short: {n / sr:.3f} s at {sr} Hz; at least {min_samples / sr:.3f} s "
            f"({min_samples} samples) is needed"
        )
    info = AudioInfo(
        path=p,
        orig_sr=header.orig_sr,
        channels=header.channels,
        n_samples=n,
        duration_s=n / sr,
        notes=notes,
        format=header.format,
        subtype=header.subtype,
        offset=header.start / header.orig_sr,
        duration=duration,
    )
    return y, info


def _span(header: _Header, n_read: int) -> str:
    """``"12.000-42.000 s"``: the part of the file that was read, in the file's seconds."""
    return f"{header.start / header.orig_sr:.3f}-{(header.start + n_read) / header.orig_sr:.3f} s"


def _region_notes(header: _Header, duration: float | None, n_read: int) -> list[str]:
    """The note on the part of the file read (none for a whole file), and where a ``duration`` ran past the end."""
    if not header.start and duration is None:
        return []
    notes = [f"read {_span(header, n_read)} of the file (--offset/--duration)"]
    if duration is not None and n_read < header.wanted:
        notes.append(f"--duration {duration:g} s runs past the end of the file: read up to its end")
    return notes


def _check_readable(p: Path, name: str) -> None:
    """Raise :class:`BadAudioError` unless ``p`` is a readable, non-empty file (``name``: the path as given)."""
    if not p.exists():
        raise BadAudioError(f"audio file not found: {name}; check the path")
    if p.is_dir():
        raise BadAudioError(f"{name} is a folder, not an audio file; give the path of an audio file")
    if not os.access(p, os.R_OK):
        raise BadAudioError(f"cannot read {name}: permission denied; check the file's permissions")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise BadAudioError(f"cannot read {name}: {_one_line(exc.strerror or exc)}; check the path") from exc
    if size == 0:
        raise BadAudioError(f"{name} is an empty file (0 bytes); give a non-empty audio file")


@dataclass
class _Header:
    orig_sr: int  # the file's sample rate
    channels: int
    declared: int  # frames the header declares
    format: str  # libsndfile container name
    subtype: str  # libsndfile sample encoding
    extra: str  # libsndfile's parser log (tells a truncated data chunk)
    start: int = 0  # first frame read (--offset)
    wanted: int | None = None  # frames asked for (--duration); None: to the end


def _read(p: Path, name: str, sr: int, offset: float = 0.0, duration: float | None = None) -> tuple[_Header, _Decoded]:
    """Open ``p`` with libsndfile, seek to ``offset`` and decode ``duration`` seconds of it (all of it by default) to
    mono at ``sr``; any failure is one :class:`BadAudioError` (an offset past the end: :class:`BadParameterError`)."""
    import soundfile as sf

    try:
        f = sf.SoundFile(str(p))
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise BadAudioError(
            f"cannot read {name} as audio ({_sndfile_reason(exc)}); use a WAV, FLAC, OGG or MP3 file"
        ) from exc
    try:
        with f:
            header = _Header(int(f.samplerate), int(f.channels), int(f.frames), str(f.format), str(f.subtype),
                             f.extra_info)  # fmt: skip
            if header.orig_sr > 0:
                header.start = _start_frame(offset, header.orig_sr, sr)
                header.wanted = None if duration is None else max(1, int(round(duration * header.orig_sr)))
            if header.start:
                _check_offset(name, header, offset)
            # after a seek, libmpg123 prints complaints about frames' bit reservoirs on stderr although the
            # samples it decodes are right: keep them off the terminal
            with _stderr_silenced(header.start > 0 and header.format == "MP3"):
                if header.start:
                    _seek(f, header)
                decoded = _decode_mono(f, sr, frames=header.wanted)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, MemoryError) as exc:
        raise BadAudioError(
            f"{name} is corrupt or truncated (decoding failed: {_sndfile_reason(exc)}); re-export or re-download it"
        ) from exc
    if header.start and decoded.n_read == 0:  # a header that promised more frames than the file holds
        _check_offset(name, dataclasses.replace(header, declared=header.start), offset)
    return header, decoded


def _start_frame(offset: float, orig_sr: int, sr: int) -> int:
    """The file frame where a part starting ``offset`` s in begins: the nearest instant on both the file's and the
    target's sample grid (every ``1 / gcd(orig_sr, sr)`` s), so that the part resampled is the whole file resampled
    and cut (away from the resampler's edges)."""
    step = orig_sr // math.gcd(orig_sr, sr)  # file frames between instants on both grids
    return int(round(offset * orig_sr / step)) * step


def _seek(f, header: _Header) -> None:
    """Put ``f`` on frame ``header.start`` so that what follows decodes exactly as in a decode of the whole file.

    Uncompressed and FLAC files seek exactly. Lossy ones (Vorbis, MP3, ...) are sought :data:`SEEK_PREROLL` seconds
    earlier and decoded up to the frame: libsndfile 1.2 lands up to a few hundred samples off inside an Ogg
    Vorbis file's last page, and a decoder's state (MP3's bit reservoir and filter bank) settles over the frames
    before the target.
    """
    skip = 0 if header.format in _EXACT_SEEK else min(header.start, int(SEEK_PREROLL * header.orig_sr))
    f.seek(header.start - skip)
    while skip > 0:
        got = len(f.read(min(skip, 1 << 16), dtype="float32", always_2d=True))
        if got == 0:
            break
        skip -= got


def _check_offset(name: str, header: _Header, offset: float) -> None:
    """An ``--offset`` at or past the end of the file is one :class:`BadParameterError` line."""
    if header.start >= header.declared > 0 or (header.declared <= 0 and header.start > 0):
        length = max(header.declared, 0) / header.orig_sr
        raise BadParameterError(
            f"--offset {offset:g} s is past the end of {name} ({length:.3f} s long); give an offset below {length:.3f}"
        )


@contextlib.contextmanager
def _stderr_silenced(active: bool) -> Iterator[None]:
    """While ``active``, point file descriptor 2 at the null device (a C library's own prints go nowhere)."""
    if not active:
        yield
        return
    import sys

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_decoded(name: str, header: _Header, decoded: _Decoded, *, allow_silent: bool) -> None:
    """Raise :class:`BadAudioError` for an invalid header, truncation, no samples, NaN/Inf or (unless allowed)
    silence."""
    orig_sr, channels, declared = header.orig_sr, header.channels, header.declared
    if orig_sr <= 0 or channels <= 0:
        raise BadAudioError(f"{name} has an invalid header ({orig_sr} Hz, {channels} channels); re-export it")
    short = _declared_short(header.extra)
    n_read, start = decoded.n_read, header.start
    if short is not None:
        if n_read > 0 and short[1] > 0 and not start and header.wanted is None:
            held = n_read / orig_sr
            what = f"{held * short[0] / short[1]:.3f} s of audio but the file holds only {held:.3f} s"
        else:
            what = f"{short[0]} bytes of audio but the file holds only {short[1]}"
        raise BadAudioError(f"{name} is truncated: its header declares {what}; re-export or re-download it")
    # MP3 frame counts can be estimates (VBR without a Xing header): allow 5 % slack there. A part of the file
    # (--offset/--duration) is checked against what the header declares for that part.
    expected = declared * 0.95 if header.format == "MP3" else declared
    if header.wanted is not None:
        expected = min(expected, start + header.wanted)
    if 0 < n_read and start + n_read < expected:
        raise BadAudioError(
            f"{name} is truncated: {declared / orig_sr:.3f} s declared but only {(start + n_read) / orig_sr:.3f} s "
            "could be decoded; re-export or re-download it"
        )
    if n_read == 0:
        raise BadAudioError(
            f"{name} contains no audio samples (the file may be empty, truncated or have a broken header); "
            "give a file with audio in it"
        )
    if decoded.non_finite:
        raise BadAudioError(
            f"{name} contains {decoded.non_finite} NaN or infinite sample values; clean it or re-export it as PCM"
        )
    if not allow_silent and not decoded.any_sample:
        where = f" from {_span(header, n_read)} of {name}" if start or header.wanted is not None else ""
        raise BadAudioError(f"the audio is silent{where} (all samples are zero); nothing to auralise")


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int, *, subtype: str | None = None) -> Path:
    """Write audio atomically; the format follows the extension (.wav, .flac, .ogg, .mp3, .aiff).

    Parameters
    ----------
    path : str or PathLike
        Output file; replaced only once the new file is complete.
    y : np.ndarray, shape (n,) or (channels, n)
        Samples, nominally in [-1, 1]; PCM subtypes clip values outside.
    sr : int
        Sample rate in Hz.
    subtype : str, optional
        libsndfile subtype such as ``"PCM_16"`` (soundfile's default for the format when None),
        ``"PCM_24"`` or ``"FLOAT"``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    BadParameterError
        ``y`` has the wrong shape, no samples or non-finite values, or ``sr`` is invalid.
    OutputError
        Unknown extension or the file cannot be written.

    Examples
    --------
    >>> write_audio("out/feature_3.wav", y, 11025)  # doctest: +SKIP
    """
    final = Path(path)
    fmt = _WRITE_FORMATS.get(final.suffix.lower())
    if fmt is None:
        choices = ", ".join(sorted(_WRITE_FORMATS))
        raise OutputError(f"cannot write {final}: unknown audio extension {final.suffix!r}; use one of {choices}")
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise BadParameterError(f"sample rate must be a positive integer number of Hz, got {sr!r}")
    a = np.asarray(y)
    if a.ndim == 1:
        frames = a
    elif a.ndim == 2:
        frames = a.T
    else:
        raise BadParameterError(f"audio to write must have shape (n,) or (channels, n), got {a.shape}")
    if frames.shape[0] == 0:
        raise BadParameterError(f"refusing to write {final}: the audio has no samples")
    if not np.issubdtype(frames.dtype, np.floating):
        frames = frames.astype(np.float32)
    if not np.all(np.isfinite(frames)):
        raise BadParameterError(f"refusing to write {final}: the audio contains NaN or infinite values")

    import soundfile as sf

    if subtype is not None and not sf.check_format(fmt, subtype):
        raise BadParameterError(
            f"subtype {subtype!r} is not valid for {fmt}; choose one of {', '.join(sf.available_subtypes(fmt))}"
        )
    data = np.ascontiguousarray(frames)
    if fmt in _PCM16_AS_SHORTS and (subtype or sf.default_subtype(fmt)) == "PCM_16" and data.dtype in _FLOATS:
        data = pcm16(data)  # libsndfile's own conversion, vectorised (its loop cost 2.6 ms a 30-s feature)
    in_memory = data.nbytes <= ENCODED_IN_MEMORY  # libsndfile's bytes, without the fsync its own close makes
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as file:  # created here, so that a read-only or missing folder reports its real reason
            if in_memory:
                encoded = io.BytesIO()
                _encode(sf, encoded, data, sr, subtype, fmt, tmp)
                file.write(encoded.getbuffer())
        if not in_memory:
            _encode(sf, str(tmp), data, sr, subtype, fmt, tmp)
    return final


def pcm16(samples: np.ndarray) -> np.ndarray:
    """float32 or float64 samples as libsndfile writes them to a 16-bit PCM WAV or AIFF file: times 2**31 in their
    own precision, rounded to the nearest integer (ties to even), its top 16 bits (rounded down), clipped to
    [-32768, 32767]. Bit for bit what it writes given the floats (its ``f2les``/``d2les`` clip loops), so files
    stay byte-identical; same shape, int16."""
    with np.errstate(over="ignore"):  # beyond float32's range: inf, clipped like libsndfile's
        scaled = samples * samples.dtype.type(2.0**31)
    np.rint(scaled, out=scaled)
    scaled *= samples.dtype.type(2.0**-16)  # exact: a power of two
    np.floor(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


def _encode(sf, target, data: np.ndarray, sr: int, subtype: str | None, fmt: str, tmp: Path) -> None:
    """``soundfile.write`` of ``data`` into ``target`` (a path or a buffer), its failures as one-line errors."""
    try:
        sf.write(target, data, int(sr), subtype=subtype, format=fmt)
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise _sndfile_write_error(tmp, exc) from exc
