"""Regenerate the demo excerpts in this folder: ``python demo_audio/make_demo_audio.py``.

Writes ``ballad.ogg``, ``dance.ogg`` and ``hiphop.ogg`` (20 s each) and ``mix.ogg`` (30 s: ballad, dance,
hiphop, 10 s each with crossfades), OGG Vorbis at 22050 Hz, from fixed seeds (see README.md).
"""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from auralise.demo import synth

SR = 22050
HERE = Path(__file__).resolve().parent
EXCERPTS = {"ballad": 1, "dance": 2, "hiphop": 3}  # style -> seed
MIX_STYLES, MIX_SEED = ["ballad", "dance", "hiphop"], 4


def main() -> None:
    for style, seed in EXCERPTS.items():
        excerpt = synth.generate(style, seconds=20.0, sr=SR, seed=seed)
        _write(f"{style}.ogg", excerpt)
    _write("mix.ogg", synth.generate_sequence(MIX_STYLES, seconds_each=10.0, sr=SR, seed=MIX_SEED))


def _write(name: str, excerpt: synth.Excerpt) -> None:
    path = HERE / name
    sf.write(path, excerpt.mix, excerpt.sr, format="OGG", subtype="VORBIS")
    p = excerpt.params
    detail = (
        f"{p['tempo']:.1f} BPM, {p['key']}, {' '.join(p['chords'])}"
        if excerpt.style != "mix"
        else f"sections at {p['boundaries']} s"
    )
    print(
        f"{path.name}: {excerpt.style}, seed {p['seed']}, {excerpt.mix.size / excerpt.sr:.1f} s, {detail}, "
        f"{path.stat().st_size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
