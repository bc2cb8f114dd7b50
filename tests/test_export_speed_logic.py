"""The logic behind a fast export (issue 15), checked on the CPU with short songs.

- the unpooling fast paths (switch masks per window offset, channels-last scatter) give exactly the reference
  scatter's values;
- the default memory budget records a 30-s song's forward pass once (one chunk), for every group;
- the device path: resynthesis on the projection's device agrees with the host's, and neither the projection loop
  nor the device rendering copies anything to the host but the waves and thumbnails, once per batch (the CUDA path
  cannot run here; its logic runs on the CPU, forced on, with every host copy counted).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from auralise.engine import rules
from auralise.engine.layers import eval_mode
from auralise.engine.trace import record_forward
from auralise.io.audio import load_audio
from auralise.listening.export import ExportOptions, export
from auralise.listening.song_export import SongExport, song_plan
from auralise.render.device import render_on_device, stft_on_device
from auralise.render.thumbnail import MAX_HEIGHT, MAX_WIDTH, _block_max
from auralise.session import RenderOptions, Session

REPO = Path(__file__).resolve().parents[1]
CHOI = REPO / "models" / "choi2016-synth.pt"


@pytest.fixture(scope="module")
def session() -> Session:
    return Session(CHOI, device="cpu", options=RenderOptions(resynth="mask"))  # what renders on a device


@pytest.fixture(scope="module")
def short_song(tmp_path_factory) -> Path:
    import soundfile as sf

    y, _ = load_audio(REPO / "demo_audio" / "dance.ogg", sr=11025)
    path = tmp_path_factory.mktemp("song") / "short.wav"
    sf.write(path, y[: 4 * 11025], 11025, subtype="FLOAT")
    return path


def test_unpool_fast_paths_equal_the_reference_scatter(session, short_song):
    song = session.song(short_song)
    with eval_mode(session.module):
        trace = record_forward(session.module, song.S)
    pools = [r for r in trace.records if r.indices is not None]
    assert len(pools) == 5
    gen = torch.Generator().manual_seed(0)
    for rec in pools:
        shape = (3, *rec.outputs[0].shape)  # K = 3 features
        plain = torch.randn(shape, generator=gen).relu()
        channels_last = plain.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, shape[:2])
        reference = rules._unpool(rec, plain, False)  # no trace: the scatter into a zero-filled tensor
        for signal in (plain, channels_last):
            fast = rules._unpool(rec, signal, False, trace)
            assert fast.shape == reference.shape
            assert torch.equal(fast, reference), rec.index
    assert any(key[0] == "tiled-unpool" and trace.cache[key] is not None for key in trace.cache)


def test_default_budget_records_a_30s_song_once(session):
    from auralise.listening.export import DEFAULT_MEMORY

    y, _ = load_audio(REPO / "demo_audio" / "mix.ogg", sr=11025)
    fe, options = session.frontend, ExportOptions()
    plan = song_plan(fe, len(y), DEFAULT_MEMORY, options)
    assert not plan.streamed and plan.projector_bytes > DEFAULT_MEMORY // 2
    song = session.song(REPO / "demo_audio" / "mix.ogg")
    projector = session.projector(song, session.layers(None), memory_budget=plan.projector_bytes)
    assert len(projector.chunks) == 1  # one forward pass serves every group of every layer


def test_groups_shrink_so_that_the_song_is_recorded_once(session):
    """A model whose recorded 30-s song does not fit beside full groups (MTT_musicnn at 1 GiB) gets smaller groups."""
    from auralise.listening.export import DEFAULT_MEMORY

    fe, n = session.frontend, 30 * session.frontend.sr
    plan = song_plan(fe, n, DEFAULT_MEMORY, ExportOptions())
    needed = plan.projector_bytes + (50 << 20)
    fit = song_plan(fe, n, DEFAULT_MEMORY, ExportOptions(), one_chunk=needed)
    assert 1 <= fit.group_size < plan.group_size and fit.projector_bytes >= needed


def test_device_rendering_agrees_with_the_host(session, short_song):
    song = session.song(short_song)
    projector = session.projector(song, [2])
    with torch.inference_mode():
        stats = projector.statistics()[2]
        ((_, _, D),) = projector.project([(2, [0, 1, 2, 3, 5])])
    amax = stats.maximum[[0, 1, 2, 3, 5]]
    host = session.render(song, D, activation_max=amax)
    dev = render_on_device(stft_on_device(song.X, D.device), D, frontend=session.frontend, length=song.n_samples,
                           normalize="peak", activation_max=amax.numpy())  # fmt: skip
    assert dev.waves.shape == host.waves.shape and dev.waves.dtype == np.float32
    assert np.max(np.abs(dev.waves - host.waves)) <= 1e-4 * max(1e-30, np.max(np.abs(host.waves)))
    assert np.allclose(dev.gains, host.gains, rtol=1e-4)
    assert list(dev.silent) == list(host.silent) and dev.reasons == host.reasons
    for k in range(len(D)):
        expected = _block_max(np.maximum(host.grid[k], 0.0), MAX_HEIGHT, MAX_WIDTH)
        assert np.allclose(dev.grid[k], expected, rtol=1e-5, atol=1e-7 * expected.max())


class _HostCopies:
    """Counts calls that copy a tensor's data to the host (or wait for it), per named scope of the calling thread."""

    METHODS = ("cpu", "numpy", "item", "tolist", "__float__", "__int__", "__bool__")

    def __init__(self, monkeypatch):
        self.counts: dict[str, int] = {}
        self.arrays: dict[str, int] = {}  # of tensors with 2 or more axes (projections, not statistics)
        self.local = threading.local()
        self.lock = threading.Lock()
        for name in self.METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._counting(getattr(torch.Tensor, name)))

    def _counting(self, method):
        def counted(tensor, *args, **kwargs):
            scope = getattr(self.local, "scope", None)
            if scope is not None:
                with self.lock:
                    self.counts[scope] = self.counts.get(scope, 0) + 1
                    if tensor.dim() >= 2:
                        self.arrays[scope] = self.arrays.get(scope, 0) + 1
            return method(tensor, *args, **kwargs)

        return counted

    def scoped(self, name: str, fn):
        def inside(*args, **kwargs):
            outer = getattr(self.local, "scope", None)
            self.local.scope = name
            try:
                return fn(*args, **kwargs)
            finally:
                self.local.scope = outer

        return inside


def test_projection_loop_and_device_rendering_copy_only_the_final_audio(short_song, tmp_path, monkeypatch):
    import auralise.engine.chunking as chunking
    import auralise.engine.fused as fused
    import auralise.render.device as device

    monkeypatch.setattr(SongExport, "DEVICE_RENDERING", True)  # the CUDA path's logic, on the CPU
    # the fused step runs on CPU signals only (its .numpy() is a view there), never on a GPU's: count without it
    monkeypatch.setattr(fused, "_KERNELS", {})
    monkeypatch.setattr(rules, "_silent_seeds", lambda seeds: None)  # so does the search for zero seeds
    copies = _HostCopies(monkeypatch)
    calls = {"render": 0}
    render = device.render_on_device

    def counted_render(*args, **kwargs):
        calls["render"] += 1
        return render(*args, **kwargs)

    monkeypatch.setattr(device, "render_on_device", copies.scoped("render", counted_render))
    monkeypatch.setattr(chunking, "project", copies.scoped("backward", chunking.project))
    seeds = chunking.ChunkedProjector._seeds
    monkeypatch.setattr(chunking.ChunkedProjector, "_seeds", copies.scoped("seeds", seeds))
    render_and_write = SongExport._render_and_write
    monkeypatch.setattr(SongExport, "_render_and_write", copies.scoped("writer", render_and_write))
    options = ExportOptions(layers="1,3", features="0-9", render=RenderOptions(resynth="mask"))
    manifest = export(CHOI, [short_song], tmp_path / "set", options=options, device="cpu", workers=2)
    assert len(manifest["songs"][0]["items"]) == 20
    assert calls["render"] >= 4  # batches of each layer were rendered on the "device"
    assert copies.counts.get("backward", 0) == 0  # the backward passes never wait for or copy to the host
    assert copies.counts.get("seeds", 0) == 0
    # the writer hands D to the device renderer as it is (its host work reads the statistics, copied once)
    assert copies.arrays.get("writer", 0) == 0
    # per batch: the waves, the thumbnails and one vector of gains and flags (a .cpu() and a .numpy() each)
    assert copies.counts["render"] == 6 * calls["render"]
    wav = tmp_path / "set" / manifest["songs"][0]["items"][0]["wav"]
    assert wav.is_file() and (tmp_path / "set" / "index.html").is_file()


@pytest.mark.parametrize("budget_mib", [1024, 32])
def test_next_layer_is_projected_while_the_last_is_written(short_song, tmp_path, monkeypatch, budget_mib):
    """A layer-relative export keeps a layer's projections, so its groups wait to be written while the next layer is
    projected: with slow writers, layer 2's projection starts before most of layer 1's groups are written (it used
    to wait until all but two were); the files are those of a plain export. Unless two layers' kept projections
    would not fit a quarter of the memory budget together (32 MiB: 32 features of 4 s, 5.7 MiB, fit 8 MiB once,
    not twice): then it waits as before."""
    from auralise.listening import whole_layers

    events, lock = [], threading.Lock()
    write = SongExport._write_files

    def slow_write(self, batch, *args):
        import time

        time.sleep(0.1)
        write(self, batch, *args)
        with lock:
            events.append(("written", batch[0]["layer"]))

    whole = whole_layers.WholeLayers._whole_layer

    def starting(self, projector, number, stats):
        if number not in self.kept:
            with lock:
                events.append(("projecting", number))
        return whole(self, projector, number, stats)

    monkeypatch.setattr(SongExport, "_write_files", slow_write)
    monkeypatch.setattr(whole_layers.WholeLayers, "_whole_layer", starting)
    options = ExportOptions(layers="1,2", features="0-31", render=RenderOptions(normalize="none"))
    budget = budget_mib << 20
    manifest = export(CHOI, [short_song], tmp_path / "set", options=options, workers=2, memory_budget=budget)
    groups = sum(1 for e in events if e == ("written", 1))
    start = events.index(("projecting", 2))
    written_before = sum(1 for e in events[:start] if e == ("written", 1))
    assert groups >= 4 and (written_before == 0 if budget_mib == 1024 else written_before >= groups - 2)
    if budget_mib != 1024:
        return
    monkeypatch.undo()
    plain = export(CHOI, [short_song], tmp_path / "plain", options=options, workers=2, memory_budget=budget)
    for a, b in zip(manifest["songs"][0]["items"], plain["songs"][0]["items"]):
        assert np.array_equal(sf_read(tmp_path / "set" / a["wav"]), sf_read(tmp_path / "plain" / b["wav"]))


def sf_read(path: Path) -> np.ndarray:
    import soundfile as sf

    return sf.read(path, dtype="float32")[0]


@pytest.mark.parametrize("failing", ["reference", "projection"])
def test_a_failing_layer_reference_or_projection_stops_the_export(short_song, tmp_path, monkeypatch, failing):
    """An error while a layer's reference is made (in its own thread) or while the layer is projected reaches the
    caller as it is; the reference thread ends (nothing hangs) and the failed item is not journaled as done."""
    import auralise.session as session_module
    from auralise.errors import BadParameterError

    def broken(*args, **kwargs):
        raise BadParameterError(f"broken {failing}")

    if failing == "reference":
        monkeypatch.setattr(session_module, "layer_reference", broken)
    else:
        project = SongExport._project

        def breaking(self, projector, groups, *, count=True):
            if groups[0][0] == 2:
                raise BadParameterError("broken projection")
            yield from project(self, projector, groups, count=count)

        monkeypatch.setattr(SongExport, "_project", breaking)
    options = ExportOptions(layers="1,2", features="0-9")
    with pytest.raises(BadParameterError, match=f"broken {failing}"):
        export(CHOI, [short_song], tmp_path / "set", options=options, workers=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("layer-reference")]
    from auralise.listening.journal import JOURNAL

    journal = tmp_path / "set" / JOURNAL
    assert not journal.exists() or '"layer": 2' not in journal.read_text()
