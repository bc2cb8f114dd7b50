"""The ``cqt`` front-end: ``S = compress(|librosa.cqt(y)|)``, computed from the audio.

Back to the STFT grid by interpolation along log-frequency; CQT and STFT frames share ``hop_length`` and are both
centred, so time is the identity (the CQT is trimmed or edge-padded to the STFT's frame count).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from auralise.errors import BadAudioError, BadModelError
from auralise.frontends import checks
from auralise.frontends.arrays import fit_frames, readonly
from auralise.frontends.base import Frontend
from auralise.frontends.checks import BOUNDS, bad, check_range

__all__ = ["CqtFrontend"]

_C1_HZ = 440.0 * 2.0 ** ((24 - 69) / 12)  # librosa.note_to_hz("C1"), the CQT's default fmin (32.70 Hz)


@dataclass(frozen=True, kw_only=True)
class CqtFrontend(Frontend):
    """A constant-Q transform of the audio as model input, ``F_in = n_bins``.

    Parameters
    ----------
    fmin : float or None
        Frequency of the lowest bin in Hz (None -> C1, 32.70 Hz), 1 Hz..sr/2. Resolved to a number on construction.
    n_bins : int
        Number of constant-Q bins (default 84), 1..1024.
    bins_per_octave : int
        Bins per octave (default 12), 1..120.

    ``center`` must be true (librosa's CQT frames are centred), and the top bin's filter must stay below the
    Nyquist frequency. The shared fields are :class:`~auralise.frontends.Frontend`'s.

    Examples
    --------
    >>> fe = Frontend(kind="cqt", sr=22050, n_fft=1024, hop_length=512)
    >>> fe.n_input_freq, round(fe.fmin, 2)
    (84, 32.7)
    """

    kind: str = "cqt"
    fmin: float | None = None
    n_bins: int = 84
    bins_per_octave: int = 12

    def _check(self) -> None:
        for key in ("n_bins", "bins_per_octave"):
            checks.positive_int(self, key)
            check_range(key, getattr(self, key))
        fmin = _C1_HZ if self.fmin is None else self.fmin
        if not checks.is_number(fmin) or not math.isfinite(fmin) or fmin <= 0:
            raise bad("fmin", "null (C1, 32.70 Hz) or a positive frequency in Hz", self.fmin)
        checks.set_field(self, "fmin", float(fmin))
        check_range("fmin", self.fmin, BOUNDS["cqt_fmin"][0], self.sr / 2.0, " Hz (1 Hz..sr/2)")
        if not self.center:
            raise BadModelError(
                "a 'cqt' front-end needs center true (librosa's CQT frames are centred; the STFT's must match)"
            )
        import librosa

        _, cutoff = librosa.filters.wavelet_lengths(freqs=_freqs(self), sr=self.sr, alpha=_alpha(self))
        if cutoff > self.sr / 2.0:
            raise BadModelError(
                f"a 'cqt' front-end with n_bins {self.n_bins} from fmin {self.fmin:.2f} Hz at {self.bins_per_octave} "
                f"bins per octave reaches {float(cutoff):.0f} Hz, above the Nyquist frequency {self.sr / 2:g} Hz; "
                "use fewer bins or a higher sr"
            )

    @property
    def n_input_freq(self) -> int:
        """``n_bins``."""
        return self.n_bins

    def _describe_input(self) -> list[str]:
        return [f"{self.n_bins} CQT bins from {self.fmin:.2f} Hz, {self.bins_per_octave}/octave"]

    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """``|CQT(y)|``, shape (n_bins, T), float32: ``T`` is ``X``'s frame count (the CQT's own when ``X`` is
        None), so that CQT frame ``t`` is STFT frame ``t``."""
        C = self._cqt_magnitude(self._need_audio(y))
        if X is not None:
            C = fit_frames(C, self._checked_stft(X).shape[1])
        return C

    def _cqt_magnitude(self, y: np.ndarray) -> np.ndarray:
        """``|librosa.cqt(y)|``, shape (n_bins, 1 + n // hop), float32 (tuning 0, Hann filters, centred)."""
        import librosa

        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1 or y.size == 0:
            raise BadAudioError(f"a 'cqt' front-end needs mono audio with samples, got shape {y.shape}")
        C = librosa.cqt(
            y,
            sr=self.sr,
            hop_length=self.hop_length,
            fmin=self.fmin,
            n_bins=self.n_bins,
            bins_per_octave=self.bins_per_octave,
            tuning=0.0,
            pad_mode=self.pad_mode,
        )
        return np.abs(C).astype(np.float32)

    def input_freqs(self) -> np.ndarray:
        """Bin centre frequencies in Hz, shape (n_bins,): ``librosa.cqt_frequencies``."""
        return np.asarray(_freqs(self), dtype=np.float64)

    def grid_matrix(self) -> np.ndarray:
        """Linear interpolation along log-frequency, shape (F, n_bins), averaged over each STFT bin's width where
        CQT bins are denser than STFT bins; STFT bins within half a CQT bin of the CQT's range take the edge bin,
        bins further out get 0."""
        return _grid_matrix(self)

    def _input_weights(self) -> np.ndarray:
        """``sum(window) / sqrt(L_b)`` (``L_b`` librosa's filter length of bin b): makes a sinusoid's CQT peak
        equal its STFT peak."""
        return _input_weights(self)


def _freqs(fe: CqtFrontend) -> np.ndarray:
    import librosa

    return librosa.cqt_frequencies(fe.n_bins, fmin=fe.fmin, bins_per_octave=fe.bins_per_octave)


def _alpha(fe: CqtFrontend) -> np.ndarray:
    """librosa's relative bandwidth of each CQT filter, shape (n_bins,)."""
    r = 2.0 ** (1.0 / fe.bins_per_octave)
    return np.full(fe.n_bins, (r * r - 1.0) / (r * r + 1.0))


@functools.lru_cache(maxsize=32)
def _grid_matrix(fe: CqtFrontend) -> np.ndarray:
    """The mean, over each STFT bin's width, of the piecewise-linear interpolant along q = bpo*log2(f/fmin)."""
    f = fe.bin_freqs()
    n, bpo = fe.n_bins, fe.bins_per_octave
    A = np.zeros((fe.n_freq, n))
    df = fe.sr / fe.n_fft
    for k in range(fe.n_freq):
        lo, hi = f[k] - df / 2, min(f[k] + df / 2, fe.sr / 2)
        lo = lo if lo > 0 else hi * 1e-3  # the DC bin: from just above 0 Hz
        q_lo, q_hi = bpo * math.log2(lo / fe.fmin), bpo * math.log2(hi / fe.fmin)
        if q_hi < -0.5 or q_lo > n - 0.5:
            continue
        S = min(256, max(1, math.ceil(2 * (q_hi - q_lo))))
        fs = lo + (np.arange(S) + 0.5) * (hi - lo) / S if S > 1 else np.array([f[k]])
        q = bpo * np.log2(fs / fe.fmin)
        q = q[(q >= -0.5) & (q <= n - 0.5)]
        q = np.clip(q, 0.0, n - 1.0)
        i0 = np.minimum(np.floor(q).astype(int), n - 1)
        frac = q - i0
        i1 = np.minimum(i0 + 1, n - 1)
        np.add.at(A[k], i0, (1.0 - frac) / S)
        np.add.at(A[k], i1, frac / S)
    return readonly(A)


@functools.lru_cache(maxsize=32)
def _input_weights(fe: CqtFrontend) -> np.ndarray:
    import librosa
    import scipy.signal

    win = scipy.signal.get_window(fe.window, fe.win_length or fe.n_fft, fftbins=True)
    lengths, _ = librosa.filters.wavelet_lengths(freqs=_freqs(fe), sr=fe.sr, alpha=_alpha(fe))
    return readonly(np.sum(win) / np.sqrt(lengths))
