"""The ``waveform`` front-end: the model reads the samples themselves, shape (1, 1, n).

Its time axis is samples, so a feature's projection *is* audio (:meth:`WaveformFrontend.projected_audio`); its STFT
magnitude stands for it on the STFT grid, for pictures. The STFT parameters only shape those pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from auralise.errors import BadModelError, BadParameterError
from auralise.frontends.base import Frontend

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["WaveformFrontend"]


@dataclass(frozen=True, kw_only=True)
class WaveformFrontend(Frontend):
    """The audio samples as model input: layout "BFT" with one channel, ``F_in = 1``, one frame per sample.

    Needs layout "BFT" and compression "linear"; no fields beyond the shared ones
    (:class:`~auralise.frontends.Frontend`).

    Examples
    --------
    >>> fe = Frontend(kind="waveform", sr=8000, n_fft=256, hop_length=64, layout="BFT")
    >>> fe.frames_for(1.0), fe.input_shape(100), fe.projection_is_audio
    (8000, (1, 100), True)
    """

    kind: str = "waveform"

    projection_is_audio: ClassVar[bool] = True

    def _check(self) -> None:
        if self.layout != "BFT" or self.compression != "linear":
            raise BadModelError(
                "a 'waveform' front-end feeds the samples themselves, shape (1, 1, n): it needs layout 'BFT' and "
                "compression 'linear'"
            )

    @property
    def n_input_freq(self) -> int:
        """1: the samples are one channel."""
        return 1

    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """The samples, shape (1, n), float32 (``X`` is ignored)."""
        return np.asarray(self._need_audio(y), dtype=np.float32)[None, :]

    def input_freqs(self) -> np.ndarray:
        """:meth:`bin_freqs`, the axis of the STFT grid that stands for the samples in pictures."""
        return np.asarray(self.bin_freqs(), dtype=np.float64)

    def grid_matrix(self) -> np.ndarray:
        """Not defined: the samples have no frequency axis to map (:meth:`to_grid` takes their STFT)."""
        raise BadParameterError("a 'waveform' front-end's input has no frequency axis; to_grid takes its STFT")

    def to_grid(self, D: np.ndarray | torch.Tensor, *, y: np.ndarray | None = None) -> np.ndarray:
        """The STFT magnitude of each projection, (K, 1, n) -> (K, F, T) float32: the projection is audio (``y``,
        the song, is not needed)."""
        return np.stack([np.abs(self.stft(g[0])) for g in self._unlayout(D)]).astype(np.float32)

    def to_stft_magnitude(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """:meth:`to_grid`: the projections' STFT magnitudes, shape (K, F, T), float32."""
        return self.to_grid(D)

    def grid_magnitude(self, G: np.ndarray) -> np.ndarray:
        """``decompress(G)``, float32 (:meth:`to_grid` output already is a magnitude: compression is linear)."""
        return np.asarray(self.decompress(np.asarray(G, dtype=np.float32)), dtype=np.float32)

    def projected_audio(self, D: np.ndarray | torch.Tensor, *, y: np.ndarray | None = None) -> np.ndarray:
        """The projections, model-shaped (K, 1, n), as audio (K, n) float32 (``y``, the song, is not needed)."""
        return np.ascontiguousarray(self._unlayout(D)[:, 0])

    def n_frames(self, n_samples: int) -> int:
        """``n_samples``: the model input's frames are the samples."""
        return max(int(n_samples), 0)

    def min_samples_for(self, rf_frames: int) -> int:
        """``max(n_fft, rf_frames)``: the receptive field in samples, and one STFT window for the pictures."""
        return max(self.n_fft, rf_frames)

    def field_samples(self, frames: int) -> int:
        """``frames``: the frames are samples."""
        return frames

    def frame_seconds(self, frame: float) -> float:
        """``frame / sr``: the frames are samples."""
        return float(frame) / self.sr
