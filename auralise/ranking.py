"""Rank a layer's features by how much they respond to a song (activation energy), and find the dead ones.

The energy of a feature is the sum of squares of its activation map at the tap over the whole song (long songs
are measured chunk by chunk, each unit counted once). A *dead* feature never activates on the song: its map is all
zero, so its projection and its WAV are silence. ``auralise export --features top:K`` exports the K features of
highest energy.

Example
-------
>>> from auralise.ranking import rank_features
>>> ranks = rank_features("models/choi2016-synth.pt", "demo_audio/dance.ogg", layers=[3])   # doctest: +SKIP
>>> [r.feature for r in ranks[3][:3]]                                                         # doctest: +SKIP
[62, 47, 3]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FeatureRank:
    """One feature's response to a song: ``rank`` 1 has the most energy; ``share`` is its fraction of the layer's."""

    layer: int
    feature: int
    rank: int
    energy: float
    maximum: float
    share: float
    dead: bool

    def to_dict(self) -> dict:
        return asdict(self)


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
    """Per layer (all by default), its features ordered by activation energy on the song, highest first."""
    import torch

    from .audio import load_audio
    from .deconv import make_projector
    from .layers import discover, receptive_field
    from .modelfile import LoadedModel, load_model
    from .render import min_audio_samples, resolve_device

    dev = resolve_device(device)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, frontend=frontend, trust=trust)
    loaded.to(dev)
    fe, example = loaded.frontend, loaded.example_input()
    graph = discover(loaded.module, example)
    lays = list(graph.layers) if layers is None else [graph.layer(spec) for spec in layers]
    deepest = max(lays, key=lambda lay: lay.taps[tap][0])
    rf_frames, _ = receptive_field(loaded.module, example, deepest, tap=tap, layout=fe.layout)
    y, _ = load_audio(audio, sr=fe.sr, min_samples=min_audio_samples(fe, rf_frames))
    S = fe.analyse(y)[1].to(dev)
    projector = make_projector(
        loaded.module,
        S,
        [lay.number for lay in lays],
        method="deconvnet",
        select="map",
        tap=tap,
        example=example,
        layout=fe.layout,
    )
    with torch.inference_mode():
        stats = projector.statistics()
    out: dict[int, list[FeatureRank]] = {}
    for lay in lays:
        st = stats[lay.number]
        total = float(st.energy.sum())
        ranks = st.ranks()
        rows = [
            FeatureRank(
                layer=lay.number,
                feature=f,
                rank=ranks[f],
                energy=float(st.energy[f]),
                maximum=float(st.maximum[f]),
                share=float(st.energy[f]) / total if total > 0 else 0.0,
                dead=bool(st.nonzero[f] == 0),
            )
            for f in range(lay.channels)
        ]
        out[lay.number] = sorted(rows, key=lambda r: r.rank)
    return out
