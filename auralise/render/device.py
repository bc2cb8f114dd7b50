"""Resynthesis on the projection's device (a GPU): only the waves and the thumbnails come back to the host.

:func:`~auralise.render.resynth.render_waves` works on the host (numpy, librosa); an export on ``--device cuda``
would then copy every batch of projections (K model inputs) to the host. :func:`render_on_device` does the same
work with torch on the projections' device — the grid mapping, the mask on the song's STFT, the inverse STFT,
silence and normalisation, and the thumbnails' block maxima — and copies back only what is written: the waves
(K, n), the thumbnails (K, rows, columns) and the per-feature gains and silence. It covers the default rendering
(mask resynthesis with the song's own phase) of front-ends that map to the STFT grid by a matrix
(:func:`device_rendering`); the others render on the host.

On the CPU the host path is used (it is the reference: byte-identical WAVs); the two agree to float32 rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auralise.choices import LAYOUTS
from auralise.render.resynth import NEVER_ACTIVE, NUMERICALLY_ZERO, PEAK, ZERO_PEAK, Rendered
from auralise.render.thumbnail import MAX_HEIGHT, MAX_WIDTH

if TYPE_CHECKING:
    import torch

    from auralise.frontends.base import Frontend

__all__ = ["device_rendering", "render_on_device", "stft_on_device"]


def device_rendering(frontend: Frontend, *, mode: str, phase: str) -> bool:
    """Whether :func:`render_on_device` covers this front-end and these options (else render on the host)."""
    plain = mode == "mask" and phase == "original" and frontend.center  # torch.istft needs a full window sum
    return plain and not frontend.projection_is_audio and frontend.layout in LAYOUTS


def stft_on_device(X: np.ndarray, device) -> torch.Tensor:
    """The song's complex STFT (F, T) on ``device`` (once per song)."""
    import torch

    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.complex64)).to(device)


def render_on_device(
    X: torch.Tensor, D: torch.Tensor, *, frontend: Frontend, length: int, normalize: str, activation_max
) -> Rendered:
    """:func:`~auralise.render.resynth.render_waves` (mask mode, original phase) on ``D``'s device.

    Parameters
    ----------
    X : torch.Tensor, shape (F, T), complex64, on D's device
        The song's STFT (:func:`stft_on_device`).
    D : torch.Tensor, shape (K, *input_shape(T))
        Model-shaped projections.
    length : int
        Samples of the song.
    normalize : {"peak", "none"}
    activation_max : array, shape (K,)
        Each feature's activation maximum (host values); a feature at most 0 is never active.

    Returns
    -------
    Rendered
        ``waves`` (K, length) float32 and ``gains`` (K,) as the host path's; its ``grid`` is the thumbnails' block
        maxima (K, rows, columns) of the rectified grid, ready for ``write_thumbnail(..., reduced=True)``.
    """
    import torch

    grid = _to_grid(D, frontend)  # (K, F, T)
    R = grid.clamp_min(0.0)
    peak = R.amax(dim=(1, 2))
    scale = torch.where(peak > ZERO_PEAK, 1.0 / peak.double(), 0.0).to(R.dtype)
    Y = (R * scale[:, None, None]) * X[None]
    waves = _istft(Y, frontend, length)
    peaks = waves.abs().amax(dim=1)
    zero = ~(peaks > ZERO_PEAK)
    gains = torch.ones_like(peaks, dtype=torch.float64)
    if normalize == "peak":
        gains = torch.where(zero, gains, PEAK / peaks.double())
    waves = waves * torch.where(zero, 0.0, gains).to(waves.dtype)[:, None]
    never = torch.as_tensor(~(np.asarray(activation_max, dtype=np.float64).reshape(-1) > 0), device=waves.device)
    silent = never | ~waves.ne(0).any(dim=1)
    waves = waves.masked_fill(silent[:, None], 0.0)
    gains = gains.masked_fill(silent, 1.0)
    thumbs = _block_max(R.masked_fill(silent[:, None, None], 0.0), MAX_HEIGHT, MAX_WIDTH)
    # the only copies to the host: what is written
    waves_h, thumbs_h = waves.cpu().numpy(), thumbs.cpu().numpy()
    flags = torch.stack([gains, never.double(), silent.double()]).cpu().numpy()
    gains_h, never_h, silent_h = flags[0], flags[1] > 0, flags[2] > 0
    reasons = [NEVER_ACTIVE if n else NUMERICALLY_ZERO if s else None for n, s in zip(never_h, silent_h)]
    return Rendered(waves_h, gains_h, thumbs_h, silent_h, reasons)


def _to_grid(D: torch.Tensor, frontend: Frontend) -> torch.Tensor:
    """``frontend.to_grid(D)`` in torch: (K, *input_shape(T)) -> (K, F, T) float32."""
    import torch

    G = D.float()
    if G.dim() == 4:
        G = G[:, 0]
    if frontend.layout in ("BCTF", "BTF"):
        G = G.transpose(1, 2)
    A = frontend.grid_matrix()
    if A.shape[0] == A.shape[1] and np.array_equal(A, np.eye(A.shape[0], dtype=A.dtype)):
        return G
    return torch.matmul(torch.as_tensor(np.asarray(A, dtype=np.float32), device=G.device), G)


def _istft(Y: torch.Tensor, frontend: Frontend, length: int) -> torch.Tensor:
    """librosa's inverse STFT (window-sum-square normalisation) with torch: (K, F, T) complex -> (K, length)."""
    import librosa
    import torch

    win_length = frontend.win_length or frontend.n_fft
    window = librosa.filters.get_window(frontend.window, win_length, fftbins=True)
    window = librosa.util.pad_center(window, size=frontend.n_fft)
    return torch.istft(
        Y,
        n_fft=frontend.n_fft,
        hop_length=frontend.hop_length,
        win_length=frontend.n_fft,
        window=torch.as_tensor(window, dtype=torch.float32, device=Y.device),
        center=frontend.center,
        length=int(length),
    )


def _block_max(M: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """:func:`auralise.render.thumbnail._block_max` of each (F, T) of ``M`` (K, F, T)."""
    import torch

    F, T = M.shape[1:]
    fy, fx = -(-F // rows), -(-T // cols)
    pad_y, pad_x = -F % fy, -T % fx
    P = torch.nn.functional.pad(M[:, None], (0, pad_x, 0, pad_y), mode="replicate")[:, 0] if pad_x or pad_y else M
    return P.reshape(len(M), P.shape[1] // fy, fy, P.shape[2] // fx, fx).amax(dim=(2, 4))
