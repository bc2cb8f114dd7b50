"""How robust are a model's features to key, chord and instrument? (Choi, Fazekas & Sandler 2016, Sec. 4.2, Fig. 10)

Choi et al. feed *model signals* -- one harmonic instrument playing one chord type in one key -- to the CNN,
deconvolve every feature of every convolution layer, and correlate the deconvolved spectrograms of every pair of
signals that differ in exactly one attribute (only the key, only the chord type or only the instrument). A high
average correlation in a layer means that layer's features do not care about that attribute.

- :func:`model_signals` synthesises the design (``auralise.synth.tone``): instruments x chord types x keys.
- :func:`attribute_study` deconvolves all features of all layers for every signal and returns an
  :class:`AttributeTable`: per layer and attribute, the mean and standard deviation of the Pearson correlations
  over all (pair, feature) values, with counts.
- :func:`attributes_figure` draws Fig. 10: average correlation against layer, one line per attribute, with
  standard deviations as error bars.

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

Example
-------
>>> import auralise
>>> from auralise.attributes import attribute_study, attributes_figure
>>> model = auralise.load_model("models/choi2016-synth.pt")                 # doctest: +SKIP
>>> table = attribute_study(model)                                         # doctest: +SKIP
>>> table.to_csv("attributes.csv")                                         # doctest: +SKIP
>>> auralise.display.save_figure(attributes_figure(table), "fig10.png")    # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.errors import BadParameterError, check_choice
from auralise.memory import reuse_freed_memory

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from matplotlib.figure import Figure

    from auralise.modelfile import LoadedModel

__all__ = [
    "ATTRIBUTES",
    "DEFAULT_CHORDS",
    "DEFAULT_INSTRUMENTS",
    "DEFAULT_KEYS",
    "AttributeRow",
    "AttributeTable",
    "Signal",
    "attribute_pairs",
    "attribute_study",
    "attributes_figure",
    "chord_positions",
    "model_signals",
    "note_to_midi",
]

ATTRIBUTES: tuple[str, ...] = ("instrument", "chord", "key")
"""The attributes, in the order of the design's axes (signals vary fastest in key)."""
DEFAULT_INSTRUMENTS: tuple[str, ...] = ("sine", "strings", "acoustic_guitar", "saxophone", "piano", "electric_guitar")
"""Six of the paper's seven instruments; the seventh, an electric piano, has no timbre of its own in
:mod:`auralise.synth` (its ``"keys"`` voice is the nearest: pass it to get the paper's 7 x 8 x 4 = 224 signals)."""
DEFAULT_CHORDS: tuple[str, ...] = ("interval", "major", "minor", "sus4", "dom7", "maj7", "min7", "dim")
"""The paper's eight chord types, named as in :data:`auralise.synth.CHORDS` (``interval`` is a fifth)."""
DEFAULT_KEYS: tuple[str, ...] = ("Eb2", "Bb2", "A3", "G4")
"""The paper's four keys (the root of every position's chord), scientific pitch notation (C4 = MIDI 60)."""
POSITIONS = 6
_CSV_FIELDS = ("layer", "attribute", "mean", "std", "n_pairs", "n_skipped")
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])([#b♯♭]*)(-?\d+)\s*$")
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_CONSTANT = 1e-6  # a D whose centred norm is below this fraction of its norm is constant: correlation undefined


# ------------------------------------------------------------------------------------------------- signals


@dataclass(frozen=True, eq=False)
class Signal:
    """One model signal: an instrument playing one chord type in one key, in six positions.

    Attributes
    ----------
    instrument : str
        Timbre name from :data:`auralise.synth.INSTRUMENTS`.
    chord : str
        Chord type from :data:`auralise.synth.CHORDS`.
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
        A name from :data:`auralise.synth.CHORDS` or semitone offsets from the root, e.g. ``(0, 4, 7)``.
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
    from auralise.synth import CHORDS

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
    from auralise.synth import CHORDS, INSTRUMENTS

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
    positions`` rendered by :func:`auralise.synth.tone`. The paper has seven instruments (pure sine, strings,
    acoustic guitar, saxophone, piano, electric guitar and an electric piano); the defaults are the six that
    :mod:`auralise.synth` has a timbre for. Repeated values are allowed (they give identical signals, whose
    correlation is 1: a sanity check).

    Parameters
    ----------
    instruments : sequence of str
        Names from :data:`auralise.synth.INSTRUMENTS`.
    chords : sequence of str
        Names from :data:`auralise.synth.CHORDS`.
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
    from auralise.synth import tone

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


# ------------------------------------------------------------------------------------------------- table


@dataclass(frozen=True)
class AttributeRow:
    """Correlation statistics of one (layer, attribute): over all (signal pair, feature) values.

    ``mean`` and ``std`` (population, ``ddof=0``) of the Pearson correlations; ``n_pairs`` how many values they
    summarise; ``n_skipped`` how many (pair, feature) values were left out because a deconvolved spectrogram of the
    pair is constant (all zero: a silent feature), which makes the correlation undefined. NaN when ``n_pairs`` is 0.
    """

    layer: int
    attribute: str
    mean: float
    std: float
    n_pairs: int
    n_skipped: int


@dataclass
class AttributeTable:
    """Result of :func:`attribute_study`: one :class:`AttributeRow` per (layer, attribute).

    Attributes
    ----------
    rows : list of AttributeRow
        Ordered by layer, then attribute in :data:`ATTRIBUTES` order.
    correlations : dict of (int, str) to numpy.ndarray
        For each (layer, attribute), shape ``(P, K)`` float32: the correlation of every signal pair of
        ``pairs[attribute]`` for each of the layer's ``K`` features; NaN where skipped. Empty after :meth:`from_csv`.
    pairs : dict of str to numpy.ndarray
        Signal index pairs per attribute, shape ``(P, 2)`` (:func:`attribute_pairs`).
    meta : dict
        Design and run facts: instruments, chords, keys, seconds, method, tap, model, elapsed seconds...
    """

    rows: list[AttributeRow]
    correlations: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False)
    pairs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    meta: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        """The layers with rows, ascending."""
        return sorted({r.layer for r in self.rows})

    @property
    def attributes(self) -> list[str]:
        """The attributes with rows, in :data:`ATTRIBUTES` order (others after, as they come)."""
        seen = list(dict.fromkeys(r.attribute for r in self.rows))
        return [a for a in ATTRIBUTES if a in seen] + [a for a in seen if a not in ATTRIBUTES]

    def row(self, layer: int, attribute: str) -> AttributeRow:
        """The row of ``(layer, attribute)``; KeyError if there is none."""
        for r in self.rows:
            if r.layer == layer and r.attribute == attribute:
                return r
        raise KeyError((layer, attribute))

    def as_rows(self) -> list[dict[str, Any]]:
        """The rows as dicts with keys ``layer, attribute, mean, std, n_pairs, n_skipped``."""
        return [{k: getattr(r, k) for k in _CSV_FIELDS} for r in self.rows]

    def to_csv(self, path_or_buffer: str | os.PathLike | io.TextIOBase) -> None:
        """Write the rows as CSV (header ``layer,attribute,mean,std,n_pairs,n_skipped``; floats exact).

        Parameters
        ----------
        path_or_buffer : str, PathLike or text file object
            A path is written atomically.
        """
        if isinstance(path_or_buffer, str | os.PathLike):
            from auralise.audio import atomic_path

            with atomic_path(Path(path_or_buffer)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
                self._write(fh)
        else:
            self._write(path_or_buffer)

    def _write(self, fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=_CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.as_rows():
            writer.writerow({k: repr(float(v)) if k in ("mean", "std") else v for k, v in row.items()})

    @classmethod
    def from_csv(cls, path_or_buffer: str | os.PathLike | io.TextIOBase) -> AttributeTable:
        """Read a table written by :meth:`to_csv` (rows only: no correlations, pairs or meta)."""
        if isinstance(path_or_buffer, str | os.PathLike):
            with open(path_or_buffer, newline="", encoding="utf-8") as fh:
                return cls._read(fh)
        return cls._read(path_or_buffer)

    @classmethod
    def _read(cls, fh) -> AttributeTable:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or tuple(reader.fieldnames) != _CSV_FIELDS:
            raise BadParameterError(f"not an attribute table: expected the CSV header {','.join(_CSV_FIELDS)}")
        return cls([_row_from_strings(d) for d in reader])

    def __str__(self) -> str:
        lines = [f"{'layer':>5}  {'attribute':<10} {'mean':>7} {'std':>7} {'n_pairs':>8} {'n_skipped':>9}"]
        for r in self.rows:
            lines.append(
                f"{r.layer:>5}  {r.attribute:<10} {r.mean:>7.3f} {r.std:>7.3f} {r.n_pairs:>8d} {r.n_skipped:>9d}"
            )
        return "\n".join(lines)


def _row_from_strings(d: dict[str, str]) -> AttributeRow:
    try:
        return AttributeRow(
            layer=int(d["layer"]),
            attribute=d["attribute"],
            mean=float(d["mean"]),
            std=float(d["std"]),
            n_pairs=int(d["n_pairs"]),
            n_skipped=int(d["n_skipped"]),
        )
    except (TypeError, ValueError) as exc:
        raise BadParameterError(f"malformed attribute table row {d!r}: {exc}") from exc


# ------------------------------------------------------------------------------------------------- study


def _normalise(D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``D`` (K, N) centred and scaled to unit norm (float32), and which rows are not constant (K,)."""
    import torch

    D = D.reshape(D.shape[0], -1).to(torch.float64)
    centred = D - D.mean(dim=1, keepdim=True)
    norm = torch.linalg.vector_norm(centred, dim=1)
    valid = norm > _CONSTANT * torch.linalg.vector_norm(D, dim=1)
    z = centred / torch.where(valid, norm, torch.ones_like(norm)).unsqueeze(1)
    z[~valid] = 0.0
    return z.to(torch.float32), valid


def _pair_correlations(z: torch.Tensor, valid: torch.Tensor, axis: int) -> torch.Tensor:
    """Correlations of the pairs along ``axis`` of one feature's normalised D's.

    ``z`` (n_i, n_c, n_k, N) unit rows, ``valid`` (n_i, n_c, n_k); returns (P,) in :func:`attribute_pairs` order,
    NaN where one of the pair is constant.
    """
    import torch

    n = z.shape[axis]
    u, v = torch.triu_indices(n, n, 1)
    moved = z.movedim(axis, -2)
    # float64 products: a float32 matmul sums its N terms one after another (errors of 1e-5 at N = 44 461)
    rows = torch.empty(moved.shape, dtype=torch.float64).copy_(moved).reshape(-1, n, z.shape[-1])
    gram = torch.bmm(rows, rows.transpose(1, 2))
    ok = valid.movedim(axis, -1).reshape(-1, n)
    r = gram[:, u, v].clamp(-1.0, 1.0)
    return torch.where(ok[:, u] & ok[:, v], r, torch.full_like(r, float("nan"))).reshape(-1)


def attribute_study(
    model: LoadedModel,
    *,
    instruments: Sequence[str] = DEFAULT_INSTRUMENTS,
    chords: Sequence[str] = DEFAULT_CHORDS,
    keys: Sequence[str | int] = DEFAULT_KEYS,
    seconds: float | None = None,
    positions: int = POSITIONS,
    layers: Sequence[int | str] | None = None,
    method: str = "deconvnet",
    tap: str = "block",
    memory_budget: int = 2 << 30,
    progress: Callable[[int, int], None] | None = None,
) -> AttributeTable:
    """Correlate deconvolved spectrograms of model signals that differ in only key, only chord or only instrument.

    For every signal of :func:`model_signals`: STFT, model input ``S`` (1, *S_shape), one forward pass, and the
    deconvolution (whole-map selection) of every feature of every conv layer, ``D`` of shape (K, *S_shape). Then,
    per layer, feature and attribute, the Pearson correlation of the flattened ``D``'s of every pair of signals
    differing in exactly that attribute (:func:`attribute_pairs`). A pair where one ``D`` is constant (all zero: the
    feature is silent on that signal) has no correlation; it is skipped and counted. The correlations are exact:
    each ``D`` is centred and scaled to unit norm (in float64, kept in float32) and kept until the last signal of
    its pass is deconvolved, then the pairs are float64 dot products. When all the ``D``'s do not fit
    ``memory_budget``, the features are split into passes over the signals (a forward pass costs little next to
    the deconvolutions).

    Parameters
    ----------
    model : LoadedModel
        From :func:`auralise.load_model`: the module and its front-end.
    instruments, chords, keys : sequences
        The design (see :func:`model_signals`); defaults: 6 instruments x 8 chord types x 4 keys = 192 signals.
    seconds : float, optional
        Signal duration; default the model's patch length (``frontend.patch_seconds``, else 4 s). It may not be
        shorter than the patch, nor than the deepest studied layer's receptive field.
    positions : int
        Chord positions per signal (6, Fig. 9).
    layers : sequence of int or str, optional
        Conv layers to study (numbers or module paths); default all of them.
    method : {"deconvnet", "guided", "gradient"}
        Backward rule (the paper's is the deconvnet).
    tap : {"block", "activation", "conv"}
        Tap point of each layer.
    memory_budget : int
        Bytes for the normalised ``D``'s kept between signals (4 bytes x frames x bins per signal and feature:
        2.2 GB for 192 signals x 64 features of 257 x 173). The projector has its own 1 GiB budget.
    progress : callable, optional
        Called as ``progress(done, total)`` after each signal of each pass.

    Returns
    -------
    AttributeTable
        Rows per (layer, attribute); ``correlations`` (P, K) per (layer, attribute), ``pairs``, and ``meta``
        (design, method, tap, seconds, ``elapsed_s``...).

    Raises
    ------
    BadParameterError
        Unknown instrument, chord, key, layer, method or tap; signals shorter than the patch or a receptive field;
        a budget too small for one feature.

    Notes
    -----
    Cost: one deconvolution of every feature per signal, in batches, dominated by the transposed convolutions of
    the lower layers. The shipped ``choi2016-synth`` (5 x 64 features, 4-s signals of 257 x 173) with the default
    192 signals took 415-431 s on a 2-core x86-64 CPU (torch 2.13), about 2.2 GB for the kept ``D``'s (6 passes at
    the default budget). The layers' time geometry is measured once (``make_projector`` on the first signal) and
    reused for every signal, which all have the same shape. On Linux/glibc the study keeps freed memory for reuse
    while it runs (see :func:`auralise.memory.reuse_freed_memory`); without that it is about twice slower.
    """
    import torch

    from auralise.deconv import make_projector
    from auralise.layers import LAYOUT_AXES, TAPS, discover
    from auralise.rules import RULES

    check_choice(method, RULES, "method")
    check_choice(tap, TAPS, "tap point")
    module, fe = model.module, model.frontend
    instruments, chords, keys, _ = _design(instruments, chords, keys)
    patch = fe.patch_seconds
    if seconds is None:
        seconds = patch or 4.0
    if not isinstance(seconds, int | float | np.number) or not math.isfinite(seconds) or seconds <= 0:
        raise BadParameterError(f"seconds must be a positive number, got {seconds!r}")
    if patch and seconds < patch:
        raise BadParameterError(
            f"signals of {seconds} s are shorter than the model's {patch} s patch; use seconds >= {patch}"
        )
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget <= 0:
        raise BadParameterError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
    start = time.perf_counter()
    example = model.example_input()
    graph = discover(module, example)
    numbers = [graph.layer(spec).number for spec in (layers if layers is not None else range(1, len(graph.layers) + 1))]
    numbers = sorted(set(numbers))
    if not numbers:
        raise BadParameterError("layers is empty; give at least one conv layer (or None for all)")

    signals = model_signals(
        instruments=instruments, chords=chords, keys=keys, sr=fe.sr, seconds=float(seconds), positions=positions
    )
    inputs = [fe.analyse(s.y)[1].to(example.device) for s in signals]
    shape = (len(instruments), len(chords), len(keys))
    n_signals, n_values = len(signals), inputs[0][0].numel()
    time_axis = LAYOUT_AXES[fe.layout][0]
    n_frames = inputs[0].shape[time_axis]

    proto = make_projector(
        module, inputs[0], numbers, method=method, select="map", tap=tap, example=example, layout=fe.layout
    )
    for n in numbers:
        geo = proto.geometry[n]
        if geo is not None and geo.frames > n_frames:
            raise BadParameterError(
                f"signals of {seconds} s ({n_frames} frames) are shorter than layer {n}'s receptive field "
                f"({geo.frames} frames); use longer signals"
            )
    channels = {n: proto.layers[n].channels for n in numbers}
    items = [(n, f) for n in numbers for f in range(channels[n])]
    per_feature = n_signals * n_values * 4
    cap = min(len(items), memory_budget // per_feature)
    if cap < 1:
        raise BadParameterError(
            f"memory_budget of {memory_budget} bytes cannot hold one feature's {n_signals} spectrograms "
            f"({per_feature} bytes); raise it"
        )
    passes = [items[i : i + cap] for i in range(0, len(items), cap)]
    pairs = attribute_pairs(shape)
    corr = {(n, a): np.full((len(pairs[a]), channels[n]), np.nan, np.float32) for n in numbers for a in ATTRIBUTES}
    total, done = len(passes) * n_signals, 0

    with reuse_freed_memory(), torch.no_grad():
        Z = torch.empty((cap, *shape, n_values), dtype=torch.float32)
        valid = torch.zeros((cap, *shape), dtype=torch.bool)
        for chunk in passes:
            groups: dict[int, list[int]] = {}
            for n, f in chunk:
                groups.setdefault(n, []).append(f)
            offsets = dict(zip(groups, itertools.accumulate([0, *(len(f) for f in groups.values())])))
            for s, S in enumerate(inputs):
                i, c, k = np.unravel_index(s, shape)
                projector = proto.with_input(S, list(groups))
                for n, feats, D in projector.project(list(groups.items())):
                    z, ok = _normalise(D)
                    Z[offsets[n] : offsets[n] + len(feats), i, c, k] = z.cpu()
                    valid[offsets[n] : offsets[n] + len(feats), i, c, k] = ok.cpu()
                    del D, z
                del projector
                done += 1
                if progress is not None:
                    progress(done, total)
            for j, (n, f) in enumerate(chunk):
                for axis, attr in enumerate(ATTRIBUTES):
                    corr[n, attr][:, f] = _pair_correlations(Z[j], valid[j], axis).numpy()
        del Z, valid

    rows = []
    for n in numbers:
        for attr in ATTRIBUTES:
            values = corr[n, attr]
            defined = values[~np.isnan(values)].astype(np.float64)
            mean = float(defined.mean()) if defined.size else math.nan
            std = float(defined.std()) if defined.size else math.nan
            rows.append(AttributeRow(n, attr, mean, std, int(defined.size), int(values.size - defined.size)))
    meta = {
        "instruments": list(instruments),
        "chords": list(chords),
        "keys": list(keys),
        "n_signals": n_signals,
        "seconds": float(seconds),
        "positions": int(positions),
        "sr": fe.sr,
        "frames": int(n_frames),
        "method": method,
        "tap": tap,
        "layers": numbers,
        "features": channels,
        "passes": len(passes),
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    return AttributeTable(rows, corr, pairs, meta)


# ------------------------------------------------------------------------------------------------- figure

_STYLE = {"key": ("o", "-"), "chord": ("s", "--"), "instrument": ("^", ":")}


def attributes_figure(table: AttributeTable, *, fig: Figure | None = None, width: float = 7.16) -> Figure:
    """Fig. 10 of Choi et al. (2016): average correlation per layer for key, chord and instrument changes.

    Parameters
    ----------
    table : AttributeTable
        From :func:`attribute_study` (or :meth:`AttributeTable.from_csv`).
    fig : matplotlib.figure.Figure, optional
        Draw into this figure (one new axes); default a new Agg figure ``width`` x ``0.45 width`` inches.
    width : float
        Width in inches of a new figure (7.16: a two-column IEEE figure).

    Returns
    -------
    matplotlib.figure.Figure
        One line per attribute (key, chord, instrument) with markers and standard-deviation error bars, nudged
        apart along x so the bars do not hide each other; x "Layer", y "Average correlation" (0 to 1 unless a
        bar leaves that range).
    """
    from auralise.display import new_figure

    if not table.rows:
        raise BadParameterError("the attribute table is empty; nothing to plot")
    if not width > 0:
        raise BadParameterError(f"width must be positive, got {width!r}")
    if fig is None:
        fig = new_figure(figsize=(width, 0.45 * width), layout="constrained")
    ax = fig.add_subplot()
    layers = table.layers
    order = [a for a in ("key", "chord", "instrument") if a in table.attributes]
    order += [a for a in table.attributes if a not in order]
    nudge = 0.06
    low, high = 0.0, 1.0
    for j, attr in enumerate(order):
        rows = [table.row(n, attr) if _has(table, n, attr) else None for n in layers]
        mean = np.array([r.mean if r else np.nan for r in rows], dtype=float)
        std = np.array([r.std if r else np.nan for r in rows], dtype=float)
        x = np.asarray(layers, dtype=float) + (j - (len(order) - 1) / 2) * nudge
        marker, line = _STYLE.get(attr, ("D", "-."))
        ax.errorbar(x, mean, yerr=std, marker=marker, linestyle=line, capsize=3, label=attr.capitalize())
        if np.isfinite(mean).any():
            low = min(low, float(np.nanmin(mean - std)))
            high = max(high, float(np.nanmax(mean + std)))
    ax.set_xticks(layers)
    ax.set_xlim(layers[0] - 0.5, layers[-1] + 0.5)
    pad = 0.03
    ax.set_ylim(max(-1.0, low - pad) if low < 0 else 0.0, min(1.0 + pad, high + pad) if high > 1 else 1.0)
    ax.set_xlabel("Layer")
    ax.set_ylabel("Average correlation")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncols=len(order))
    return fig


def _has(table: AttributeTable, layer: int, attribute: str) -> bool:
    return any(r.layer == layer and r.attribute == attribute for r in table.rows)
