"""Benchmark: `auralise export` of every feature of every layer against a per-feature Captum loop, same run.

    python benchmarks/export.py                      # shipped Choi model, demo_audio/mix.ogg (30 s), 320 features
    python benchmarks/export.py --captum-sample 16   # time Captum on 16 features spread over the layers, scale up
    python benchmarks/export.py --long 600           # also: a 10-minute song, layer 3 x all features, peak memory

Prints seconds for the Captum loop (NeuronDeconvolution, one call per feature), seconds for our export of the same
features (a subprocess running the real command: WAVs, thumbnails, manifest, page), their ratio, the export's
peak memory (max RSS of the subprocess), the ratio of export time to one plain forward pass, multiply-add counts of
the Captum loop and of the necessary work, and the largest relative difference to Captum on sampled features.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from captum.attr import NeuronDeconvolution

from auralise import load_model
from auralise.demo import synth
from auralise.engine.deconv import project_features
from auralise.engine.layers import discover, eval_mode
from auralise.engine.trace import record_forward
from auralise.io.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]


def conv_macs(module: torch.nn.Module, S: torch.Tensor) -> list[int]:
    """Multiply-adds of each conv layer's forward pass on S, in execution order."""
    graph = discover(module, S)
    with eval_mode(module):
        trace = record_forward(module, S, tolerate_errors=True)
    out = []
    for lay in graph.layers:
        rec = trace.records[lay.taps["conv"][0]]
        weight = rec.args[1] if len(rec.args) > 1 else rec.kwargs["weight"]
        out.append(rec.outputs[0].numel() * weight[0].numel())
    return out


def mac_counts(module: torch.nn.Module, S: torch.Tensor, features_per_layer: int) -> tuple[float, float]:
    """(Captum loop, necessary work) multiply-adds for all features of every layer.

    Captum: per feature one full forward pass plus a backward pass through every conv up to the layer, all
    channels. Necessary: one forward pass; per feature a backward pass whose top convolution transposes only
    the selected channel (1/C_out of it) and every lower one in full.
    """
    macs = conv_macs(module, S)
    channels = [lay.channels for lay in discover(module, S).layers]
    forward = sum(macs)
    loop = necessary = 0.0
    for i in range(len(macs)):
        below = sum(macs[:i])
        loop += features_per_layer * (forward + below + macs[i])
        necessary += features_per_layer * (below + macs[i] / channels[i])
    return loop, forward + necessary


def captum_loop(module, S, taps, items) -> tuple[float, dict]:
    """Seconds for one NeuronDeconvolution call per (layer, feature) item; the attributions of a few."""
    kept = {}
    start = time.perf_counter()
    for layer, f in items:
        deconv = NeuronDeconvolution(module, taps[layer])
        attr = deconv.attribute(
            S.clone(), neuron_selector=lambda o, f=f: (o[:, f] * o[:, f].detach()).flatten(1).sum(1)
        )
        if f % 21 == 0:
            kept[(layer, f)] = attr[0].detach()
    return time.perf_counter() - start, kept


_MEASURED_CLI = """
import resource, sys
from auralise.cli import main
try:
    main(sys.argv[1:])
finally:
    print("PEAK_RSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def run_export(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of `auralise export ARGS` in a fresh process."""
    cmd = [sys.executable, "-c", _MEASURED_CLI, "export", *args, "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KIB"))
    return seconds, peak / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models/choi2016-synth.pt"))
    parser.add_argument("--audio", default=str(ROOT / "demo_audio/mix.ogg"))
    parser.add_argument("--captum-sample", type=int, default=0, help="time Captum on N features only, scaled up")
    parser.add_argument("--long", type=float, default=0, help="seconds of a long song to export at layer 3")
    parser.add_argument("--long-only", action="store_true", help="only the long-song measurement")
    args = parser.parse_args()
    if args.long_only:
        long_song(args.model, args.long or 600.0)
        return

    torch.manual_seed(0)
    loaded = load_model(args.model)
    module, fe = loaded.module.eval(), loaded.frontend
    y, _ = load_audio(args.audio, sr=fe.sr)
    S = fe.model_input(fe.stft(y))
    graph = discover(module, loaded.example_input())
    names = dict(module.named_modules())
    # the block tap of these sequential nets is the output of the layer's pooling module
    taps = {lay.number: names[f"features.{int(lay.path.split('.')[-1]) + 2}"] for lay in graph.layers}
    items = [(lay.number, f) for lay in graph.layers for f in range(lay.channels)]
    print(f"model {args.model}, song {args.audio}: {len(y) / fe.sr:.1f} s, input {tuple(S.shape)}")
    print(f"{len(items)} features ({len(graph.layers)} layers)")
    print(f"torch threads: {torch.get_num_threads()}")

    with torch.no_grad():
        module.features(S)
        forward = min(_timed(lambda: module.features(S)) for _ in range(3))
    print(f"plain forward pass (conv stack, no autograd): {forward:.3f} s")

    sample = items
    if args.captum_sample:
        step = max(1, len(items) // args.captum_sample)
        sample = items[::step][: args.captum_sample]
    # Captum runs the conv stack (the dense head wants 4-s patches; it costs nothing next to the convolutions)
    captum_s, refs = captum_loop(module.features, S, taps, sample)
    captum_all = captum_s * len(items) / len(sample)
    scaled = "" if len(sample) == len(items) else f" (measured on {len(sample)}, scaled to {len(items)})"
    print(f"Captum NeuronDeconvolution loop: {captum_all:.1f} s{scaled}, {captum_all / len(items):.3f} s/feature")

    with tempfile.TemporaryDirectory() as tmp:
        export_s, peak = run_export([args.model, args.audio, "--out", f"{tmp}/set", "--layers", "all"])
        n_files = len(list(Path(tmp, "set").rglob("*.wav")))
    print(f"auralise export (all layers, all features; {n_files} WAVs + PNGs, manifest, page): {export_s:.1f} s")
    print(f"speed-up over the Captum loop: {captum_all / export_s:.2f}x")
    print(f"export peak memory (max RSS): {peak:.2f} GiB")
    print(f"export time / one forward pass: {export_s / forward:.0f}")

    loop_macs, needed_macs = mac_counts(module, S, graph.layers[0].channels)
    print(
        f"multiply-adds: Captum loop {loop_macs / 1e12:.2f} T, necessary {needed_macs / 1e12:.2f} T, "
        f"bound {loop_macs / needed_macs:.2f}x; reached {captum_all / export_s / (loop_macs / needed_macs):.0%}"
    )

    worst = 0.0
    for (layer, f), ref in refs.items():
        D = project_features(module, S, layer=layer, features=[f], example=loaded.example_input()).D[0]
        worst = max(worst, float((D - ref).abs().max() / ref.abs().max().clamp_min(1e-30)))
    print(f"agreement with Captum on {len(refs)} sampled features: max relative difference {worst:.2e}")

    if args.long:
        long_song(args.model, args.long)


def long_song(model: str, seconds: float) -> None:
    """Export layer 3 x all features of a synthetic song of ``seconds``; print time and peak memory."""
    fe = load_model(model).frontend
    with tempfile.TemporaryDirectory() as tmp:
        song = Path(tmp) / "long.wav"
        styles = ["dance", "ballad", "hiphop"] * int(np.ceil(seconds / 60))
        mix = synth.generate_sequence(styles, seconds_each=20.0, sr=fe.sr, seed=3).mix[: int(seconds * fe.sr)]
        sf.write(song, mix, fe.sr, subtype="PCM_16")
        took, peak = run_export([model, str(song), "--out", f"{tmp}/set", "--layers", "3"])
        n_files = len(list(Path(tmp, "set").rglob("layer3_*.wav")))
    print(f"long song {seconds:.0f} s, layer 3 x {n_files} features: {took:.1f} s, peak memory {peak:.2f} GiB")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
