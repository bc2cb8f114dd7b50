"""The engine: from a model input ``S`` to deconvolved spectrograms ``D`` (Zeiler & Fergus; Choi et al. 2016).

Owns everything between the model input and the projection, and nothing about audio or files: the op recorder
that follows a model's forward pass and keeps its pooling switches (``trace``), the backward rules (``rules``:
deconvnet, guided, gradient; ``fused``: the first pool's unpooling into the first convolution's transpose in one
pass, compiled by numba), layer discovery in execution order with tap points and receptive fields
(``layers``), the parsing and checking of selections and feature lists (``selection``), the analysis patches of
taggers (``patches``), chunked projection of long
inputs whose stitched result equals the unchunked one (``chunking``), the public ``deconvolve`` /
``project_features`` entry points (``deconv``) and the memory helpers of long runs (``memory``). It sees a model
as a ``torch.nn.Module`` and an input tensor; front-ends, model files and rendering live above it. Its modules
(``memory`` aside) import torch at the top, so import them where they are used, not on the ``auralise --help`` path.

May import: auralise.errors, auralise.choices
"""
