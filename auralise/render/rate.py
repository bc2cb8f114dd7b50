"""Resynthesis at another sample rate than the model's: the song's own STFT at its own rate (``--output-sr``).

The model hears the song at its rate ``sr`` (e.g. 11025 Hz: nothing above 5.5 kHz). With ``--output-sr original``
(the file's rate) or ``N`` Hz, auralise decodes the song again at that rate ``R``, takes its STFT with the model's
window and hop *in seconds* (``n_fft * R / sr`` and ``hop * R / sr`` samples, rounded), and carries each feature's
grid (``G``, on the model's STFT grid: frequency ``k * sr / n_fft``, frame time ``j * hop / sr``) onto that STFT's
grid by linear interpolation in Hz and in seconds (:class:`RateGrid`). Mask and contrast masks are then made there
(partition masks are made on the model's grid and carried) and multiply the song's own STFT, with its own phase, so
the WAV keeps the recording's full band.

Above the model's band (between ``sr / 2`` and ``R / 2``) the model heard nothing. ``--above-band`` says what the
mask is there: ``extend`` (default) is, frame by frame, the mean of the feature's mask over the model's top octave
(``sr / 4`` to ``sr / 2``), so a feature that responds at the top of the band the model heard lets the song's high
band through with it, as strongly and when it does (a bass feature keeps it closed);
``silent`` makes the mask zero there (only what the model heard). Below ``R / 2`` nothing changes.
``--output-sr model`` (default) is Choi's resynthesis on the model's own grid, unchanged.
"""

from __future__ import annotations

import numpy as np

from auralise.choices import ABOVE_BANDS, OUTPUT_RATES
from auralise.errors import BadParameterError, check_choice
from auralise.frontends.base import Frontend

__all__ = ["RateGrid", "parse_output_sr", "output_rate"]


def parse_output_sr(value: str | int) -> str | int:
    """``"model"``, ``"original"`` or a rate in Hz (8000 to 384000) from a ``--output-sr`` value."""
    if isinstance(value, str) and value in OUTPUT_RATES:
        return value
    text = str(value).strip()
    if not text.isdigit() or not 8000 <= int(text) <= 384000:
        raise BadParameterError(f"--output-sr must be model, original or a rate in Hz (8000-384000), got {value!r}")
    return int(text)


class RateGrid:
    """The model's STFT grid carried onto an STFT at rate ``rate`` (same window and hop in seconds).

    Parameters
    ----------
    frontend : Frontend
        The model's front-end (its grid: ``frontend.n_freq`` bins, frames every ``hop_length / sr`` seconds).
    rate : int
        The output rate in Hz.
    above_band : {"extend", "silent"}
        The mask above the model's Nyquist frequency (see the module docstring).

    Examples
    --------
    >>> fe = Frontend(sr=11025, n_fft=512, hop_length=256)
    >>> g = RateGrid(fe, 44100, above_band="silent")
    >>> g.out.n_fft, g.out.hop_length
    (2048, 1024)
    """

    def __init__(self, frontend: Frontend, rate: int, *, above_band: str = "extend"):
        check_choice(above_band, ABOVE_BANDS, "--above-band")
        self.model, self.rate, self.above_band = frontend, int(rate), above_band
        scale = self.rate / frontend.sr
        n_fft = max(2, int(round(frontend.n_fft * scale)))
        win = frontend.win_length or frontend.n_fft
        self.out = Frontend(sr=self.rate, n_fft=n_fft, hop_length=max(1, int(round(frontend.hop_length * scale))),
                            win_length=min(n_fft, max(1, int(round(win * scale)))), window=frontend.window,
                            center=frontend.center, pad_mode=frontend.pad_mode, compression="linear")  # fmt: skip

    def carry(self, G: np.ndarray, n_frames: int) -> np.ndarray:
        """Grids (K, F, T) on the model's STFT grid -> (K, F_out, n_frames) on the output STFT's grid, float32."""
        G = np.asarray(G, dtype=np.float32)
        K, F, T = G.shape
        src_hz = np.arange(F) * self.model.sr / self.model.n_fft
        out_hz = np.arange(self.out.n_freq) * self.rate / self.out.n_fft
        src_t = np.arange(T) * self.model.hop_length / self.model.sr
        out_t = np.arange(n_frames) * self.out.hop_length / self.rate
        fi = _weights(src_hz, out_hz)  # (F_out, F): two neighbours per row
        above = out_hz > src_hz[-1]
        fi[above] = 0.0
        if self.above_band == "extend":  # the mean of the model's top octave, frame by frame
            top = src_hz >= src_hz[-1] / 2
            fi[np.ix_(above, top)] = 1.0 / top.sum()
        lo, frac = _positions(src_t, out_t)
        out = np.empty((K, self.out.n_freq, n_frames), dtype=np.float32)
        for k in range(K):  # one feature at a time: (F_out, F) @ (F, T), then the frames
            on_freq = fi @ G[k]
            out[k] = on_freq[:, lo] * (1.0 - frac) + on_freq[:, np.minimum(lo + 1, T - 1)] * frac
        return out

    def reference(self, reference: np.ndarray | None, n_frames: int) -> np.ndarray | None:
        """A layer's reference (F, T), e.g. its mean mask, carried like :meth:`carry` (None stays None)."""
        return None if reference is None else self.carry(reference[None], n_frames)[0]


def _positions(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``dst`` point, the ``src`` index below it and the fraction to the next (ends clamp), float32."""
    if len(src) == 1:
        return np.zeros(len(dst), dtype=int), np.zeros(len(dst), dtype=np.float32)
    pos = np.clip(np.interp(dst, src, np.arange(len(src), dtype=np.float64)), 0, len(src) - 1)
    lo = np.minimum(np.floor(pos).astype(int), len(src) - 2)
    return lo, (pos - lo).astype(np.float32)


def _weights(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Linear-interpolation matrix (len(dst), len(src)): points past either end take the end value."""
    lo, frac = _positions(src, dst)
    W = np.zeros((len(dst), len(src)), dtype=np.float32)
    W[np.arange(len(dst)), lo] = 1.0 - frac
    if len(src) > 1:
        W[np.arange(len(dst)), lo + 1] += frac
    return W


def output_rate(frontend: Frontend, output_sr: str | int, file_sr: int) -> int:
    """The WAVs' rate in Hz for ``--output-sr`` (``"model"``, ``"original"`` or Hz) and a file at ``file_sr``.

    Refuses a rate other than the model's for front-ends whose projection is audio itself (nothing to carry).
    """
    rate = frontend.sr if output_sr == "model" else int(file_sr) if output_sr == "original" else int(output_sr)
    if rate != frontend.sr and frontend.projection_is_audio:
        raise BadParameterError(
            f"--output-sr {output_sr} carries a mask onto the song's STFT; a '{frontend.kind}' front-end's projection "
            "is audio at the model's rate: use --output-sr model"
        )
    return rate
