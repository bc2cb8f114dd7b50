"""The demo: synthetic music and the recipes that trained the shipped demo models.

Owns the seeded multi-instrument synthesiser with stems (``synth``: ``generate``, ``generate_sequence``, ``tone``;
the demo songs in ``demo_audio/`` and the attribute study's model signals come from it) and the training recipes
of the shipped models (``train``: data from the synthesiser, training, evaluation and provenance). Self-contained
leaves that the studies and the tests build on; nothing in the auralisation pipeline depends on them.

May import: auralise.errors, auralise.choices, auralise.frontends, auralise.nets, auralise.io, auralise.engine
"""
