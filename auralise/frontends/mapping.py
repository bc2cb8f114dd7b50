"""The model input and the way back: the template every front-end kind fills in.

A front-end turns the audio into the model input ``S = layout(compress(input_spectrogram))`` and carries a
deconvolved ``D`` (same shape as ``S``) back onto the STFT grid, ``grid_matrix() @ unlayout(D)``. :class:`ModelInput`
holds these steps once; a kind supplies :meth:`~ModelInput.input_spectrogram`, :meth:`~ModelInput.grid_matrix`,
:meth:`~ModelInput.input_freqs` and :attr:`~ModelInput.n_input_freq` (and, for magnitudes, a per-bin gain and a
root), or overrides a step where it has a faster or different one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError
from auralise.frontends import compression, layout
from auralise.frontends.arrays import apply_matrix, readonly

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ModelInput"]


class ModelInput:
    """Compression, model input and back to the STFT grid (a mixin of ``Frontend``, which gives the fields)."""

    kind: str
    layout: str
    n_freq: int

    @property
    def n_input_freq(self) -> int:
        """Size of the model input's frequency axis, ``F_in``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ compression
    def compress(self, mag: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Map a magnitude to the model's value scale: ``scale`` first, then ``compression``.

        Parameters
        ----------
        mag : np.ndarray or torch.Tensor, any shape
            Non-negative magnitudes (``|X|``, mel energies, ``|CQT|``).

        Returns
        -------
        Same type and shape as ``mag``.
        """
        return compression.compress(mag, self)

    def decompress(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Inverse of :meth:`compress`: back to magnitude (exact above ``amin`` for "db").

        "linear", "log1p" and "log10p" can return negative values for negative input: clip if needed. The result
        is in the model input's own domain (``|X|``, the mel energy ``W @ |X|**power``, ``|CQT|``); see
        :meth:`to_stft_magnitude` and :meth:`grid_magnitude` for magnitudes on the STFT grid.

        Parameters
        ----------
        values : np.ndarray or torch.Tensor, any shape

        Returns
        -------
        Same type and shape as ``values``.
        """
        return compression.decompress(values, self)

    # ------------------------------------------------------------------ model input
    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """The model input before compression and layout (``|X|``, mel energies, ``|CQT|``, the samples).

        Parameters
        ----------
        X : np.ndarray, shape (F, T), complex (or a real magnitude), or None
            The STFT (``stft(y)``). Kinds that read the audio only take the frame count ``T`` from it.
        y : np.ndarray, shape (n,), optional
            The audio; required by the kinds computed from the audio (cqt, waveform).

        Returns
        -------
        np.ndarray, shape (F_in, T), float32
            ``F_in`` is :attr:`n_input_freq`.
        """
        raise NotImplementedError

    def model_input(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> torch.Tensor:
        """The model's input tensor: ``compress(input_spectrogram(X, y=y))`` in :attr:`layout`, batch 1.

        :meth:`analyse` computes ``X`` and the input from the audio for any kind.

        Parameters
        ----------
        X : np.ndarray, shape (F, T), complex (or a real magnitude), or None
            The STFT ``stft(y)``; may be None for the kinds computed from the audio.
        y : np.ndarray, shape (n,), optional
            The audio at ``sr``; required for cqt and waveform, ignored for stft and mel.

        Returns
        -------
        torch.Tensor, float32
            BCFT ``(1, 1, F_in, T)``, BCTF ``(1, 1, T, F_in)``, BFT ``(1, F_in, T)`` or BTF ``(1, T, F_in)``,
            ``F_in`` = :attr:`n_input_freq`.

        Raises
        ------
        BadParameterError
            ``X`` has the wrong shape, or a front-end computed from the audio got no ``y``.
        """
        import torch

        S = np.asarray(self.compress(self.input_spectrogram(X, y=y)), dtype=np.float32)
        return torch.from_numpy(layout.arrange(S, self.layout))

    def analyse(self, y: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """STFT and model input of the audio ``y`` in one call (works for every kind).

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Audio at ``sr``.

        Returns
        -------
        X : np.ndarray, shape (F, T), complex64
            ``stft(y)``, for resynthesis.
        S : torch.Tensor, shape (1, *input_shape(T)), float32
            ``model_input(X, y=y)``.
        """
        X = self.stft(y)
        return X, self.model_input(X, y=y)

    def input_shape(self, T: int) -> tuple[int, ...]:
        """Shape of :meth:`model_input` for ``T`` frames, without the batch dimension."""
        return layout.input_shape(self.layout, self.n_input_freq, T)

    def _unlayout(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Model-layout batch (K, *input_shape(T)) -> (K, F_in, T) float32."""
        return layout.unlayout(D, self.layout, self.n_input_freq)

    def _checked_stft(self, X: np.ndarray) -> np.ndarray:
        """``X`` as an array, refused unless it has this front-end's STFT shape (F, T)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != self.n_freq:
            raise BadParameterError(f"expected an STFT of shape ({self.n_freq}, T) for this front-end, got {X.shape}")
        return X

    def _need_audio(self, y: np.ndarray | None) -> np.ndarray:
        """The audio a kind computed from the audio needs; :class:`BadParameterError` when it is missing."""
        if y is None:
            raise BadParameterError(
                f"a {self.kind!r} front-end computes its input from the audio: call model_input(X, y=y) or analyse(y)"
            )
        return y

    # ------------------------------------------------------------------ back to the STFT grid
    def to_grid(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Carry K model-input-shaped arrays back to the STFT grid: ``grid_matrix() @ D`` per feature and frame.

        Each kind says how (see its :meth:`grid_matrix`); frames are shared (identity along time).

        Parameters
        ----------
        D : np.ndarray or torch.Tensor, shape (K, *model_input(X).shape[1:])
            E.g. deconvolved spectrograms, one per feature.

        Returns
        -------
        np.ndarray, shape (K, F, T), float32
            ``F = n_freq`` (STFT bins). Values stay in the model's (compressed) scale;
            :mod:`auralise.render.resynth` decides how to use them.
        """
        return apply_matrix(self.grid_matrix(), self._unlayout(D))

    def projected_audio(self, D: np.ndarray | torch.Tensor, *, y: np.ndarray | None = None) -> np.ndarray:
        """The projections as audio (K, n) float32, for a front-end whose projections are audio
        (:attr:`projection_is_audio`; ``y`` is the song they were made on, which a framed front-end needs to undo
        its per-frame normalisation); :class:`BadParameterError` for the others."""
        raise BadParameterError(f"only waveform and framed front-ends' projections are audio, not {self.kind!r} ones")

    def grid_matrix(self) -> np.ndarray:
        """The linear map from the model input's frequency axis to STFT bins used by :meth:`to_grid`.

        Returns
        -------
        A : np.ndarray, shape (F, F_in), float32, read-only
            Rows sum to 1 inside the mapped frequency range and to 0 outside it.
        """
        raise NotImplementedError

    def to_stft_magnitude(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Magnitudes on the STFT grid from K model-input-shaped arrays (compression undone *before* mapping).

        ``decompress(D)`` (negative values clipped to 0), times the kind's per-input-bin gain that makes it an
        STFT-magnitude-like value, mapped with :meth:`grid_matrix`, then the kind's root (see each kind).

        Parameters
        ----------
        D : np.ndarray or torch.Tensor, shape (K, *input_shape(T))

        Returns
        -------
        np.ndarray, shape (K, F, T), float32
        """
        G = np.maximum(np.asarray(self.decompress(self._unlayout(D)), dtype=np.float32), 0.0)
        return self._root(apply_matrix(self.grid_matrix(), G * self._input_weights()[:, None]))

    def grid_magnitude(self, G: np.ndarray) -> np.ndarray:
        """Magnitudes from arrays already on the STFT grid (:meth:`to_grid` output): for resynthesis.

        ``decompress(G)``, clipped to 0, times the kind's gain carried to the STFT bins, then the kind's root
        (:meth:`to_stft_magnitude`, which decompresses before mapping, is the more exact of the two).

        Parameters
        ----------
        G : np.ndarray, shape (..., F, T)

        Returns
        -------
        np.ndarray, shape (..., F, T), float32
        """
        m = np.asarray(self.decompress(np.asarray(G, dtype=np.float32)), dtype=np.float32)
        if m.ndim < 2 or m.shape[-2] != self.n_freq:
            raise BadParameterError(
                f"expected an array of shape (..., {self.n_freq}, T) on the STFT grid, got {m.shape}"
            )
        return self._root(np.maximum(m, 0.0) * _grid_weights(self)[:, None])

    def _input_weights(self) -> np.ndarray:
        """Per input bin, the factor that turns a decompressed value into an STFT-magnitude-like one, (F_in,)."""
        return readonly(np.ones(self.n_input_freq))

    def _root(self, m: np.ndarray) -> np.ndarray:
        """From the mapped (per-bin) values to magnitudes (the identity unless the input is a power)."""
        return m

    def input_freqs(self) -> np.ndarray:
        """Frequency axis of the model input in Hz, shape (F_in,), float64 (:meth:`bin_freqs` stays the axis of
        the STFT grid, the axis of :meth:`to_grid`'s output)."""
        raise NotImplementedError


@functools.lru_cache(maxsize=32)
def _grid_weights(fe: ModelInput) -> np.ndarray:
    """``fe._input_weights()`` carried to the STFT bins with the grid matrix, shape (F,)."""
    return readonly(fe.grid_matrix().astype(np.float64) @ fe._input_weights().astype(np.float64))
