"""Studies: questions asked of a model over songs or designed signals, answered with numbers and tables.

Owns the attribute study of the paper (:mod:`~auralise.studies.attribute_signals`, the designed key x chord x
instrument signals, and :mod:`~auralise.studies.attributes`, how each layer's features change with them), feature
ranking by activation energy with the dead features (:mod:`~auralise.studies.ranking`), tagging with a model's own
labels on analysis patches of a chosen length and overlap (:mod:`~auralise.studies.tagging`), the feature atlas's
corpus scan (:mod:`~auralise.studies.atlas_scan`) and the faithfulness measures of auralisations
(:mod:`~auralise.studies.faithfulness`) with their tables over songs, layers and options
(:mod:`~auralise.studies.evaluation`). Ranking and tagging are one-call forms of a
:class:`~auralise.session.Session`'s ``rank`` and ``tag``; the figures that draw these results live in :mod:`auralise.figures`.

May import: auralise.errors, auralise.choices, auralise.text, auralise.frontends, auralise.engine, auralise.nets, auralise.io, auralise.render, auralise.session, auralise.demo
"""  # noqa: E501 -- the declaration is one line (tests/test_architecture.py reads it)
