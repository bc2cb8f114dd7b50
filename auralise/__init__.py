"""auralise: hear and see what a trained music CNN has learned.

Heavy modules (torch, librosa, matplotlib) load on first use, so ``import auralise`` and ``auralise --help`` are
instant. Public API: :func:`deconvolve`, :func:`project_features`, :func:`load_model`, :func:`save_model`,
:func:`auralise_file`, and the ``zoo`` registry.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "deconvolve": "deconv",
    "project_features": "deconv",
    "load_model": "modelfile",
    "save_model": "modelfile",
    "LoadedModel": "modelfile",
    "Frontend": "frontends",
    "auralise_file": "render",
    "AuraliseError": "errors",
}
_MODULES = ("zoo", "synth", "layers", "rules", "resynth", "display", "audio", "frontends", "render")


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'auralise' has no attribute {name!r}")


__all__ = [*_EXPORTS, *_MODULES]
