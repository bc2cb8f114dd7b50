"""Faithfulness and distinguishability of auralisations: is what you hear what the feature responds to?

Each measure feeds audio back through the front-end and the model and reads the layer's activations at the tap
(:class:`~auralise.session.RenderOptions` ``tap``). With ``E_g(x)`` the activation energy of feature ``g`` (sum of
squares over its units) on audio ``x``, ``y`` the song and ``w_f`` the auralisation of feature ``f`` (resynthesised
with ``normalize="none"``, so its level is the song's level under the mask):

- **retention** ``R_f = E_f(w_f) / E_f(y)``: how much of the feature's response the auralisation keeps (1 when the
  auralisation is the whole song);
- **specificity** ``S_f = R_f / median_{g != f} (E_g(w_f) / E_g(y))`` over the other features of the layer that
  are active on the song: > 1 when the auralisation excites this feature more than its siblings;
- **deletion** ``D_f = E_f(y - w_f) / E_f(y)``: the response left when the auralisation is taken out of the song
  (low: the auralisation holds what drives the feature);
- **distinguishability**: per feature, its long-term spectrum (mean power in 38 log-spaced bands from 40 Hz to the
  Nyquist frequency, in dB, floored at 60 dB below its loudest band — differences between inaudible bands do not
  count — and level removed by subtracting the mean over bands); per layer the distribution of the
  pairwise RMS distances (dB) between features' spectra, and per feature its distance to the song's spectrum.

Silent features (never active, or a numerically zero projection) have no auralisation: their measures are NaN.

Groundwork for issue 13 (``auralise evaluate``, listening modes chosen by these numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

N_BANDS, LOWEST_HZ = 38, 40.0
DYNAMIC_RANGE_DB = 60.0  # bands further below a spectrum's loudest band count as that far below


def band_spectrum(y: np.ndarray, sr: int, *, n_fft: int = 2048) -> np.ndarray:
    """Long-term spectrum of ``y`` in :data:`N_BANDS` log-spaced bands (dB, level removed), shape (N_BANDS,)."""
    import librosa

    power = np.mean(np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=n_fft)) ** 2, axis=1)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    edges = np.geomspace(LOWEST_HZ, sr / 2, N_BANDS + 1)
    bands = np.array([power[(freqs >= lo) & (freqs < hi)].mean() if np.any((freqs >= lo) & (freqs < hi)) else 0.0
                      for lo, hi in zip(edges[:-1], edges[1:])])  # fmt: skip
    db = 10.0 * np.log10(np.maximum(bands, 1e-30))
    db = np.maximum(db, db.max() - DYNAMIC_RANGE_DB)  # what is that far below the loudest band is not heard
    return db - db.mean()


def spectrum_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS difference in dB of two level-removed band spectra."""
    return float(np.sqrt(np.mean((a - b) ** 2)))


@dataclass
class LayerFaithfulness:
    """The measures of one layer's features on one song; arrays are (K,) in the order of ``features``."""

    layer: int
    features: list[int]
    retention: np.ndarray
    specificity: np.ndarray
    deletion: np.ndarray
    distance_to_song: np.ndarray
    pairwise: np.ndarray = field(repr=False)  # (K, K) dB; NaN for silent features

    def median_distinguishability(self) -> float:
        """Median pairwise spectrum distance (dB) between the layer's non-silent features."""
        upper = self.pairwise[np.triu_indices(len(self.features), k=1)]
        upper = upper[np.isfinite(upper)]
        return float(np.median(upper)) if upper.size else float("nan")

    def to_dict(self) -> dict:
        def clean(a):
            return [None if not np.isfinite(v) else round(float(v), 6) for v in a]

        return {
            "layer": self.layer,
            "median_distinguishability_db": self.median_distinguishability(),
            "features": [
                {"feature": f, "retention": r, "specificity": s, "deletion": d, "distance_to_song_db": t}
                for f, r, s, d, t in zip(
                    self.features,
                    clean(self.retention),
                    clean(self.specificity),
                    clean(self.deletion),
                    clean(self.distance_to_song),
                )  # fmt: skip
            ],
        }


class _Energies:
    """Activation energy of every feature of one layer at the session's tap on any audio: the layer's geometry is
    measured once (on the song), then each call is one forward pass."""

    def __init__(self, session, song, layer: int):
        self.session, self.layer = session, layer
        self.template = session.projector(song, [layer])

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Shape (C,), float64."""
        import torch

        fe = self.session.frontend
        y = np.asarray(y, dtype=np.float32)
        S = fe.model_input(fe.stft(y), y=y).to(self.session.device)
        with torch.inference_mode():
            return self.template.with_input(S).statistics()[self.layer].energy.double().cpu().numpy()


def evaluate_layer(
    session, song, layer: int, features: Sequence[int] | None = None, *, waves=None
) -> LayerFaithfulness:
    """The measures of ``features`` (default all) of ``layer`` on ``song`` with the session's options.

    ``waves`` (K, n): the auralisations to judge (default: the session's own, rendered with ``normalize="none"``);
    passing other waves (random masks, another method) measures those instead.
    """
    lay = session.layer(layer)
    feats = list(range(lay.channels)) if features is None else list(features)
    energies = _Energies(session, song, lay.number)
    base = energies(song.y)
    silent = np.zeros(len(feats), dtype=bool)
    if waves is None:
        waves, silent = _auralisations(session, song, lay.number, feats)
    K = len(feats)
    retention, specificity, deletion = (np.full(K, np.nan) for _ in range(3))
    active = base > 0
    for k, f in enumerate(feats):
        if silent[k] or not active[f]:
            continue
        on_wave = energies(waves[k])
        ratios = np.where(active, on_wave / np.where(active, base, 1.0), np.nan)
        retention[k] = ratios[f]
        others = np.delete(ratios, f)
        others = others[np.isfinite(others)]
        specificity[k] = ratios[f] / np.median(others) if others.size and np.median(others) > 0 else np.nan
        deletion[k] = energies(song.y - waves[k])[f] / base[f]
    sr = session.frontend.sr
    spectra = np.array(
        [band_spectrum(w, sr) if not silent[k] else np.full(N_BANDS, np.nan) for k, w in enumerate(waves)]
    )
    song_spectrum = band_spectrum(song.y, sr)
    with np.errstate(invalid="ignore"):  # silent features' rows are all NaN and stay NaN
        squared = (spectra[:, None, :] - spectra[None, :, :]) ** 2
        pairwise = np.sqrt(np.mean(squared, axis=2)) if K else np.zeros((0, 0))
    pairwise[silent, :] = np.nan
    pairwise[:, silent] = np.nan
    to_song = np.array(
        [spectrum_distance(s, song_spectrum) if not silent[k] else np.nan for k, s in enumerate(spectra)]
    )
    return LayerFaithfulness(lay.number, feats, retention, specificity, deletion, to_song, pairwise)


def _auralisations(session, song, layer: int, features: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The session's auralisations of ``features`` at the song's level (``normalize="none"``), and silent flags."""
    from auralise.render.contrast import relative_to_layer
    from auralise.render.resynth import render_waves
    from auralise.session import layer_reference

    projection = session.project(song, layer, features)
    o = session.options
    reference = layer_reference(session, song, layer) if relative_to_layer(o.resynth, session.frontend) else None
    rendered = render_waves(song.X, projection.D, frontend=session.frontend, mode=o.resynth, phase=o.phase,
                            length=song.n_samples, normalize="none", activation_max=projection.activation_max,
                            y=song.y, reference=reference)  # fmt: skip
    return rendered.waves, np.asarray(rendered.silent, dtype=bool)
