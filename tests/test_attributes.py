"""The key/chord/instrument robustness study (Choi et al. 2016, Sec. 4.2, Figs. 9-10)."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest

import auralise
from auralise.errors import BadParameterError
from auralise.figures.attributes import attributes_figure
from auralise.studies.attributes import (
    ATTRIBUTES,
    DEFAULT_CHORDS,
    DEFAULT_INSTRUMENTS,
    DEFAULT_KEYS,
    AttributeTable,
    attribute_pairs,
    attribute_study,
    chord_positions,
    model_signals,
    note_to_midi,
)

SMALL = {"instruments": ("sine", "piano"), "chords": ("major", "minor"), "keys": ("A3", "G4")}


# ----------------------------------------------------------------------------------------------- design


def test_note_names_match_librosa() -> None:
    import librosa

    for name in (*DEFAULT_KEYS, "C4", "C#4", "Db4", "B#3", "Cb4", "A-1", "G9"):
        assert note_to_midi(name) == librosa.note_to_midi(name), name
    assert [note_to_midi(k) for k in DEFAULT_KEYS] == [39, 46, 57, 67]
    assert note_to_midi(60) == 60
    for bad in ("H2", "Eb", "", "G#10", 128, -1, True):
        with pytest.raises(BadParameterError):
            note_to_midi(bad)


def test_chord_positions_climb_through_inversions() -> None:
    assert chord_positions("major") == [(0, 4, 7), (4, 7, 12), (7, 12, 16), (12, 16, 19), (16, 19, 24), (19, 24, 28)]
    assert chord_positions("interval") == [(0, 7), (7, 12), (12, 19), (19, 24), (24, 31), (31, 36)]
    assert chord_positions("dom7")[5] == (16, 19, 22, 24)
    for chord in DEFAULT_CHORDS:
        intervals = auralise.demo.synth.CHORDS[chord]
        pos = chord_positions(chord)
        assert len(pos) == 6
        for p in pos:  # every position is a voicing of the same chord: same pitch classes, same size
            assert sorted({n % 12 for n in p}) == sorted({n % 12 for n in intervals})
            assert len(p) == len(intervals) and list(p) == sorted(p)
        assert all(b[0] > a[0] for a, b in itertools.pairwise(pos))  # the bass climbs at every position
    for bad in ("augmented", (), (7, 0)):
        with pytest.raises(BadParameterError):
            chord_positions(bad)


def test_model_signals_design_and_audio() -> None:
    sigs = model_signals(
        instruments=("sine", "strings", "piano"), chords=("major", "dim"), keys=("Eb2", "G4", "A3"), seconds=1.2
    )
    assert len(sigs) == 3 * 2 * 3
    assert [s.attributes for s in sigs] == list(
        itertools.product(("sine", "strings", "piano"), ("major", "dim"), ("Eb2", "G4", "A3"))
    )
    for s in sigs:
        assert s.y.shape == (round(1.2 * 11025),) and s.y.dtype == np.float32 and s.sr == 11025
        assert np.all(np.isfinite(s.y)) and 0.5 < np.abs(s.y).max() <= 0.9 + 1e-6
        assert s.voicings == tuple(tuple(s.root + o for o in p) for p in chord_positions(s.chord))
    # the sine G4 major signal: each sixth holds exactly its position's notes (spectral peaks at their pitches)
    sine = next(s for s in sigs if s.attributes == ("sine", "major", "G4"))
    edges = np.linspace(0, sine.y.size, 7).round().astype(int)
    for (a, b), notes in zip(itertools.pairwise(edges), sine.voicings):
        seg = sine.y[a:b] * np.hanning(b - a)
        spec = np.abs(np.fft.rfft(seg, 1 << 15))
        freqs = np.fft.rfftfreq(1 << 15, 1 / 11025)
        peaks = [i for i in range(1, spec.size - 1) if spec[i] >= spec[i - 1] and spec[i] > spec[i + 1]]
        top = sorted(sorted(peaks, key=lambda i: -spec[i])[: len(notes)], key=lambda i: freqs[i])
        want = [440 * 2 ** ((n - 69) / 12) for n in notes]
        assert np.allclose(freqs[top], want, rtol=0.01), (notes, freqs[top])
    default = model_signals(seconds=0.3, sr=8000)
    assert len(default) == len(DEFAULT_INSTRUMENTS) * len(DEFAULT_CHORDS) * len(DEFAULT_KEYS) == 192
    for kwargs in ({"instruments": ("kazoo",)}, {"chords": ("augmented",)}, {"keys": ("X9",)}, {"keys": ()}):
        with pytest.raises(BadParameterError):
            model_signals(seconds=0.5, **kwargs)


def test_pairs_differing_in_exactly_one_attribute_match_brute_force() -> None:
    design = {"instruments": ("sine", "strings", "piano"), "chords": ("major", "minor"), "keys": ("Eb2", "Bb2", "G4")}
    sigs = model_signals(seconds=0.2, **design)
    brute: dict[str, set[tuple[int, int]]] = {a: set() for a in ATTRIBUTES}
    for a in range(len(sigs)):
        for b in range(a + 1, len(sigs)):
            differ = [name for name, x, y in zip(ATTRIBUTES, sigs[a].attributes, sigs[b].attributes) if x != y]
            if len(differ) == 1:
                brute[differ[0]].add((a, b))
    pairs = attribute_pairs((3, 2, 3))
    for attr in ATTRIBUTES:
        got = [tuple(int(i) for i in p) for p in pairs[attr]]
        assert len(got) == len(set(got)) and set(got) == brute[attr], attr
        assert all(a < b for a, b in got)
    assert {a: len(p) for a, p in pairs.items()} == {"instrument": 2 * 3 * 3, "chord": 3 * 3 * 1, "key": 3 * 2 * 3}


# ----------------------------------------------------------------------------------------------- study


@pytest.fixture(scope="module")
def small_model(choi_model):
    return auralise.load_model(choi_model)


@pytest.fixture(scope="module")
def study(small_model):
    calls: list[tuple[int, int]] = []
    table = attribute_study(small_model, progress=lambda d, t: calls.append((d, t)), **SMALL)
    return table, calls


def test_study_table_shape_counts_and_range(study) -> None:
    table, calls = study
    assert table.layers == [1, 2, 3, 4, 5] and table.attributes == list(ATTRIBUTES)
    assert [(r.layer, r.attribute) for r in table.rows] == list(itertools.product(range(1, 6), ATTRIBUTES))
    assert calls[-1] == (8, 8) and [d for d, _ in calls] == list(range(1, 9))
    assert table.meta["n_signals"] == 8 and table.meta["seconds"] == 4.0 and table.meta["frames"] == 173
    for r in table.rows:
        values = table.correlations[r.layer, r.attribute]
        assert values.shape == (4, 8)  # 4 pairs differ in each attribute; 8 features per layer
        assert r.n_pairs + r.n_skipped == values.size
        assert int(np.isnan(values).sum()) == r.n_skipped
        defined = values[~np.isnan(values)]
        assert np.all(defined >= -1) and np.all(defined <= 1)
        if r.n_pairs:
            assert r.mean == pytest.approx(defined.astype(np.float64).mean(), abs=1e-12)
            assert r.std == pytest.approx(defined.astype(np.float64).std(), abs=1e-12)
    assert sum(r.n_pairs for r in table.rows) > 0.5 * sum(r.n_pairs + r.n_skipped for r in table.rows)


def test_study_correlation_is_numpy_corrcoef_of_the_deconvolutions(study, small_model) -> None:
    table, _ = study
    fe = small_model.frontend
    sigs = model_signals(sr=fe.sr, seconds=4.0, **SMALL)
    inputs = [fe.model_input(fe.stft(s.y)) for s in sigs]
    checked = 0
    for layer, attr in (*((n, "chord") for n in range(1, 6)), (1, "key"), (3, "instrument")):
        values = table.correlations[layer, attr]
        p, f = np.argwhere(~np.isnan(values))[0]
        a, b = table.pairs[attr][p]
        Da = auralise.deconvolve(small_model, inputs[a], layer=layer, features=[int(f)])[0].numpy().ravel()
        Db = auralise.deconvolve(small_model, inputs[b], layer=layer, features=[int(f)])[0].numpy().ravel()
        assert values[p, f] == pytest.approx(np.corrcoef(Da, Db)[0, 1], abs=1e-6)
        checked += 1
        skipped = np.argwhere(np.isnan(values))
        if len(skipped):  # a skipped value: one of the pair's deconvolutions is constant (silent)
            p, f = skipped[0]
            Ds = [
                auralise.deconvolve(small_model, inputs[i], layer=layer, features=[int(f)])[0]
                for i in table.pairs[attr][p]
            ]
            assert any(float(D.max() - D.min()) == 0 for D in Ds)
    assert checked == 7


def test_identical_signals_correlate_perfectly(small_model) -> None:
    table = attribute_study(small_model, instruments=("saxophone",), chords=("min7",), keys=("A3", "A3"), layers=[1, 5])
    assert table.layers == [1, 5]
    for layer in (1, 5):
        key = table.row(layer, "key")
        assert key.n_pairs + key.n_skipped == 8 and key.n_pairs > 0
        assert key.mean == pytest.approx(1.0, abs=1e-5) and key.std == pytest.approx(0.0, abs=1e-5)
        for attr in ("instrument", "chord"):  # one value each: no pairs, undefined statistics
            r = table.row(layer, attr)
            assert (r.n_pairs, r.n_skipped) == (0, 0) and math.isnan(r.mean) and math.isnan(r.std)


def test_passes_split_by_memory_budget_give_the_same_correlations(study, small_model) -> None:
    table, _ = study
    per_feature = 8 * 257 * 173 * 4
    split = attribute_study(small_model, memory_budget=3 * per_feature, **SMALL)
    assert split.meta["passes"] == math.ceil(40 / 3)
    for key, values in table.correlations.items():
        np.testing.assert_allclose(split.correlations[key], values, atol=1e-6, equal_nan=True)


def test_study_rejects_bad_requests(small_model) -> None:
    with pytest.raises(BadParameterError, match="patch"):
        attribute_study(small_model, seconds=2.0, **SMALL)
    with pytest.raises(BadParameterError, match="method"):
        attribute_study(small_model, method="lrp", **SMALL)
    with pytest.raises(BadParameterError, match="layer"):
        attribute_study(small_model, layers=[6], **SMALL)
    with pytest.raises(BadParameterError, match="memory_budget"):
        attribute_study(small_model, memory_budget=1000, **SMALL)


# ----------------------------------------------------------------------------------------------- output


def test_csv_round_trip(study, tmp_path) -> None:
    table, _ = study
    buf = io.StringIO()
    table.to_csv(buf)
    assert buf.getvalue().splitlines()[0] == "layer,attribute,mean,std,n_pairs,n_skipped"
    assert AttributeTable.from_csv(io.StringIO(buf.getvalue())).rows == table.rows
    path = tmp_path / "attributes.csv"
    table.to_csv(path)
    assert AttributeTable.from_csv(path).as_rows() == table.as_rows()
    nan_table = AttributeTable([type(table.rows[0])(1, "key", math.nan, math.nan, 0, 0)])
    buf = io.StringIO()
    nan_table.to_csv(buf)
    back = AttributeTable.from_csv(io.StringIO(buf.getvalue())).rows[0]
    assert math.isnan(back.mean) and (back.layer, back.n_pairs) == (1, 0)
    with pytest.raises(BadParameterError):
        AttributeTable.from_csv(io.StringIO("a,b\n1,2\n"))
    header = "layer,attribute,mean,std,n_pairs,n_skipped\n"
    for damaged in ("0,key,0.5,0.1,3,0\n", "1,key,0.5,0.1,-3,0\n", "1,key,0.5,0.1,3,-1\n", '1,"key,0.5\n'):
        with pytest.raises(BadParameterError, match="attribute table"):
            AttributeTable.from_csv(io.StringIO(header + damaged))
    (tmp_path / "latin1.csv").write_bytes(header.encode() + "1,clé,0.5,0.1,3,0\n".encode("latin-1"))
    with pytest.raises(BadParameterError, match="not an attribute table"):
        AttributeTable.from_csv(tmp_path / "latin1.csv")


def test_figure_has_one_line_with_error_bars_per_attribute(study, tmp_path) -> None:
    from matplotlib.container import ErrorbarContainer

    table, _ = study
    fig = attributes_figure(table)
    assert fig.get_size_inches()[0] == pytest.approx(7.16)
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in bars] == ["Key", "Chord", "Instrument"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Key", "Chord", "Instrument"]
    assert ax.get_xlabel() == "Layer" and ax.get_ylabel() == "Average correlation"
    for c, attr in zip(bars, ("key", "chord", "instrument")):
        line, _, (segments,) = c.lines
        x, y = line.get_data()
        assert np.allclose(np.round(x), [1, 2, 3, 4, 5])
        assert np.allclose(y, [table.row(n, attr).mean for n in range(1, 6)], equal_nan=True)
        lengths = [s[1, 1] - s[0, 1] for s in segments.get_segments()]
        assert np.allclose(lengths, [2 * table.row(n, attr).std for n in range(1, 6) if table.row(n, attr).n_pairs])
    lo, hi = ax.get_ylim()
    assert -1.0 <= lo <= 0.0 and 1.0 <= hi <= 1.03
    path = auralise.figures.display.save_figure(fig, tmp_path / "fig10.png")
    assert path.stat().st_size > 1000
    other = auralise.figures.display.new_figure()
    assert attributes_figure(table, fig=other) is other
