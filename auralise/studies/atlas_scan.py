"""The atlas's scan: for every (layer, feature), the K strongest distinct occurrences across a corpus.

One forward pass per song (chunked for long songs) gives, per feature, the song's strongest unit (its activation, its
time and its position; ties go to the earliest unit in time, then the lowest frequency, as everywhere in auralise)
and the song's activation statistics. :class:`AtlasState` keeps, per feature, a bounded list of the K strongest
song maxima and running statistics; two states of disjoint song sets merge *exactly* (the order is total:
activation descending, then song key, then time; sums are kept exactly), so workers and shards combine into the
result of one scan, bit for bit.

Groundwork for the ``auralise atlas`` command (issue 12): the scan, its state and its exact merge. Rendering, the
page, the engines and the command line build on it.

Example
-------
>>> from auralise.studies.atlas_scan import AtlasState, scan_song                 # doctest: +SKIP
>>> state = AtlasState(top=9)                                                       # doctest: +SKIP
>>> state.add(scan_song(model, "song.wav", layers=[1, 3], song="0001-song"))        # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

FORMAT = "auralise-atlas-state"
VERSION = 1


@dataclass(frozen=True, order=True)
class Occurrence:
    """One song's strongest unit of one feature. Ordered so that the *smallest* is the best."""

    neg_activation: float
    song: str
    unit: int  # index along the tap map's time axis (global, not per chunk)
    position: tuple[int, ...] = field(compare=True)  # the unit's full position in the tap map (batch dropped)
    seconds: float = field(compare=False, default=0.0)  # the centre of the unit's receptive field, in seconds

    @property
    def activation(self) -> float:
        return -self.neg_activation

    def to_json(self) -> dict:
        return {
            "song": self.song,
            "activation": self.activation,
            "unit": self.unit,
            "position": list(self.position),
            "time": self.seconds,
        }

    @classmethod
    def from_json(cls, d: dict) -> Occurrence:
        return cls(-float(d["activation"]), _text(d["song"]), int(d["unit"]), tuple(int(p) for p in d["position"]),
                   float(d["time"]))  # fmt: skip


def exact_sum(values: Iterable[float]) -> list[float]:
    """The exact sum of ``values`` as its canonical expansion: the correctly rounded sum, then the correctly rounded
    remainder, and so on until nothing remains (largest first). The same values give the same list in any order, and
    ``math.fsum`` of it is the correctly rounded sum. A non-finite value (or an overflow) gives a plain sum."""
    rest = [float(x) for x in values]
    parts: list[float] = []
    try:
        value = math.fsum(rest) if all(map(math.isfinite, rest)) else math.nan
    except OverflowError:
        value = math.nan
    plain = [sum(rest)]
    if not math.isfinite(value):
        return plain
    while value:
        parts.append(value)
        rest = _plus_exactly(rest, -value)
        value = math.fsum(rest)
        if not math.isfinite(value):  # an intermediate overflow (values near the float range's end)
            return plain
    return parts


def _plus_exactly(terms: list[float], x: float) -> list[float]:
    """Floats whose exact sum is that of ``terms`` plus ``x`` (two-sum over the terms, keeping every rounding
    error)."""
    out = []
    for y in terms:
        if abs(x) < abs(y):
            x, y = y, x
        high = x + y
        low = y - (high - x)  # the rounding error of x + y, exactly (|x| >= |y|)
        if low:
            out.append(low)
        x = high
    return [*out, x]


@dataclass
class FeatureTop:
    """The K best occurrences of one feature and its corpus statistics (exact sums, so that merging is addition in
    any order)."""

    occurrences: list[Occurrence] = field(default_factory=list)
    activation_parts: list[float] = field(default_factory=list)  # the sum over every unit of every song (exact_sum)
    units: int = 0
    maximum: float = -math.inf
    songs: int = 0
    active_songs: int = 0  # songs whose maximum is > 0

    @property
    def activation_sum(self) -> float:
        """The sum of the feature's activation over every unit of every song, correctly rounded."""
        return math.fsum(self.activation_parts)

    def merge(self, other: FeatureTop, top: int) -> None:
        self.occurrences = sorted(self.occurrences + other.occurrences)[:top]
        self.activation_parts = exact_sum([*self.activation_parts, *other.activation_parts])
        self.units += other.units
        self.maximum = max(self.maximum, other.maximum)
        self.songs += other.songs
        self.active_songs += other.active_songs

    def stats(self) -> dict:
        return {
            "mean": self.activation_sum / self.units if self.units else 0.0,
            "max": self.maximum if self.songs else 0.0,
            "active_fraction": self.active_songs / self.songs if self.songs else 0.0,
        }


@dataclass
class AtlasState:
    """Per (layer, feature) a :class:`FeatureTop`; mergeable, JSON-serialisable."""

    top: int = 9
    features: dict[tuple[int, int], FeatureTop] = field(default_factory=dict)
    songs: list[str] = field(default_factory=list)

    def add(self, part: AtlasState) -> None:
        """Merge the state of a disjoint set of songs into this one (exact; order does not matter)."""
        overlap = set(self.songs) & set(part.songs)
        if overlap:
            raise ValueError(f"song {sorted(overlap)[0]!r} is in both atlas states; merge disjoint scans only")
        for key, value in part.features.items():
            self.features.setdefault(key, FeatureTop()).merge(value, self.top)
        self.songs = sorted([*self.songs, *part.songs])

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "top": self.top,
            "songs": list(self.songs),
            "features": [
                {
                    "layer": layer,
                    "feature": feature,
                    "occurrences": [o.to_json() for o in ft.occurrences],
                    "sums": {
                        "activation": ft.activation_sum,
                        "activation_parts": list(ft.activation_parts),
                        "units": ft.units,
                        "max": ft.maximum,
                        "songs": ft.songs,
                        "active_songs": ft.active_songs,
                    },  # fmt: skip
                }
                for (layer, feature), ft in sorted(self.features.items())
            ],
        }

    @classmethod
    def from_json(cls, d: dict) -> AtlasState:
        """The state written by :meth:`to_json`; ValueError, saying what is wrong, for anything else (a state file
        may come from someone else: every field is checked for its type, every occurrence's song is the state's)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != VERSION:
            raise ValueError("not an auralise atlas state (format/version)")
        try:
            state = cls(top=int(d["top"]), songs=[_text(s) for s in d["songs"]])
            for f in d["features"]:
                s = f["sums"]
                state.features[(int(f["layer"]), int(f["feature"]))] = FeatureTop(
                    [Occurrence.from_json(o) for o in f["occurrences"]],
                    exact_sum(s.get("activation_parts", [s["activation"]])), int(s["units"]),
                    float(s["max"]), int(s["songs"]), int(s["active_songs"]),
                )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not an auralise atlas state ({type(exc).__name__}: {exc})") from None
        strangers = {o.song for ft in state.features.values() for o in ft.occurrences} - set(state.songs)
        if strangers:
            raise ValueError(f"not an auralise atlas state (it does not list song {sorted(strangers)[0]!r})")
        return state


def _text(value: object) -> str:
    """A string field of a state file (TypeError for anything else)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def strongest_units(profile: np.ndarray, count: int, radius: int) -> list[int]:
    """Greedy non-maximum suppression in time: the ``count`` strongest time units of a profile (T',), each at least
    ``radius`` units from those chosen before it; ties go to the earliest unit."""
    order = np.lexsort((np.arange(len(profile)), -profile.astype(np.float64)))  # value descending, then time
    chosen: list[int] = []
    for t in order:
        if len(chosen) == count:
            break
        if all(abs(int(t) - c) >= radius for c in chosen):
            chosen.append(int(t))
    return chosen


def song_state(
    song: str,
    profiles: dict[int, tuple[np.ndarray, np.ndarray]],
    sums: dict[int, np.ndarray],
    units: dict[int, int],
    geometry: dict[int, tuple[tuple[int, ...], int, np.ndarray]],
    *,
    top: int,
    per_song: int = 1,
) -> AtlasState:
    """The atlas state of one song from its per-layer time profiles and sums.

    Parameters
    ----------
    profiles : per layer, (values (C, T'), index (C, T')): each feature's maximum over the non-time axes at each
        time unit, and the flat index of that maximum over those axes
    sums : per layer, (C,) the sum of each feature's activation over all units
    units : per layer, the number of units of one feature map
    geometry : per layer, (shape of the non-time axes, suppression radius in units, seconds of each time unit)
    per_song : occurrences kept per song and feature, at least ``radius`` time units apart
    """
    state = AtlasState(top=top, songs=[song])
    for layer, (values, index) in profiles.items():
        other_shape, radius, seconds = geometry[layer]
        for f in range(values.shape[0]):
            found = []
            for t in strongest_units(values[f], per_song, radius):
                pos = tuple(int(i) for i in np.unravel_index(int(index[f, t]), other_shape)) + (t,)
                found.append(Occurrence(-float(values[f, t]), song, t, pos, float(seconds[t])))
            best = float(values[f].max())
            state.features[(layer, f)] = FeatureTop(
                found, exact_sum([sums[layer][f]]), int(units[layer]), best, 1, int(best > 0)
            )
    return state


def merge_states(states: Iterable[AtlasState], top: int) -> AtlasState:
    """One state from the states of disjoint song sets (in any order)."""
    merged = AtlasState(top=top)
    for s in states:
        merged.add(s)
    return merged


def unit_seconds(frontend, geometry, n_units: int) -> np.ndarray:
    """The time in seconds of the centre of each unit's receptive field along the tap's time axis, (n_units,).

    Unit ``j`` sees input frames ``[offset + j * stride, offset + j * stride + frames)`` (:class:`TimeGeometry`);
    frame ``t`` of a centred STFT is centred on sample ``t * hop``, of an uncentred one on ``t * hop + n_fft / 2``.
    """
    centre = geometry.offset + np.arange(n_units) * geometry.stride + (geometry.frames - 1) / 2.0
    first = 0.0 if frontend.center else frontend.n_fft / 2.0
    return (np.maximum(centre, 0.0) * frontend.hop_length + first) / frontend.sr


class Scanner:
    """Scans songs with one model: the layers' geometry is measured once (dry passes), then every song costs one
    forward pass up to the deepest layer (chunked for long songs).

    Parameters
    ----------
    model : LoadedModel
        The model (``auralise.load_model``).
    layers : sequence of int
        Layer numbers to scan (every feature of each).
    tap : str
        The tap point (``block``, ``activation``, ``conv``).
    """

    def __init__(self, model, layers: Sequence[int], *, tap: str = "block", memory_budget: int = 1 << 29):
        self.model, self.layers, self.tap, self.memory_budget = model, list(layers), tap, memory_budget
        self._template = None

    def _projector(self, S):
        from auralise.engine.deconv import make_projector

        if self._template is None:
            fe = self.model.frontend
            self._template = make_projector(self.model.module, S, self.layers, method="deconvnet", select="map",
                                            tap=self.tap, example=self.model.example_input(),
                                            memory_budget=self.memory_budget, layout=fe.layout)  # fmt: skip
            self._template.profiles = True
            return self._template
        return self._template.with_input(S)

    def scan(self, y: np.ndarray, *, song: str, top: int = 9, per_song: int = 1) -> AtlasState:
        """One song's :class:`AtlasState` (``y`` at the model's rate). Positions are (*non-time axes of the tap map,
        time unit); ``time`` is the centre of the unit's receptive field in seconds."""
        import torch

        fe = self.model.frontend
        S = fe.model_input(fe.stft(y), y=y).to(next(self.model.module.parameters()).device)
        projector = self._projector(S)
        with torch.inference_mode():
            stats = projector.statistics()
        profiles, sums, units, geometry = {}, {}, {}, {}
        for n in self.layers:
            st, geo = stats[n], projector.geometry[n]
            values, index = st.profile.double().cpu().numpy(), st.profile_index.cpu().numpy()
            profiles[n], sums[n], units[n] = (values, index), st.total.cpu().numpy(), st.units
            radius = max(1, -(-geo.frames // geo.stride)) if geo is not None else 1
            seconds = unit_seconds(fe, geo, values.shape[1]) if geo is not None else np.zeros(values.shape[1])
            geometry[n] = (st.profile_shape, radius, seconds)
        return song_state(song, profiles, sums, units, geometry, top=top, per_song=per_song)


def scan_song(model, audio, *, layers: Sequence[int], song: str, top: int = 9, per_song: int = 1,
              tap: str = "block") -> AtlasState:  # fmt: skip
    """One song's :class:`AtlasState` (``audio``: a file, or samples at the model's rate); see :class:`Scanner`,
    which is cheaper for many songs."""
    from auralise.io.audio import load_audio

    y = audio if isinstance(audio, np.ndarray) else load_audio(audio, sr=model.frontend.sr)[0]
    return Scanner(model, layers, tap=tap).scan(y, song=song, top=top, per_song=per_song)
