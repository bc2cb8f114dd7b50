"""Benchmark: a whole `auralise export` against the multiply-add bound of this machine, in one run.

    python benchmarks/export.py                         # Choi demo model and MTT_vgg, demo_audio/mix.ogg (30 s)
    python benchmarks/export.py --models models/choi2016-synth.pt      # only the given model(s)
    python benchmarks/export.py --captum-sample 16      # also: a per-feature Captum loop on 16 features, scaled up
    python benchmarks/export.py --long 600              # also: a 10-minute song, layer 3 x all features
    python benchmarks/export.py --repeat 5              # five exports per model: the median and the best

MTT_vgg is imported first (``auralise import musicnn --model MTT_vgg``) from the musicnn wheel given by ``--wheel``
(default: the importers' cache, else ``pip download --no-deps`` into it); it is skipped with a reason when neither
works.

What it prints, per model:

peak conv rate
    This machine's best rate, in G multiply-adds per second, over a few 3x3 convolutions of the shapes these
    models run (C->C channels, C = 64 and 128, batches of 4-16 maps of 32-128 x 160-646 cells, contiguous and
    channels-last), best of several runs each, at the torch thread count the export uses (torch's default here).
    Measured right before and right after each export; the higher of the two is used (the stricter bound).
necessary multiply-adds
    Counted from the layer shapes the model has on this song (one dry forward pass). With ``m_i`` the forward
    multiply-adds of conv layer ``i`` (output elements x C_in x kernel cells) and ``C_i`` its output channels, an
    export of every feature of every layer ``L = 1..N`` needs::

        forward  = sum_i m_i                                 (one forward pass up to the deepest layer)
        backward = sum_L C_L * (m_L / C_L + sum_{i<L} m_i)    (per feature: the top convolution transposed for
                 = sum_L (m_L + C_L * sum_{i<L} m_i)           that feature's channel only, every lower one whole)
        necessary = forward + backward

    Pooling, rectification, resynthesis and file writing are not counted: the bound is what the convolutions
    alone cost at the peak rate.
bound
    necessary / peak rate, in seconds.
export
    The wall time of the real command (``auralise export MODEL AUDIO --layers all``: every feature of every
    layer, WAVs, thumbnails, manifest, page) in a fresh process, from its start to its exit; and export / bound.
    With ``--repeat N``, N such exports (the page cache flushed before each): the median is the one reported, the
    others and the best are listed (the same code measured 6.4-10 s within an hour on a shared machine).
breakdown
    Where the time went, measured inside that process by timing wrappers around the pipeline's functions:
    start-up (process start to the session: interpreter, imports, CLI), model load and layer discovery, audio
    decoding, the forward pass, the statistics, the backward passes per layer, resynthesis, WAV encoding,
    thumbnails, the layer references (made in their own thread), waits on other threads' results, manifest and
    page, and the process's exit once the command has returned. Stages on the main thread add up to its wall time
    (the rest is listed as "other"); stages run by the other threads (writers, the reference thread) overlap the
    main thread and are listed as busy seconds. "own CPU" is the CPU time the calling threads themselves spent in
    each stage (the threads a stage starts, torch's and the fused kernels', are not in it), so it is not inflated
    by waiting for a core as busy seconds are; the last line gives the whole process's CPU time against what the
    cores could have given over the export.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# -- the conv rate of this machine ------------------------------------------------------------------------------

# (batch, channels, rows, columns): the layer-2/3 shapes of both models on 30 s, and batches of feature signals
PEAK_SHAPES = [(1, 64, 128, 646), (4, 64, 128, 256), (16, 64, 64, 160), (8, 128, 48, 234), (4, 128, 96, 160)]


def peak_conv_rate(repeats: int = 5) -> tuple[float, str]:
    """Best G multiply-adds per second of a 3x3 C->C convolution over :data:`PEAK_SHAPES` and both memory layouts,
    best of ``repeats`` runs each; and which shape reached it."""
    gen = torch.Generator().manual_seed(0)
    best, where = 0.0, ""
    with torch.inference_mode():
        for b, c, h, w in PEAK_SHAPES:
            x = torch.randn(b, c, h, w, generator=gen)
            weight = torch.randn(c, c, 3, 3, generator=gen) / 24.0
            for layout in (torch.contiguous_format, torch.channels_last):
                xl, wl = x.contiguous(memory_format=layout), weight.contiguous(memory_format=layout)
                torch.nn.functional.conv2d(xl, wl, padding=1)
                seconds = min(_timed(torch.nn.functional.conv2d, xl, wl, padding=1) for _ in range(repeats))
                rate = b * c * h * w * c * 9 / seconds / 1e9
                if rate > best:
                    name = "channels-last" if layout is torch.channels_last else "contiguous"
                    best, where = rate, f"{b}x{c}x{h}x{w} {name}"
    return best, where


# -- the necessary work ---------------------------------------------------------------------------------------------


def layer_macs(model: str, audio: str) -> tuple[list[int], list[int], tuple[int, ...]]:
    """Forward multiply-adds ``m_i`` and output channels ``C_i`` of each conv layer on the song, and the input shape."""
    from auralise.engine.layers import discover, eval_mode
    from auralise.engine.trace import record_forward
    from auralise.session import Session

    session = Session(model, device="cpu")
    song = session.song(audio)
    S = song.S
    graph = discover(session.module, session.example)
    deepest = max(lay.taps["conv"][0] for lay in graph.layers)
    with eval_mode(session.module):
        trace = record_forward(session.module, S, stop_after=deepest)
    macs, channels = [], []
    for lay in graph.layers:
        rec = trace.records[lay.taps["conv"][0]]
        weight = rec.args[1] if len(rec.args) > 1 else rec.kwargs["weight"]
        macs.append(rec.outputs[0].numel() * weight[0].numel())
        channels.append(lay.channels)
    return macs, channels, tuple(S.shape)


def necessary_macs(macs: list[int], channels: list[int]) -> tuple[int, int]:
    """(forward, backward) multiply-adds of an export of every feature of every layer (module docstring)."""
    forward = sum(macs)
    backward = sum(m + c * sum(macs[:i]) for i, (m, c) in enumerate(zip(macs, channels)))
    return forward, backward


# -- the export, measured from inside -------------------------------------------------------------------------------

_MEASURED_CLI = r"""
import time
STARTED = time.time()
import importlib, json, sys, threading
from auralise.cli import main

MAIN = threading.main_thread()
stages = {}  # name -> [busy seconds on the main thread, in other threads, first start, calls, own CPU seconds]
lock, local = threading.Lock(), threading.local()

def timed(where, attr, name):
    # count the seconds of where.attr under `name` (a label, or a function of the call's arguments); only the
    # outermost timed call of a thread counts, so nested stages are not counted twice. `where` is "module" or
    # "module:Class"; a stage older code does not have is left out
    module, _, cls = where.partition(":")
    try:
        owner = importlib.import_module(module)
        owner = getattr(owner, cls) if cls else owner
        fn = getattr(owner, attr)
    except (ImportError, AttributeError):
        return
    def wrapper(*args, **kwargs):
        if getattr(local, "depth", 0):
            return fn(*args, **kwargs)
        label = name(*args) if callable(name) else name
        local.depth, t0, c0 = 1, time.time(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            t1, c1, local.depth = time.time(), time.thread_time(), 0
            with lock:
                s = stages.setdefault(label, [0.0, 0.0, t0, 0, 0.0])
                s[0 if threading.current_thread() is MAIN else 1] += t1 - t0
                s[2], s[3], s[4] = min(s[2], t0), s[3] + 1, s[4] + c1 - c0
    setattr(owner, attr, wrapper)

def backward_label(trace, tap, *args, **kwargs):
    convs = sum(r.name in ("conv1d", "conv2d") for r in trace.records[: tap[0] + 1])
    return f"backward, layer {convs}"

for where, attr, name in [  # where (module or module:Class), function, the stage it is counted under
    ("auralise.session:Session", "__init__", "model load"),
    ("auralise.engine.layers", "discover", "layer discovery, receptive fields"),
    ("auralise.engine.layers", "layer_table", "layer discovery, receptive fields"),
    ("auralise.engine.deconv", "make_projector", "layer discovery, receptive fields"),
    ("auralise.io.audio", "load_audio", "audio decoding"),
    ("auralise.engine.chunking:ChunkedProjector", "_record", "forward pass"),
    ("auralise.engine.chunking:ChunkedProjector", "_chunk_stats", "statistics"),
    ("auralise.engine.chunking", "project", backward_label),
    ("auralise.session:Session", "render", "resynthesis"),
    ("auralise.io.audio", "write_audio", "WAV encoding"),
    ("auralise.render.thumbnail", "write_thumbnail", "thumbnails"),
    ("auralise.listening.export", "_write_json", "manifest"),
    ("auralise.listening.page", "write_page", "page"),
    ("auralise.render.contrast", "add_to_all", "layer references"),
    ("concurrent.futures:Future", "result", "waiting for other threads"),
]:
    timed(where, attr, name)
import auralise.cli as cli

def report():
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print("STAGES", json.dumps({"started": STARTED, "ended": time.time(), "stages": stages, "cpu": cpu}),
          file=sys.stderr)

end_process = getattr(cli, "_end_process", None)  # (None: code older than the command's own ending)
if end_process is not None:
    def reported_end(code):  # the command ends the process itself: its report first
        report()
        end_process(code)
    cli._end_process = reported_end
sys.argv[0] = "auralise"
try:
    main()  # as the console command calls it (argv from sys.argv); it ends the process
finally:
    report()  # older code returns here
"""


def run_export(model: str, audio: str, out: str, extra: list[str]) -> tuple[float, dict]:
    """Wall seconds of `auralise export MODEL AUDIO --out OUT --layers all EXTRA` in a fresh process, and the
    stages it reported."""
    cmd = [sys.executable, "-c", _MEASURED_CLI, "export", model, audio, "--out", out, "--layers", "all", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    spawned = time.time()
    start = time.perf_counter()
    done = subprocess.run([*cmd, *extra], cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"export failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stderr.splitlines() if x.startswith("STAGES "))
    report = json.loads(line[len("STAGES ") :])
    report["spawned"] = spawned
    return seconds, report


def breakdown(seconds: float, report: dict) -> list[str]:
    """The breakdown lines of one export (see the module docstring)."""
    stages = report["stages"]
    first = min((s[2] for s in stages.values()), default=report["ended"])
    rows = [("start-up (process, imports, CLI)", first - report["spawned"], 0.0, None, 1)]
    order = ["model load", "layer discovery, receptive fields", "audio decoding", "forward pass", "statistics"]
    order += sorted((k for k in stages if k.startswith("backward")), key=lambda k: int(k.split()[-1]))
    order += ["resynthesis", "WAV encoding", "thumbnails", "layer references", "waiting for other threads"]
    order += ["manifest", "page"]
    order += [k for k in stages if k not in order]
    for name in order:
        if name in stages:
            main, other, _, calls, cpu = stages[name]
            rows.append((name, main, other, cpu, calls))
    rows.append(("process exit (after the command)", report["spawned"] + seconds - report["ended"], 0.0, None, 1))
    accounted = sum(r[1] for r in rows)
    rows.append(("other (main thread)", seconds - accounted, 0.0, None, 0))
    lines = [f"    {'stage':34s} {'main thread':>12s} {'others':>9s} {'own CPU':>9s} {'share':>6s} {'calls':>6s}"]
    for name, main, other, cpu, calls in rows:
        own = "" if cpu is None else f"{cpu:8.2f}s"
        lines.append(f"    {name:34s} {main:11.2f}s {other:8.2f}s {own:>9s} {main / seconds:6.1%} {calls:6d}")
    cpu = report.get("cpu")
    if cpu is not None:
        cores = os.cpu_count() or 1
        lines.append(
            f"    CPU time of the whole process: {cpu:.1f} CPU-s of {seconds * cores:.1f} available "
            f"({cpu / (seconds * cores):.0%} of {cores} cores over {seconds:.1f} s)"
        )
    return lines


def import_mtt_vgg(folder: Path, wheel: str | None) -> str | None:
    """Path of MTT_vgg imported into ``folder`` (None, with the reason printed, when it cannot be had)."""
    target = folder / "MTT_vgg.pt"
    if target.is_file():
        return str(target)
    if not wheel:
        from auralise.errors import AuraliseError
        from auralise.importers.musicnn import musicnn_wheel

        try:
            wheel = str(musicnn_wheel())  # the cache, else `pip download --no-deps` into it
        except AuraliseError as exc:
            print(f"MTT_vgg skipped: no musicnn wheel ({exc}); pass --wheel")
            return None
    cmd = [sys.executable, "-m", "auralise.cli", "import", "musicnn", "--model", "MTT_vgg", "--out", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*cmd, "--wheel", wheel], cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode or not target.is_file():
        print(f"MTT_vgg skipped: import failed: {done.stderr.strip()[-300:]}")
        return None
    return str(target)


def bound_report(model: str, audio: str, extra: list[str], repeat: int = 1) -> float:
    """Measure and print the bound, the export (``repeat`` times, each in a fresh process into a fresh folder, with
    the written data flushed to disk before each) and the breakdown of the median run; returns the median export /
    bound."""
    macs, channels, shape = layer_macs(model, audio)
    forward, backward = necessary_macs(macs, channels)
    n_features = sum(channels)
    before, where = peak_conv_rate()
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            os.sync()  # the last run's files are on disk: its write-back does not take this one's cores
            seconds, report = run_export(model, audio, f"{tmp}/set", extra)
            n_files = len(list(Path(tmp, "set").rglob("*.wav")))
        runs.append((seconds, report))
    times = sorted(seconds for seconds, _ in runs)
    seconds, report = next(run for run in runs if run[0] == times[(len(times) - 1) // 2])  # the median (lower)
    after, where_after = peak_conv_rate()
    peak = max(before, after)
    bound = (forward + backward) / (peak * 1e9)
    print(
        f"\n== {Path(model).name}: {Path(audio).name}, model input {shape}, {len(macs)} layers, {n_features} features"
    )
    print(f"  per-layer forward multiply-adds m_i: {', '.join(f'{m / 1e9:.2f} G' for m in macs)}; channels {channels}")
    print(f"  peak conv rate: {before:.1f} G/s before ({where}), {after:.1f} G/s after ({where_after}); "
          f"using {peak:.1f} G/s (torch threads {torch.get_num_threads()})")  # fmt: skip
    print(f"  necessary multiply-adds: forward {forward / 1e12:.3f} T + backward {backward / 1e12:.3f} T "
          f"= {(forward + backward) / 1e12:.3f} T")  # fmt: skip
    print(f"  bound: {bound:.2f} s")
    print(f"  export (fresh process, {n_files} WAVs + PNGs, manifest, page): {seconds:.2f} s")
    if repeat > 1:
        print(f"    {repeat} runs, the median above: " + ", ".join(f"{t:.2f}" for t in times)
              + f" s (best {times[0]:.2f} s = {times[0] / bound:.2f}x)")  # fmt: skip
    print(f"  export / bound: {seconds / bound:.2f}x")
    print("  breakdown" + (" (of the median run):" if repeat > 1 else ":"))
    print("\n".join(breakdown(seconds, report)))
    return seconds / bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=None, help="model files (default: Choi demo and MTT_vgg)")
    parser.add_argument("--audio", default=str(ROOT / "demo_audio/mix.ogg"))
    parser.add_argument("--wheel", default=None, help="the musicnn wheel MTT_vgg is imported from [default: cached]")
    parser.add_argument("--export-args", default="", help="extra arguments for auralise export (e.g. '--memory 8')")
    parser.add_argument("--captum-sample", type=int, default=0, help="also time Captum on N features, scaled up")
    parser.add_argument("--long", type=float, default=0, help="also: seconds of a long song to export at layer 3")
    parser.add_argument("--repeat", type=int, default=1, help="exports per model; the median is reported [1]")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models
        if models is None:
            models = [str(ROOT / "models/choi2016-synth.pt")]
            mtt = import_mtt_vgg(Path(tmp), args.wheel)
            models += [mtt] if mtt else []
        ratios = {Path(m).name: bound_report(m, args.audio, args.export_args.split(), args.repeat) for m in models}
    print("\nexport / bound: " + ", ".join(f"{name} {r:.2f}x" for name, r in ratios.items()))
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.captum_sample:
        captum_comparison(str(ROOT / "models/choi2016-synth.pt"), args.audio, args.captum_sample)
    if args.long:
        long_song(str(ROOT / "models/choi2016-synth.pt"), args.long)


# -- optional: the per-feature Captum loop, and a long song -----------------------------------------------------------


def captum_comparison(model: str, audio: str, n: int) -> None:
    """Time Captum's NeuronDeconvolution (one call per feature) on ``n`` features of the sequential Choi model,
    scaled to all features; print its agreement with our projection."""
    from captum.attr import NeuronDeconvolution

    from auralise import load_model
    from auralise.engine.deconv import project_features
    from auralise.engine.layers import discover
    from auralise.io.audio import load_audio

    loaded = load_model(model)
    module, fe = loaded.module.eval(), loaded.frontend
    y, _ = load_audio(audio, sr=fe.sr)
    S = fe.model_input(fe.stft(y))
    graph = discover(module, loaded.example_input())
    names = dict(module.named_modules())
    # the block tap of these sequential nets is the output of the layer's pooling module
    taps = {lay.number: names[f"features.{int(lay.path.split('.')[-1]) + 2}"] for lay in graph.layers}
    items = [(lay.number, f) for lay in graph.layers for f in range(lay.channels)]
    sample = items[:: max(1, len(items) // n)][:n]
    start, worst = time.perf_counter(), 0.0
    for layer, f in sample:
        attr = (
            NeuronDeconvolution(module.features, taps[layer])
            .attribute(S.clone(), neuron_selector=lambda o, f=f: (o[:, f] * o[:, f].detach()).flatten(1).sum(1))[0]
            .detach()
        )
        D = project_features(module, S, layer=layer, features=[f], example=loaded.example_input()).D[0]
        worst = max(worst, float((D - attr).abs().max() / attr.abs().max().clamp_min(1e-30)))
    took = (time.perf_counter() - start) * len(items) / len(sample)
    print(f"\nCaptum NeuronDeconvolution loop (and ours), scaled to {len(items)} features: {took:.1f} s; "
          f"max relative difference to ours {worst:.2e}")  # fmt: skip


def long_song(model: str, seconds: float) -> None:
    """Export layer 3 x all features of a synthetic song of ``seconds``; print the time."""
    import soundfile as sf

    from auralise import load_model
    from auralise.demo import synth

    fe = load_model(model).frontend
    with tempfile.TemporaryDirectory() as tmp:
        song = Path(tmp) / "long.wav"
        styles = ["dance", "ballad", "hiphop"] * int(np.ceil(seconds / 60))
        mix = synth.generate_sequence(styles, seconds_each=20.0, sr=fe.sr, seed=3).mix[: int(seconds * fe.sr)]
        sf.write(song, mix, fe.sr, subtype="PCM_16")
        cmd = [sys.executable, "-m", "auralise.cli", "export", model, str(song), "--out", f"{tmp}/set", "--layers",
               "3", "--quiet"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        took = time.perf_counter() - start
    print(f"long song {seconds:.0f} s, layer 3, all features: {took:.1f} s")


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
