"""Files in and out: audio, model files, output naming, digests, atomic writes and folder locks.

Owns reading audio with one-line errors for every bad file and writing it in any libsndfile format (``audio``),
the auralise checkpoint and the other model formats with their trust rules (``modelfile``: ``load_model``,
``save_model``, ``LoadedModel``), the one naming template of per-feature outputs (``naming``), the SHA-256 that
names a model or a song in manifests and journals (``digest``), and the output-file rules every writer follows
(``files``: atomic ``.part`` writes, no overwriting without ``--force``, no writing onto links or devices,
one-line write failures, export folder locks). It knows front-ends and architectures only to store and rebuild
them. soundfile and soxr are imported inside the functions that need them; ``modelfile`` imports torch at the top.

May import: auralise.errors, auralise.choices, auralise.text, auralise.frontends, auralise.nets
"""
