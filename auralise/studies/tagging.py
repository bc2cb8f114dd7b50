"""What the model thinks of a song: its class or tag probabilities, per patch and averaged over the song.

Patches are made as musicnn's own tagger makes them (its ``input_length`` and ``input_overlap``): by default the
model's patch length (``frontend.patch_seconds``; 187 frames for musicnn), one after another without overlap, the
remainder dropped; ``length`` and ``overlap`` (seconds) choose others. Probabilities are the sigmoid of the outputs
for multi-label taggers (checkpoint provenance ``output_activation: sigmoid``) and the softmax otherwise; per patch
they form the *taggram* (tags over time, :func:`auralise.figures.taggram.taggram_figure` draws it). The computation
is :meth:`auralise.session.Session.tag`; this is its one-call form.

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
    offset: float = 0.0,
    duration: float | None = None,
    length: float | None = None,
    overlap: float | None = None,
) -> TagResult:
    """Run the whole model on patches of the song; see the module docstring.

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
    offset, duration : float
        The part of the song to tag, in seconds (:func:`auralise.io.audio.load_audio`); default all of it. Patch
        starts are in seconds of the file.
    length, overlap : float, optional
        Patch length and overlap in seconds (default the model's own length, no overlap); see
        :meth:`~auralise.session.Session.tag` for how they become frames and what is refused.

    Returns
    -------
    TagResult
        ``probabilities`` (P, n_tags) of the P patches starting at ``starts`` (P,) seconds.
    """
    from auralise.session import Session

    session = Session(model, device=device, trust=trust, frontend=frontend)
    song = session.song(audio, allow_silent=True, offset=offset, duration=duration)  # silence is a fair question
    return session.tag(song, batch=batch, length=length, overlap=overlap)
