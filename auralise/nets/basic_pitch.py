"""PyTorch port of Basic Pitch (Bittner et al., ICASSP 2022), Spotify's polyphonic note transcriber, and its weights.

The PyPI package ``basic-pitch`` 0.4.0 (Apache-2.0) ships the trained ``icassp_2022`` model as a TF SavedModel whose
variables are a TF tensor bundle (read by :mod:`auralise.importers.tfbundle`, no TensorFlow needed). The graph
(``basic_pitch/models.py``) begins with the harmonic CQT, its normalised log and an input batch norm, which are the
``hcqt`` front-end here (:mod:`auralise.frontends.hcqt`); :class:`BasicPitch` is the rest, from the first
convolution on. Its input is ``(B, 8, T, 264)``: 8 harmonics (0.5, 1, 2, ..., 7) x T frames (hop 256 at 22050 Hz,
86 frames/s) x 264 bins (88 piano keys x 3 bins per semitone from 27.5 Hz).

The heads, in execution order (so its conv layers are, as ``auralise inspect`` lists them):

==  ================  ======================================================  ===========================
L   module            what                                                    output
==  ================  ======================================================  ===========================
1   ``contour.0``     8 filters 3x39 (time x bins, 13 semitones), BN, ReLU    (B, 8, T, 264)
2   ``contour_out.0`` 1 filter 5x5, sigmoid: the **contour** posteriorgram    (B, 1, T, 264)
3   ``note.0``        32 filters 7x7, stride 3 in frequency, ReLU              (B, 32, T, 88)
4   ``note_out.0``    1 filter 7x3, sigmoid: the **note** posteriorgram        (B, 1, T, 88)
5   ``onset.0``       32 filters 5x5 on the HCQT, stride 3 in frequency, BN,   (B, 32, T, 88)
                      ReLU
6   ``onset_out.0``   1 filter 3x3 on [note (1), onset features (32)],         (B, 1, T, 88)
                      sigmoid: the **onset** posteriorgram
==  ================  ======================================================  ===========================

TF ``'same'`` padding is symmetric for all of these kernels and strides (odd kernels; 264 bins at stride 3). The
original graph also builds a 32-filter 5x5 contour conv whose output it overwrites; Keras dropped it from the saved
model, and it is not here. :meth:`BasicPitch.forward` returns the onset posteriorgram ``(B, T, 88)`` (the one output
that depends on all six layers); :meth:`BasicPitch.named_outputs` returns all three.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from auralise.errors import BadModelError

__all__ = ["BasicPitch", "load_basic_pitch_weights", "weight_map", "N_HARMONICS", "N_BINS", "N_NOTES"]

N_HARMONICS = 8
N_BINS = 264  # 88 keys x 3 bins per semitone
N_NOTES = 88
BN_EPS = 1e-3  # tf.keras.layers.BatchNormalization's default


def _conv(c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)) -> nn.Conv2d:
    """A conv with TF 'same' padding for odd kernels (and, along frequency, stride 3 on 264 bins)."""
    if stride[1] == 1:
        pad = (kernel[0] // 2, kernel[1] // 2)
    else:  # 'same' with stride s: total padding (ceil(W/s) - 1) * s + k - W, split evenly (even here)
        total = (-(-N_BINS // stride[1]) - 1) * stride[1] + kernel[1] - N_BINS
        pad = (kernel[0] // 2, total // 2)
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad)


class BasicPitch(nn.Module):
    """Basic Pitch's contour, note and onset heads (the ``icassp_2022`` model), on the ``hcqt`` front-end's output.

    Parameters
    ----------
    n_harmonics : int
        Input channels (8 in the released model).
    n_filters_notes, n_filters_onsets : int
        Filters of the note and onset heads' first convs (32 each).

    Examples
    --------
    >>> net = BasicPitch().eval()
    >>> out = net.named_outputs(torch.zeros(1, 8, 5, 264))
    >>> {k: tuple(v.shape) for k, v in out.items()}
    {'contour': (5, 264), 'note': (5, 88), 'onset': (5, 88)}
    """

    # basic-pitch's inference: windows of 43844 samples (2 s at 22050 Hz less one hop), consecutive windows share
    # 30 frames, and each window's first and last 15 frames are dropped (auralise.studies.prediction)
    analysis_window = (43844, 30)

    def __init__(self, n_harmonics: int = N_HARMONICS, n_filters_notes: int = 32, n_filters_onsets: int = 32):
        super().__init__()
        self.config = {"n_harmonics": n_harmonics, "n_filters_notes": n_filters_notes,
                       "n_filters_onsets": n_filters_onsets}  # fmt: skip
        self.contour = nn.Sequential(_conv(n_harmonics, 8, (3, 39)), nn.BatchNorm2d(8, eps=BN_EPS), nn.ReLU())
        self.contour_out = nn.Sequential(_conv(8, 1, (5, 5)), nn.Sigmoid())
        self.note = nn.Sequential(_conv(1, n_filters_notes, (7, 7), (1, 3)), nn.ReLU())
        self.note_out = nn.Sequential(_conv(n_filters_notes, 1, (7, 3)), nn.Sigmoid())
        self.onset = nn.Sequential(
            _conv(n_harmonics, n_filters_onsets, (5, 5), (1, 3)),
            nn.BatchNorm2d(n_filters_onsets, eps=BN_EPS),
            nn.ReLU(),
        )
        self.onset_out = nn.Sequential(_conv(1 + n_filters_onsets, 1, (3, 3)), nn.Sigmoid())

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three posteriorgrams, model-shaped: contour (B, 1, T, 264), note and onset (B, 1, T, 88)."""
        contour = self.contour_out(self.contour(x))
        note = self.note_out(self.note(contour))
        onset = self.onset_out(torch.cat([note, self.onset(x)], dim=1))
        return contour, note, onset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The onset posteriorgram, shape (B, T, 88), from the HCQT ``x`` (B, 8, T, 264)."""
        return self.heads(x)[2][:, 0]

    def named_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frame-wise outputs with time first: ``contour`` (B*T, 264), ``note`` and ``onset`` (B*T, 88).

        A batch's frames are concatenated in order (a batch of one gives (T, bins)), probabilities in 0..1 as Basic
        Pitch reports them.
        """
        return {k: v[:, 0].reshape(-1, v.shape[-1]) for k, v in zip(("contour", "note", "onset"), self.heads(x))}


# ------------------------------------------------------------------------------------------ weights


def _hwio(w: np.ndarray) -> np.ndarray:
    """TF HWIO kernel (time, freq, in, out) -> PyTorch OIHW."""
    return np.transpose(w, (3, 2, 0, 1))


def _var(i: int, name: str) -> str:
    return f"layer_with_weights-{i}/{name}/.ATTRIBUTES/VARIABLE_VALUE"


# the Keras layers with weights, in the saved model's order; 0 is the input batch norm (the front-end's)
_CONVS = {1: "contour.0", 3: "contour_out.0", 4: "note.0", 5: "onset.0", 7: "note_out.0", 8: "onset_out.0"}
_BNS = {2: "contour.1", 6: "onset.1"}
_BN_PAIRS = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var"))


def weight_map() -> list[tuple[str, str, object]]:
    """(SavedModel variable name, state_dict key, transform or None) for every parameter and BN statistic.

    The names are the object-graph paths of ``nmp/variables`` (``layer_with_weights-<i>/kernel/...``); layer 0, the
    input batch norm, belongs to the front-end (:func:`input_affine`).
    """
    out: list[tuple[str, str, object]] = []
    for i, path in _CONVS.items():
        out += [(_var(i, "kernel"), f"{path}.weight", _hwio), (_var(i, "bias"), f"{path}.bias", None)]
    for i, path in _BNS.items():
        out += [(_var(i, tf), f"{path}.{pt}", None) for tf, pt in _BN_PAIRS]
    return out


def input_affine(arrays: dict[str, np.ndarray]) -> tuple[float, float]:
    """The input batch norm (layer 0) as ``(gain, offset)``: ``gain * v + offset`` = BN(v) in inference."""
    try:
        g, b, m, v = (float(np.asarray(arrays[_var(0, k)]).reshape(-1)[0]) for k, _ in _BN_PAIRS)
    except (KeyError, IndexError) as exc:
        raise BadModelError(f"the Basic Pitch checkpoint lacks the input batch norm ({exc}); re-download it") from None
    gain = g / float(np.sqrt(np.float32(v) + np.float32(BN_EPS)))
    return gain, b - m * gain


def load_basic_pitch_weights(module: BasicPitch, arrays: dict[str, np.ndarray]) -> BasicPitch:
    """Copy the SavedModel's variables into ``module`` (in place) and return it.

    Raises
    ------
    BadModelError
        When a variable is missing or a shape does not fit.
    """
    state = module.state_dict()
    problems, new = [], {}
    for tf, key, fn in weight_map():
        if tf not in arrays:
            problems.append(f"missing {tf}")
            continue
        value = np.asarray(arrays[tf], dtype=np.float32)
        value = fn(value) if fn is not None else value
        if value.shape != tuple(state[key].shape):
            problems.append(f"{tf}: shape {value.shape} does not fit {key} {tuple(state[key].shape)}")
            continue
        new[key] = torch.from_numpy(np.ascontiguousarray(value))
    if problems:
        raise BadModelError("the checkpoint does not fit BasicPitch: " + "; ".join(problems))
    with torch.no_grad():
        for key, value in new.items():
            state[key].copy_(value)
    return module
