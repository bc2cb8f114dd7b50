"""Seeded synthetic multi-instrument music: short excerpts in three genre-like styles, with stems.

auralise cannot download music, so it makes its own. :func:`generate` renders an excerpt of one style
(``"ballad"``, ``"dance"`` or ``"hiphop"``) with a random key, diatonic chord progression, tempo, mix
levels and timbre parameters, all drawn from one :class:`numpy.random.Generator` seeded by ``seed``: the
same arguments give bit-identical audio. Every excerpt carries its six stems (:data:`STEMS`), whose sum is
the mix, so a feature's response can be tested per instrument. :func:`generate_sequence` chains styles
with crossfades and :func:`tone` renders one sustained chord with a named timbre.

Pitched voices are wavetable oscillators: one band-limited cycle per note (partials below 0.45 ``sr``,
built with an inverse FFT) read with linear interpolation, so they do not alias at any ``sr`` and cost
the same whatever the number of partials. Drums are one-shots (pitch-swept sine kick, filtered noise
snare, clap and hats) placed on a 16-step grid; a repeated note is rendered once and replayed. Pure
numpy/scipy; a 4-s excerpt at 11025 Hz takes about 10-25 ms on one CPU core.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import fft, signal

from auralise.errors import BadParameterError

__all__ = ["CHORDS", "INSTRUMENTS", "STEMS", "STYLES", "Excerpt", "generate", "generate_sequence", "tone"]

STYLES: tuple[str, ...] = ("ballad", "dance", "hiphop")
STEMS: tuple[str, ...] = ("kick", "snare", "hats", "bass", "chords", "melody")
CHORDS: dict[str, tuple[int, ...]] = {
    "interval": (0, 7),
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "sus4": (0, 5, 7),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6),
}

_MIN_SR = 4000
_PEAK = 0.9
_TABLE = 2048  # wavetable length: room for 1023 partials
_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = {  # scale degrees, 0-based
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 5, 4), (1, 4, 0, 5), (0, 3, 0, 4), (3, 0, 4, 5)),
    "minor": ((0, 5, 2, 6), (0, 3, 6, 2), (0, 6, 5, 6), (0, 3, 4, 0), (0, 5, 3, 4), (0, 2, 6, 3)),
}
_VOWELS = (  # (centre Hz, bandwidth Hz, gain) of the first three formants
    ((800.0, 130.0, 1.0), (1150.0, 150.0, 0.6), (2900.0, 250.0, 0.25)),  # a
    ((450.0, 110.0, 1.0), (800.0, 130.0, 0.7), (2830.0, 250.0, 0.2)),  # o
    ((400.0, 110.0, 1.0), (1900.0, 180.0, 0.5), (2600.0, 250.0, 0.3)),  # e
    ((350.0, 100.0, 1.0), (700.0, 130.0, 0.4), (2700.0, 250.0, 0.15)),  # u
)


@dataclass(frozen=True)
class _Timbre:
    """A pitched voice: partial amplitudes ``k**-slope`` shaped by filters, and an envelope (seconds)."""

    harmonics: int = 60  # most partials used
    slope: float = 1.0  # partial k has amplitude k**-slope (1: sawtooth)
    even: float = 1.0  # gain of even partials (0: square-like)
    pluck: float = 0.0  # excitation point as a fraction of the string (0: none)
    cutoff: float = 0.0  # 12 dB/octave low-pass corner in Hz (0: none)
    formants: tuple[tuple[float, float, float], ...] = ()  # (centre Hz, bandwidth Hz, gain)
    attack: float = 0.01
    decay: float = 0.0  # exponential decay time constant of the body (0: sustained)
    bright_decay: float = 0.0  # faster decay of the partials above ~500 Hz (0: none)
    release: float = 0.08
    vibrato: float = 0.0  # depth in semitones
    vib_rate: float = 5.5  # Hz
    detune: float = 0.0  # cents between two chorus voices (0: one voice)


_TIMBRES: dict[str, _Timbre] = {
    "sine": _Timbre(harmonics=1, attack=0.02, release=0.1),
    "strings": _Timbre(cutoff=1800.0, attack=0.3, release=0.4, vibrato=0.06, detune=10.0),
    "acoustic_guitar": _Timbre(
        slope=1.0, pluck=0.18, cutoff=2500.0, attack=0.003, decay=1.2, bright_decay=0.25, release=0.1
    ),
    "saxophone": _Timbre(
        slope=0.6,
        cutoff=3500.0,
        formants=((550.0, 250.0, 1.0), (1800.0, 500.0, 1.0)),
        attack=0.04,
        vibrato=0.12,
        vib_rate=5.0,
    ),
    "piano": _Timbre(slope=1.7, pluck=0.12, cutoff=5000.0, attack=0.002, decay=2.5, bright_decay=0.35, release=0.25),
    "electric_guitar": _Timbre(
        slope=0.5,
        even=0.5,
        cutoff=4000.0,
        formants=((2000.0, 600.0, 1.0),),
        attack=0.004,
        decay=4.0,
        bright_decay=1.0,
        release=0.1,
        vibrato=0.05,
    ),
    "voice": _Timbre(slope=1.2, formants=_VOWELS[0], attack=0.06, release=0.12, vibrato=0.3),
    "saw_bass": _Timbre(cutoff=500.0, attack=0.004, decay=0.6, bright_decay=0.12, release=0.03),
    "sub_bass": _Timbre(harmonics=2, slope=3.0, attack=0.005, release=0.05),
    "stab": _Timbre(cutoff=2500.0, attack=0.003, decay=0.3, bright_decay=0.08, release=0.04, detune=14.0),
    "pluck": _Timbre(even=0.6, cutoff=3000.0, attack=0.002, decay=0.25, bright_decay=0.06, release=0.05),
    "keys": _Timbre(harmonics=8, slope=2.2, attack=0.003, decay=1.6, bright_decay=0.2, release=0.2),
}
INSTRUMENTS: tuple[str, ...] = tuple(_TIMBRES)
"""Timbre names :func:`tone` accepts (the styles' own voices included)."""


@dataclass(frozen=True, eq=False)
class Excerpt:
    """A rendered excerpt and how it was made.

    Attributes
    ----------
    mix : numpy.ndarray
        Shape ``(n,)``, float32, peak about 0.9; exactly the sum of :attr:`stems` (in :data:`STEMS` order).
    stems : dict of str to numpy.ndarray
        One ``(n,)`` float32 array per name in :data:`STEMS`; all zeros where the style lacks the part.
    sr : int
        Sample rate in Hz.
    style : str
        One of :data:`STYLES`, or ``"mix"`` for :func:`generate_sequence`.
    params : dict
        JSON-serialisable record of every random choice (tempo, key, progression, levels, timbres...).
    """

    mix: np.ndarray
    stems: dict[str, np.ndarray]
    sr: int
    style: str
    params: dict


@dataclass(frozen=True)
class _Part:
    """A pitched part: timbre, MIDI register and either bar rhythms or melody-generation settings."""

    timbre: str
    register: tuple[int, int]  # chords/bass: lowest note of a one-octave window; melody: (low, high)
    rhythms: tuple[tuple[tuple[int, ...], ...], ...] = ()  # per-bar (step, steps[, chord tone]) lists
    grid: int = 0  # melody: onset grid in 16th steps
    density: float = 0.0  # melody: probability of an onset per grid position
    legato: bool = False  # melody: notes last until the next onset


@dataclass(frozen=True)
class _Style:
    tempo: tuple[float, float]
    minor: float  # probability of a minor key
    chord_beats: tuple[int, ...]  # beats per chord, choices
    sevenths: float  # probability of seventh chords
    swing: tuple[float, float]  # 0.5: straight; fraction of the beat where the off-beat eighth falls
    jitter: float  # timing humanisation, seconds (standard deviation)
    kick: tuple[tuple[int, ...], ...]  # candidate bar patterns in 16th steps
    snare: tuple[tuple[int, ...], ...]
    clap: bool  # the snare stem is a clap
    hats_open: tuple[tuple[int, ...], ...]
    hats_closed: tuple[tuple[int, ...], ...]
    bass: _Part  # no rhythms: the bass follows the kick
    chords: _Part
    pad: str | None  # timbre of a sustained pad added to the chords stem
    melody: _Part
    levels: dict[str, tuple[float, float]]  # dB ranges
    reverb: tuple[float, float, float, float]  # t60 range (s), wet gain range
    reverb_stems: tuple[str, ...]


_ARPEGGIO = tuple((s, 6, i) for s, i in zip(range(0, 16, 2), (0, 1, 2, 3, 4, 3, 2, 1), strict=True))
_SPECS: dict[str, _Style] = {
    "ballad": _Style(
        tempo=(60.0, 80.0),
        minor=0.3,
        chord_beats=(2, 4),
        sevenths=0.25,
        swing=(0.5, 0.5),
        jitter=0.008,
        kick=(),
        snare=(),
        clap=False,
        hats_open=(),
        hats_closed=(),
        bass=_Part("piano", (36, 48), rhythms=(((0, 8), (8, 8)), ((0, 6), (6, 2), (8, 6), (14, 2)))),
        chords=_Part("piano", (55, 67), rhythms=(((0, 4), (4, 4), (8, 4), (12, 4)), ((0, 8), (8, 8)), _ARPEGGIO)),
        pad="strings",
        melody=_Part("voice", (60, 79), grid=2, density=0.45, legato=True),
        levels={"bass": (-8.0, -4.0), "chords": (-10.0, -6.0), "melody": (-3.0, 0.0)},
        reverb=(1.2, 2.2, 0.25, 0.4),
        reverb_stems=("bass", "chords", "melody"),
    ),
    "dance": _Style(
        tempo=(120.0, 130.0),
        minor=0.7,
        chord_beats=(4,),
        sevenths=0.15,
        swing=(0.5, 0.5),
        jitter=0.0,
        kick=((0, 4, 8, 12),),
        snare=((4, 12),),
        clap=True,
        hats_open=((2, 6, 10, 14),),
        hats_closed=((), tuple(range(1, 16, 2)), (0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15)),
        bass=_Part(
            "saw_bass",
            (33, 45),
            rhythms=(((2, 2), (6, 2), (10, 2), (14, 2)), tuple((s, 1) for s in range(16) if s % 4)),
        ),
        chords=_Part(
            "stab", (57, 69), rhythms=(((2, 1), (6, 1), (10, 1), (14, 1)), ((0, 2), (3, 2), (6, 2), (10, 1), (12, 2)))
        ),
        pad=None,
        melody=_Part("pluck", (69, 88), grid=1, density=0.6),
        levels={
            "kick": (-1.0, 1.0),
            "snare": (-6.0, -2.0),
            "hats": (-13.0, -8.0),
            "bass": (-9.0, -5.0),
            "chords": (-15.0, -10.0),
            "melody": (-17.0, -12.0),
        },
        reverb=(0.4, 0.8, 0.1, 0.2),
        reverb_stems=("snare", "chords", "melody"),
    ),
    "hiphop": _Style(
        tempo=(85.0, 95.0),
        minor=0.8,
        chord_beats=(4, 8),
        sevenths=0.7,
        swing=(0.54, 0.64),
        jitter=0.004,
        kick=((0, 10), (0, 7, 10), (0, 3, 8, 10), (0, 9, 11), (0, 6, 10)),
        snare=((4, 12), (4, 12, 15)),
        clap=False,
        hats_open=(),
        hats_closed=(tuple(range(0, 16, 2)), (0, 2, 4, 6, 8, 10, 12, 13, 14)),
        bass=_Part("sub_bass", (28, 40)),
        chords=_Part(
            "keys", (55, 67), rhythms=(((0, 6), (10, 4)), ((0, 8),), ((2, 4), (8, 6)), ((0, 3), (3, 3), (12, 4)))
        ),
        pad=None,
        melody=_Part("keys", (72, 88), grid=2, density=0.18),
        levels={
            "kick": (-1.0, 1.0),
            "snare": (-2.0, 1.0),
            "hats": (-12.0, -7.0),
            "bass": (-9.0, -5.0),
            "chords": (-12.0, -7.0),
            "melody": (-14.0, -8.0),
        },
        reverb=(0.3, 0.7, 0.1, 0.2),
        reverb_stems=("snare", "chords", "melody"),
    ),
}


# ----------------------------------------------------------------------------------------- validation


def _check_common(seconds: float, sr: int, seed: int, name: str = "seconds") -> int:
    """Validate the shared arguments and return the length in samples."""
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr < _MIN_SR:
        raise BadParameterError(f"sr must be an integer >= {_MIN_SR} Hz (e.g. 11025, 16000, 22050), got {sr!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise BadParameterError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(seconds, int | float | np.number) or not math.isfinite(seconds) or seconds <= 0:
        raise BadParameterError(f"{name} must be a finite number of seconds > 0, got {seconds!r}")
    n = round(seconds * sr)
    if n < 1:
        raise BadParameterError(f"{name}={seconds!r} is shorter than one sample at sr={sr}; ask for more")
    return n


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise BadParameterError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")


# -------------------------------------------------------------------------------------------- voices


_BLOCK = 4096  # samples per block: keeps a note's temporaries in cache


def _table(amps: np.ndarray, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One cycle of ``sum_k amps[k] sin(2 pi (k + 1) x + phases[k])`` sampled at ``_TABLE`` points, and
    its forward differences (for linear interpolation), each of shape ``(_TABLE,)``."""
    spec = np.zeros(_TABLE // 2 + 1, complex)
    spec[1 : amps.size + 1] = amps * np.exp(1j * (phases - np.pi / 2)) * (_TABLE / 2)
    tab = np.fft.irfft(spec, _TABLE)
    return tab, np.diff(tab, append=tab[0])


_SINE = _table(np.ones(1), np.zeros(1))


def _index(phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table index and interpolation fraction of ``phase`` (cycles)."""
    x = (phase - np.floor(phase)) * _TABLE
    i = x.astype(np.intp)
    return i, x - i


def _lookup(table: tuple[np.ndarray, np.ndarray], i: np.ndarray, frac: np.ndarray) -> np.ndarray:
    return np.take(table[0], i) + frac * np.take(table[1], i)


def _partials(tb: _Timbre, f0: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and unit-energy amplitudes of the partials of ``tb`` at ``f0`` below 0.45 ``sr``."""
    margin = 2 ** ((tb.vibrato + tb.detune / 100) / 12)  # room for pitch modulation
    k = np.arange(1, tb.harmonics + 1)
    k = k[k * f0 * margin < 0.45 * sr]
    f = k * f0
    a = k**-tb.slope
    a[k % 2 == 0] *= tb.even
    if tb.pluck:
        a *= np.abs(np.sin(np.pi * k * tb.pluck)) + 0.05
    if tb.cutoff:
        a /= np.sqrt(1 + (f / tb.cutoff) ** 4)
    if tb.formants:
        a *= 0.15 + sum(g * np.exp(-0.5 * ((f - c) / b) ** 2) for c, b, g in tb.formants)
    norm = np.sqrt(np.sum(a**2))
    return f, (a / norm if norm > 0 else a)


def _note(tb: _Timbre, midi: float, dur: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One note of ``dur`` seconds plus its release, shape ``(round((dur + release) sr),)``; RMS ~ 0.7."""
    m = max(1, round((dur + tb.release) * sr))
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    freqs, amps = _partials(tb, f0, sr)
    if amps.size == 0:  # fundamental above the band: nothing to play
        return np.zeros(m)
    # partials above ~500 Hz die away faster (bright_decay): a second table with its own envelope
    weights = [1.0] if not tb.bright_decay else [1 / (1 + (freqs / 500.0) ** 2), 1 - 1 / (1 + (freqs / 500.0) ** 2)]
    voices = []  # (frequency, start phase, tables, vibrato rate, vibrato phase) of each chorus voice
    for cents in (-tb.detune / 2, tb.detune / 2) if tb.detune else (0.0,):
        phases = rng.uniform(0, 2 * np.pi, amps.size)
        voices.append(
            (
                f0 * 2 ** (cents / 1200),
                rng.random(),
                [_table(amps * w, phases) for w in weights],
                tb.vib_rate * rng.uniform(0.9, 1.1),
                rng.random(),
            )
        )
    r = round(dur * sr)
    out = np.empty(m)
    for a in range(0, m, _BLOCK):
        t = np.arange(a, min(a + _BLOCK, m)) / sr
        env = np.minimum(t / tb.attack, 1.0)
        if tb.decay:
            env *= np.exp(-t / tb.decay)
        if a + t.size > r:
            k = max(r - a, 0)
            env[k:] *= 0.5 + 0.5 * np.cos(np.pi * np.minimum((t[k:] - dur) / tb.release, 1.0))
        bright = np.exp(-t / tb.bright_decay) if tb.bright_decay else None
        block = 0.0
        for f, p0, tables, rate, p1 in voices:
            phase = f * t + p0
            if tb.vibrato:  # sinusoidal FM of depth tb.vibrato semitones, faded in over 0.4 s
                depth = f * (2 ** (tb.vibrato / 12) - 1) / (2 * np.pi * rate)
                phase += depth * np.minimum(t / 0.4, 1.0) * _lookup(_SINE, *_index(rate * t + p1))
            i, frac = _index(phase)
            block = block + _lookup(tables[0], i, frac)
            if bright is not None:
                block = block + bright * _lookup(tables[1], i, frac)
        out[a : a + t.size] = block * env
    return out / math.sqrt(len(voices))


@lru_cache(maxsize=64)
def _sos(order: int, freqs: float | tuple[float, float], kind: str, sr: int) -> np.ndarray:
    return signal.butter(order, freqs, kind, fs=sr, output="sos")


def _noise(rng: np.random.Generator, env: np.ndarray, sos: np.ndarray) -> np.ndarray:
    return signal.sosfilt(sos, rng.standard_normal(env.size) * env)


def _peak1(x: np.ndarray) -> np.ndarray:
    return x / np.max(np.abs(x))


def _drum(kind: str, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One-shot drum sample (peak 1) of ``kind`` and its random parameters."""
    nyq = sr / 2
    if kind == "kick":  # sine swept down from ~110 Hz to ~50 Hz, low-passed: energy below 150 Hz
        p = {
            "f_start": rng.uniform(90, 130),
            "f_end": rng.uniform(42, 58),
            "sweep": rng.uniform(0.015, 0.04),
            "decay": rng.uniform(0.12, 0.3),
        }
        t = np.arange(round(6 * p["decay"] * sr)) / sr
        f = p["f_end"] + (p["f_start"] - p["f_end"]) * np.exp(-t / p["sweep"])
        x = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / p["decay"]) * np.minimum(t / 0.004, 1)
        x = signal.sosfilt(_sos(2, 160.0, "lowpass", sr), x)
    elif kind == "snare":  # band-passed noise rattle plus a short ~200 Hz body
        p = {"tone": rng.uniform(160, 230), "decay": rng.uniform(0.07, 0.16), "body": rng.uniform(0.2, 0.5)}
        t = np.arange(round(5 * p["decay"] * sr)) / sr
        rattle = _noise(rng, np.exp(-t / p["decay"]), _sos(2, (1200.0, min(7000.0, 0.85 * nyq)), "bandpass", sr))
        body = np.sin(2 * np.pi * p["tone"] * t) * np.exp(-t / 0.04) * np.minimum(t / 0.002, 1)
        x = _peak1(rattle) + p["body"] * body
    elif kind == "clap":  # a few 10-ms noise bursts then a short tail, 0.9-3.2 kHz
        p = {"spacing": rng.uniform(0.007, 0.012), "decay": rng.uniform(0.05, 0.09)}
        t = np.arange(round((3 * p["spacing"] + 5 * p["decay"]) * sr)) / sr
        env = sum(np.exp(-np.maximum(t - j * p["spacing"], 0) / 0.004) * (t >= j * p["spacing"]) for j in range(3))
        env = env + 0.8 * np.exp(-np.maximum(t - 3 * p["spacing"], 0) / p["decay"]) * (t >= 3 * p["spacing"])
        x = _noise(rng, env, _sos(2, (900.0, min(3200.0, 0.85 * nyq)), "bandpass", sr))
    else:  # "open" / "closed" hat: steeply high-passed noise, above ~3.6 kHz even at 11025 Hz
        p = {"decay": rng.uniform(0.12, 0.25) if kind == "open" else rng.uniform(0.02, 0.05)}
        t = np.arange(round(5 * p["decay"] * sr)) / sr
        x = _noise(
            rng, np.exp(-t / p["decay"]) * np.minimum(t / 0.001, 1), _sos(8, min(7000.0, 0.66 * nyq), "highpass", sr)
        )
    return _peak1(x), {k: round(float(v), 5) for k, v in p.items()}


def _add(out: np.ndarray, x: np.ndarray, start: int) -> None:
    """``out[start:start + len(x)] += x``, clipped to ``out`` (``start`` may be negative)."""
    a, b = max(start, 0), min(start + x.size, out.size)
    if a < b:
        out[a:b] += x[a - start : b - start]


def _reverb(x: np.ndarray, sr: int, rng: np.random.Generator, t60: float, wet: float) -> np.ndarray:
    """Rows of ``x`` ``(k, n)`` plus ``wet`` times their convolution with one exponentially decaying
    noise response (energy-normalised, cut at -45 dB)."""
    t = np.arange(round(0.65 * t60 * sr)) / sr
    ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / t60) * np.minimum(t / 0.01, 1)
    size = fft.next_fast_len(x.shape[-1] + ir.size - 1, real=True)
    spec = fft.rfft(x, size) * fft.rfft(ir * (wet / np.sqrt(np.sum(ir**2))), size)
    return x + fft.irfft(spec, size)[..., : x.shape[-1]]


# ------------------------------------------------------------------------------------------ harmony


def _chord_name(root: int, ivs: tuple[int, ...]) -> str:
    triad = {(4, 7): "", (3, 7): "m", (3, 6): "dim"}[ivs[1:3]]
    seventh = {(): "", (10,): "7", (11,): "maj7"}[ivs[3:]]
    if triad == "dim" and seventh:
        triad, seventh = "m", "7b5"
    return _NOTE_NAMES[root % 12] + triad + seventh


def _harmony(sp: _Style, rng: np.random.Generator) -> dict:
    """Random key and diatonic progression: pitch classes (root first) of each chord, and names."""
    mode = "minor" if rng.random() < sp.minor else "major"
    tonic = int(rng.integers(12))
    scale = [(tonic + s) % 12 for s in _SCALES[mode]]
    degrees = _PROGRESSIONS[mode][rng.integers(len(_PROGRESSIONS[mode]))]
    size = 4 if rng.random() < sp.sevenths else 3
    chords, names, romans = [], [], []
    for d in degrees:
        pcs = tuple(scale[(d + 2 * j) % 7] for j in range(size))
        ivs = tuple((pc - pcs[0]) % 12 for pc in pcs)
        chords.append(pcs)
        names.append(_chord_name(pcs[0], ivs))
        numeral = _ROMAN[d] if ivs[1] == 4 else _ROMAN[d].lower() + ("°" if ivs[2] == 6 else "")
        romans.append(numeral + ("" if size == 3 else "7"))
    return {
        "key": f"{_NOTE_NAMES[tonic]} {mode}",
        "mode": mode,
        "scale": scale,
        "progression": romans,
        "chords": names,
        "pcs": chords,
    }


def _voicing(pcs: tuple[int, ...], low: int) -> list[int]:
    """The chord's pitch classes as MIDI notes in ``[low, low + 12)``, ascending."""
    return sorted(low + (pc - low) % 12 for pc in pcs)


def _melody(sp: _Part, n_bars: int, chord_at, scale: list[int], rng: np.random.Generator) -> list[tuple]:
    """Random-walk melody: ``(bar, step, steps, midi)``; chord tones on beats, scale tones between."""
    low, high = sp.register
    onsets = [(b, s) for b in range(n_bars) for s in range(0, 16, sp.grid) if rng.random() < sp.density]
    prev = (low + high) // 2
    notes = []
    for j, (b, s) in enumerate(onsets):
        pcs = chord_at(b, s) if s % 4 == 0 else scale
        cand = np.array([m for m in range(low, high + 1) if m % 12 in pcs])
        w = np.exp(-np.abs(cand - prev) / 2.5) * np.where(cand == prev, 0.5, 1.0)
        prev = int(rng.choice(cand, p=w / w.sum()))
        nxt = onsets[j + 1] if j + 1 < len(onsets) else (n_bars, 0)
        steps = min(16 * (nxt[0] - b) + nxt[1] - s, 8) if sp.legato else sp.grid
        notes.append((b, s, steps, prev))
    return notes


# ------------------------------------------------------------------------------------------ styles


def _vary(name: str, rng: np.random.Generator) -> _Timbre:
    """The timbre ``name`` with brightness, decays and vibrato perturbed at random."""
    tb = _TIMBRES[name]
    tb = replace(
        tb,
        slope=tb.slope * rng.uniform(0.85, 1.15),
        cutoff=tb.cutoff * rng.uniform(0.75, 1.3),
        decay=tb.decay * rng.uniform(0.8, 1.25),
        bright_decay=tb.bright_decay * rng.uniform(0.7, 1.4),
        vibrato=tb.vibrato * rng.uniform(0.7, 1.3),
    )
    if name == "voice":
        tb = replace(tb, formants=_VOWELS[rng.integers(len(_VOWELS))])
    return tb


def _rng(style: str, seed: int) -> np.random.Generator:
    """The generator of one excerpt: seeded by ``seed`` and the style, so styles do not share draws."""
    return np.random.default_rng([int(seed), STYLES.index(style)])


class _Arrangement:
    """One excerpt being arranged: its random tempo, groove and harmony, the stems and the record of choices.

    Every draw from ``rng`` happens in the order of the steps :func:`_render` calls (the same seed gives the same
    excerpt, so the order is part of the output).
    """

    def __init__(self, sp: _Style, n: int, sr: int, rng: np.random.Generator) -> None:
        self.sp, self.sr, self.rng = sp, sr, rng
        bpm = rng.uniform(*sp.tempo)
        self.step = 60.0 / bpm / 4
        self.offset = rng.uniform(0, 4 * self.step)  # the excerpt starts anywhere in the first beat
        self.n_bars = math.ceil((n / sr + self.offset) / (16 * self.step))
        self.swing = rng.uniform(*sp.swing)
        self.harm = _harmony(sp, rng)
        self.chord_beats = int(rng.choice(sp.chord_beats))
        self.first = int(rng.integers(4))
        self.stems = {name: np.zeros(n) for name in STEMS}
        self.params: dict = {
            "tempo": round(bpm, 3),
            "offset": round(self.offset, 4),
            "swing": round(self.swing, 4),
            **{k: self.harm[k] for k in ("key", "mode", "progression", "chords")},
            "chord_beats": self.chord_beats,
            "first_chord": self.first,
            "patterns": {},
            "drums": {},
            "timbres": {},
        }

    def when(self, bar: int, s: int) -> float:
        """Seconds from the excerpt start of step ``s`` of ``bar``; swing delays off-beat eighths."""
        swing = self.swing
        p = s % 4
        p = p * 2 * swing if p < 2 else 4 * swing + (p - 2) * (2 - 2 * swing)
        return (bar * 16 + s - s % 4 + p) * self.step - self.offset + self.sp.jitter * self.rng.standard_normal()

    def chord_at(self, bar: int, s: int) -> tuple[int, ...]:
        """Pitch classes of the chord sounding at step ``s`` of ``bar``."""
        return self.harm["pcs"][((bar * 16 + s) // (4 * self.chord_beats) + self.first) % 4]

    def held(self, bar: int, s: int, steps: int) -> int:
        """A note's length in steps, cut at the next chord change."""
        return min(steps, 4 * self.chord_beats - (bar * 16 + s) % (4 * self.chord_beats))

    def hits(self, stem: str, kind: str, pattern: tuple[int, ...], accent: float) -> None:
        """Place drum ``kind`` on the steps of ``pattern`` in every bar of ``stem``."""
        sr, rng = self.sr, self.rng
        sample, self.params["drums"][kind] = _drum(kind, sr, rng)
        for b in range(self.n_bars):
            for s in pattern:
                gain = (1.0 if s % 4 == 0 else accent) * 10 ** (rng.normal(0, 1.5) / 20)
                _add(self.stems[stem], gain * sample, round(self.when(b, s) * sr))

    def play(self, stem: str, timbre: str, notes: list[tuple]) -> None:
        """Render ``notes`` (bar, step, steps, midi) with a varied ``timbre`` into ``stem``."""
        sr, rng = self.sr, self.rng
        tb = _vary(timbre, rng)
        self.params["timbres"].setdefault(stem, {})[timbre] = {k: v for k, v in asdict(tb).items() if v}
        rendered: dict[tuple[int, int], np.ndarray] = {}  # a repeated note is replayed, like a sample
        for b, s, steps, midi in notes:
            if (midi, steps) not in rendered:
                rendered[midi, steps] = _note(tb, midi, steps * self.step, sr, rng)
            gain = 10 ** (rng.normal(0, 1.0) / 20)
            _add(self.stems[stem], gain * rendered[midi, steps], round(self.when(b, s) * sr))

    def pick(self, name: str, options: tuple) -> tuple:
        """One of ``options`` at random, recorded as pattern ``name``."""
        choice = options[self.rng.integers(len(options))]
        self.params["patterns"][name] = [list(e) if isinstance(e, tuple) else e for e in choice]
        return choice

    def drums(self) -> tuple[int, ...]:
        """Kick, snare (or clap) and hats; returns the kick pattern (empty without drums)."""
        sp = self.sp
        kick = self.pick("kick", sp.kick) if sp.kick else ()
        if kick:
            self.hits("kick", "kick", kick, 0.8)
        if sp.snare:
            self.hits("snare", "clap" if sp.clap else "snare", self.pick("snare", sp.snare), 0.35)
        if sp.hats_open and (open_ := self.pick("hats_open", sp.hats_open)):
            self.hits("hats", "open", open_, 1.0)
        if sp.hats_closed and (closed := self.pick("hats_closed", sp.hats_closed)):
            self.hits("hats", "closed", closed, 0.6)
        return kick

    def bass(self, kick: tuple[int, ...]) -> None:
        """The bass: the chord roots, in a rhythm of its own or following the kick."""
        sp = self.sp
        low = sp.bass.register[0]
        if sp.bass.rhythms:
            bass = self.pick("bass", sp.bass.rhythms)
        else:  # each kick starts a bass note that lasts until the next kick
            bass = tuple((s, min(e - s, 8)) for s, e in zip(kick, kick[1:] + (16 + kick[0],), strict=True))
            self.params["patterns"]["bass"] = [list(e) for e in bass]
        notes = [
            (b, s, self.held(b, s, k), _voicing(self.chord_at(b, s)[:1], low)[0])
            for b in range(self.n_bars)
            for s, k in bass
        ]
        self.play("bass", sp.bass.timbre, notes)

    def chords(self) -> None:
        """The chords in a bar rhythm (whole chords or arpeggio tones), and the sustained pad if the style has one."""
        sp = self.sp
        rhythm = self.pick("chords", sp.chords.rhythms)
        notes = []
        for b in range(self.n_bars):
            for s, steps, *tone in rhythm:
                k = self.held(b, s, steps)
                voiced = _voicing(self.chord_at(b, s), sp.chords.register[0])
                if tone:
                    notes.append((b, s, k, voiced[tone[0] % len(voiced)] + 12 * (tone[0] // len(voiced))))
                else:
                    notes.extend((b, s, k, m) for m in voiced)
        self.play("chords", sp.chords.timbre, notes)
        if sp.pad:
            span = 4 * self.chord_beats
            pad = [
                (c * span // 16, c * span % 16, span, m)
                for c in range(math.ceil(16 * self.n_bars / span))
                for m in _voicing(self.chord_at(0, c * span), sp.chords.register[0] - 7)
            ]
            self.play("chords", sp.pad, pad)

    def melody(self) -> None:
        """The melody: a random walk over chord and scale tones."""
        notes = _melody(self.sp.melody, self.n_bars, self.chord_at, self.harm["scale"], self.rng)
        self.play("melody", self.sp.melody.timbre, notes)

    def mix(self) -> None:
        """Reverb on the style's reverb stems, then a random level per stem (silence for stems it has none of)."""
        sp, rng, stems = self.sp, self.rng, self.stems
        t60, wet = rng.uniform(*sp.reverb[:2]), rng.uniform(*sp.reverb[2:])
        self.params["reverb"] = {"t60": round(t60, 3), "wet": round(wet, 3), "stems": list(sp.reverb_stems)}
        wet_stems = _reverb(np.stack([stems[name] for name in sp.reverb_stems]), self.sr, rng, t60, wet)
        stems.update(zip(sp.reverb_stems, wet_stems, strict=True))
        levels = {name: round(float(rng.uniform(*sp.levels[name])), 2) if name in sp.levels else None for name in STEMS}
        for name, db in levels.items():
            stems[name] *= 10 ** (db / 20) if db is not None else 0.0
        self.params["levels"] = levels


def _render(style: str, n: int, sr: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
    """Unscaled float64 stems of one excerpt of ``style`` and the record of its random choices."""
    band = _Arrangement(_SPECS[style], n, sr, rng)
    kick = band.drums()
    band.bass(kick)
    band.chords()
    band.melody()
    band.mix()
    return band.stems, band.params


def _finish(stems: dict[str, np.ndarray], sr: int, style: str, params: dict) -> Excerpt:
    """Scale all stems by one factor so the mix peaks at 0.9, cast to float32, sum them into the mix."""
    peak = float(np.max(np.abs(sum(stems.values()))))
    gain = _PEAK / peak if peak > 0 else 1.0
    out = {name: (stems[name] * gain).astype(np.float32) for name in STEMS}
    mix = np.zeros_like(out[STEMS[0]])
    for name in STEMS:
        mix += out[name]
    return Excerpt(mix=mix, stems=out, sr=sr, style=style, params={**params, "gain": round(gain, 6)})


# ------------------------------------------------------------------------------------------ public


def generate(style: str, *, seconds: float = 4.0, sr: int = 11025, seed: int = 0) -> Excerpt:
    """Render one excerpt of a style, with its stems.

    Parameters
    ----------
    style : str
        One of :data:`STYLES`: ``"ballad"`` (60-80 BPM, piano, string pad, sung melody, no drums),
        ``"dance"`` (120-130 BPM, four-on-the-floor kick, claps, off-beat open hats, saw bass, chord stabs,
        pluck arpeggio) or ``"hiphop"`` (85-95 BPM, swung boom-bap drums, sine sub bass, sparse keys).
    seconds : float, optional
        Duration; the excerpt has exactly ``round(seconds * sr)`` samples.
    sr : int, optional
        Sample rate in Hz, at least 4000. Nothing aliases at any rate; hats sit above ~0.33 ``sr``.
    seed : int, optional
        Non-negative seed of every random choice: the same arguments give bit-identical audio.

    Returns
    -------
    Excerpt
        ``mix`` of shape ``(n,)`` peaking at about 0.9, ``stems`` of shape ``(n,)`` each summing to it, and
        ``params`` (tempo, key, progression, patterns, levels in dB, timbres, seed...).

    Raises
    ------
    BadParameterError
        Unknown style, ``seconds <= 0``, ``sr < 4000`` or a negative seed.
    """
    _check_style(style)
    n = _check_common(seconds, sr, seed)
    stems, params = _render(style, n, int(sr), _rng(style, seed))
    return _finish(
        stems, int(sr), style, {"style": style, "seed": int(seed), "sr": int(sr), "seconds": float(seconds), **params}
    )


def generate_sequence(styles: list[str], *, seconds_each: float = 4.0, sr: int = 11025, seed: int = 0) -> Excerpt:
    """Render sections of several styles one after another, joined by short equal-power crossfades.

    Parameters
    ----------
    styles : list of str
        Style of each section, from :data:`STYLES`; repeats are allowed.
    seconds_each : float, optional
        Duration of each section; the result has ``round(len(styles) * seconds_each * sr)`` samples and
        section ``i`` is centred on ``[i * seconds_each, (i + 1) * seconds_each)``.
    sr : int, optional
        Sample rate in Hz, at least 4000.
    seed : int, optional
        Non-negative seed; each section gets its own seed drawn from it (recorded in ``params``).

    Returns
    -------
    Excerpt
        ``style == "mix"``; ``params["sections"]`` lists each section's style, ``start`` and ``end``
        (seconds), seed and its own ``params``; ``params["boundaries"]`` are the style-change times (s).

    Raises
    ------
    BadParameterError
        Empty or unknown styles, ``seconds_each <= 0``, ``sr < 4000`` or a negative seed.
    """
    if isinstance(styles, str) or not styles:
        raise BadParameterError(f"styles must be a non-empty list of style names from {', '.join(STYLES)}")
    for style in styles:
        _check_style(style)
    _check_common(seconds_each, sr, seed, "seconds_each")
    sr = int(sr)
    n = round(len(styles) * seconds_each * sr)
    edges = [round(i * seconds_each * sr) for i in range(len(styles) + 1)]
    half = min(round(0.1 * sr), (edges[1] - edges[0]) // 4)  # crossfades last 2 * half samples
    seeds = [int(s) for s in np.random.default_rng(int(seed)).integers(0, 2**31, size=len(styles))]
    stems = {name: np.zeros(n) for name in STEMS}
    sections = []
    for i, (style, sub_seed) in enumerate(zip(styles, seeds, strict=True)):
        a, b = max(edges[i] - half, 0), min(edges[i + 1] + half, n)
        sub, sub_params = _render(style, b - a, sr, _rng(style, sub_seed))
        fade = np.ones(b - a)
        x = (np.arange(2 * half) + 0.5) / (2 * half) * (np.pi / 2)
        if i > 0:
            fade[: 2 * half] = np.sin(x)
        if i < len(styles) - 1:
            fade[fade.size - 2 * half :] = np.cos(x)
        peak = float(np.max(np.abs(sum(sub.values()))))  # sections are peak-normalised alike
        for name in STEMS:
            stems[name][a:b] += sub[name] * fade * (_PEAK / peak if peak > 0 else 1.0)
        sections.append(
            {"style": style, "start": edges[i] / sr, "end": edges[i + 1] / sr, "seed": sub_seed, "params": sub_params}
        )
    params = {
        "style": "mix",
        "seed": int(seed),
        "sr": sr,
        "seconds": n / sr,
        "styles": list(styles),
        "boundaries": [e / sr for e in edges[1:-1]],
        "crossfade": 2 * half / sr,
        "sections": sections,
    }
    return _finish(stems, sr, "mix", params)


def tone(instrument: str, midi_notes: list[int], *, seconds: float = 2.0, sr: int = 11025) -> np.ndarray:
    """Render one sustained chord (or note) with a named timbre, e.g. to test timbre invariance.

    Parameters
    ----------
    instrument : str
        One of :data:`INSTRUMENTS`: ``"sine"``, ``"strings"``, ``"acoustic_guitar"``, ``"saxophone"``,
        ``"piano"``, ``"electric_guitar"`` and the styles' voices (``"voice"``, ``"saw_bass"``, ...).
    midi_notes : list of int
        MIDI note numbers played together, e.g. ``[60 + i for i in CHORDS["major"]]``; each must have its
        fundamental below 0.45 ``sr``.
    seconds : float, optional
        Duration, release included; the result has ``round(seconds * sr)`` samples.
    sr : int, optional
        Sample rate in Hz, at least 4000.

    Returns
    -------
    numpy.ndarray
        Shape ``(round(seconds * sr),)``, float32, peak 0.9. Deterministic (fixed internal seed).

    Raises
    ------
    BadParameterError
        Unknown instrument, empty or out-of-range notes, ``seconds <= 0`` or ``sr < 4000``.
    """
    if instrument not in _TIMBRES:
        raise BadParameterError(f"unknown instrument {instrument!r}; choose one of {', '.join(INSTRUMENTS)}")
    n = _check_common(seconds, sr, 0)
    notes = list(midi_notes) if not isinstance(midi_notes, int | np.integer) else [midi_notes]
    nyq = 0.45 * int(sr)
    if not notes or any(not 0 <= m <= 127 or 440.0 * 2 ** ((m - 69) / 12) >= nyq for m in notes):
        raise BadParameterError(
            f"midi_notes must be a non-empty list of MIDI numbers 0-127 whose pitch is "
            f"below {nyq:.0f} Hz at sr={sr}, got {midi_notes!r}"
        )
    tb = _TIMBRES[instrument]
    rng = np.random.default_rng(0)
    out = np.zeros(n)
    for m in notes:
        _add(out, _note(tb, m, max(seconds - tb.release, 0.0), int(sr), rng)[:n], 0)
    return (out * (_PEAK / np.max(np.abs(out)))).astype(np.float32)
