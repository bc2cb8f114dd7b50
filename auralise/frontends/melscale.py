"""The mel scale and librosa's mel filterbank, bit for bit, without importing librosa or ``scipy.signal``.

``librosa.filters.mel`` lives in a module that imports ``scipy.signal`` (0.8-1 s, most of it ``scipy.stats``), and
``librosa.mel_frequencies`` one that imports numba: a mel model's export paid that on its serial start for a matrix
of a few thousand numbers. These are the same numpy operations in the same order (Slaney's and HTK's
scales, the Slaney area normalisation), checked against librosa in the tests; other normalisations go to librosa.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hz_to_mel", "mel_filterbank", "mel_frequencies", "mel_to_hz"]

_F_SP = 200.0 / 3  # Slaney's scale: linear below 1 kHz, Hz per mel
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies, *, htk: bool = False):
    """``librosa.hz_to_mel``: Hz (a number or an array) on the mel scale, Slaney's (default) or HTK's."""
    frequencies = np.asanyarray(frequencies)
    if htk:
        return 2595.0 * np.log10(1.0 + frequencies / 700.0)
    mels = frequencies / _F_SP
    if frequencies.ndim:
        log_t = frequencies >= _MIN_LOG_HZ
        mels[log_t] = _MIN_LOG_MEL + np.log(frequencies[log_t] / _MIN_LOG_HZ) / _LOGSTEP
    elif frequencies >= _MIN_LOG_HZ:
        mels = _MIN_LOG_MEL + np.log(frequencies / _MIN_LOG_HZ) / _LOGSTEP
    return mels


def mel_to_hz(mels, *, htk: bool = False):
    """``librosa.mel_to_hz``: the inverse of :func:`hz_to_mel`."""
    mels = np.asanyarray(mels)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs = 0.0 + _F_SP * mels
    if mels.ndim:
        log_t = mels >= _MIN_LOG_MEL
        freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    elif mels >= _MIN_LOG_MEL:
        freqs = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL))
    return freqs


def mel_frequencies(n_mels: int, *, fmin: float, fmax: float, htk: bool = False) -> np.ndarray:
    """``librosa.mel_frequencies``: ``n_mels`` frequencies in Hz, shape (n_mels,), evenly spaced in mels from
    ``fmin`` to ``fmax``."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels), htk=htk)


def mel_filterbank(*, sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None, htk: bool,
                   norm: str | None, dtype=np.float32) -> np.ndarray:  # fmt: skip
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, ...)``: triangular filters, shape (n_mels, 1 + n_fft // 2).

    The same values bit for bit, with ``norm`` "slaney" (each triangle scaled to unit area per Hz) or None (peak 1);
    other norms, and filterbanks with empty filters (librosa warns about those), come from librosa itself.
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((int(n_mels), int(1 + n_fft // 2)), dtype=dtype)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_frequencies(int(n_mels) + 2, fmin=fmin, fmax=fmax, htk=htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(int(n_mels)):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    empty = not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0))
    if norm not in ("slaney", None) or empty:
        return _librosa_mel(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype)
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : int(n_mels) + 2] - mel_f[: int(n_mels)]))[:, np.newaxis]
    return weights


def _librosa_mel(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
                               dtype=dtype)  # fmt: skip
