"""The ``framed`` front-end: the model reads short frames of the samples, each normalised on its own (CREPE).

A pitch tracker such as CREPE (Kim et al., 2018) sees a song as a batch of 1024-sample frames of 16 kHz audio, one
every 10 ms, each scaled to zero mean and unit variance. Here the frames are laid out as the columns of one
model input, shape (1, 1, frame_length, T) in the "BCFT" layout: the frame's samples run along the axis that is
frequency for a spectrogram, the frames along time. Convolutions and poolings whose kernels are (k, 1) (all of
CREPE's) then treat every column on its own, so the whole song is one long input that the engine can cut along
time like any other, and the result equals the model run on the batch of frames.

Going back, a projection of the same shape becomes audio (:meth:`FramedFrontend.projected_audio`): each column is
multiplied by its frame's scale (the standard deviation the forward pass divided by) and the columns are
overlap-added at the hop, each sample divided by the number of frames that cover it. The frame's mean, which the
forward pass subtracted, is *not* added back: it is the song's own offset in that frame, not something a feature
responds to (a projection's columns keep their own means). Its STFT magnitude stands for it on the STFT grid, for
pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from auralise.choices import FRAME_NORMS
from auralise.errors import BadModelError, BadParameterError
from auralise.frontends import checks
from auralise.frontends.arrays import fit_frames, is_torch
from auralise.frontends.base import Frontend
from auralise.frontends.checks import bad, check_range

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["FramedFrontend", "STD_FLOOR"]

STD_FLOOR = 1e-10  # torchcrepe's floor of a frame's standard deviation: a silent frame stays zero
_BLOCK = 2048  # frames normalised at a time (bounds the float64 temporaries)


@dataclass(frozen=True, kw_only=True)
class FramedFrontend(Frontend):
    """Frames of the samples as model input: shape (1, 1, frame_length, T), one column per frame.

    Frame ``t`` holds samples ``t * hop_length - frame_length // 2`` onwards (``center``: the audio is padded by
    ``frame_length // 2`` on both sides with ``pad_mode``, as torchcrepe's ``pad=True`` does with zeros), so its
    centre is at ``t * hop_length`` and there are ``1 + n // hop_length`` frames, as many as the song's centred
    STFT has (without ``center``: frames start at 0, ``1 + (n - frame_length) // hop_length`` of them, and
    ``n_fft`` must equal ``frame_length``). The STFT (``n_fft``, ``window``) only makes the pictures and the grid.

    Parameters
    ----------
    frame_length : int
        Samples per frame (1024 for CREPE), 16..65536, at least ``hop_length``, of the same parity as ``n_fft``.
    frame_norm : {"standard", "none"}
        "standard": each frame minus its mean, divided by ``max(std, 1e-10)`` with the Bessel-corrected standard
        deviation (``torch.std``'s default), exactly as torchcrepe's ``preprocess``; "none": the frames as they are.

    Needs layout "BCFT", compression "linear" and scale 1. The shared fields are
    :class:`~auralise.frontends.Frontend`'s (``hop_length`` is the hop between frames).

    Examples
    --------
    >>> fe = Frontend(kind="framed", sr=16000, n_fft=1024, hop_length=160)
    >>> fe.n_frames(16000), fe.input_shape(101), fe.projection_is_audio
    (101, (1, 1024, 101), True)
    >>> fe.describe()
    'FRAMED 16000 Hz, n_fft 1024, hop 160, 1024-sample frames (64 ms), standard per frame, linear magnitude, BCFT'
    """

    kind: str = "framed"
    frame_length: int = 1024
    frame_norm: str = "standard"

    projection_is_audio: ClassVar[bool] = True

    def _check(self) -> None:
        checks.positive_int(self, "frame_length")
        check_range("frame_length", self.frame_length, 16, 65536)
        checks.one_of(self, "frame_norm", FRAME_NORMS)
        if self.layout != "BCFT" or self.compression != "linear" or self.scale != 1.0:
            raise BadModelError(
                "a 'framed' front-end feeds frames of the samples, shape (1, 1, frame_length, T): it needs layout "
                "'BCFT', compression 'linear' and scale 1"
            )
        if self.hop_length > self.frame_length:
            raise bad("hop_length", f"at most frame_length ({self.frame_length}) so frames cover the song",
                      self.hop_length)  # fmt: skip
        if self.center and self.frame_length % 2 != self.n_fft % 2:
            raise bad("frame_length", f"even or odd as n_fft ({self.n_fft}) is, so frames and STFT frames agree",
                      self.frame_length)  # fmt: skip
        if not self.center and self.frame_length != self.n_fft:
            raise bad("frame_length", f"n_fft ({self.n_fft}) when center is false, so frames and STFT frames agree",
                      self.frame_length)  # fmt: skip

    def _describe_input(self) -> list[str]:
        ms = 1000.0 * self.frame_length / self.sr
        return [f"{self.frame_length}-sample frames ({ms:g} ms)", f"{self.frame_norm} per frame"]

    # ------------------------------------------------------------------ audio -> frames
    @property
    def n_input_freq(self) -> int:
        """``frame_length``: a column holds one frame's samples."""
        return self.frame_length

    def raw_frames(self, y: np.ndarray) -> np.ndarray:
        """The frames before normalisation, shape (T, frame_length), a read-only view (of a padded copy).

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Audio at ``sr``.
        """
        y = np.asarray(y, dtype=np.float32)
        T = self.n_frames(len(y))
        if T < 1:
            raise BadParameterError(f"the audio is too short for a {self.frame_length}-sample frame: {len(y)} samples")
        if self.center:
            half = self.frame_length // 2
            y = np.pad(y, (half, half), mode=self.pad_mode)
        windows = np.lib.stride_tricks.sliding_window_view(y, self.frame_length)
        return windows[:: self.hop_length][:T]

    def frame_stats(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each frame's mean and the scale it is divided by, both shape (T,), float64.

        "standard": the mean and ``max(std, 1e-10)`` (Bessel-corrected ``std``); "none": zeros and ones.
        """
        frames = self.raw_frames(y)
        T = len(frames)
        if self.frame_norm == "none":
            return np.zeros(T), np.ones(T)
        mean, scale = np.empty(T), np.empty(T)
        for i in range(0, T, _BLOCK):
            block = frames[i : i + _BLOCK].astype(np.float64)
            mean[i : i + _BLOCK] = block.mean(axis=1)
            scale[i : i + _BLOCK] = block.std(axis=1, ddof=1) if self.frame_length > 1 else 0.0
        return mean, np.maximum(scale, STD_FLOOR)

    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """The normalised frames as columns, shape (frame_length, T), float32 (``X`` only checks ``T``).

        Computed in float64 and rounded once: ``(frame - mean) / max(std, 1e-10)`` for "standard".
        """
        frames = self.raw_frames(self._need_audio(y))
        mean, scale = self.frame_stats(y)
        T = len(frames)
        if X is not None and np.shape(X)[-1] != T:
            raise BadParameterError(f"expected an STFT with {T} frames for this audio, got {np.shape(X)}")
        out = np.empty((self.frame_length, T), dtype=np.float32)
        for i in range(0, T, _BLOCK):
            part = slice(i, i + _BLOCK)
            out[:, part] = ((frames[part].astype(np.float64) - mean[part, None]) / scale[part, None]).T
        return out

    def input_freqs(self) -> np.ndarray:
        """:meth:`bin_freqs`, the axis of the STFT grid that stands for the frames in pictures."""
        return np.asarray(self.bin_freqs(), dtype=np.float64)

    # ------------------------------------------------------------------ frames -> audio
    def overlap_add(self, D: np.ndarray | torch.Tensor, y: np.ndarray | None = None, *, add_mean: bool = False):
        """Model-shaped frames (K, 1, frame_length, T) -> audio (K, n) float32, the normalisation undone.

        Each column is multiplied by its frame's scale (:meth:`frame_stats` of ``y``; 1 without ``y``: the
        frames as the model sees them) and, with ``add_mean``, its mean is added; the columns are overlap-added at
        ``hop_length`` and each sample is divided by the number of frames that cover it. With ``center`` the
        padding is dropped: ``n = (T - 1) * hop_length + frame_length - frame_length // 2`` samples from the song's
        start (otherwise ``(T - 1) * hop_length + frame_length``). The frames of a song, overlap-added with
        ``add_mean``, give the song back.
        """
        G = self._unlayout(D)  # (K, L, T)
        K, L, T = G.shape
        if y is not None:
            mean, scale = self.frame_stats(y)
            if len(scale) != T:
                raise BadParameterError(f"the projection has {T} frames, the audio {len(scale)}; give the song's audio")
        else:
            mean, scale = np.zeros(T), np.ones(T)
        hop = self.hop_length
        total = (T - 1) * hop + L
        acc = np.zeros((K, total), dtype=np.float64)
        count = np.zeros(total, dtype=np.float64)
        step = -(-L // hop)  # frames t, t + step, ... never overlap: add each such group with one strided view
        for q in range(min(step, T)):
            cols = np.arange(q, T, step)
            view = np.lib.stride_tricks.as_strided(
                acc[:, q * hop :],
                shape=(K, len(cols), L),
                strides=(acc.strides[0], step * hop * acc.itemsize, acc.itemsize),
                writeable=True,
            )
            for i in range(0, len(cols), _BLOCK):  # bounded float64 temporaries
                part = cols[i : i + _BLOCK]
                frames = G[:, :, part].astype(np.float64) * scale[part]
                view[:, i : i + _BLOCK] += (frames + mean[part] if add_mean else frames).transpose(0, 2, 1)
            cview = np.lib.stride_tricks.as_strided(
                count[q * hop :],
                shape=(len(cols), L),
                strides=(step * hop * count.itemsize, count.itemsize),
                writeable=True,
            )
            cview += 1.0
        audio = acc / np.maximum(count, 1.0)
        start = self.frame_length // 2 if self.center else 0
        return np.ascontiguousarray(audio[:, start:], dtype=np.float32)

    def projected_audio(self, D: np.ndarray | torch.Tensor, *, y: np.ndarray | None = None) -> np.ndarray:
        """The projections (K, 1, frame_length, T) as audio (K, n) float32: :meth:`overlap_add` without the mean.

        With ``y`` (the song the projections were made on) every frame is scaled back to the song's level, so a
        quiet passage stays quiet; without it the frames keep the unit variance the model saw.
        """
        return self.overlap_add(D, y)

    def to_grid(self, D: np.ndarray | torch.Tensor, *, y: np.ndarray | None = None) -> np.ndarray:
        """The STFT magnitude of :meth:`projected_audio` (with ``y`` as there), (K, 1, L, T) -> (K, F, T) float32."""
        T = int(D.shape[-1]) if is_torch(D) else np.shape(D)[-1]
        audio = self.projected_audio(D, y=y)
        return np.stack([fit_frames(np.abs(self.stft(a)), T) for a in audio]).astype(np.float32)

    def to_stft_magnitude(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """:meth:`to_grid` (without the song: the frames at the model's scale), shape (K, F, T), float32."""
        return self.to_grid(D)

    def grid_matrix(self) -> np.ndarray:
        """Not defined: a frame's samples have no frequency axis to map (:meth:`to_grid` takes an STFT)."""
        raise BadParameterError("a 'framed' front-end's input has no frequency axis; to_grid takes its STFT")

    def grid_magnitude(self, G: np.ndarray) -> np.ndarray:
        """``G`` as float32 (:meth:`to_grid` output already is a magnitude: compression is linear)."""
        return np.asarray(self.decompress(np.asarray(G, dtype=np.float32)), dtype=np.float32)

    # ------------------------------------------------------------------ lengths
    def n_frames(self, n_samples: int) -> int:
        """Frames of ``n_samples`` samples: ``1 + n // hop`` when centred (any ``n >= 1``), else
        ``1 + (n - frame_length) // hop`` (0 when shorter than a frame)."""
        n = int(n_samples)
        if n <= 0:
            return 0
        padded = n + 2 * (self.frame_length // 2) if self.center else n
        return 0 if padded < self.frame_length else 1 + (padded - self.frame_length) // self.hop_length

    def min_samples_for(self, rf_frames: int) -> int:
        """Fewest samples with ``rf_frames`` frames (at least one full frame when not centred)."""
        if self.center:
            return max(1, (rf_frames - 1) * self.hop_length)
        return self.frame_length + max(rf_frames - 1, 0) * self.hop_length

    def field_samples(self, frames: int) -> int:
        """Samples that ``frames`` consecutive frames span: ``(frames - 1) * hop + frame_length``."""
        return (frames - 1) * self.hop_length + self.frame_length

    def field_seconds(self, frames: int, bins: int) -> float:
        """Seconds of audio a unit sees when it spans ``frames`` frames and ``bins`` samples of each:
        ``((frames - 1) * hop + bins) / sr`` (a unit of CREPE's layer 1 sees 512 samples of one frame, 32 ms)."""
        return ((frames - 1) * self.hop_length + min(bins, self.frame_length)) / self.sr
