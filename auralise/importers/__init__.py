"""Importers: readers of foreign weight formats and the commands that turn published models into checkpoints.

Owns the pure-Python reader of TensorFlow checkpoint bundles (``tfbundle``: SSTable index, CRC32C checks, tensor
reads, the musicnn wheel's extraction; no TensorFlow needed) and the musicnn importer (``musicnn``: find or
download the wheel, read its weights into the ports of :mod:`auralise.nets.musicnn` and save an auralise
checkpoint with the matching front-end). A new model importer puts its architecture in :mod:`auralise.nets` and
its reading and conversion here.

May import: auralise.errors, auralise.text, auralise.frontends, auralise.nets, auralise.io
"""
