"""The model signals of the attribute study (Choi, Fazekas & Sandler 2016, Sec. 4.2, Fig. 9): the design.

A *model signal* is one harmonic instrument playing one chord type in one key. :func:`model_signals` synthesises
every instrument x chord type x key of a design with :func:`auralise.demo.synth.tone`; :func:`attribute_pairs`
lists the signal pairs that differ in exactly one attribute; :func:`note_to_midi` and :func:`chord_positions` spell
keys and voicings. :mod:`auralise.studies.attributes` runs the study on them.

The chord sequence of a model signal (Fig. 9)
---------------------------------------------
Fig. 9 of the paper shows a model signal in G4 played by a pure sine: "six major positions (first half) and six
minor positions (second half)". A *position* is read here as a voicing of the chord moved up by one inversion:
position ``p`` of a chord with ``n`` notes raises its lowest ``p mod n`` notes by ``p // n + 1`` octaves and the
others by ``p // n`` octaves, so the six positions of a major triad on G4 are root position, first and second
inversion, and the same three one octave higher::

    G4 B4 D5 | B4 D5 G5 | D5 G5 B5 | G5 B5 D6 | B5 D6 G6 | D6 G6 B6

Each position is one note-on of ``seconds / 6`` (attack, sustain, release), so the voicing climbs in six equal
steps over the signal (:func:`chord_positions` gives the offsets). Deviation from the paper: the original
template files (``key_instrument_chord1_chord2.wav`` in Choi's Auralisation repository) hold two chord types per
file, six positions each; here every signal plays *one* chord type in six positions over its whole length, so that
it has exactly one value of each attribute (as the paper's count of 8 chord types x 4 keys x 7 instruments = 224
signals implies). Fig. 9's example is the G4 sine ``major`` signal followed by the ``minor`` one.


Examples
--------
>>> sigs = model_signals(instruments=["sine"], chords=["major"], keys=["G4"], seconds=1.0)
>>> len(sigs), sigs[0].voicings[0]
(1, (67, 71, 74))
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from auralise.errors import BadParameterError, check_choice

__all__ = [
    "ATTRIBUTES",
    "DEFAULT_CHORDS",
    "DEFAULT_INSTRUMENTS",
    "DEFAULT_KEYS",
    "POSITIONS",
    "Signal",
    "attribute_pairs",
    "chord_positions",
    "model_signals",
    "note_to_midi",
]

ATTRIBUTES: tuple[str, ...] = ("instrument", "chord", "key")
"""The attributes, in the order of the design's axes (signals vary fastest in key)."""
DEFAULT_INSTRUMENTS: tuple[str, ...] = ("sine", "strings", "acoustic_guitar", "saxophone", "piano", "electric_guitar")
"""Six of the paper's seven instruments; the seventh, an electric piano, has no timbre of its own in
:mod:`auralise.demo.synth` (its ``"keys"`` voice is the nearest: pass it to get the paper's 7 x 8 x 4 = 224 signals)."""
DEFAULT_CHORDS: tuple[str, ...] = ("interval", "major", "minor", "sus4", "dom7", "maj7", "min7", "dim")
"""The paper's eight chord types, named as in :data:`auralise.demo.synth.CHORDS` (``interval`` is a fifth)."""
DEFAULT_KEYS: tuple[str, ...] = ("Eb2", "Bb2", "A3", "G4")
"""The paper's four keys (the root of every position's chord), scientific pitch notation (C4 = MIDI 60)."""
POSITIONS = 6
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])([#b♯♭]*)(-?\d+)\s*$")
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True, eq=False)
class Signal:
    """One model signal: an instrument playing one chord type in one key, in six positions.

    Attributes
    ----------
    instrument : str
        Timbre name from :data:`auralise.demo.synth.INSTRUMENTS`.
    chord : str
        Chord type from :data:`auralise.demo.synth.CHORDS`.
    key : str
        The key as given (e.g. ``"Eb2"``); :attr:`root` is its MIDI number.
    root : int
        MIDI number of the key, the root of position 0.
    voicings : tuple of tuple of int
        MIDI notes of each position, in time order (see :func:`chord_positions`).
    y : numpy.ndarray
        Shape ``(round(seconds * sr),)``, float32, every position peaking at 0.9.
    sr : int
        Sample rate in Hz.
    """

    instrument: str
    chord: str
    key: str
    root: int
    voicings: tuple[tuple[int, ...], ...]
    y: np.ndarray
    sr: int

    @property
    def attributes(self) -> tuple[str, str, str]:
        """``(instrument, chord, key)``, in the order of :data:`ATTRIBUTES`."""
        return self.instrument, self.chord, self.key


def note_to_midi(note: str | int) -> int:
    """MIDI number of a note name in scientific pitch notation (``"Eb2"`` -> 39, ``"A4"`` -> 69) or of an int.

    Parameters
    ----------
    note : str or int
        Letter, any number of sharps (``#``) or flats (``b``), octave (C4 = 60); or a MIDI number 0-127.

    Returns
    -------
    int

    Raises
    ------
    BadParameterError
        Not a note name, or outside MIDI 0-127.
    """
    if isinstance(note, bool):
        raise BadParameterError(f"not a note: {note!r}; give a name such as 'Eb2' or a MIDI number")
    if isinstance(note, int | np.integer):
        midi = int(note)
    else:
        m = _NOTE_RE.match(str(note))
        if m is None:
            raise BadParameterError(f"not a note name: {note!r}; use a letter, sharps/flats and octave, e.g. 'Eb2'")
        letter, accidentals, octave = m.groups()
        shift = sum(1 if a in "#♯" else -1 for a in accidentals)
        midi = _STEPS[letter.lower()] + shift + 12 * (int(octave) + 1)
    if not 0 <= midi <= 127:
        raise BadParameterError(f"note {note!r} is MIDI {midi}, outside 0-127")
    return midi


def chord_positions(chord: str | Sequence[int], positions: int = POSITIONS) -> list[tuple[int, ...]]:
    """Semitone offsets from the root of each position of a chord: successive inversions climbing.

    Position ``p`` of a chord with ``n`` notes ``c_0 < ... < c_{n-1}`` raises ``c_j`` by ``p // n + 1`` octaves for
    ``j < p mod n`` and by ``p // n`` octaves otherwise: root position, first inversion, ..., then the same an
    octave higher.

    Parameters
    ----------
    chord : str or sequence of int
        A name from :data:`auralise.demo.synth.CHORDS` or semitone offsets from the root, e.g. ``(0, 4, 7)``.
    positions : int
        How many positions.

    Returns
    -------
    list of tuple of int
        ``positions`` tuples of offsets, each sorted.

    Examples
    --------
    >>> chord_positions("major", 4)
    [(0, 4, 7), (4, 7, 12), (7, 12, 16), (12, 16, 19)]
    """
    from auralise.demo.synth import CHORDS

    if isinstance(chord, str):
        intervals = CHORDS.get(chord)
        if intervals is None:
            raise BadParameterError(f"unknown chord {chord!r}; choose one of {', '.join(CHORDS)}")
    else:
        intervals = tuple(int(i) for i in chord)
    if not intervals or sorted(set(intervals)) != list(intervals):
        raise BadParameterError(f"a chord is a non-empty increasing tuple of semitone offsets, got {chord!r}")
    if isinstance(positions, bool) or not isinstance(positions, int | np.integer) or positions < 1:
        raise BadParameterError(f"positions must be a positive integer, got {positions!r}")
    n = len(intervals)
    out = []
    for p in range(int(positions)):
        q, r = divmod(p, n)
        out.append(tuple(sorted(iv + 12 * (q + (j < r)) for j, iv in enumerate(intervals))))
    return out


def _names(values: Sequence[str] | str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
        raise BadParameterError(f"{what}s must be a non-empty list of names, got {values!r}")
    for v in values:
        check_choice(v, allowed, what)
    return tuple(values)


def _design(
    instruments: Sequence[str], chords: Sequence[str], keys: Sequence[str | int]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    from auralise.demo.synth import CHORDS, INSTRUMENTS

    instruments = _names(instruments, INSTRUMENTS, "instrument")
    chords = _names(chords, tuple(CHORDS), "chord")
    if isinstance(keys, str) or not isinstance(keys, Sequence) or len(keys) == 0:
        raise BadParameterError(f"keys must be a non-empty list of note names such as 'Eb2', got {keys!r}")
    roots = tuple(note_to_midi(k) for k in keys)
    return instruments, chords, tuple(str(k) for k in keys), roots


def model_signals(
    *,
    instruments: Sequence[str] = DEFAULT_INSTRUMENTS,
    chords: Sequence[str] = DEFAULT_CHORDS,
    keys: Sequence[str | int] = DEFAULT_KEYS,
    sr: int = 11025,
    seconds: float = 4.0,
    positions: int = POSITIONS,
) -> list[Signal]:
    """Synthesise the model signals of Choi et al. (2016), Sec. 4.2: every instrument x chord type x key.

    Each signal is one instrument playing one chord type rooted on the key in ``positions`` successive positions
    (see :func:`chord_positions` and the module notes on Fig. 9), each a separate note-on of ``seconds /
    positions`` rendered by :func:`auralise.demo.synth.tone`. The paper has seven instruments (pure sine, strings,
    acoustic guitar, saxophone, piano, electric guitar and an electric piano); the defaults are the six that
    :mod:`auralise.demo.synth` has a timbre for. Repeated values are allowed (they give identical signals, whose
    correlation is 1: a sanity check).

    Parameters
    ----------
    instruments : sequence of str
        Names from :data:`auralise.demo.synth.INSTRUMENTS`.
    chords : sequence of str
        Names from :data:`auralise.demo.synth.CHORDS`.
    keys : sequence of str or int
        Roots as note names (``"Eb2"``) or MIDI numbers.
    sr : int
        Sample rate in Hz (the model's).
    seconds : float
        Duration of each signal.
    positions : int
        Positions per signal (6 in the paper).

    Returns
    -------
    list of Signal
        ``len(instruments) * len(chords) * len(keys)`` signals in ``itertools.product(instruments, chords, keys)``
        order (key varies fastest); each ``y`` has shape ``(round(seconds * sr),)``.

    Raises
    ------
    BadParameterError
        Unknown instrument, chord or note; a note above 0.45 ``sr``; a position shorter than one sample.

    Examples
    --------
    >>> sigs = model_signals(instruments=["sine"], chords=["major", "minor"], keys=["G4"], seconds=1.0)
    >>> [(s.chord, s.voicings[1]) for s in sigs]
    [('major', (71, 74, 79)), ('minor', (70, 74, 79))]
    """
    from auralise.demo.synth import tone

    instruments, chords, keys, roots = _design(instruments, chords, keys)
    if not isinstance(seconds, int | float | np.number) or not math.isfinite(seconds) or seconds <= 0:
        raise BadParameterError(f"seconds must be a positive number, got {seconds!r}")
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise BadParameterError(f"sr must be a positive integer, got {sr!r}")
    offsets = {c: chord_positions(c, positions) for c in chords}
    n = round(seconds * sr)
    edges = [round(i * n / positions) for i in range(positions + 1)]
    if min(b - a for a, b in itertools.pairwise(edges)) < 1:
        raise BadParameterError(f"{positions} positions in {seconds} s leave less than one sample each")
    cache: dict[tuple[str, tuple[int, ...], int], np.ndarray] = {}  # repeated values render once
    out = []
    for instrument, chord, (key, root) in itertools.product(instruments, chords, zip(keys, roots)):
        voicings = tuple(tuple(root + o for o in pos) for pos in offsets[chord])
        y = np.empty(n, dtype=np.float32)
        for (a, b), notes in zip(itertools.pairwise(edges), voicings):
            if (instrument, notes, b - a) not in cache:
                cache[instrument, notes, b - a] = tone(instrument, list(notes), seconds=(b - a) / sr, sr=int(sr))
            y[a:b] = cache[instrument, notes, b - a]
        out.append(Signal(instrument, chord, key, root, voicings, y, int(sr)))
    return out


def attribute_pairs(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Index pairs of the signals of a design that differ in exactly one attribute.

    Parameters
    ----------
    shape : (int, int, int)
        ``(len(instruments), len(chords), len(keys))``; signal ``(i, c, k)`` has index ``(i * n_c + c) * n_k + k``
        (the order of :func:`model_signals`). Attributes are compared by position in their lists.

    Returns
    -------
    dict of str to numpy.ndarray
        For each of :data:`ATTRIBUTES`, an int array of shape ``(P, 2)`` of signal indices ``a < b``; e.g. for
        ``"key"``, ``P = n_i * n_c * n_k * (n_k - 1) / 2``. Order: the other attributes' grid, then pairs
        ``(u, v)`` with ``u < v`` in row-major order.
    """
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in shape):
        raise BadParameterError(f"shape must be three positive integers (instruments, chords, keys), got {shape!r}")
    index = np.arange(int(np.prod(shape))).reshape(shape)
    pairs = {}
    for axis, name in enumerate(ATTRIBUTES):
        n = shape[axis]
        u, v = np.triu_indices(n, 1)
        rows = np.moveaxis(index, axis, -1).reshape(-1, n)
        pairs[name] = np.stack([rows[:, u].reshape(-1), rows[:, v].reshape(-1)], axis=1)
    return pairs
