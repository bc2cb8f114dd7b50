"""The STFT grid every front-end shares: analysis, synthesis, its axes, and lengths in samples and frames.

Whatever the model reads (a spectrogram, mel bands, a CQT, the samples), auralise keeps the song's complex STFT
``X``: it supplies the phase (and, in mask mode, the magnitude) for resynthesis, and it is the grid that
projections are drawn and resynthesised on. :class:`StftGrid` is the part of :class:`~auralise.frontends.Frontend`
that computes it and measures it; it reads the front-end's ``sr``, ``n_fft``, ``hop_length``, ``win_length``,
``window``, ``center`` and ``pad_mode``.
"""

from __future__ import annotations

import numpy as np

from auralise.errors import BadAudioError
from auralise.frontends.windows import analysis_window

__all__ = ["StftGrid", "short_time_fourier"]

FRAMES_PER_BLOCK = 4096  # frames windowed and transformed at once (a few tens of MB of float64)


def short_time_fourier(y: np.ndarray, *, n_fft: int, hop_length: int, win_length: int | None, window: str,
                       center: bool, pad_mode: str) -> np.ndarray:  # fmt: skip
    """``librosa.stft(y, ..., dtype=np.complex64)`` of float32 ``y`` (..., n), bit for bit, without importing
    librosa (about 0.5 s) or ``scipy.signal``: the window (float64, centred in ``n_fft``) times each frame of the
    (padded) signal, ``numpy.fft.rfft`` of each, cast to complex64, in blocks of frames. (..., F, T).
    ``tests/test_frontends.py`` checks the identity."""
    win_length = n_fft if win_length is None else win_length
    w = analysis_window(window, win_length)
    left = (n_fft - win_length) // 2
    w = np.pad(w, (left, n_fft - win_length - left))  # librosa.util.pad_center
    if center:
        y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(n_fft // 2, n_fft // 2)], mode=pad_mode)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[..., ::hop_length, :]  # (..., T, n_fft)
    X = np.empty((*y.shape[:-1], n_fft // 2 + 1, frames.shape[-2]), dtype=np.complex64)
    for a in range(0, frames.shape[-2], FRAMES_PER_BLOCK):
        block = frames[..., a : a + FRAMES_PER_BLOCK, :]
        X[..., a : a + block.shape[-2]] = np.swapaxes(np.fft.rfft(w * block, axis=-1), -1, -2)
    return X


class StftGrid:
    """STFT and inverse STFT with a front-end's parameters, the grid's axes, and lengths (a mixin of ``Frontend``).

    A front-end whose model input is not framed like the STFT (the samples themselves) overrides the lengths:
    :meth:`n_frames`, :meth:`min_samples_for` and :meth:`field_samples`.
    """

    sr: int
    n_fft: int
    hop_length: int
    win_length: int | None
    window: str
    center: bool
    pad_mode: str

    @property
    def n_freq(self) -> int:
        """Number of STFT frequency bins ``F = n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def min_samples(self) -> int:
        """Shortest audio (in samples at ``sr``) worth analysing: one full window, ``n_fft``."""
        return self.n_fft

    def stft(self, y: np.ndarray) -> np.ndarray:
        """Complex STFT with this front-end's parameters.

        Parameters
        ----------
        y : np.ndarray, shape (n,) or (..., n)
            Audio at ``sr``.

        Returns
        -------
        X : np.ndarray, shape (F, T) or (..., F, T), complex64
            ``F = n_fft // 2 + 1``; ``T = n_frames(n)``.

        Raises
        ------
        BadAudioError
            The audio is shorter than one window (``center=False``) or has no samples.
        """
        y = np.asarray(y, dtype=np.float32)
        n = y.shape[-1] if y.ndim else 0
        if n == 0:
            raise BadAudioError("the audio has no samples; give a non-empty audio file")
        if not self.center and n < self.n_fft:
            raise BadAudioError(
                f"the audio is too short for the front-end: {n} samples, at least one window "
                f"({self.n_fft} samples, {self.n_fft / self.sr:.3f} s) is needed"
            )
        return short_time_fourier(y, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                       window=self.window, center=self.center, pad_mode=self.pad_mode)  # fmt: skip

    def istft(self, X: np.ndarray, length: int) -> np.ndarray:
        """Inverse STFT (overlap-add with window-sum normalisation): ``librosa.istft``'s numbers, faster
        (:mod:`auralise.frontends.synthesis`).

        Parameters
        ----------
        X : np.ndarray, shape (..., F, T), complex
            STFT on this front-end's grid.
        length : int
            Number of output samples (padded with zeros or trimmed to exactly this).

        Returns
        -------
        y : np.ndarray, shape (..., length), float32
            With ``center=False``, samples no frame covers with a non-zero window weight (sample 0 for a
            periodic Hann window, and everything after the last full frame) are zero.
        """
        from auralise.frontends.synthesis import istft

        return istft(X, hop_length=self.hop_length, n_fft=self.n_fft, win_length=self.win_length, window=self.window,
                     center=self.center, length=int(length))  # fmt: skip

    # ------------------------------------------------------------------ axes and lengths
    def frame_times(self, T: int) -> np.ndarray:
        """Centre time of each of ``T`` frames in seconds, shape (T,).

        ``t * hop / sr`` when centred, else ``(t * hop + n_fft // 2) / sr``.
        """
        offset = 0 if self.center else self.n_fft // 2
        return (np.arange(int(T)) * self.hop_length + offset) / float(self.sr)

    def bin_freqs(self) -> np.ndarray:
        """Centre frequency of each STFT bin in Hz, shape (F,): ``k * sr / n_fft``."""
        return np.fft.rfftfreq(self.n_fft, d=1.0 / self.sr)

    def n_frames(self, n_samples: int) -> int:
        """Length of the model input's time axis for ``n_samples`` samples: STFT frames (as librosa frames them)."""
        n = int(n_samples)
        if n <= 0:
            return 0
        padded = n + 2 * (self.n_fft // 2) if self.center else n
        if padded < self.n_fft:
            return 0
        return 1 + (padded - self.n_fft) // self.hop_length

    def frames_for(self, seconds: float) -> int:
        """:meth:`n_frames` of ``seconds`` of audio (``round(seconds * sr)`` samples)."""
        return self.n_frames(int(round(float(seconds) * self.sr)))

    def min_samples_for(self, rf_frames: int) -> int:
        """Fewest samples whose model input has ``rf_frames`` frames (so one unit of a layer whose receptive field
        spans ``rf_frames`` frames sees real audio), and at least what :meth:`stft` accepts."""
        extra = 0 if self.center else self.n_fft
        return max(self.n_fft if not self.center else 1, (rf_frames - 1) * self.hop_length + extra)

    def field_samples(self, frames: int) -> int:
        """Audio samples that ``frames`` model-input frames span: the windows of the first and last frame."""
        return (frames - 1) * self.hop_length + (self.win_length or self.n_fft)

    def field_seconds(self, frames: int, bins: int) -> float:
        """Seconds of audio a unit sees that spans ``frames`` model-input frames and ``bins`` input bins:
        ``field_samples(frames) / sr`` (a framed front-end's bins are samples of a frame, and count too)."""
        return self.field_samples(frames) / self.sr

    def frame_seconds(self, frame: float) -> float:
        """Seconds of (fractional) model-input frame ``frame``: its centre, as :meth:`frame_times` places it."""
        offset = 0 if self.center else self.n_fft // 2
        return (float(frame) * self.hop_length + offset) / float(self.sr)

    def field_hz(self, bins: int) -> float | None:
        """Hz that ``bins`` model-input bins span, or None where input bins have no single width (mel, CQT)."""
        return None

    def field_semitones(self, bins: int) -> float | None:
        """Semitones that ``bins`` model-input bins span where bins are equally wide in pitch (the harmonic CQT's),
        else None."""
        return None
