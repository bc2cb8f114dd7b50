"""Pictures of what a model learned: plotting primitives, the house style, and the figures of the paper.

Owns :mod:`~auralise.figures.display` (stand-alone Agg figures, spectrogram panels, the per-feature figure of a
listening set, atomic saving), :mod:`~auralise.figures.style` (print type sizes, journal column widths, saving as
PDF/SVG/PNG with the command line in the metadata), :mod:`~auralise.figures.drawing` (learned filters, the
receptive-field table, deconvolution grids: drawing only, given arrays; the grid's panel layout in
:mod:`~auralise.figures.panels`), :mod:`~auralise.figures.attributes` (the key/chord/instrument study's figure),
:mod:`~auralise.figures.taggram` (tags over time), :mod:`~auralise.figures.faithfulness` (the method
comparison of ``auralise figure faithfulness``), :mod:`~auralise.figures.kernels` (kernels over samples as waveforms
and spectra) and :mod:`~auralise.figures.paper` (one call per ``auralise figure`` command:
load, compute, draw, save). matplotlib is imported lazily and never through ``pyplot``.

May import: auralise.errors, auralise.choices, auralise.text, auralise.frontends, auralise.engine, auralise.nets, auralise.io, auralise.render, auralise.session, auralise.studies, auralise.demo
"""  # noqa: E501 -- the declaration is one line (tests/test_architecture.py reads it)
