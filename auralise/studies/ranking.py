"""Rank a layer's features by how much they respond to a song (activation energy), and find the dead ones.

The energy of a feature is the sum of squares of its activation map at the tap over the whole song (long songs
are measured chunk by chunk, each unit counted once). A *dead* feature never activates on the song: its map is all
zero, so its projection and its WAV are silence. A *near-dead* feature is dead by its weights, whatever the song:
the L2 norm of its kernel is at most 1e-3 times the largest of its layer
(:func:`auralise.engine.layers.near_dead_kernels`), so it responds to nothing and its map is its bias -- it can be
"active" (a constant) and still blank in ``figure filters``. ``auralise export --features top:K`` exports the K
features of highest energy. The measurement is :meth:`auralise.session.Session.rank`; this is its one-call form.

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

__all__ = ["FeatureRank", "Ranking", "rank_features"]


class Ranking(dict):
    """Per layer number, its :class:`FeatureRank` rows by rank (a plain dict of them), and the layers' kernels.

    Attributes
    ----------
    near_dead : dict of int to list of int
        Per layer, the features whose kernel is near-dead (see the module docstring), ascending.
    kernel_norms : dict of int to tuple of float
        Per layer, the L2 norm of each feature's kernel, by feature.
    """

    def __init__(self, ranked: dict, near_dead: dict[int, list[int]], kernel_norms: dict[int, tuple[float, ...]]):
        super().__init__(ranked)
        self.near_dead = near_dead
        self.kernel_norms = kernel_norms


def rank_features(
    model,
    audio: str | os.PathLike,
    *,
    layers: Sequence[int | str] | None = None,
    tap: str = "block",
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> Ranking:
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
    offset, duration : float
        The part of the song to measure, in seconds (:func:`auralise.io.audio.load_audio`); default all of it.

    Returns
    -------
    Ranking
        A dict: per layer number, one row per feature (``layer.channels`` rows), by rank; with the near-dead
        kernels of those layers as ``near_dead`` and the kernel norms as ``kernel_norms``.
    """
    from auralise.session import RenderOptions, Session

    session = Session(model, device=device, trust=trust, frontend=frontend, options=RenderOptions(tap=tap))
    lays = session.layers(layers)
    song = session.song(audio, min_samples=session.min_samples(lays), offset=offset, duration=duration)
    ranked = session.rank(song, lays)
    return Ranking(
        ranked, {lay.number: lay.near_dead() for lay in lays}, {lay.number: lay.kernel_norms for lay in lays}
    )
