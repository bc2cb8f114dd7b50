"""Output naming: the one template every per-feature output file is named by.

A single song's outputs (``auralise MODEL AUDIO --out DIR``) and a listening set's per-song folders use the same
names, so a WAV, its picture and the page that links them always agree.

>>> output_name(3, 38, "wav")
'layer3_feature38.wav'
"""

from __future__ import annotations

__all__ = ["output_name"]


def output_name(layer: int, feature: int, ext: str) -> str:
    """The one naming template for per-feature outputs: ``layer{L}_feature{F}.{ext}``.

    Parameters
    ----------
    layer : int
        Conv layer number (1-based, execution order).
    feature : int
        Feature (output channel) of that layer, 0-based.
    ext : str
        File extension without the dot (``"wav"``, ``"png"``).

    Returns
    -------
    str
        The file name, e.g. ``"layer3_feature38.wav"``.
    """
    return f"layer{layer}_feature{feature}.{ext}"
