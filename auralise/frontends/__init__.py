"""Front-ends: how audio becomes a model's input, and how that input space maps back to the STFT grid.

This sub-package owns the :class:`Frontend` that travels with every model: the fields all kinds share (sample
rate, STFT parameters, compression, layout, patch length) with the STFT and inverse STFT every kind computes for
resynthesis (:mod:`.grid`), the template from audio to model input and back to the STFT grid (:mod:`.mapping`), and
one class per kind in its own module — :class:`StftFrontend` (``stft``), :class:`MelFrontend` (``mel``),
:class:`CqtFrontend` (``cqt``), :class:`WaveformFrontend` (``waveform``), :class:`HcqtFrontend` (``hcqt``,
Basic Pitch's harmonic CQT), :class:`FramedFrontend` (``framed``, CREPE's normalised frames) — each with its own
fields, checks, forward mapping, grid mapping and description; the compression formulas as one table
(:mod:`.compression`), the layouts and their axes (:mod:`.layout`), and the bounds a model file's numbers must
respect (:mod:`.checks`).
``Frontend(kind=..., ...)`` and :meth:`Frontend.from_dict` build the class that ``kind`` names (default "stft"),
so every checkpoint and sidecar JSON loads as before. A new kind is a new module with a ``Frontend`` subclass,
imported here.

May import: auralise.errors, auralise.choices, auralise.text
"""

from auralise.frontends.base import Frontend
from auralise.frontends.cqt import CqtFrontend
from auralise.frontends.framed import FramedFrontend
from auralise.frontends.hcqt import HcqtFrontend
from auralise.frontends.mel import MelFrontend
from auralise.frontends.stft import StftFrontend
from auralise.frontends.waveform import WaveformFrontend

__all__ = [
    "Frontend",
    "StftFrontend",
    "MelFrontend",
    "CqtFrontend",
    "WaveformFrontend",
    "HcqtFrontend",
    "FramedFrontend",
]
