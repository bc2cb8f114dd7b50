"""A classifier's patches: the model input cut into fixed-length, possibly overlapping patches, as taggers read it.

musicnn's tagger (``input_length``, ``input_overlap``) and :meth:`auralise.session.Session.tag` cut the song's model
input into patches of a length in seconds, one every ``length - overlap`` seconds, the remainder dropped. This module
turns seconds into model-input frames (as the front-end converts any duration), cuts the patches (a strided view,
copied only a batch at a time), and finds out whether a model can take patches of another length than its own (a
classifier with a fixed-size dense layer cannot): it tries the forward pass, and if that fails, finds the shortest
or longest length it takes by bisection. The front-end is used through its length methods only (``frames_for``,
``n_frames``, ``field_samples``); nothing here knows about audio files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from auralise.errors import BadAudioError, BadParameterError

Frontend = Any  # a front-end (auralise.frontends.Frontend), used through its length methods only

__all__ = ["patch_grid", "seconds_for", "cut_patches", "check_patch_length"]


def patch_grid(
    fe: Frontend, length, overlap, total: int, *, name: str, given: bool, seconds: float
) -> tuple[int, int, int]:
    """Frames per patch, frames between patch starts and audio samples per frame of ``length``-s patches that
    overlap by ``overlap`` s (None: 0), on a model input of ``total`` frames made from ``seconds`` of audio.

    ``length`` becomes ``fe.frames_for(length)`` frames; ``overlap`` is rounded to whole frames. ``given``: the user
    chose ``length`` (a song shorter than it is a :class:`BadParameterError`); otherwise it is the model's own and a
    shorter song (``name``) is a :class:`BadAudioError`. Every error is one line saying what to pass.
    """
    for option, value in (("--length", length), ("--overlap", overlap)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | np.number)):
            raise BadParameterError(f"{option} must be a number of seconds, got {value!r}")
    hop = fe.field_samples(2) - fe.field_samples(1)  # audio samples per model-input frame
    song_s = round(seconds, 3)
    if not (np.isfinite(length) and length > 0 and fe.frames_for(length) >= 1):
        raise BadParameterError(f"--length must be a positive number of seconds, got {length!r}")
    frames = fe.frames_for(length)
    if frames > total and given:
        raise BadParameterError(
            f"--length {length:g} s is longer than the song ({song_s:g} s); pass at most {song_s:g}"
        )
    if frames > total:
        raise BadAudioError(
            f"{name} is {song_s:.2f} s long; the model tags patches of {length:g} s: give a longer file"
        )
    overlap = 0.0 if overlap is None else overlap
    step = frames - round(overlap * fe.sr / hop) if np.isfinite(overlap) else 0
    if not 0 <= overlap < length or step < 1:
        raise BadParameterError(
            f"--overlap must be at least 0 s and shorter than the patch ({length:g} s) by one frame "
            f"({hop / fe.sr:g} s), got {overlap!r}"
        )
    return frames, step, hop


def seconds_for(fe: Frontend, frames: int) -> float:
    """The shortest duration that ``fe.frames_for`` turns into ``frames`` model-input frames.

    Examples
    --------
    >>> from auralise.frontends import Frontend
    >>> seconds_for(Frontend(kind="mel", sr=16000, n_fft=512, hop_length=256), 187)  # musicnn's patch
    2.976
    """
    samples = max(0, (frames - 1) * (fe.field_samples(2) - fe.field_samples(1)))
    while fe.n_frames(samples) < frames:
        samples += 1
    return samples / fe.sr


def cut_patches(S: torch.Tensor, axis: int, frames: int, step: int) -> torch.Tensor:
    """The patches of the model input ``S`` (batch 1), ``frames`` long along ``axis``, one every ``step`` frames,
    the remainder dropped: shape (count, *S.shape[1:] with ``frames`` on ``axis``), a view of ``S``."""
    return S.unfold(axis, frames, step).movedim(-1, axis + 1).movedim(axis, 0).squeeze(1)


def check_patch_length(module, S: torch.Tensor, axis: int, length: float, own: int, fe: Frontend, device: str) -> None:
    """A one-line :class:`BadParameterError` when the model cannot take ``length``-s patches.

    The forward pass runs on one all-zero patch of that length. If it fails (or gives no score per tag) while the
    model's own length ``own`` works, the shortest (or longest) length between the two that it takes is found by
    bisection and named in the message, with the reason the forward pass gave.
    """

    def fails(n: int) -> str | None:
        shape = list(S.shape)
        shape[axis] = n
        try:
            with torch.inference_mode():
                out = module.eval()(torch.zeros(shape, dtype=S.dtype, device=device))
        except Exception as exc:  # noqa: BLE001 -- any failure of the model's code on this shape is the answer
            return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        return None if out.ndim == 2 else f"output shape {tuple(out.shape[1:])} per patch"

    frames = fe.frames_for(length)
    reason = fails(frames)
    if reason is None or fails(own) is not None:  # fine, or it fails on its own patches too (tag reports that)
        return
    good, bad = own, frames  # bisection: the model takes good frames, not bad ones
    while abs(good - bad) > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if fails(mid) is None else (good, mid)
    which, bound = ("shortest", "at least") if frames < own else ("longest", "at most")
    best = seconds_for(fe, good)
    raise BadParameterError(
        f"the model cannot take {length:g}-s patches ({frames} frames: {reason}); the {which} it "
        f"takes is {best:g} s ({good} frames): pass a --length of {bound} {best:g}"
    )
