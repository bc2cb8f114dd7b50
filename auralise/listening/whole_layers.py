"""A layer-relative export's projections, layer by layer (:class:`WholeLayers`): each layer is projected whole once,
its reference made from those projections in a thread of its own, and the projections of the features to render
kept for the writers."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from auralise.listening.song_export import GROUP_CAP, Work, yield_to_projection

if TYPE_CHECKING:
    import torch

    from auralise.listening.song_export import SongExport

__all__ = ["WholeLayers"]


class WholeLayers:
    """An export's projections for a layer-relative mode: a layer's first group projects the whole layer once, its
    reference is made from that (:func:`auralise.session.layer_reference`) and the projections of the features
    still to render are kept (when they fit a quarter of the memory budget), so none is projected twice.

    The reference is made in a thread of its own, fed batch by batch while the layer is projected, and the layer's
    groups are resynthesised once it is made (:meth:`reference_ready`). Where two layers' kept projections fit that
    quarter of the budget together, the groups kept wait to be written while the next layer is projected
    (:attr:`kept_groups`). Used as a context manager, it stops its thread on the way out."""

    QUEUED = 4  # projected batches waiting for the reference thread

    def __init__(self, export: SongExport):
        self.export = export
        self.kept: dict[int, dict] = {}  # layer -> feature -> its projection, until rendered
        self.ready: dict[int, Future] = {}  # layer -> its reference made and kept on the song
        self.kept_groups = 0  # groups of the last whole layer whose projections were kept
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="layer-reference")

    def __enter__(self) -> WholeLayers:
        return self

    def __exit__(self, *exc) -> None:
        self.thread.shutdown(wait=True)

    def project(self, projector, groups, stats) -> Iterator[tuple[int, list[int], torch.Tensor]]:
        """:meth:`SongExport._project` of ``groups``, from the kept projections where they are."""
        import torch

        for number, feats in groups:
            kept = self._whole_layer(projector, number, stats[number])
            if all(f in kept for f in feats):
                self.export._progress(None, len(feats) * Work.PROJECT)
                yield number, list(feats), torch.stack([kept.pop(f) for f in feats])
            else:
                yield from self.export._project(projector, [(number, feats)])

    def reference_ready(self, number: int) -> None:
        """Wait until layer ``number``'s reference is made (raising its error, if making it failed)."""
        ready = self.ready.get(number)
        if ready is not None:
            ready.result()

    def _whole_layer(self, projector, number: int, stats) -> dict:
        """Feature -> kept projection of layer ``number``, projecting the layer and feeding its reference first."""
        export = self.export
        if number not in self.kept:
            lay = next(x for x in export.lays if x.number == number)
            wanted = set(export.wanted.get(number, ()))
            budget = export.context.memory_budget
            held = projector.S[0].numel() * projector.S.element_size() * len(wanted)
            if held > budget // 4:
                wanted = set()  # too many to hold: the features to render are projected again
            kept = self.kept[number] = {}
            batches: queue.Queue = queue.Queue(self.QUEUED)
            made = self.ready[number] = self.thread.submit(self._make_reference, number, batches)
            try:
                for start in range(0, lay.channels, GROUP_CAP):
                    feats = list(range(start, min(lay.channels, start + GROUP_CAP)))
                    for _, fs, D in export._project(projector, [(number, feats)], count=False):
                        D = D.cpu()
                        some = not wanted.issuperset(fs)  # then copies, so that the rest of D can go
                        kept.update({f: D[k].clone() if some else D[k] for k, f in enumerate(fs) if f in wanted})
                        _put(batches, (D, stats.maximum[fs].double().numpy()), made)
                _put(batches, _END, made)
            except BaseException:
                _put(batches, _STOPPED, made, quiet=True)  # the reference thread stops without a reference
                raise
            # the next layer is projected (and kept) while these wait only if both layers fit the same quarter
            self.kept_groups = -(-len(wanted) // max(1, export.group_size)) if 2 * held <= budget // 4 else 0
        return self.kept[number]

    def _make_reference(self, number: int, batches: queue.Queue) -> None:
        """The reference thread: layer ``number``'s reference from the batches put in ``batches``."""
        from auralise.session import layer_reference

        yield_to_projection()
        export = self.export
        layer_reference(export.session, export.song, number, projections=_taken(batches))


_END, _STOPPED = object(), object()  # a layer's projections are all in / stopped by an error


def _taken(batches: queue.Queue) -> Iterator:
    """The items put in ``batches`` until :data:`_END`; :data:`_STOPPED` raises (no reference is made)."""
    while (item := batches.get()) is not _END:
        if item is _STOPPED:
            raise RuntimeError("the layer's projection stopped")
        yield item


def _put(batches: queue.Queue, item, made: Future, *, quiet: bool = False) -> None:
    """Put ``item`` in ``batches`` for the reference thread ``made``; once that thread has ended (failed), raise its
    error, or with ``quiet`` just return."""
    while not made.done():
        try:
            batches.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
    if not quiet:
        made.result()
