"""Small array helpers shared by the front-ends (numpy only; torch is recognised without being imported)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["apply_matrix", "fit_frames", "is_torch", "readonly"]


def is_torch(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def readonly(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous read-only float32 array (for cached mappings)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    a.setflags(write=False)
    return a


def apply_matrix(A: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``A @ G[k]`` for every k: (F, F_in) x (K, F_in, T) -> (K, F, T) float32, C-contiguous."""
    return np.ascontiguousarray(np.matmul(A, G, dtype=np.float32))


def fit_frames(C: np.ndarray, T: int) -> np.ndarray:
    """Trim ``C`` (F_in, T_c) to ``T`` frames, or pad by repeating the last frame (frames start together)."""
    if C.shape[1] >= T:
        return np.ascontiguousarray(C[:, :T])
    return np.pad(C, ((0, 0), (0, T - C.shape[1])), mode="edge")
