"""Audio in and out: loading with validation and resampling, atomic writes, output folders.

Everything a user can get wrong about an audio file (missing, a folder, not audio, truncated, empty,
non-finite, silent, too short) is reported as one :class:`~auralise.errors.BadAudioError` line; nothing
from soundfile/libsndfile escapes as a traceback. Writes go to a hidden ``.part`` file that is renamed
onto the target only when complete, so an interrupted run never leaves a half-written output.

soundfile and librosa are imported lazily so that importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auralise.errors import BadAudioError, BadParameterError, OutputError

__all__ = ["AudioInfo", "load_audio", "atomic_path", "write_audio", "check_output_dir"]

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

# libsndfile's parser log reports a data chunk whose declared size exceeds the file, e.g.
# "data : 176400 (should be 88156)" (WAV) or "SSND : 44108 (should be 22031)" (AIFF).
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
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
    """

    path: Path
    orig_sr: int
    channels: int
    n_samples: int
    duration_s: float
    notes: list[str] = field(default_factory=list)
    format: str = ""
    subtype: str = ""


def _one_line(text: object) -> str:
    """Collapse ``text`` to a single line (libsndfile messages can contain newlines)."""
    return " ".join(str(text).split())


def _sndfile_reason(exc: BaseException) -> str:
    """A short, one-line reason from a soundfile/libsndfile exception."""
    reason = getattr(exc, "error_string", None) or str(exc)
    reason = _one_line(reason)
    # soundfile prefixes "Error opening '<path>': "; the path is already in our message.
    reason = re.sub(r"^Error opening .*?:\s*", "", reason)
    reason = re.sub(r"^Error\s*:\s*", "", reason)
    return reason.rstrip(".") or "libsndfile could not decode it"


def _declared_short(extra_info: str) -> tuple[int, int] | None:
    """(declared, available) data-chunk bytes when the header promises more data than the file holds."""
    for match in _SHORT_CHUNK.finditer(extra_info or ""):
        declared, available = int(match.group(1)), int(match.group(2))
        if available < declared < _PLACEHOLDER_SIZE:
            return declared, available
    return None


def load_audio(
    path: str | os.PathLike, *, sr: int, min_samples: int = 1, allow_silent: bool = False
) -> tuple[np.ndarray, AudioInfo]:
    """Read an audio file as mono float32 at sample rate ``sr``.

    Any format libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...) is accepted. Channels are averaged
    to mono; a different sample rate is resampled with ``librosa.resample(res_type="soxr_hq")``.

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
        ``sr`` or ``min_samples`` is not a positive integer.

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
    p = Path(path)
    name = str(path)

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

    import soundfile as sf

    try:
        f = sf.SoundFile(str(p))
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise BadAudioError(
            f"cannot read {name} as audio ({_sndfile_reason(exc)}); use a WAV, FLAC, OGG or MP3 file"
        ) from exc
    try:
        with f:
            orig_sr = int(f.samplerate)
            channels = int(f.channels)
            declared = int(f.frames)
            fmt, subtype = str(f.format), str(f.subtype)
            extra = f.extra_info
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, MemoryError) as exc:
        raise BadAudioError(
            f"{name} is corrupt or truncated (decoding failed: {_sndfile_reason(exc)}); re-export or re-download it"
        ) from exc

    if orig_sr <= 0 or channels <= 0:
        raise BadAudioError(f"{name} has an invalid header ({orig_sr} Hz, {channels} channels); re-export it")
    short = _declared_short(extra)
    n_read = data.shape[0]
    if short is not None:
        if n_read > 0 and short[1] > 0:
            held = n_read / orig_sr
            what = f"{held * short[0] / short[1]:.3f} s of audio but the file holds only {held:.3f} s"
        else:
            what = f"{short[0]} bytes of audio but the file holds only {short[1]}"
        raise BadAudioError(f"{name} is truncated: its header declares {what}; re-export or re-download it")
    # MP3 frame counts can be estimates (VBR without a Xing header): allow 5 % slack there.
    expected = declared * 0.95 if fmt == "MP3" else declared
    if 0 < n_read < expected:
        raise BadAudioError(
            f"{name} is truncated: {declared / orig_sr:.3f} s declared but only {n_read / orig_sr:.3f} s "
            "could be decoded; re-export or re-download it"
        )
    if n_read == 0:
        raise BadAudioError(
            f"{name} contains no audio samples (the file may be empty, truncated or have a broken header); "
            "give a file with audio in it"
        )
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise BadAudioError(f"{name} contains {bad} NaN or infinite sample values; clean it or re-export it as PCM")
    if not allow_silent and not np.any(data):
        raise BadAudioError("the audio is silent (all samples are zero); nothing to auralise")

    notes: list[str] = []
    if channels > 1:
        y = data.mean(axis=1, dtype=np.float64).astype(np.float32)
        notes.append(f"downmixed {channels} channels to mono")
        if not np.any(y):
            raise BadAudioError(
                f"{name}'s channels cancel out when downmixed to mono (e.g. left = -right); "
                "give a file whose mono mix is not silent"
            )
    else:
        y = np.ascontiguousarray(data[:, 0])

    if orig_sr != sr:
        import librosa

        y = librosa.resample(y, orig_sr=orig_sr, target_sr=sr, res_type="soxr_hq").astype(np.float32)
        notes.append(f"resampled {orig_sr} Hz -> {sr} Hz")

    n = int(y.shape[0])
    if n < min_samples:
        raise BadAudioError(
            f"{name} is too short: {n / sr:.3f} s at {sr} Hz; at least {min_samples / sr:.3f} s "
            f"({min_samples} samples) is needed"
        )
    info = AudioInfo(
        path=p,
        orig_sr=orig_sr,
        channels=channels,
        n_samples=n,
        duration_s=n / sr,
        notes=notes,
        format=fmt,
        subtype=subtype,
    )
    return y, info


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name is hidden and keeps the real extension last, so writers that pick the format
    from the name (soundfile, matplotlib) still work: ``out/f3.wav`` -> ``out/.f3.<random>.part.wav``.
    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the exception
    propagates; ``path`` is then untouched.

    Parameters
    ----------
    path : str or PathLike
        The final file.

    Yields
    ------
    Path
        Where to write.

    Raises
    ------
    OutputError
        The block finished without creating the temporary file, or the rename failed.

    Examples
    --------
    >>> with atomic_path("out/fig.png") as tmp:  # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    final = Path(path)
    suffix = final.suffix
    stem = final.name[: len(final.name) - len(suffix)] if suffix else final.name
    tmp = final.with_name(f".{stem}.{secrets.token_hex(4)}.part{suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written to {final}; this is a bug, please report it")
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise OutputError(
                f"cannot write {final}: {_one_line(exc.strerror or exc)}; choose another output path"
            ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


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
    try:
        with atomic_path(final) as tmp:
            sf.write(str(tmp), np.ascontiguousarray(frames), int(sr), subtype=subtype, format=fmt)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        reason = (
            _sndfile_reason(exc)
            if isinstance(exc, sf.SoundFileError)
            else _one_line(getattr(exc, "strerror", None) or exc)
        )
        raise OutputError(f"cannot write {final}: {reason}; choose another output path") from exc
    return final


def check_output_dir(path: str | os.PathLike, *, create: bool = True) -> Path:
    """Make sure ``path`` is a writable folder, creating it (and its parents) if needed.

    Parameters
    ----------
    path : str or PathLike
        The output folder.
    create : bool
        Create it when missing; otherwise a missing folder is an error.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    OutputError
        It exists but is not a folder, cannot be created, or cannot be written.

    Examples
    --------
    >>> out = check_output_dir("auralised/song1")  # doctest: +SKIP
    """
    import tempfile

    d = Path(path)
    if d.exists() and not d.is_dir():
        raise OutputError(f"cannot write to output folder {d}: it exists and is not a folder; choose another --out")
    if not d.exists():
        if not create:
            raise OutputError(f"output folder {d} does not exist; create it or choose another --out")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot write to output folder {d}: {_one_line(exc.strerror or exc)}; choose another --out"
            ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".auralise-write-test-", suffix=".part", dir=d)
    except OSError as exc:
        raise OutputError(
            f"cannot write to output folder {d}: {_one_line(exc.strerror or exc)}; choose another --out"
        ) from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return d
