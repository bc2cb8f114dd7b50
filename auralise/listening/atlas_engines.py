"""Where the atlas scan runs: ``local`` (this process, or a pool of worker processes) or ``ray`` (Ray Data).

Both yield one record per song (:func:`auralise.listening.atlas.scan_record`), so they give identical atlases.
Ray is an optional extra (``pip install -e ".[ray]"``): ``ray.data.from_items`` of the song list, then
``map_batches`` with a callable class, so each Ray actor loads the model once and scans song after song; by default
on a local Ray instance, or on an existing cluster given by ``address`` (``ray://host:10001`` or ``auto``). The
model file and the songs must be readable at the same paths on every node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

from auralise.errors import BadParameterError

RAY_HINT = 'install the optional extra with pip install -e ".[ray]" (or pip install "ray[data]")'


def run_scan(model, todo: Sequence[tuple[str, str]], layers: Sequence[int], options, *, engine: str, workers: int,
             address: str | None, progress=None) -> Iterator[tuple[str, dict]]:  # fmt: skip
    """Scan the (key, path) songs of ``todo``; yields (key, record) as songs finish (in no particular order)."""
    if not todo:
        return
    if engine == "ray":
        results = _ray_scan(model, todo, layers, options, workers=workers, address=address)
    elif workers > 1:
        results = _pool_scan(model, todo, layers, options, workers=workers)
    else:
        from auralise.listening.atlas import scan_record
        from auralise.studies.atlas_scan import Scanner

        scanner = Scanner(model, layers, tap=options.tap)
        results = ((key, scan_record(scanner, key, path, options)) for key, path in todo)
    for done, (key, record) in enumerate(results, start=1):
        if progress is not None:
            progress("scan", done, len(todo))
        yield key, record


_WORKER_SCANNER = None


def _pool_init(model_path: str, trust: bool, threads: int, layers: list[int], tap: str) -> None:
    global _WORKER_SCANNER
    import torch

    from auralise.io.modelfile import load_model
    from auralise.studies.atlas_scan import Scanner

    torch.set_num_threads(threads)
    _WORKER_SCANNER = Scanner(load_model(model_path, trust=trust), layers, tap=tap)


def _pool_scan_one(args) -> tuple[str, dict]:
    from auralise.listening.atlas import scan_record

    key, path, options = args
    return key, scan_record(_WORKER_SCANNER, key, path, options)


def _pool_scan(model, todo, layers, options, *, workers: int) -> Iterator[tuple[str, dict]]:
    """Worker processes, each with the model loaded once and one torch thread."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    init = (str(model.meta["path"]), model.meta.get("format") == "pickled-module", 1, list(layers), options.tap)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_pool_init, initargs=init) as pool:
        yield from pool.map(_pool_scan_one, [(k, p, options) for k, p in todo])


class _RayScanner:
    """A Ray Data actor: loads the model once, then scans one song per row."""

    def __init__(self, model_path: str, trust: bool, layers: list[int], options: dict):
        from auralise.io.modelfile import load_model
        from auralise.listening.atlas import AtlasOptions
        from auralise.studies.atlas_scan import Scanner

        self.options = AtlasOptions(**options)
        self.scanner = Scanner(load_model(model_path, trust=trust), layers, tap=self.options.tap)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        from auralise.listening.atlas import scan_record

        records = [json.dumps(scan_record(self.scanner, str(k), str(p), self.options))
                   for k, p in zip(batch["key"], batch["path"])]  # fmt: skip
        return {"key": batch["key"], "record": np.array(records, dtype=object)}


def _ray_scan(model, todo, layers, options, *, workers: int, address: str | None) -> Iterator[tuple[str, dict]]:
    from dataclasses import asdict

    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise BadParameterError(f"--engine ray needs Ray, which is not installed; {RAY_HINT}") from exc
    import logging

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)  # fmt: skip
    for name in ("ray", "ray.data"):  # the library is silent: progress goes through the callback
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items([{"key": k, "path": p} for k, p in todo])
        kwargs = {"model_path": str(model.meta["path"]), "trust": model.meta.get("format") == "pickled-module",
                  "layers": list(layers), "options": asdict(options)}  # fmt: skip
        pool = ray.data.ActorPoolStrategy(size=workers)
        rows = ds.map_batches(_RayScanner, fn_constructor_kwargs=kwargs, batch_size=1, compute=pool,
                              batch_format="numpy").iter_rows()  # fmt: skip
        for row in rows:
            yield str(row["key"]), json.loads(row["record"])
    finally:
        if started:
            ray.shutdown()
