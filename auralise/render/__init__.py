"""Rendering: deconvolved spectrograms to sound and pictures.

Owns the way back from a projection ``D`` to outputs: resynthesis through the song's own phase (``resynth``:
``mask`` and ``magnitude`` modes, Griffin-Lim as an option, normalisation and the silent-feature reasons), the
streaming of long songs in segments with overlap-add, so that memory does not grow with the song (``streaming``),
and the small spectrogram thumbnails of listening pages (``thumbnail``); on a GPU, the default resynthesis and the
thumbnails' reduction run beside the projections, so only waves and thumbnails come back to the host (``device``).
It uses the front-end to carry ``D`` back to the STFT grid; loading models and audio, and writing files under the
output rules, belong to the callers above.

May import: auralise.errors, auralise.choices, auralise.frontends
"""
