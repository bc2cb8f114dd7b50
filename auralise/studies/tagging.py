"""What the model thinks of a song: its class or tag probabilities, per patch and averaged over the song.

Patches are made as musicnn's own tagger makes them: the model's patch length (``frontend.patch_seconds``; 187
frames for musicnn), one after another without overlap, the remainder dropped. Probabilities are the sigmoid of
the outputs for multi-label taggers (checkpoint provenance ``output_activation: sigmoid``) and the softmax
otherwise. The computation is :meth:`auralise.session.Session.tag`; this is its one-call form.

Example
-------
>>> from auralise.studies.tagging import tag_song
>>> result = tag_song("models/MTT_musicnn.pt", "demo_audio/dance.ogg")    # doctest: +SKIP
>>> result.top(3)                                                          # doctest: +SKIP
[('techno', 0.61), ('electronic', 0.55), ('beat', 0.47)]
"""

from __future__ import annotations

import os

from auralise.session import TagResult

__all__ = ["TagResult", "tag_song"]


def tag_song(
    model,
    audio: str | os.PathLike,
    *,
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    batch: int = 16,
) -> TagResult:
    """Run the whole model on non-overlapping patches of the song; see the module docstring.

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        A model that ends in a classifier (one score per tag or class).
    audio : str or PathLike
        The song (silence is allowed: a fair question for a tagger); at least one patch long.
    device, trust, frontend
        As for :class:`~auralise.session.Session`.
    batch : int
        Patches per forward pass.

    Returns
    -------
    TagResult
        ``probabilities`` (P, n_tags) of the P patches starting at ``starts`` (P,) seconds.
    """
    from auralise.session import Session

    session = Session(model, device=device, trust=trust, frontend=frontend)
    song = session.song(audio, allow_silent=True)  # silence is a fair question for a tagger
    return session.tag(song, batch=batch)
