"""Listening: what a person hears and browses — one song's WAVs and figures, listening sets, their pages.

Owns :mod:`~auralise.listening.single` (``auralise_file``: the features of one layer of one song, to WAV and PNG),
the listening-set export — :mod:`~auralise.listening.export` (its options, the layer and feature specs, ``export``),
:mod:`~auralise.listening.journal` (the journal of finished items behind ``--resume``, the claim on the export folder,
``remove_export``) and :mod:`~auralise.listening.song_export` (one song in memory or streamed, written by worker
threads) — and the self-contained HTML page of a set (:mod:`~auralise.listening.page`, whose CSS and JS are package
files in ``assets/``, inlined at write time), plus the feature atlas's corpus runs and page (``atlas*``). Every
entry point sets up through one :class:`~auralise.session.Session`; heavy modules are imported inside functions.

May import: auralise.errors, auralise.choices, auralise.text, auralise.frontends, auralise.engine, auralise.nets, auralise.io, auralise.render, auralise.session, auralise.studies, auralise.demo, auralise.figures
"""  # noqa: E501 -- the declaration is one line (tests/test_architecture.py reads it)
