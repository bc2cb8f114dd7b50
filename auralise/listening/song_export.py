"""One song of a listening set: its original, statistics, choice of features, projection, resynthesis and files.

A song is exported in memory when its arrays fit the memory budget, else streamed segment by segment
(:func:`song_plan`, :mod:`auralise.render.streaming`). Features are projected in groups; each group's files are
written by the export's worker threads while the next group is computed, and an item is recorded in the journal
only once its files are in place.

Progress is counted in units of work per song (:class:`Work`): the set-up (STFT, model input, the layers' geometry,
the forward pass and its statistics), then per feature its projection and its files. It is reported through the
export's callback with the current stage ("loading", "forward pass", "projecting layer 3", "resynthesising layer
3", "writing", "done"), after every layer of a group (every chunk of the song when it is projected in chunks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError
from auralise.io.naming import output_name
from auralise.listening.journal import Journal

if TYPE_CHECKING:
    import torch

    from auralise.engine.layers import Layer
    from auralise.frontends import Frontend
    from auralise.listening.export import ExportOptions
    from auralise.session import Session, Song

__all__ = [
    "GROUP_CAP",
    "ExportContext",
    "Progress",
    "SongExport",
    "SongPlan",
    "Work",
    "song_plan",
    "yield_to_projection",
]

GROUP_CAP = 8  # features rendered together: enough to keep the writer threads busy (see song_plan)

Progress = Callable[[str, int, int, str], None]  # (song id, work done, work in this song or 0 if unknown, stage)


@dataclass(frozen=True)
class ExportContext:
    """What every song of one export shares: its options and layers, where it writes, its writer threads, its
    journal and the items a resumed run finished before, the memory budget and the progress callback."""

    options: ExportOptions
    layers: list[Layer]
    out: Path
    pool: ThreadPoolExecutor
    journal: Journal
    done: dict[tuple[str, int, int], dict]
    memory_budget: int
    progress: Progress | None = None


@dataclass(frozen=True)
class Work:
    """Units of work of one song: a feature's projection counts :attr:`PROJECT`, its resynthesis and files
    :attr:`WRITE` (on the demo models a projection takes about four times as long as the rest); the set-up before
    the first projection counts :meth:`setup` (an eighth of the features' work, at least eight projections': on
    the demo models it takes as long as 10 to 70 projections)."""

    PROJECT = 4
    WRITE = 1
    features: int

    @property
    def per_feature(self) -> int:
        return self.PROJECT + self.WRITE

    def setup(self) -> int:
        return max(8 * self.PROJECT, self.features * self.per_feature // 8)

    def total(self) -> int:
        return self.setup() + self.features * self.per_feature


class SongExport:
    """The export of one song (``song_id`` its folder in the export) with the session's model and options.

    :meth:`run` writes the original and every chosen feature of every layer, and returns their records.
    """

    DEVICE_RENDERING: bool | None = None  # resynthesise on the projection's device: None = on a GPU only

    def __init__(self, session: Session, song: Song, song_id: str, context: ExportContext):
        self.session, self.song, self.id, self.context = session, song, song_id, context
        self.o, self.lays, self.dir = session.options, context.layers, context.out / song_id
        self.pool, self.journal = context.pool, context.journal
        self.lock = threading.Lock()  # the journal and the progress count are shared with the writer threads
        self.work, self.units, self.stage = Work(0), 0, "loading"
        self.on_device, self.X_device = False, None  # resynthesis on the projection's device; the STFT there
        self.original: Future | None = None  # the original's WAV and PNG, being written
        self.whole_layers = None  # a layer-relative mode's projections, in memory (auralise.listening.whole_layers)

    def run(self, feature_kind: str, feature_arg) -> list[dict]:
        """Export the song: ``feature_kind`` and ``feature_arg`` as :func:`auralise.listening.export.parse_feature_spec`
        returns them. Items finished by an earlier run (``context.done``) are kept, not redone."""
        from auralise.engine.memory import reuse_freed_memory

        plan = song_plan(self.session.frontend, self.song.n_samples, self.context.memory_budget, self.context.options)
        self.streamed = plan.streamed
        if plan.streamed and self.o.output_sr != "model":
            raise BadParameterError(
                f"{self.song.path}: --output-sr {self.o.output_sr} needs the whole song in memory but it is streamed "
                "at this --memory budget: raise --memory or export a part with --duration"
            )
        # Keeping freed memory in the heap saves page faults on whole-song temporaries (from the layers' geometry
        # and the forward pass on), but fragments the heap over the many chunk-sized ones of a streamed song (RSS
        # grew 3x): streamed songs use plain malloc.
        with contextlib.nullcontext() if plan.streamed else reuse_freed_memory():
            return self._run(plan, feature_kind, feature_arg)

    def _run(self, plan: SongPlan, feature_kind: str, feature_arg) -> list[dict]:
        """:meth:`run` once the song's plan is made."""
        from auralise.engine.memory import single_threaded_blas
        from auralise.render.contrast import relative_to_layer

        self.work = Work(sum(_count(feature_kind, feature_arg, lay.channels) for lay in self.lays))
        self._progress("forward pass")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.original = self.pool.submit(self._write_original)  # written while the first group is projected
        projector = self.session.projector(self.song, self.lays, memory_budget=plan.projector_bytes,
                                           streamed=plan.streamed)  # fmt: skip
        if len(projector.chunks) > 1 and not plan.streamed:  # smaller groups, if that records the song only once
            fit = song_plan(self.session.frontend, self.song.n_samples, self.context.memory_budget,
                            self.context.options, one_chunk=projector.one_chunk_bytes)  # fmt: skip
            if fit.projector_bytes >= projector.one_chunk_bytes:
                plan, projector = fit, projector.with_budget(fit.projector_bytes)
        stats = {n: st.to("cpu") for n, st in projector.statistics().items()}  # one copy from a GPU
        chosen = {lay.number: _choose(feature_kind, feature_arg, lay.channels, stats[lay.number]) for lay in self.lays}
        wanted = [(n, f) for n, fs in chosen.items() for f in fs]
        done = self.context.done
        records = {(n, f): done[(self.id, n, f)] for n, f in wanted if (self.id, n, f) in done}
        todo = [item for item in wanted if item not in records]
        self.wanted: dict[int, list[int]] = {}  # layer -> its features still to render
        for n, f in todo:
            self.wanted.setdefault(n, []).append(f)
        self.work = Work(len(wanted))  # items finished by an earlier run count as work done
        self._progress(None, self.work.setup() + len(records) * self.work.per_feature)
        if plan.streamed:
            widest = max(c.stop - c.start for c in projector.chunks)
            plan = dataclasses.replace(plan, group_size=plan.streamed_group_size(widest))
        self.group_size = plan.group_size
        render = self._stream_group if plan.streamed else self._render_group
        self.on_device = not plan.streamed and self._renders_on_device()
        if not plan.streamed and relative_to_layer(self.o.resynth, self.session.frontend):
            from auralise.listening.whole_layers import WholeLayers

            self.whole_layers = WholeLayers(self)
        whole, pending = self.whole_layers, []
        with single_threaded_blas(), whole or contextlib.nullcontext():
            for start in range(0, len(todo), plan.group_size):
                by_layer: dict[int, list[int]] = {}
                for n, f in todo[start : start + plan.group_size]:
                    by_layer.setdefault(n, []).append(f)
                for future in render(projector, list(by_layer.items()), stats, records):
                    # bound what waits to be written (groups kept by `whole` wait anyway); surfaces writers' errors
                    while len(pending) >= plan.in_flight - 1 + (whole.kept_groups if whole else 0):
                        pending.pop(0).result()
                    pending.append(future)
            self._progress("writing")
            for p in pending:
                p.result()
            self._original_written()  # (when no item was left to write)
        self._progress("done")
        return [records[item] for item in wanted]

    def _original_written(self) -> None:
        """Wait for the song's original WAV and PNG before the first item is handed to the writers: a failure to write
        them then stops the export before it finishes any item (and it leaves nothing behind)."""
        if self.original is not None:
            self.original.result()
            self.original = None

    def _write_original(self) -> None:
        from auralise.io.audio import write_audio
        from auralise.io.files import atomic_path
        from auralise.render.thumbnail import write_thumbnail

        fe, rate = self.session.frontend, self.session.output_rate(self.song)
        y = self.song.y if rate == fe.sr else self.song.at_rate(rate)[0]  # heard beside the features, at their rate
        with atomic_path(self.dir / "original.wav") as tmp:
            write_audio(tmp, np.clip(y, -1.0, 1.0), rate, subtype="PCM_16")
        if not self.streamed:
            with atomic_path(self.dir / "original.png") as tmp:
                write_thumbnail(self.song.magnitude, tmp)
            return
        from auralise.render.streaming import BlockMax

        frames, step = self.song.frames, 4096
        thumb = BlockMax(1, fe.n_freq, frames.n_frames)
        for a in range(0, frames.n_frames, step):
            thumb.add(np.abs(frames.stft(a, min(a + step, frames.n_frames)))[None])
        with atomic_path(self.dir / "original.png") as tmp:
            write_thumbnail(thumb.result()[0], tmp, reduced=True)

    def _render_group(self, projector, groups, stats, records) -> Iterator[Future]:
        """The whole song in memory: project the group, and hand each layer's batch to the writers."""
        if self.whole_layers is None:
            projected = self._project(projector, groups)
        else:
            projected = self.whole_layers.project(projector, groups, stats)
        for number, feats, D in projected:
            self._progress(f"resynthesising layer {number}")
            yield self._write_batch(number, feats, D, stats[number], records)

    def _project(self, projector, groups, *, count: bool = True) -> Iterator[tuple[int, list[int], torch.Tensor]]:
        """``projector.project(groups)``, reporting progress (its work only when ``count``): layer by layer when the
        song is one chunk (its one forward pass serves every call), else chunk by chunk (one forward pass per chunk
        serves every group)."""
        import torch

        if len(projector.chunks) == 1:
            for number, feats in groups:
                self._progress(f"projecting layer {number}")
                with torch.inference_mode():
                    ((_, _, D),) = projector.project([(number, feats)])
                self._progress(None, len(feats) * Work.PROJECT if count else 0)
                yield number, list(feats), D
            return
        S, axis, parts = projector.S, projector.time_axis, len(projector.chunks)
        label, units, reported = _layers_label([n for n, _ in groups]), sum(len(f) for _, f in groups), 0
        with torch.inference_mode():
            results = [torch.zeros((len(f), *S.shape[1:]), dtype=S.dtype, device=S.device) for _, f in groups]
            self._progress(f"projecting {label}, part 1 of {parts}")
            for j, (chunk, cores) in enumerate(projector.project_cores(groups)):
                for out, (_, _, D) in zip(results, cores):
                    out.narrow(axis, chunk.core_start, chunk.core_stop - chunk.core_start).copy_(D)
                share = units * Work.PROJECT * (j + 1) // parts - reported
                reported += share
                self._progress(f"projecting {label}, part {j + 2} of {parts}" if j + 1 < parts else None,
                               share if count else 0)  # fmt: skip
        for (number, feats), D in zip(groups, results):
            yield number, list(feats), D

    def _stream_group(self, projector, groups, stats, records) -> Iterator[Future]:
        """A song longer than memory: project and resynthesise the group chunk by chunk into raw files, then scale
        each wave into its final file (see :mod:`auralise.render.streaming`)."""
        import secrets

        import torch

        from auralise.render.resynth import NEVER_ACTIVE, NUMERICALLY_ZERO, PEAK, numerically_zero

        o = self.o
        items = [(n, f) for n, feats in groups for f in feats]
        raw = [self.dir / f".{output_name(n, f, 'wav')[:-4]}.{secrets.token_hex(4)}.part.raw" for n, f in items]
        self._progress(f"projecting and resynthesising {_layers_label([n for n, _ in groups])} (streamed)")
        with torch.inference_mode():
            waves, peak, thumbs = _streamed_waves(self, projector, groups, raw, stats)
        self._progress(None, len(items) * Work.PROJECT)
        try:
            for number, feats in groups:
                k0 = items.index((number, feats[0]))
                gains, scales, reasons = [], [], []
                for k, f in enumerate(feats, start=k0):
                    scaled = o.resynth in ("mask", "contrast")  # their waves are scaled by the mask's peak at the end
                    scale = 0.0 if numerically_zero(peak[k]) else (1.0 / float(peak[k]) if scaled else 1.0)
                    level = waves[k].peak * scale
                    never, zero = not stats[number].maximum[f] > 0, bool(numerically_zero(level))
                    gain = PEAK / level if o.normalize == "peak" and not (never or zero) else 1.0
                    scales.append(0.0 if never or zero else scale * gain)
                    gains.append(gain)
                    reasons.append(NEVER_ACTIVE if never else NUMERICALLY_ZERO if zero else None)
                batch = _records(self, number, feats, stats[number], gains, reasons)
                self._original_written()
                yield self.pool.submit(self._write_streamed, batch, waves[k0 : k0 + len(feats)], scales,
                                       thumbs[k0 : k0 + len(feats)], records)  # fmt: skip
        except BaseException:
            for w in waves:
                w.discard()
            raise

    def _write_streamed(self, batch, waves, scales, thumbs, records) -> None:
        from auralise.io.files import atomic_path
        from auralise.render.thumbnail import write_thumbnail

        out, subtype = self.dir.parent, "FLOAT" if self.o.normalize == "none" else "PCM_16"
        try:
            for r, wave, scale, thumb in zip(batch, waves, scales, thumbs):
                with atomic_path(out / r["wav"]) as tmp:
                    wave.write_scaled(tmp, self.session.frontend.sr, scale, subtype)
                with atomic_path(out / r["png"]) as tmp:
                    write_thumbnail(thumb if scale else np.zeros_like(thumb), tmp, range_db=60.0, reduced=True)
        finally:
            for wave in waves:
                wave.discard()
        self._finish(batch, records)

    def _write_batch(self, number, feats, D, stats, records) -> Future:
        """Resynthesise and write one layer's batch in a writer thread, while the next batch is projected."""
        self._original_written()
        return self.pool.submit(self._render_and_write, number, feats, D, stats, records)

    def _renders_on_device(self) -> bool:
        """Whether batches are resynthesised on the projection's device (:mod:`auralise.render.device`): on a GPU,
        for the renderings it covers, so that only the waves and thumbnails come back to the host."""
        from auralise.render.device import device_rendering

        o, fe, wanted = self.o, self.session.frontend, self.DEVICE_RENDERING
        covered = device_rendering(fe, mode=o.resynth, phase=o.phase) and not self.context.options.figures
        covered = covered and self.session.output_rate(self.song) == fe.sr
        return covered and (self.session.device != "cpu" if wanted is None else wanted)

    def _render_and_write(self, number, feats, D, stats, records) -> None:
        yield_to_projection()
        if self.whole_layers is not None:
            self.whole_layers.reference_ready(number)
        if not self.on_device:
            rendered = self.session.render(self.song, D.cpu(), activation_max=stats.maximum[feats], layer=number)
        else:
            import torch

            from auralise.render.device import render_on_device, stft_on_device

            with self.lock:
                if self.X_device is None:
                    self.X_device = stft_on_device(self.song.X, D.device)
            with torch.inference_mode():
                amax = stats.maximum[feats].numpy()
                rendered = render_on_device(self.X_device, D, frontend=self.session.frontend,
                                            length=self.song.n_samples, normalize=self.o.normalize,
                                            activation_max=amax)  # fmt: skip
        waves, gains, grid = rendered
        batch = _records(self, number, feats, stats, gains, rendered.reasons)
        self._write_files(batch, grid, waves, records)

    def _write_files(self, batch: list[dict], grid: np.ndarray, waves: np.ndarray, records: dict) -> None:
        """Write a batch's WAVs and thumbnails (``grid`` (K, F, T), or block-reduced already when rendered on the
        device)."""
        from auralise.io.audio import write_audio
        from auralise.io.files import atomic_path
        from auralise.render.thumbnail import write_thumbnail

        fe, out = self.session.frontend, self.dir.parent
        subtype = "FLOAT" if self.o.normalize == "none" else "PCM_16"
        rate = self.session.output_rate(self.song)
        for k, r in enumerate(batch):
            with atomic_path(out / r["wav"]) as tmp:
                write_audio(tmp, waves[k], rate, subtype=subtype)
            with atomic_path(out / r["png"]) as tmp:
                write_thumbnail(grid[k], tmp, range_db=60.0, reduced=self.on_device)  # rectified after reduction
            if r["figure"]:
                from auralise.figures.display import feature_figure, save_figure

                title, mag = f"Feature {r['layer']}-{r['feature']}", self.song.magnitude
                save_figure(feature_figure(mag, grid[k], frontend=fe, title=title, method=self.o.method),
                            out / r["figure"])  # fmt: skip
        self._finish(batch, records)

    def _finish(self, batch: list[dict], records: dict) -> None:
        """Record a batch whose files are in place (journal first, then the progress report)."""
        with self.lock:
            self.journal.append(batch)
            for r in batch:
                records[(r["layer"], r["feature"])] = r
        self._progress(None, len(batch) * Work.WRITE)

    def _progress(self, stage: str | None, units: int = 0) -> None:
        """Count ``units`` of work done and enter ``stage`` (None: the stage goes on), then report."""
        with self.lock:
            self.units += units
            self.stage = self.stage if stage is None else stage
            if self.context.progress is not None:
                self.context.progress(self.id, self.units, self.work.total(), self.stage)


def _streamed_waves(export: SongExport, projector, groups, raw, stats) -> tuple[list, np.ndarray, np.ndarray]:
    """:func:`~auralise.render.streaming.stream_features` of a streamed song's groups, or for a layer-relative mode
    :func:`~auralise.render.streaming.stream_layer_relative` layer by layer (in groups of a quarter of the export's:
    each holds its grid, mask, claims and projection per feature)."""
    from auralise.render.contrast import relative_to_layer
    from auralise.render.streaming import stream_features, stream_layer_relative

    o, frames, n = export.o, export.song.frames, export.song.n_samples
    if not relative_to_layer(o.resynth, export.session.frontend):
        return stream_features(projector, frames, groups, mode=o.resynth, length=n, raw_paths=raw)
    song_stats = export.song.references.setdefault(("streamed", o.method, o.select, o.tap), {})
    parts: list[tuple] = []
    try:
        for number, feats in groups:
            lay = next(x for x in export.lays if x.number == number)
            paths, raw = raw[: len(feats)], raw[len(feats) :]
            parts.append(stream_layer_relative(projector, frames, number, lay.channels, list(feats), mode=o.resynth,
                                               length=n, raw_paths=paths, song_stats=song_stats,
                                               activation_max=stats[number].maximum.numpy(),
                                               batch=max(1, export.group_size // 4)))  # fmt: skip
    except BaseException:
        for waves, _, _ in parts:
            for w in waves:
                w.discard()
        raise
    return ([w for p in parts for w in p[0]], np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))  # fmt: skip


@dataclass(frozen=True)
class SongPlan:
    """How one song is exported within the memory budget (:func:`song_plan`)."""

    streamed: bool  # segment by segment (auralise.render.streaming) instead of whole-song arrays
    group_size: int  # features projected and resynthesised together
    projector_bytes: int  # the projector's share: a chunk's recorded forward pass and backward signals
    in_flight: int = 3  # groups alive at once: one being projected, the others being written
    render_bytes: int = 0  # the share of the song's buffers and the features being resynthesised
    bytes_per_frame_feature: int = 0  # streamed: what one feature costs per STFT frame of a chunk

    def streamed_group_size(self, chunk_frames: int) -> int:
        """Features per group when streaming chunks of at most ``chunk_frames`` frames."""
        return max(1, self.render_bytes // max(1, self.bytes_per_frame_feature * chunk_frames))


def song_plan(fe: Frontend, n_samples: int, budget: int, options: ExportOptions, *, one_chunk: int = 0) -> SongPlan:
    """Split ``budget`` bytes between the projector (at least half) and the song's buffers and renderings.

    In memory, the song costs its wave, STFT, magnitude and model input, and each feature its projection, grid,
    complex spectrum and wave, with up to three groups alive (one projected, two being written); groups hold at
    most :data:`GROUP_CAP` features, and the projector gets the rest of the budget (given ``one_chunk``, the bytes
    under which the projector records the song once, groups shrink, down to one feature, to leave it that). When
    not even one feature fits, an ``stft`` or ``mel`` song with the original phase is streamed instead: only the wave is
    song-long, everything else lives for one chunk of frames (:mod:`auralise.render.streaming`).
    """
    F, F_in, n = fe.n_freq, fe.n_input_freq, n_samples
    T = fe.n_frames(n)
    song = 4 * n + 12 * F * T + 4 * F_in * T
    per_feature = 4 * n + 16 * F * T + 4 * F_in * T
    half, in_flight = budget // 2, 3
    group = (half - song) // (in_flight * per_feature)
    streamable = fe.streamable and options.render.phase == "original" and not options.figures
    if group >= 1 or not streamable:
        # groups larger than GROUP_CAP buy no speed (the projector batches within a group by its own budget);
        # the memory they would hold goes to the projector, so a song's forward pass is recorded once
        group = int(min(max(1, group), GROUP_CAP))
        if one_chunk:
            group = int(min(group, max(1, (budget - song - one_chunk) // (in_flight * per_feature))))
        return SongPlan(False, group, max(half, budget - song - in_flight * group * per_feature), in_flight)
    per_frame = 16 * F + 4 * F_in + 8 * fe.n_fft  # grid, mask, spectrum, model-shaped core; inverse FFT frames
    return SongPlan(True, 1, half, 2, render_bytes=max(0, half - 4 * n), bytes_per_frame_feature=per_frame)


def _records(export: SongExport, number: int, feats: list[int], stats, gains, reasons) -> list[dict]:
    """The journal and manifest records of one layer's batch of features; ``reasons`` per feature why it is
    silent (:data:`~auralise.render.resynth.NEVER_ACTIVE`, :data:`~auralise.render.resynth.NUMERICALLY_ZERO`)
    or None."""
    ranks = stats.ranks()
    seeds = _seed_places(export, number, stats)
    batch = []
    for k, f in enumerate(feats):
        rel = f"{export.id}/{output_name(number, f, 'wav')}"
        batch.append(
            {
                "song": export.id,
                "layer": number,
                "feature": f,
                "wav": rel,
                "png": rel[:-3] + "png",
                "figure": rel[:-4] + "_figure.png" if export.context.options.figures else None,
                "activation_max": float(stats.maximum[f]),
                "activation_energy": float(stats.energy[f]),
                "rank": ranks[f],
                "silent": reasons[k] is not None,
                "silent_reason": reasons[k],
                "gain": float(gains[k]),
            }
        )
        if seeds is not None:  # --select max/topk:K: where the seeded units are (the page plays from there)
            batch[-1]["seeds"] = seeds.of(f)
    return batch


_WRITER = threading.local()


def _seed_places(export: SongExport, number: int, stats):
    """The seeded units' places of a layer (:class:`auralise.listening.single.SeedPlaces`), made once per layer;
    None for ``--select map``."""
    from auralise.listening.single import SeedPlaces

    if export.o.select == "map":
        return None
    cache = export.__dict__.setdefault("_seed_places", {})
    if number not in cache:
        lay = next(x for x in export.lays if x.number == number)
        cache[number] = SeedPlaces(export.session, export.song, lay, stats)
    return cache[number]


def yield_to_projection() -> None:
    """Lower this writer thread's priority below the projection's (its nice value, where the system has one).

    Resynthesis and file writing then fill the gaps of the projection instead of taking a core from its parallel
    convolutions, which would wait at every step for the thread that lost its core. The writers are still bounded
    (:attr:`SongPlan.in_flight`): when they fall behind, the projection waits and they get the machine.
    """
    if getattr(_WRITER, "lowered", False):
        return
    _WRITER.lowered = True
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10))
    except (AttributeError, OSError):  # pragma: no cover - not on this system
        pass


def _count(kind: str, arg, channels: int) -> int:
    """How many features :func:`_choose` takes from a layer of ``channels`` (known before the statistics)."""
    return channels if kind == "all" else len(arg) if kind == "list" else min(int(arg), channels)


def _layers_label(numbers: list[int]) -> str:
    """``layer 3``, ``layers 1-5`` or ``layers 1,3,5``: the layers of a group, for a progress stage."""
    if len(numbers) == 1:
        return f"layer {numbers[0]}"
    contiguous = numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    return f"layers {numbers[0]}-{numbers[-1]}" if contiguous else "layers " + ",".join(map(str, numbers))


def _choose(kind: str, arg, channels: int, stats) -> list[int]:
    """The features to export for one layer: all, the given list, or the top K by activation energy."""
    if kind == "all":
        return list(range(channels))
    if kind == "list":
        return list(arg)
    ranks = stats.ranks()  # the ranking of `auralise rank`
    return [f for f in range(channels) if ranks[f] <= arg]
