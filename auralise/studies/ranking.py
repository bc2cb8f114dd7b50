"""Rank a layer's features by how much they respond to a song (activation energy), and find the dead ones.

The energy of a feature is the sum of squares of its activation map at the tap over the whole song (long songs
are measured chunk by chunk, each unit counted once). A *dead* feature never activates on the song: its map is all
zero, so its projection and its WAV are silence. ``auralise export --features top:K`` exports the K features of
highest energy. The measurement is :meth:`auralise.session.Session.rank`; this is its one-call form.

Example
-------
>>> from auralise.studies.ranking import rank_features
>>> ranks = rank_features("models/choi2016-synth.pt", "demo_audio/dance.ogg", layers=[3])   # doctest: +SKIP
>>> [r.feature for r in ranks[3][:3]]                                                         # doctest: +SKIP
[62, 47, 3]
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from auralise.session import FeatureRank

__all__ = ["FeatureRank", "rank_features"]


def rank_features(
    model,
    audio: str | os.PathLike,
    *,
    layers: Sequence[int | str] | None = None,
    tap: str = "block",
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
) -> dict[int, list[FeatureRank]]:
    """Per layer (all by default), its features ordered by activation energy on the song, highest first.

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        The model file (or a loaded model).
    audio : str or PathLike
        The song; it must be long enough for one unit of the deepest layer to see real audio.
    layers : sequence of int or str, optional
        Conv layers by number or module path (default all).
    tap : str
        Tap point whose activations are measured (:data:`auralise.choices.TAPS`).
    device, trust, frontend
        As for :class:`~auralise.session.Session`.

    Returns
    -------
    dict of int to list of FeatureRank
        Per layer number, one row per feature (``layer.channels`` rows), by rank.
    """
    from auralise.session import RenderOptions, Session

    session = Session(model, device=device, trust=trust, frontend=frontend, options=RenderOptions(tap=tap))
    lays = session.layers(layers)
    song = session.song(audio, min_samples=session.min_samples(lays))
    return session.rank(song, lays)
