"""auralise: hear and see what a trained music CNN has learned.

Public API (``dir(auralise)`` lists it): :func:`load_model`, :func:`save_model`, :class:`LoadedModel`,
:func:`load_audio`, :class:`Frontend`, :func:`deconvolve`, :func:`project_features`, :func:`resynthesise`,
:class:`Session` and :class:`RenderOptions`, :func:`auralise_file` / :func:`auralise_files`, :func:`export`,
:func:`evaluate` (faithfulness measures), :func:`predict_song` (a model's named outputs), :class:`AuraliseError`,
and the sub-packages that follow the pipeline (``frontends``, ``engine``, ``io``, ``nets``, ``importers``,
``render``, ``listening``, ``figures``, ``studies``, ``demo``; see ``docs/architecture.md``).

Heavy modules (torch, librosa, matplotlib) load on first use, so ``import auralise`` and ``auralise --help`` are
instant.

Example
-------
>>> import auralise
>>> model = auralise.load_model("models/choi2016-synth.pt")                      # doctest: +SKIP
>>> D = auralise.deconvolve(model, S, layer=3, features=[38])                    # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "io.modelfile",
    "save_model": "io.modelfile",
    "LoadedModel": "io.modelfile",
    "load_audio": "io.audio",
    "Frontend": "frontends",
    "deconvolve": "engine.deconv",
    "project_features": "engine.deconv",
    "resynthesise": "render.resynth",
    "Session": "session",
    "RenderOptions": "session",
    "auralise_file": "listening.single",
    "auralise_files": "listening.single",
    "export": "listening.export",
    "evaluate": "studies.evaluation",
    "predict_song": "studies.prediction",
    "AuraliseError": "errors",
}
_PACKAGES = (
    "frontends",
    "engine",
    "io",
    "nets",
    "importers",
    "render",
    "session",
    "listening",
    "figures",
    "studies",
    "demo",
    "choices",
    "errors",
)

__all__ = [*_EXPORTS, *_PACKAGES]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _PACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'auralise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
