"""The session: one loaded model with its device, front-end and rendering options, where every entry point meets.

Owns the set-up chain that every command shares, written once: resolve the device (:func:`resolve_device`), load the
model (or take a loaded one), discover its layers on the example input, measure receptive fields and the shortest
song a layer can hear, load a song once (:class:`Song`: its audio, and on first use its STFT, magnitude and model
input) — and serves from it projections (:meth:`Session.projector`, :meth:`Session.project`), resynthesis with the
frozen :class:`RenderOptions` (:meth:`Session.render`), feature ranking (:meth:`Session.rank`) and tagging
(:meth:`Session.tag`), in the spirit of demucs' ``Separator``. ``auralise_file``, ``export``, the paper figures,
ranking and tagging are built on it (README, "Python API", for an example). Importing this module imports no torch;
making a session does.

May import: auralise.errors, auralise.choices, auralise.text, auralise.frontends, auralise.engine, auralise.nets, auralise.io, auralise.render
"""  # noqa: E501 -- the declaration is one line (tests/test_architecture.py reads it)

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.choices import ABOVE_BANDS, LAYOUT_AXES, METHODS, NORMALISATIONS, PHASES, RESYNTH_MODES, TAPS
from auralise.errors import BadModelError, BadParameterError, check_choice

if TYPE_CHECKING:
    import torch

    from auralise.engine.chunking import ChunkedProjector, FeatureStats
    from auralise.engine.deconv import Projection
    from auralise.engine.layers import Layer, LayerGraph
    from auralise.frontends import Frontend
    from auralise.io.audio import AudioInfo
    from auralise.io.modelfile import LoadedModel
    from auralise.render.resynth import Rendered
    from auralise.render.streaming import SongFrames

__all__ = ["RenderOptions", "Session", "Song", "FeatureRank", "TagResult", "resolve_device"]

DEFAULT_TAG_SECONDS = 4.0  # patch length of a tagger whose front-end names none


def resolve_device(device: str | None) -> str:
    """The device to run on: ``"auto"``/None -> cuda when available, else cpu.

    Parameters
    ----------
    device : str or None
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    str
        ``"cpu"`` or a cuda device name.

    Raises
    ------
    BadParameterError
        ``"cuda"`` without CUDA on this machine, or an unknown device name.
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadParameterError("CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise BadParameterError(f"unknown device {device!r}; use cpu, cuda or auto")
    return device


@dataclass(frozen=True)
class RenderOptions:
    """How features are projected and heard: checked when made, so a bad value fails before any work.

    ``method`` the backward rule (:data:`auralise.choices.METHODS`); ``select`` which activations seed the projection
    (``map``, ``max`` or ``topk:K``); ``tap`` which tensor is the layer (:data:`auralise.choices.TAPS`); ``resynth``
    how it is heard (:data:`auralise.choices.RESYNTH_MODES`, default ``distinct``); ``phase`` the song's own or
    Griffin-Lim; ``normalize`` each WAV to a 0.99 peak, or levels kept comparable; ``output_sr`` the WAV's rate
    (``"model"``, ``"original"`` or Hz) and ``above_band`` the mask above the model's band there
    (:mod:`auralise.render.rate`). A bad value is a one-line :class:`~auralise.errors.BadParameterError`.

    Example
    -------
    >>> RenderOptions(method="guided", select="topk:3").tap
    'block'
    """

    method: str = "deconvnet"
    select: str = "map"
    tap: str = "block"
    resynth: str = RESYNTH_MODES[0]
    phase: str = "original"
    normalize: str = "peak"
    output_sr: str | int = "model"
    above_band: str = "extend"

    def __post_init__(self) -> None:
        for value, choices, what in (
            (self.resynth, RESYNTH_MODES, "resynthesis mode"),
            (self.phase, PHASES, "phase"),
            (self.normalize, NORMALISATIONS, "normalisation"),
            (self.method, METHODS, "method"),
            (self.tap, TAPS, "tap point"),
            (self.above_band, ABOVE_BANDS, "--above-band"),
        ):
            check_choice(value, choices, what)
        from auralise.engine.selection import parse_selection
        from auralise.render.rate import parse_output_sr

        object.__setattr__(self, "output_sr", parse_output_sr(self.output_sr))

        parse_selection(self.select)

    def to_dict(self) -> dict[str, str]:
        """The options by name, in field order (the keys of an export's journal header and manifest)."""
        return asdict(self)


class Song:
    """One song, decoded once at the model's rate; its STFT, magnitude and model input are made on first use and kept.

    Attributes
    ----------
    path : str or PathLike
        The file, as given.
    y : np.ndarray, shape (n,), float32
        Mono audio at the front-end's sample rate.
    info : AudioInfo
        What was read and done to it (``info.notes``: downmix, resampling).
    """

    def __init__(self, path: str | os.PathLike, y: np.ndarray, info: AudioInfo, frontend: Frontend, device: str):
        self.path, self.y, self.info = path, y, info
        self._frontend, self._device = frontend, device
        self.references: dict[tuple, np.ndarray] = {}  # (mode, layer, method, select, tap) -> layer_reference
        self._rates: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # --output-sr: rate -> (y, X) at that rate

    @property
    def n_samples(self) -> int:
        """Samples of :attr:`y`."""
        return len(self.y)

    @cached_property
    def X(self) -> np.ndarray:
        """The complex STFT, shape (F, T): the phase and grid of resynthesis."""
        return self._frontend.stft(self.y)

    @cached_property
    def magnitude(self) -> np.ndarray:
        """``|X|``, shape (F, T): the song's spectrogram for pictures."""
        return np.abs(self.X)

    @cached_property
    def S(self) -> torch.Tensor:
        """The model input on the session's device, shape (1, *frontend.input_shape(T))."""
        return self._frontend.model_input(self.X, y=self.y).to(self._device)

    def at_rate(self, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """The same part of the file decoded again at ``rate`` Hz, and its STFT on :class:`auralise.render.rate.
        RateGrid`'s grid: ``(y (n_R,), X (F_R, T_R))``, kept for the next feature (``--output-sr``)."""
        from auralise.io.audio import load_audio
        from auralise.render.rate import RateGrid

        if rate not in self._rates:
            y, _ = load_audio(self.path, sr=rate, offset=self.info.offset, duration=self.info.duration)
            self._rates[rate] = (y, RateGrid(self._frontend, rate).out.stft(y))
        return self._rates[rate]

    @cached_property
    def frames(self) -> SongFrames:
        """STFT frames made a block at a time, for songs streamed through memory (:mod:`auralise.render.streaming`)."""
        from auralise.render.streaming import SongFrames

        return SongFrames(self.y, self._frontend)


@dataclass(frozen=True)
class FeatureRank:
    """One feature's response to a song: ``rank`` 1 has the most energy; ``share`` is its fraction of the layer's."""

    layer: int
    feature: int
    rank: int
    energy: float
    maximum: float
    share: float
    dead: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TagResult:
    """``probabilities`` (P, n_tags) per patch starting at ``starts`` (P,) seconds; ``mean`` (n_tags,)."""

    labels: list[str]
    starts: np.ndarray
    probabilities: np.ndarray
    patch_seconds: float
    activation: str

    @property
    def mean(self) -> np.ndarray:
        return self.probabilities.mean(axis=0)

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` tags of highest mean probability (all by default), highest first."""
        order = np.argsort(-self.mean, kind="stable")[: k or len(self.labels)]
        return [(self.labels[i], float(self.mean[i])) for i in order]

    def to_dict(self, k: int | None = None) -> dict:
        return {
            "patch_seconds": self.patch_seconds,
            "activation": self.activation,
            "mean": dict(self.top(k)),
            "patches": [
                {"start": round(float(s), 3), "probabilities": dict(zip(self.labels, map(float, p)))}
                for s, p in zip(self.starts, self.probabilities)
            ],
        }


class Session:
    """A model ready to serve songs: the loaded model on its device, its front-end, layers and rendering options.

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        A model file (loaded with ``frontend`` and ``trust``, see :func:`auralise.io.modelfile.load_model`) or an
        already loaded model (moved to ``device``).
    device : str or None
        ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda"``; see :func:`resolve_device`.
    trust : bool
        Allow a model file to run code (``--trust-model``).
    frontend : dict, str or None
        Front-end (dict or JSON file) for model files that lack one.
    options : RenderOptions or None
        How features are projected and resynthesised (default ``RenderOptions()``).

    Layers are discovered on the example input the first time they are asked for; songs are not kept (each
    :meth:`song` call decodes its file once and returns a :class:`Song` that holds everything made from it).
    """

    def __init__(
        self,
        model: str | os.PathLike | LoadedModel,
        *,
        device: str | None = "auto",
        trust: bool = False,
        frontend: dict | str | None = None,
        options: RenderOptions | None = None,
    ):
        from auralise.io.modelfile import LoadedModel, load_model

        options = RenderOptions() if options is None else options
        if not isinstance(options, RenderOptions):
            raise BadParameterError(f"options must be RenderOptions, got {type(options).__name__}")
        self.options = options
        self.device = resolve_device(device)
        is_loaded = isinstance(model, LoadedModel)
        self.loaded = model if is_loaded else load_model(model, frontend=frontend, trust=trust)
        self.loaded.to(self.device)
        self.model_path = self.loaded.meta.get("path") if is_loaded else model  # as given, for manifests

    def __repr__(self) -> str:
        return f"Session({str(self.model_path)!r}, device={self.device!r}, options={self.options!r})"

    @property
    def frontend(self) -> Frontend:
        return self.loaded.frontend

    @property
    def module(self) -> torch.nn.Module:
        return self.loaded.module

    @cached_property
    def example(self) -> torch.Tensor:
        """The input layers are discovered and measured on: one patch of the model (4 s by default), batch 1."""
        return self.loaded.example_input()

    @cached_property
    def graph(self) -> LayerGraph:
        """The model's convolution layers in execution order (:func:`auralise.engine.layers.discover`)."""
        from auralise.engine.layers import discover

        return discover(self.module, self.example)

    @cached_property
    def model_sha256(self) -> str | None:
        """SHA-256 of the model file, None when the model did not come from a file that is still there."""
        from auralise.io.digest import file_sha256

        path = self.model_path
        return file_sha256(path) if path and Path(path).is_file() else None

    # -- layers ----------------------------------------------------------------------------------------------------

    def layer(self, spec: int | str | Layer) -> Layer:
        """One conv layer by 1-based number or module path (a :class:`~auralise.engine.layers.Layer` passes through)."""
        from auralise.engine.layers import Layer

        return spec if isinstance(spec, Layer) else self.graph.layer(spec)

    def layers(self, specs: Sequence[int | str | Layer] | None = None) -> list[Layer]:
        """The layers named by ``specs`` in order, each once (all of them for None)."""
        found = list(self.graph.layers) if specs is None else [self.layer(s) for s in specs]
        return list({lay.number: lay for lay in found}.values())

    def receptive_field(self, layer: int | str | Layer, tap: str | None = None) -> tuple[int, int]:
        """(frames, bins) of the model input one unit at ``tap`` (default the options') of ``layer`` sees."""
        from auralise.engine.layers import receptive_field

        tap = tap or self.options.tap
        return receptive_field(self.module, self.example, self.layer(layer), tap=tap, layout=self.frontend.layout)

    def layer_table(self, tap: str | None = None) -> list[dict]:
        """One row per conv layer: geometry, tap shape, receptive field (:func:`auralise.engine.layers.layer_table`)."""
        from auralise.engine.layers import layer_table

        return layer_table(self.module, self.example, self.frontend, tap=tap or self.options.tap)

    def min_samples(self, layers: Sequence[int | str | Layer], tap: str | None = None) -> int:
        """Fewest samples of audio in which one unit of the deepest of ``layers`` sees real audio."""
        tap = tap or self.options.tap
        deepest = max(self.layers(layers), key=lambda lay: lay.taps[tap][0])
        return self.frontend.min_samples_for(self.receptive_field(deepest, tap)[0])

    # -- songs -----------------------------------------------------------------------------------------------------

    def song(
        self,
        path: str | os.PathLike,
        *,
        min_samples: int = 1,
        allow_silent: bool = False,
        offset: float = 0.0,
        duration: float | None = None,
    ) -> Song:
        """Decode ``path`` (or ``duration`` seconds of it from ``offset``) once, mono at the model's rate
        (:func:`auralise.io.audio.load_audio`).

        Parameters
        ----------
        path : str or PathLike
            The audio file.
        min_samples : int
            Shorter audio is a :class:`~auralise.errors.BadAudioError` (see :meth:`min_samples`).
        allow_silent : bool
            Accept all-zero audio (a tagger may be asked about silence).
        offset, duration : float
            The part of the file to read, in seconds (librosa's names): from ``offset`` (default the start) for
            ``duration`` (default to the end); ``song.info.offset`` records where it starts.

        Returns
        -------
        Song
            ``y`` (n,) and ``info`` now; ``X`` (F, T), ``magnitude`` (F, T) and ``S`` (1, *input_shape) on first use.
        """
        from auralise.io.audio import load_audio

        y, info = load_audio(path, sr=self.frontend.sr, min_samples=min_samples, allow_silent=allow_silent,
                             offset=offset, duration=duration)  # fmt: skip
        return Song(path, y, info, self.frontend, self.device)

    # -- projection and resynthesis --------------------------------------------------------------------------------

    def projector(
        self,
        song: Song,
        layers: Sequence[int | str | Layer],
        *,
        memory_budget: int | None = None,
        streamed: bool = False,
    ) -> ChunkedProjector:
        """A projector of ``layers`` on the song with the options' method, selection and tap.

        ``streamed``: the model input is made a chunk at a time from :attr:`Song.frames` instead of the whole
        :attr:`Song.S`. ``memory_budget`` bounds a chunk's recorded forward pass plus one batch of backward signals
        (default :data:`auralise.engine.deconv.DEFAULT_MEMORY_BUDGET`, 1 GiB).
        """
        o = self.options
        return self._projector(song, layers, o.method, o.select, memory_budget=memory_budget, streamed=streamed)

    def _projector(self, song, layers, method, select, *, memory_budget=None, streamed=False):
        from auralise.engine.deconv import DEFAULT_MEMORY_BUDGET, make_projector

        if streamed:
            from auralise.render.streaming import SegmentedInput

            S = SegmentedInput(song.frames, self.device)
        else:
            S = song.S
        numbers = [self.layer(lay).number for lay in layers]
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
        return make_projector(self.module, S, numbers, method=method, select=select, tap=self.options.tap,
                              example=self.example, memory_budget=budget, layout=self.frontend.layout)  # fmt: skip

    def project(self, song: Song, layer: int | str | Layer, features: Sequence[int] | int) -> Projection:
        """Project ``features`` of ``layer`` onto the song's model input (as :func:`auralise.engine.deconv.deconvolve`).

        Returns
        -------
        Projection
            ``D`` (K, *S.shape[1:]) and the features' activation maximum and energy (K,).
        """
        from auralise.engine.deconv import project_features

        o = self.options
        return project_features(self.module, song.S, layer=self.layer(layer).number, features=features,
                                method=o.method, select=o.select, tap=o.tap, example=self.example,
                                layout=self.frontend.layout)  # fmt: skip

    def render(self, song: Song, D, *, activation_max=None, layer: int | str | Layer | None = None) -> Rendered:
        """Projections -> sound and pictures with the options' resynthesis, phase and normalisation.

        Parameters
        ----------
        song : Song
            The song projected; its STFT gives the phase.
        D : torch.Tensor or np.ndarray, shape (K, *S.shape[1:])
            Model-shaped projections.
        activation_max : array, shape (K,), optional
            Each feature's activation maximum; a feature at most 0 is never active and silent.

        Returns
        -------
        Rendered
            Unpacks as ``waves`` (K, n), ``gains`` (K,), ``grid`` (K, F, T); also ``silent`` and ``reasons``
            (:func:`auralise.render.resynth.render_waves`).
        """
        from auralise.render.contrast import relative_to_layer
        from auralise.render.resynth import render_waves

        o = self.options
        reference = None
        if relative_to_layer(o.resynth, self.frontend):
            if layer is None:
                raise BadParameterError(f"the {o.resynth} resynthesis needs the projections' layer (layer=)")
            reference = layer_reference(self, song, layer)
        output = None
        rate = self.output_rate(song)
        if rate != self.frontend.sr:
            from auralise.render.rate import RateGrid

            y_out, X_out = song.at_rate(rate)
            output = (RateGrid(self.frontend, rate, above_band=o.above_band), X_out, len(y_out))
        return render_waves(song.X, D, frontend=self.frontend, mode=o.resynth, phase=o.phase, length=song.n_samples,
                            normalize=o.normalize, activation_max=activation_max, y=song.y,
                            reference=reference, output=output)  # fmt: skip

    def output_rate(self, song: Song) -> int:
        """The rate of the song's WAVs in Hz: the model's, the file's (``--output-sr original``) or the one given."""
        from auralise.render.rate import output_rate

        return output_rate(self.frontend, self.options.output_sr, song.info.orig_sr)

    # -- ranking and tagging ---------------------------------------------------------------------------------------

    def rank(self, song: Song, layers: Sequence[int | str | Layer] | None = None) -> dict[int, list[FeatureRank]]:
        """Per layer (all by default), its features ordered by activation energy at the options' tap, highest first.

        The energy is the sum of squares of the feature's map over the whole song (chunk by chunk for long songs,
        each unit counted once); a feature whose map is all zero is *dead*.
        """
        import torch

        lays = self.layers(layers)
        projector = self._projector(song, lays, "deconvnet", "map")
        with torch.inference_mode():
            stats = projector.statistics()
        return {lay.number: _ranked(lay, stats[lay.number]) for lay in lays}

    def tag(
        self, song: Song, *, batch: int = 16, length: float | None = None, overlap: float | None = None
    ) -> TagResult:
        """The model's tag or class probabilities on patches of the song, cut as musicnn's tagger cuts them.

        Patches are ``length`` seconds long (default the model's own, ``frontend.patch_seconds``, 4 s when it names
        none), converted to model-input frames as the front-end converts any duration (``frontend.frames_for``: 3 s
        of a centred STFT at hop 256, 16 kHz is 188 frames; musicnn's ``input_length=3`` is 187, the patch length
        of its checkpoints, the default here). A patch starts every ``length - overlap`` seconds (``overlap``
        rounded to whole frames; default 0: one after another), the remainder dropped. Probabilities are the
        sigmoid of the outputs for multi-label taggers (checkpoint provenance ``output_activation: sigmoid``), the
        softmax otherwise. ``starts`` are in seconds of the file (a song read from ``--offset`` adds it).

        Raises
        ------
        BadParameterError
            ``length`` or ``overlap`` not a number, ``overlap`` negative or not shorter than ``length`` by a frame,
            ``length`` longer than the song, or shorter (or longer) than the model can take: its forward pass fails
            on such a patch (the message names the shortest or longest length it takes).
        BadAudioError
            The song is shorter than the model's own patch length (``length`` not given).
        """
        from auralise.engine.patches import check_patch_length, cut_patches, patch_grid

        fe = self.frontend
        seconds = fe.patch_seconds or DEFAULT_TAG_SECONDS
        S = song.S
        axis = LAYOUT_AXES[fe.layout][0]
        frames, step, hop = patch_grid(fe, seconds if length is None else length, overlap, S.shape[axis],
                                       name=str(song.path), given=length is not None,
                                       seconds=song.n_samples / fe.sr)  # fmt: skip
        if length is not None:  # another length than the model's own: the model must be able to take it
            check_patch_length(self.module, S, axis, length, fe.frames_for(seconds), fe, self.device)
        patches = cut_patches(S, axis, frames, step)
        count = len(patches)
        activation = str((self.loaded.meta.get("provenance") or {}).get("output_activation", "softmax"))
        probabilities = _probabilities(self.module, patches, activation, batch, self.device)
        labels = self.loaded.labels
        if labels is not None and len(labels) != probabilities.shape[1]:
            raise BadModelError(
                f"the model file has {len(labels)} labels but the model outputs {probabilities.shape[1]} scores; "
                "re-save the model with one label per output"
            )
        labels = list(labels or [f"class {i}" for i in range(probabilities.shape[1])])
        starts = np.arange(count) * step * hop / fe.sr + float(getattr(song.info, "offset", 0.0) or 0.0)
        return TagResult(labels, starts, probabilities, seconds if length is None else float(length), activation)


def layer_reference(
    session: Session, song: Song, layer: int | str | Layer, *, batch: int = 16, projections: Iterable | None = None
) -> np.ndarray:
    """The layer's reference on the song for the session's layer-relative ``resynth`` mode, float32: its mean mask
    for ``contrast`` (F, T), its features' best claims for ``partition`` (F, T), both stacked for ``distinct``
    (2, F, T) (:func:`auralise.render.contrast.layer_accumulators`).

    Every feature of the layer is projected with the session's options, ``batch`` at a time, or taken from
    ``projections`` (pairs of ``D`` (k, ...) and activation maxima (k,) covering the layer, e.g. an export's own);
    every layer-relative mode's reference is made from them and kept on the song (``song.references``).
    """
    from auralise.choices import LAYER_RELATIVE_MODES
    from auralise.render.contrast import add_to_all, layer_accumulators, references_of
    from auralise.render.resynth import ZERO_PEAK

    lay, o = session.layer(layer), session.options
    check_choice(o.resynth, LAYER_RELATIVE_MODES, "layer-relative resynthesis mode")
    key = (lay.number, o.method, o.select, o.tap)
    if (o.resynth, *key) not in song.references:
        if projections is None:  # the session's own, batch by batch from one forward pass
            projections = _layer_projections(session.projector(song, [lay]), lay, batch)
        accs = layer_accumulators(zero_peak=ZERO_PEAK)
        for D, activation_max in projections:
            add_to_all(accs, session.frontend.to_grid(D), np.asarray(activation_max, dtype=np.float64))
        song.references.update({(mode, *key): ref for mode, ref in references_of(accs).items()})
    return song.references[(o.resynth, *key)]


def _layer_projections(projector: ChunkedProjector, lay: Layer, batch: int) -> Iterator[tuple]:
    """(D (k, ...), activation maxima (k,)) of every feature of ``lay``, ``batch`` at a time."""
    import torch

    amax = projector.statistics()[lay.number].maximum.double().cpu().numpy()
    for feats in (list(range(a, min(lay.channels, a + batch))) for a in range(0, lay.channels, batch)):
        with torch.inference_mode():
            ((_, _, D),) = projector.project([(lay.number, feats)])
        yield D, amax[feats]


def _ranked(lay: Layer, stats: FeatureStats) -> list[FeatureRank]:
    """One layer's features as :class:`FeatureRank` rows, by rank."""
    total = float(stats.energy.sum())
    ranks = stats.ranks()
    rows = [
        FeatureRank(
            layer=lay.number,
            feature=f,
            rank=ranks[f],
            energy=float(stats.energy[f]),
            maximum=float(stats.maximum[f]),
            share=float(stats.energy[f]) / total if total > 0 else 0.0,
            dead=bool(stats.nonzero[f] == 0),
        )
        for f in range(lay.channels)
    ]
    return sorted(rows, key=lambda r: r.rank)


def _probabilities(module, patches: torch.Tensor, activation: str, batch: int, device: str) -> np.ndarray:
    """(P, n_outputs) probabilities of the model on ``patches`` (P, *input_shape), ``batch`` patches at a time."""
    import torch

    outputs = []
    with torch.inference_mode():
        for i in range(0, len(patches), batch):
            logits = module.eval()(patches[i : i + batch].to(device)).float()
            if logits.ndim != 2:
                raise BadModelError(
                    f"the model's output has shape {tuple(logits.shape[1:])} per patch, not one score per tag; "
                    "tag needs a model that ends in a classifier (`auralise predict` writes any model's outputs)"
                )
            outputs.append(torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=1))
    return torch.cat(outputs).cpu().numpy()
