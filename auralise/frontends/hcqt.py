"""The ``hcqt`` front-end: a harmonic constant-Q transform, computed exactly as Basic Pitch computes it.

Basic Pitch (Bittner et al., ICASSP 2022; ``basic-pitch`` 0.4.0, ``basic_pitch/models.py``) reads 22050 Hz audio
through a graph that begins with a CQT and ends in three conv heads. This front-end is everything before the first
convolution, so that the model input is the tensor the first conv sees (the natural place to seed a deconvnet from
and to land in):

1. **CQT** (``basic_pitch/layers/nnaudio.py``, a TensorFlow port of nnAudio's ``CQT2010v2``): one octave of 36
   complex kernels (Hann-windowed, L1-normalised, 256 taps at 22050 Hz) applied with hop 256 to the audio and, with
   hop halved each time, to eight successive 2x decimations of it (a 256-tap ``firwin2`` low-pass, zero padding of
   127, stride 2), each level reflect-padded by 128 samples; the 9 x 36 bins are cut to the top 309 (27.5 Hz to
   just below 11025 Hz, 3 bins per semitone) and scaled by ``sqrt(filter length)``. No early downsampling happens
   for these parameters. Frame ``t`` is centred on sample ``t * 256``, like the STFT grid's frames.
2. **Normalised log** (``signal.NormalizedLog``): ``10 log10(|C|**2 + 1e-10)``, minus its minimum, over its maximum,
   over the whole input (Basic Pitch's input is one 2-second window; here it is the whole analysed excerpt, so a
   song's input equals Basic Pitch's only when the excerpt is one of its windows).
3. **Input batch norm**, frozen: one channel, so an affine map ``gain * v + offset`` (:attr:`input_gain`,
   :attr:`input_offset`, from the trained moving statistics at import).
4. **Harmonic stacking** (``nn.HarmonicStacking``): for each harmonic ``h`` the CQT shifted down by
   ``round(36 log2 h)`` bins (zeros shifted in), cut to the first 264 bins (the 88 piano keys): channel ``c`` bin ``k``
   is base bin ``k + shift_c``.

The model input is ``(1, H, T, 264)`` (layout "BCTF" with ``H`` = number of harmonics as channels). A projection
``D`` of that shape goes back by the transpose of step 4 — each harmonic channel un-shifted onto the base CQT bins
and the channels summed — then onto the song's STFT grid by the ``cqt`` kind's log-frequency interpolation, where
resynthesis uses the song's own phase.

Receptive fields (``auralise inspect``) count model-input frames (hop 256) and bins (3 per semitone: the "RF st"
column); the ms column adds one STFT window, not the CQT's own filters, which are long at low pitches
(``Q sr / f`` samples, Q = 51.4: 1.9 s at 27.5 Hz, 0.12 s at 440 Hz).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadAudioError, BadModelError, BadParameterError
from auralise.frontends import checks
from auralise.frontends.arrays import fit_frames, is_torch
from auralise.frontends.base import Frontend
from auralise.frontends.checks import bad, check_range
from auralise.frontends.cqt import _grid_matrix

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["HcqtFrontend", "basic_pitch_cqt", "normalized_log", "harmonic_shifts"]

_LOWPASS_TAPS = 256  # basic_pitch.layers.nnaudio.create_lowpass_filter's kernel_length
_NOMINAL_DB_RANGE = 80.0  # dB that the normalised log's 0..1 stands for when a projection becomes a magnitude
_MAX_HARMONICS = 16


@dataclass(frozen=True, kw_only=True)
class HcqtFrontend(Frontend):
    """Basic Pitch's harmonic CQT as model input: ``(1, H, T, n_output_bins)``, one channel per harmonic.

    Parameters
    ----------
    fmin : float
        Lowest CQT bin in Hz (Basic Pitch: 27.5, the piano's A0).
    n_bins : int
        Bins of the base CQT (Basic Pitch: 309 = 103 semitones x 3), 1..1024.
    bins_per_octave : int
        Bins per octave (Basic Pitch: 36), 12..120, a multiple of 12.
    harmonics : tuple of float
        The harmonics stacked as channels, in channel order (Basic Pitch: 0.5, 1, 2, ..., 7).
    n_output_bins : int
        Bins kept per harmonic channel, the model input's frequency axis (Basic Pitch: 264 = 88 keys x 3).
    input_gain, input_offset : float
        The trained input batch norm as an affine map of the normalised log (identity by default).

    ``sr`` is the CQT's rate (22050); ``n_fft``/``hop_length`` are the STFT grid's (``hop_length`` is also the
    CQT's hop and must be a multiple of ``2 ** (octaves - 1)``). ``layout`` must be "BCTF", ``compression``
    "linear" (the normalised log is this kind's own) and ``center`` true.

    Examples
    --------
    >>> fe = Frontend(kind="hcqt", sr=22050, n_fft=2048, hop_length=256, layout="BCTF")
    >>> fe.input_shape(10), harmonic_shifts(fe)
    ((8, 10, 264), (-36, 0, 36, 57, 72, 84, 93, 101))
    """

    kind: str = "hcqt"
    layout: str = "BCTF"
    fmin: float = 27.5
    n_bins: int = 309
    bins_per_octave: int = 36
    harmonics: tuple = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    n_output_bins: int = 264
    input_gain: float = 1.0
    input_offset: float = 0.0

    def _check(self) -> None:
        for key in ("n_bins", "bins_per_octave", "n_output_bins"):
            checks.positive_int(self, key)
        check_range("n_bins", self.n_bins)
        if not 12 <= self.bins_per_octave <= 120 or self.bins_per_octave % 12:
            raise bad("bins_per_octave", "a multiple of 12 in 12..120", self.bins_per_octave)
        if not checks.is_number(self.fmin) or not 1.0 <= self.fmin < self.sr / 4.0:
            raise bad("fmin", f"a frequency in 1..{self.sr / 4:g} Hz", self.fmin)
        checks.set_field(self, "fmin", float(self.fmin))
        h = self.harmonics
        if not isinstance(h, (list, tuple)) or not 0 < len(h) <= _MAX_HARMONICS:
            raise bad("harmonics", f"a list of 1..{_MAX_HARMONICS} positive numbers", h)
        if not all(checks.is_number(v) and math.isfinite(v) and 0.0 < v <= 64.0 for v in h):
            raise bad("harmonics", "positive numbers up to 64", h)
        checks.set_field(self, "harmonics", tuple(float(v) for v in h))
        if self.n_output_bins > self.n_bins:
            raise bad("n_output_bins", f"at most n_bins ({self.n_bins})", self.n_output_bins)
        for key in ("input_gain", "input_offset"):
            v = getattr(self, key)
            if not checks.is_number(v) or not math.isfinite(v) or abs(v) > 1e6:
                raise bad(key, "a finite number of magnitude at most 1e6", v)
            checks.set_field(self, key, float(v))
        top = self.fmin * 2.0 ** ((self.n_bins - 1) / self.bins_per_octave)
        if top >= self.sr / 2.0:
            raise BadModelError(
                f"an 'hcqt' front-end's top bin ({top:.0f} Hz) must stay below the Nyquist frequency "
                f"{self.sr / 2:g} Hz; use fewer bins"
            )
        if self.hop_length % (2 ** (_n_octaves(self) - 1)):
            raise bad(
                "hop_length", f"a multiple of {2 ** (_n_octaves(self) - 1)} (one per CQT octave)", self.hop_length
            )
        if self.layout != "BCTF" or self.compression != "linear" or not self.center:
            raise BadModelError(
                "an 'hcqt' front-end feeds (1, harmonics, T, bins): it needs layout 'BCTF', compression 'linear' "
                "(its normalised log is its own) and center true"
            )

    # ------------------------------------------------------------------ shape and description
    @property
    def n_input_freq(self) -> int:
        """``n_output_bins``: the frequency axis of each harmonic channel."""
        return self.n_output_bins

    def input_shape(self, T: int) -> tuple[int, ...]:
        """``(H, T, n_output_bins)``: the harmonics are the channels."""
        return (len(self.harmonics), int(T), self.n_output_bins)

    def _describe_input(self) -> list[str]:
        h = ", ".join(f"{v:g}" for v in self.harmonics)
        return [
            f"harmonics {h} of {self.n_output_bins} bins from {self.fmin:.2f} Hz, {self.bins_per_octave}/octave "
            f"({self.n_bins}-bin CQT, normalised log power)"
        ]

    def describe(self) -> str:
        """One line, e.g. ``"HCQT 22050 Hz, n_fft 2048, hop 256, harmonics 0.5, 1, ... 7 of 264 bins ..., BCTF"``."""
        return super().describe().replace(", linear magnitude", "")

    def input_freqs(self) -> np.ndarray:
        """Centre frequencies of a harmonic channel's bins in Hz (those of the fundamental), shape (n_output_bins,)."""
        return self.fmin * 2.0 ** (np.arange(self.n_output_bins) / self.bins_per_octave)

    def field_hz(self, bins: int) -> float | None:
        """None: constant-Q bins have no single width (:meth:`field_semitones` gives the span)."""
        return None

    def field_semitones(self, bins: int) -> float:
        """Semitones that ``bins`` model-input bins span, in each harmonic channel."""
        return bins * 12.0 / self.bins_per_octave

    # ------------------------------------------------------------------ audio -> model input
    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """Basic Pitch's ``|CQT(y)|``, shape (n_bins, T), float32; ``T`` is ``X``'s frame count when given."""
        C = basic_pitch_cqt(self._need_audio(y), self)
        if X is not None:
            C = fit_frames(C, self._checked_stft(X).shape[1])
        return C

    def model_input(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> torch.Tensor:
        """The stacked, normalised harmonic CQT, shape (1, H, T, n_output_bins), float32.

        Parameters
        ----------
        X : np.ndarray, shape (F, T), complex, or None
            The STFT, for the frame count ``T`` (the CQT's own ``1 + n // hop`` when None).
        y : np.ndarray, shape (n,)
            The audio at ``sr``.
        """
        import torch

        v = normalized_log(self.input_spectrogram(X, y=y)) * self.input_gain + self.input_offset
        return torch.from_numpy(np.ascontiguousarray(stack_harmonics(v, self)[None]))

    # ------------------------------------------------------------------ projection -> STFT grid
    def _unlayout(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """(K, H, T, n_output_bins) -> (K, n_bins, T): each harmonic channel un-shifted onto the base bins, summed."""
        if is_torch(D):
            D = D.detach().to("cpu").float().numpy()
        D = np.asarray(D, dtype=np.float32)
        H = len(self.harmonics)
        if D.ndim != 4 or D.shape[1] != H or D.shape[3] != self.n_output_bins:
            raise BadParameterError(
                f"expected an array of shape (K, {H}, T, {self.n_output_bins}) for this 'hcqt' front-end, got {D.shape}"
            )
        base = np.zeros((D.shape[0], D.shape[2], self.n_bins), dtype=np.float32)
        for c, s in enumerate(harmonic_shifts(self)):
            lo, hi = max(0, -s), min(self.n_output_bins, self.n_bins - s)
            if lo < hi:
                base[:, :, lo + s : hi + s] += D[:, c, :, lo:hi]
        return base.transpose(0, 2, 1)

    def grid_matrix(self) -> np.ndarray:
        """Base CQT bins -> STFT bins, shape (F, n_bins): the ``cqt`` kind's log-frequency interpolation."""
        return _grid_matrix(self)

    def _input_weights(self) -> np.ndarray:
        """Ones over the base CQT bins (n_bins,): the normalised log keeps no absolute level to restore."""
        return np.ones(self.n_bins, dtype=np.float32)

    def decompress(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Model values -> magnitudes: the batch norm undone, then the normalised log read as a nominal 80 dB
        range below 1 (the song's own range is not kept), ``10 ** ((v - 1) * 80 / 20)``."""
        v = (values - self.input_offset) / self.input_gain
        scale = _NOMINAL_DB_RANGE / 20.0 * math.log(10.0)
        if is_torch(v):
            return (v - 1.0).mul(scale).exp()
        return np.exp((np.asarray(v, dtype=np.float64) - 1.0) * scale).astype(np.float32)


# ------------------------------------------------------------------------------------------ the computation


def harmonic_shifts(fe: HcqtFrontend) -> tuple[int, ...]:
    """Bins each harmonic channel is shifted by, ``round(bins_per_octave * log2(h))`` (HarmonicStacking's)."""
    return tuple(int(round(fe.bins_per_octave * math.log2(h))) for h in fe.harmonics)


def stack_harmonics(v: np.ndarray, fe: HcqtFrontend) -> np.ndarray:
    """Harmonic stacking: (n_bins, T) -> (H, T, n_output_bins) float32; channel c bin k = ``v[k + shift_c]`` (0 out
    of range)."""
    F, T = v.shape
    out = np.zeros((len(fe.harmonics), T, fe.n_output_bins), dtype=np.float32)
    for c, s in enumerate(harmonic_shifts(fe)):
        lo, hi = max(0, -s), min(fe.n_output_bins, F - s)
        if lo < hi:
            out[c, :, lo:hi] = v[lo + s : hi + s].T
    return out


def normalized_log(C: np.ndarray) -> np.ndarray:
    """Basic Pitch's ``NormalizedLog``: ``10 log10(C**2 + 1e-10)`` scaled to 0..1 over the whole array, float32."""
    p = 10.0 * np.log10(np.asarray(C, dtype=np.float64) ** 2 + 1e-10)
    p -= p.min()
    top = p.max()
    return (p / top if top > 0 else p).astype(np.float32)


def basic_pitch_cqt(y: np.ndarray, fe: HcqtFrontend) -> np.ndarray:
    """``|CQT(y)|`` as Basic Pitch's ``CQT2010v2`` computes it, shape (n_bins, 1 + n // hop_length), float32.

    Audio shorter than the reflect padding of the lowest octave needs is zero-padded at the end first (the frames
    it adds are cut off again).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono audio at ``fe.sr``.
    fe : HcqtFrontend
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise BadAudioError(f"an 'hcqt' front-end needs mono audio with samples, got shape {y.shape}")
    kr, ki, lengths = _kernels(fe.sr, fe.fmin, fe.n_bins, fe.bins_per_octave)
    lowpass = _lowpass()
    n_oct = _n_octaves(fe)
    T = 1 + y.size // fe.hop_length
    half = kr.shape[1] // 2
    need = (half + 1) * 2 ** (n_oct - 1)  # the lowest level must stay longer than its reflect padding
    x = np.pad(y, (0, max(0, need - y.size))).astype(np.float64)
    hop, octaves = fe.hop_length, []
    for level in range(n_oct):
        if level:
            x, hop = _decimate(x, lowpass), hop // 2
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, half, mode="reflect"), kr.shape[1])[::hop]
        octaves.insert(0, np.hypot(frames @ kr.T, frames @ ki.T)[:T].T)
    C = np.concatenate(octaves)[-fe.n_bins :] * np.sqrt(lengths)[:, None]
    return C.astype(np.float32)


def _decimate(x: np.ndarray, lowpass: np.ndarray) -> np.ndarray:
    """``downsampling_by_n(x, lowpass, 2)``: zero padding of (taps - 1) // 2 each side, correlation, stride 2."""
    from scipy.signal import oaconvolve

    pad = (lowpass.size - 1) // 2
    return oaconvolve(np.pad(x, pad), lowpass[::-1], mode="valid")[::2]


def _n_octaves(fe: HcqtFrontend) -> int:
    return -(-fe.n_bins // fe.bins_per_octave)


@functools.lru_cache(maxsize=1)
def _lowpass() -> np.ndarray:
    """The 2x decimation filter, ``create_lowpass_filter(0.5, 256, 0.001)`` rounded to float32 as in the graph."""
    from scipy.signal import firwin2

    band, width = 0.5, 0.001
    h = firwin2(_LOWPASS_TAPS, [0.0, band / (1 + width), band * (1 + width), 1.0], [1.0, 1.0, 0.0, 0.0])
    h = h.astype(np.float32).astype(np.float64)
    h.setflags(write=False)
    return h


@functools.lru_cache(maxsize=8)
def _kernels(sr: int, fmin: float, n_bins: int, bpo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top octave's kernels (real, imaginary parts; (bpo, n_fft) each, float32 values) and every bin's filter
    length ``ceil(Q sr / f)`` (n_bins,), as ``CQT2010v2.build`` and ``create_cqt_kernels`` make them."""
    from scipy.signal import get_window

    Q = 1.0 / (2.0 ** (1.0 / bpo) - 1.0)
    n_oct = -(-n_bins // bpo)
    rem = n_bins % bpo
    fmax_t = fmin * 2.0 ** (n_oct - 1) * 2.0 ** (((bpo if rem == 0 else rem) - 1) / bpo)
    fmin_t = fmax_t / 2.0 ** (1.0 - 1.0 / bpo)
    n_fft = 2 ** int(np.ceil(np.log2(np.ceil(Q * sr / fmin_t))))
    freqs = fmin_t * 2.0 ** (np.arange(bpo) / float(bpo))
    K = np.zeros((bpo, n_fft), dtype=np.complex64)
    for k, f in enumerate(freqs):
        n = np.ceil(Q * sr / f)
        start = int(np.ceil(n_fft / 2.0 - n / 2.0)) - int(n % 2)
        sig = get_window("hann", int(n), fftbins=True) * np.exp(np.r_[-n // 2 : n // 2] * 1j * 2 * np.pi * f / sr) / n
        K[k, start : start + int(n)] = sig / np.linalg.norm(sig, 1)
    lengths = np.ceil(Q * sr / (fmin * 2.0 ** (np.arange(n_bins) / float(bpo))))
    out = (K.real.astype(np.float64), K.imag.astype(np.float64), lengths)
    for a in out:
        a.setflags(write=False)
    return out
