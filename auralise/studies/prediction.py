"""What a model outputs for a song, as named arrays over time (``auralise predict``), and a short summary of it.

Two kinds of model are served by one function, :func:`predict_song`:

- A model whose module defines ``named_outputs(x) -> dict[str, torch.Tensor]``, where ``x`` is the front-end's
  model input for the whole song (batch 1), gives its own named outputs, each with one row per time step: CREPE
  (:class:`~auralise.nets.crepe.Crepe`) gives ``activation`` (T, 360), ``pitch_hz`` (T,) and ``confidence`` (T,),
  Basic Pitch gives ``contour``, ``note`` and ``onset`` (computed window by window as basic-pitch's own inference
  does, for a model that declares ``analysis_window``: :func:`_windowed`). The rows of an output are the model
  input's frames, whose
  times the front-end knows (``frame_times``: the centre of each frame); an output with R rows for T input frames
  (a model that pools over time) puts row ``r`` at input frame ``r * T / R``.
- Any other model is a tagger or classifier: its outputs on analysis patches
  (:meth:`~auralise.session.Session.tag`, musicnn's patching) become ``tags`` (P, n_tags), ``mean`` (n_tags,) and
  ``labels`` (n_tags,), with ``time`` the start of each patch.

Every result has ``time`` (R,), the seconds of each row in the file (a song read from ``offset`` adds it).
:meth:`Prediction.save` writes the arrays as one ``.npz`` (atomically; loadable with ``allow_pickle=False``: numbers
and unicode strings only) and :meth:`Prediction.summary` says in a few numbers what the model found:

- tags: the ``top`` tags of highest mean probability;
- pitch (``pitch_hz`` and ``confidence``): the median pitch of the voiced frames and the share of voiced frames, a
  frame being voiced when its confidence is at least :data:`VOICED_THRESHOLD` (0.5, the threshold CREPE's README
  suggests);
- notes (``note``): the number of note events, an event being a run of consecutive frames in which one pitch's
  note activation exceeds :data:`NOTE_THRESHOLD` (0.5, Basic Pitch's default onset threshold; no minimum length,
  no onset required), and the share of frames with at least one active note.

Example
-------
>>> from auralise.studies.prediction import predict_song
>>> result = predict_song("models/crepe-tiny.pt", "demo_audio/ballad.ogg")      # doctest: +SKIP
>>> result.summary()["median_pitch_hz"]                                          # doctest: +SKIP
261.9
>>> result.save("ballad.npz")                                                    # doctest: +SKIP
PosixPath('ballad.npz')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auralise.choices import LAYOUT_AXES
from auralise.errors import BadModelError, BadParameterError, OutputError

__all__ = ["NOTE_THRESHOLD", "VOICED_THRESHOLD", "Prediction", "check_npz_path", "predict_song"]

VOICED_THRESHOLD = 0.5
NOTE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Prediction:
    """A model's outputs on a song: ``arrays`` by name, each with one row per entry of ``arrays["time"]`` (seconds),
    except per-song summaries such as a tagger's ``mean`` and ``labels``."""

    arrays: dict[str, np.ndarray]
    kind: str  # "outputs" (named outputs) or "tags" (a tagger's patches)
    meta: dict = field(default_factory=dict)

    @property
    def time(self) -> np.ndarray:
        return self.arrays["time"]

    def summary(self, top: int = 5) -> dict:
        """The shapes of the arrays and, where the outputs allow, top tags, pitch and notes (module docstring)."""
        a = self.arrays
        out: dict = {"kind": self.kind, "rows": int(len(self.time)), "arrays": {k: list(v.shape) for k, v in a.items()}}
        if len(self.time) > 1:
            out["seconds_per_row"] = round(float(np.median(np.diff(self.time))), 6)
        if "mean" in a and "labels" in a:
            order = np.argsort(-a["mean"], kind="stable")[:top]
            out["top_tags"] = [[str(a["labels"][i]), round(float(a["mean"][i]), 4)] for i in order]
        if "pitch_hz" in a and "confidence" in a:
            voiced = a["confidence"] >= VOICED_THRESHOLD
            out["voiced_threshold"] = VOICED_THRESHOLD
            out["voiced_fraction"] = round(float(voiced.mean()), 4) if voiced.size else 0.0
            out["median_pitch_hz"] = round(float(np.median(a["pitch_hz"][voiced])), 2) if voiced.any() else None
        if "note" in a and a["note"].ndim == 2:
            active = a["note"] > NOTE_THRESHOLD
            starts = active & ~np.vstack([np.zeros((1, active.shape[1]), bool), active[:-1]])
            out["note_threshold"] = NOTE_THRESHOLD
            out["active_notes"] = int(starts.sum())
            out["frames_with_notes"] = round(float(active.any(axis=1).mean()), 4) if len(active) else 0.0
        return out

    def save(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write the arrays to ``path`` (``.npz``) atomically; never over an existing file without ``force``."""
        from auralise.io.files import atomic_path

        target = check_npz_path(path, force=force)
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            np.savez(f, **self.arrays)
        return target


def check_npz_path(path: str | os.PathLike, *, force: bool) -> Path:
    """Refuse, before any work, an output that is not ``.npz``, whose folder is missing, or that exists (without
    ``force``), with one line each."""
    from auralise.io.files import check_output_file

    target = Path(path)
    if target.suffix.lower() != ".npz":
        raise BadParameterError(f"--out must name a .npz file, got {str(path)!r}")
    if not target.parent.is_dir():
        raise OutputError(f"the folder {target.parent} does not exist; create it or choose another --out")
    return check_output_file(target, force=force)


def predict_song(
    model,
    audio: str | os.PathLike,
    *,
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    batch: int = 16,
    length: float | None = None,
    overlap: float | None = None,
) -> Prediction:
    """Every output of ``model`` on ``audio`` as named arrays with a ``time`` axis (see the module docstring).

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        A model file (or a loaded model).
    audio : str or PathLike
        The song (silence is allowed: a fair question for a model).
    device, trust, frontend
        As for :class:`~auralise.session.Session`.
    offset, duration : float
        The part of the song to use, in seconds; times are in seconds of the file.
    batch, length, overlap
        Taggers only (:meth:`~auralise.session.Session.tag`): patches per pass, patch length and overlap in
        seconds. ``length``/``overlap`` with a model that has named outputs are a :class:`BadParameterError`.

    Returns
    -------
    Prediction
    """
    from auralise.session import Session

    session = Session(model, device=device, trust=trust, frontend=frontend)
    song = session.song(audio, allow_silent=True, offset=offset, duration=duration)
    start = float(getattr(song.info, "offset", 0.0) or 0.0)
    meta = {"model": str(session.model_path), "audio": str(audio), "offset": offset, "duration": duration}
    if not callable(getattr(session.module, "named_outputs", None)):
        result = session.tag(song, batch=batch, length=length, overlap=overlap)
        arrays = {
            "time": np.asarray(result.starts, dtype=np.float64),
            "tags": np.asarray(result.probabilities, dtype=np.float32),
            "mean": np.asarray(result.mean, dtype=np.float32),
            "labels": np.asarray([str(label) for label in result.labels], dtype=str),
        }
        return Prediction(arrays, "tags", meta | {"patch_seconds": result.patch_seconds})
    if length is not None or overlap is not None:
        raise BadParameterError("--length and --overlap cut a tagger's patches; this model has named outputs")
    return Prediction(_named_outputs(session, song, start), "outputs", meta)


def _named_outputs(session, song, start: float) -> dict[str, np.ndarray]:
    """The module's ``named_outputs`` on the whole song as numpy arrays, with ``time`` for their rows."""
    import torch

    fe, S = session.frontend, song.S
    T = int(S.shape[LAYOUT_AXES[fe.layout][0]])
    with torch.inference_mode():
        if getattr(session.module, "analysis_window", None):
            outputs = _windowed(session, song.y)
            T = next(iter(outputs.values())).shape[0]  # one row per hop of the song
        else:
            outputs = session.module.eval().named_outputs(S)
    if not isinstance(outputs, dict) or not outputs:
        raise BadModelError("the model's named_outputs must return a dict of named tensors; fix the model's code")
    arrays = {}
    for name, value in outputs.items():
        if not isinstance(name, str) or not name.isidentifier() or name == "time":
            raise BadModelError(f"the model's named_outputs gives an output named {name!r}; names must be identifiers")
        arr = value.detach().float().cpu().numpy() if hasattr(value, "detach") else np.asarray(value, np.float32)
        if arr.ndim == 0:
            raise BadModelError(f"the model's output {name!r} is a scalar; named outputs have one row per time step")
        arrays[name] = arr
    rows = {arr.shape[0] for arr in arrays.values()}
    if len(rows) != 1:
        raise BadModelError(f"the model's named outputs have different numbers of rows ({sorted(rows)}); fix the model")
    R = rows.pop()
    times = fe.frame_times(T)
    position = np.arange(R) * (T / R) if R else np.zeros(0)
    return {"time": np.interp(position, np.arange(T), times) + start, **arrays}


def _windowed(session, y: np.ndarray) -> dict:
    """``named_outputs`` as the model's own inference computes them on a long song: the model's
    ``analysis_window = (samples, overlap_frames)`` declares windows of that many samples, each analysed on its own
    (its front-end normalisation included), consecutive windows sharing ``overlap_frames`` frames; the song is
    preceded by half the overlap of zeros, each window's first and last ``overlap_frames // 2`` rows are dropped,
    the rest joined and cut to one row per hop of the song (basic-pitch 0.4.0's ``window_audio_file`` and
    ``unwrap_output``, with its ``ANNOTATIONS_FPS = sr // hop``)."""
    import torch

    fe, module = session.frontend, session.module.eval()
    window, overlap = (int(v) for v in module.analysis_window)
    half, trim = overlap * fe.hop_length // 2, overlap // 2
    padded = np.concatenate([np.zeros(half, np.float32), np.asarray(y, np.float32)])
    parts: dict[str, list] = {}
    for begin in range(0, len(padded), window - overlap * fe.hop_length):
        piece = np.zeros(window, np.float32)
        chunk = padded[begin : begin + window]
        piece[: len(chunk)] = chunk
        S = fe.model_input(fe.stft(piece), y=piece).to(session.device)
        for name, value in module.named_outputs(S).items():
            parts.setdefault(name, []).append(value[trim : len(value) - trim] if torch.is_tensor(value) else value)
    rows = int(np.floor(len(y) * (fe.sr // fe.hop_length) / fe.sr))
    return {name: torch.cat(values)[:rows] for name, values in parts.items()}
