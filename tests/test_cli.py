"""The ``auralise`` command line, end to end: real model files, real audio files, every bad input.

Commands run in-process through :func:`auralise.cli.main` (the console entry point), catching its SystemExit;
a few run as ``python -m auralise.cli`` subprocesses to see what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import FRONTEND, SR, build_choi_small

from auralise.cli import main
from auralise.errors import OutputError
from auralise.figures import display
from auralise.io.audio import load_audio

N_LAYERS, N_FEATURES = 5, 8
# choi2016 block tap (3x3 conv, padding 1, then 2x2 max-pool, five times): the field grows 4, 10, 22, 46, 94.
RF_BLOCK = [4, 10, 22, 46, 94]
# conv/activation taps stop before each layer's pooling: 3, 4 + 2*2, 10 + 2*4, 22 + 2*8, 46 + 2*16.
RF_CONV = [3, 8, 18, 38, 78]
PATHS = ["features.0", "features.4", "features.8", "features.12", "features.16"]


# --------------------------------------------------------------------------- helpers


def run_cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """Run ``auralise ARGS`` in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else int(code)), out, err


def run_ok(capsys: pytest.CaptureFixture, *args: object) -> tuple[str, str]:
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "Traceback" not in out + err
    return out, err


def assert_error(code: int, err: str, expected_code: int, *phrases: str) -> str:
    """One line on stderr, ``error: ...``, naming the problem; the documented exit code; no traceback."""
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def assert_nothing_written(folder: Path) -> None:
    """The output folder was not left behind with anything in it (no outputs, no temporary files)."""
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []


def listing(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden ones included (temporary files are hidden)."""
    return sorted(p.name for p in folder.iterdir())


def wrote(out: str) -> list[str]:
    return [line.removeprefix("wrote ") for line in out.splitlines() if line.startswith("wrote ")]


def check_wav(path: Path, n_samples: int, *, normalize: str = "peak") -> np.ndarray:
    """The WAV is at the model's rate, mono, as long as the input, finite, peaking as ``normalize`` says."""
    info = sf.info(path)
    assert info.format == "WAV" and info.samplerate == SR and info.channels == 1
    assert info.subtype == ("PCM_16" if normalize == "peak" else "FLOAT")
    y, _ = sf.read(path, dtype="float64")
    assert len(y) == n_samples
    assert np.all(np.isfinite(y))
    peak = np.max(np.abs(y))
    if normalize == "peak":
        assert abs(peak - 0.99) < 1e-3, peak
    else:
        assert peak > 0
    return y


def check_png(path: Path) -> None:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std(axis=0).max() > 0.05, "the figure is blank"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 50, "the figure has almost no content"


def write(path: Path, y: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(path, y, sr, subtype=subtype)
    return path


# --------------------------------------------------------------------------- runs that work


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats(capsys, tmp_path, choi_model, music_files, music, fmt):
    audio = music_files[fmt]
    out_dir = tmp_path / "out"
    out, err = run_ok(capsys, choi_model, audio, "--layer", 2, "--feature", 3, "--out", out_dir)
    wav, png, record = (out_dir / f"layer2_feature3.{ext}" for ext in ("wav", "png", "json"))
    assert wrote(out) == [str(wav), str(png), str(record)]
    assert listing(out_dir) == [record.name, png.name, wav.name]
    assert "note:" not in err  # mono at the model's rate: nothing to downmix or resample
    expected = len(load_audio(audio, sr=SR)[0])
    if fmt in ("wav", "flac"):
        assert expected == len(music)
    else:  # lossy codecs may add padding; the output follows what the loader decoded
        assert abs(expected - len(music)) < 0.1 * SR
    check_wav(wav, expected)
    check_png(png)


def test_stereo_44k_downmixed_and_resampled(capsys, tmp_path, choi_model, music_files):
    audio = music_files["stereo44k"]
    out_dir = tmp_path / "out"
    out, err = run_ok(capsys, choi_model, audio, "--layer", 1, "--feature", 0, "--out", out_dir, "--no-plot")
    assert "note: downmixed 2 channels to mono" in err
    assert "note: resampled 44100 Hz -> 11025 Hz" in err
    assert listing(out_dir) == ["layer1_feature0.json", "layer1_feature0.wav"]
    n = len(load_audio(audio, sr=SR)[0])
    assert n == round(4.0 * SR)
    check_wav(out_dir / "layer1_feature0.wav", n)


def test_six_channels_downmixed(capsys, tmp_path, choi_model, music):
    rng = np.random.default_rng(0)
    six = np.stack([music * g for g in rng.uniform(0.2, 1.0, 6)], axis=1)
    audio = write(tmp_path / "surround.wav", six)
    out_dir = tmp_path / "out"
    _, err = run_ok(capsys, choi_model, audio, "-l", 3, "-f", 5, "--out", out_dir, "--no-plot")
    assert "note: downmixed 6 channels to mono" in err
    assert "resampled" not in err
    check_wav(out_dir / "layer3_feature5.wav", len(music))


@pytest.mark.parametrize("rate", [8000, 96000])
def test_unusual_sample_rates(capsys, tmp_path, choi_model, rate):
    from auralise.demo import synth

    audio = write(tmp_path / f"at{rate}.wav", synth.generate("hiphop", seconds=3.0, sr=rate, seed=4).mix, rate)
    out_dir = tmp_path / "out"
    _, err = run_ok(capsys, choi_model, audio, "--layer", 2, "--feature", 1, "--out", out_dir, "--no-plot")
    assert f"note: resampled {rate} Hz -> {SR} Hz" in err
    assert listing(out_dir) == ["layer2_feature1.json", "layer2_feature1.wav"]
    check_wav(out_dir / "layer2_feature1.wav", round(3.0 * SR))


def test_several_features(capsys, tmp_path, choi_model, music_files, music):
    out_dir = tmp_path / "out"
    args = ["--layer", 3, "--feature", 0, "--feature", 7, "-f", 4, "--feature", 0, "--out", out_dir]
    out, _ = run_ok(capsys, choi_model, music_files["wav"], *args)
    names = [f"layer3_feature{f}.{ext}" for f in (0, 7, 4) for ext in ("wav", "png", "json")]
    assert wrote(out) == [str(out_dir / n) for n in names]  # in the order given, the repeated 0 once
    assert listing(out_dir) == sorted(names)
    waves = [check_wav(out_dir / f"layer3_feature{f}.wav", len(music)) for f in (0, 7, 4)]
    assert not np.allclose(waves[0], waves[1]) and not np.allclose(waves[1], waves[2])
    for f in (0, 7, 4):
        check_png(out_dir / f"layer3_feature{f}.png")


def test_layer_by_module_path(capsys, tmp_path, choi_model, music_files, music):
    out_dir = tmp_path / "out"
    out, _ = run_ok(capsys, choi_model, music_files["wav"], "--layer", "features.4", "--feature", 2, "--out", out_dir)
    assert listing(out_dir) == ["layer2_feature2.json", "layer2_feature2.png", "layer2_feature2.wav"]  # by number
    by_path = check_wav(out_dir / "layer2_feature2.wav", len(music))
    out_num = tmp_path / "bynumber"
    run_ok(capsys, choi_model, music_files["wav"], "--layer", 2, "--feature", 2, "--out", out_num, "--no-plot")
    np.testing.assert_array_equal(by_path, sf.read(out_num / "layer2_feature2.wav", dtype="float64")[0])


@pytest.mark.parametrize(
    "options",
    [
        ["--method", "guided"],
        ["--method", "gradient"],
        ["--select", "max"],
        ["--select", "topk:3"],
        ["--tap", "conv"],
        ["--tap", "activation"],
        ["--resynth", "magnitude"],
        ["--phase", "griffinlim"],
        ["--method", "guided", "--select", "topk:3", "--tap", "activation", "--resynth", "magnitude"],
    ],
    ids=lambda o: "_".join(x.lstrip("-") for x in o),
)
def test_options(capsys, tmp_path, choi_model, music_files, music, options):
    out_dir = tmp_path / "out"
    from auralise.io.naming import output_name

    args = [choi_model, music_files["wav"], "--layer", 2, "--feature", 6, "--out", out_dir, "--no-plot", *options]
    out, _ = run_ok(capsys, *args)
    given = dict(zip(options[::2], options[1::2]))  # options other than the defaults are named in the files
    wav, record = (output_name(2, 6, ext, {k.lstrip("-"): v for k, v in given.items()}) for ext in ("wav", "json"))
    assert wav != "layer2_feature6.wav"
    assert wrote(out) == [str(out_dir / wav), str(out_dir / record)]
    assert listing(out_dir) == sorted([wav, record])
    check_wav(out_dir / wav, len(music))


def test_options_change_the_result(capsys, tmp_path, choi_model, music_files):
    """Each option reaches the engine: the outputs differ from the defaults'."""
    base = ["--layer", 3, "--feature", 1, "--no-plot", "--normalize", "none"]

    def wave(name: str, *extra: str) -> np.ndarray:
        run_ok(capsys, choi_model, music_files["wav"], *base, "--out", tmp_path / name, *extra)
        (wav,) = (tmp_path / name).glob("layer3_feature1*.wav")  # named with the options
        return sf.read(wav, dtype="float64")[0]

    default = wave("default")
    for name, extra in {
        "guided": ("--method", "guided"),
        "max": ("--select", "max"),
        "conv": ("--tap", "conv"),
        "magnitude": ("--resynth", "magnitude"),
    }.items():
        assert not np.allclose(wave(name, *extra), default), name


def test_normalize_none_writes_float(capsys, tmp_path, choi_model, music_files, music):
    out_dir = tmp_path / "out"
    args = ["--layer", 1, "--feature", 0, "-f", 1, "--out", out_dir, "--no-plot", "--normalize", "none"]
    run_ok(capsys, choi_model, music_files["wav"], *args)
    a = check_wav(out_dir / "layer1_feature0_nonorm.wav", len(music), normalize="none")
    b = check_wav(out_dir / "layer1_feature1_nonorm.wav", len(music), normalize="none")
    # levels are kept, not each pushed to 0.99: a mask never makes the song louder than it is
    assert max(np.abs(a).max(), np.abs(b).max()) < np.abs(music).max() * 1.5
    assert abs(np.abs(a).max() - 0.99) > 1e-3 or abs(np.abs(b).max() - 0.99) > 1e-3


def test_no_plot_writes_only_wavs(capsys, tmp_path, choi_model, music_files):
    out_dir = tmp_path / "out"
    out, _ = run_ok(capsys, choi_model, music_files["flac"], "-l", 4, "-f", 0, "-f", 1, "--out", out_dir, "--no-plot")
    assert listing(out_dir) == [f"layer4_feature{f}.{e}" for f in (0, 1) for e in ("json", "wav")]
    assert len(wrote(out)) == 4


def test_default_output_folder(capsys, tmp_path, monkeypatch, choi_model, music_files):
    monkeypatch.chdir(tmp_path)
    out, _ = run_ok(capsys, choi_model, music_files["ogg"], "--layer", 1, "--feature", 2, "--no-plot")
    target = Path("auralised") / "choi_small" / "dance" / "layer1_feature2.wav"  # auralised/<model>/<song>/
    assert wrote(out) == [str(target), str(target.with_suffix(".json"))]
    assert (tmp_path / target).is_file()


def test_device_cpu(capsys, tmp_path, choi_model, music_files):
    out_dir = tmp_path / "out"
    run_ok(capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "--out", out_dir, "--no-plot", "--device", "cpu")
    assert listing(out_dir) == ["layer1_feature0.json", "layer1_feature0.wav"]


def test_silent_feature_warns(capsys, tmp_path, music_files, music):
    from auralise import save_model

    net = build_choi_small()
    with torch.no_grad():  # feature 0 of layer 1 can never fire: zero weights, negative bias
        net.features[0].weight[0].zero_()
        net.features[0].bias[0] = -1.0
    model = save_model(net, tmp_path / "dead.pt", frontend=FRONTEND)
    out_dir = tmp_path / "out"
    out, err = run_ok(capsys, model, music_files["wav"], "--layer", 1, "-f", 0, "-f", 1, "--out", out_dir, "--no-plot")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "feature 0 of layer 1 is silent" in warnings[0]
    assert listing(out_dir) == [f"layer1_feature{f}.{e}" for f in (0, 1) for e in ("json", "wav")]
    dead, _ = sf.read(out_dir / "layer1_feature0.wav")
    assert len(dead) == len(music) and not np.any(dead)
    check_wav(out_dir / "layer1_feature1.wav", len(music))


def test_force_overwrites(capsys, tmp_path, choi_model, music_files):
    out_dir = tmp_path / "out"
    args = [choi_model, music_files["wav"], "--layer", 2, "--feature", 0, "--out", out_dir, "--no-plot"]
    run_ok(capsys, *args)
    target = out_dir / "layer2_feature0.wav"
    target.write_bytes(b"old")
    code, out, err = run_cli(capsys, *args)
    assert_error(code, err, 2, str(target), "already exists", "--force")
    record = target.with_suffix(".json").name
    assert out == "" and target.read_bytes() == b"old" and listing(out_dir) == [record, target.name]
    run_ok(capsys, *args, "--force")
    assert listing(out_dir) == [record, target.name]
    check_wav(target, round(4.0 * SR))
    # any one existing target stops the whole run before anything is computed or written
    png = out_dir / "layer2_feature5.png"
    png.write_bytes(b"old figure")
    code, _, err = run_cli(capsys, choi_model, music_files["wav"], "--layer", 2, "-f", 5, "--out", out_dir)
    assert_error(code, err, 2, str(png), "already exists")
    assert listing(out_dir) == sorted([record, target.name, png.name]) and png.read_bytes() == b"old figure"


# --------------------------------------------------------------------------- inspect


def test_inspect_table(capsys, choi_model):
    out, _ = run_ok(capsys, "inspect", choi_model)
    lines = out.strip().splitlines()
    assert "STFT 11025 Hz" in lines[0] and "tap 'block'" in lines[0]
    assert lines[1].split()[:3] == ["layer", "path", "kernel"]
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == N_LAYERS
    for i, row in enumerate(rows):
        layer, path, kernel, stride, channels, shape, rf_frames, rf_bins, rf_ms, rf_hz = row
        assert (int(layer), path, kernel, stride) == (i + 1, PATHS[i], "3x3", "1x1")
        assert channels == f"{1 if i == 0 else N_FEATURES}->{N_FEATURES}"
        assert int(rf_frames) == RF_BLOCK[i] and int(rf_bins) == RF_BLOCK[i]
        assert float(rf_ms) == pytest.approx(((RF_BLOCK[i] - 1) * 256 + 512) / SR * 1000, abs=0.051)
        assert float(rf_hz) == pytest.approx(RF_BLOCK[i] * SR / 512, abs=0.051)
    assert rows[0][5] == "1x8x128x86"  # 257 bins x 173 frames of a 4 s input, pooled once


def test_inspect_json(capsys, choi_model):
    out, _ = run_ok(capsys, "inspect", choi_model, "--json")
    doc = json.loads(out)
    assert doc["frontend"]["sr"] == SR and doc["frontend"]["n_fft"] == 512 and doc["frontend"]["hop_length"] == 256
    layers = doc["layers"]
    assert [r["layer"] for r in layers] == [1, 2, 3, 4, 5]
    assert [r["path"] for r in layers] == PATHS
    assert [r["rf_frames"] for r in layers] == RF_BLOCK
    assert [r["rf_bins"] for r in layers] == RF_BLOCK
    assert layers[0]["rf_ms"] == pytest.approx(((4 - 1) * 256 + 512) / 11025 * 1000, abs=0.05)  # 116.1
    assert layers[0]["rf_ms"] == pytest.approx(116.1)
    assert [r["output_shape"] for r in layers][-1] == [1, 8, 8, 5]
    assert all(r["tap"] == "block" and r["out_channels"] == N_FEATURES for r in layers)


@pytest.mark.parametrize("tap", ["conv", "activation"])
def test_inspect_json_tap(capsys, choi_model, tap):
    out, _ = run_ok(capsys, "inspect", choi_model, "--json", "--tap", tap)
    layers = json.loads(out)["layers"]
    assert [r["rf_frames"] for r in layers] == RF_CONV
    assert [r["rf_bins"] for r in layers] == RF_CONV
    assert layers[0]["output_shape"] == [1, 8, 257, 173]
    assert all(r["tap"] == tap for r in layers)


def test_inspect_errors(capsys, tmp_path, choi_model):
    code, _, err = run_cli(capsys, "inspect", tmp_path / "nope.pt")
    assert_error(code, err, 2, "not found")
    code, _, err = run_cli(capsys, "inspect", choi_model, "--tap", "pool")
    assert_error(code, err, 2, "--tap", "pool")


# --------------------------------------------------------------------------- help, version, subprocesses


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from auralise.cli import cli\n"
        "for args in (['--help'], ['run', '--help'], ['inspect', '--help']):\n"
        "    try:\n"
        "        cli.main(args=args, prog_name='auralise')\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
        "print('TORCH', 'torch' in sys.modules, 'librosa' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--layer" in proc.stdout and "--feature" in proc.stdout and "inspect" in proc.stdout
    assert "TORCH False False False" in proc.stdout


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_openmp_threads_sleep_between_convolutions_unless_told(preset):
    """The command line asks torch's OpenMP threads to sleep after each parallel region (the writer threads get the
    cores), before torch loads; a user's own OMP_WAIT_POLICY is kept."""
    code = "import os, auralise.cli, torch; print('POLICY', os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"POLICY {preset or 'PASSIVE'}" in proc.stdout


def test_help_and_version(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "auralise MODEL AUDIO" in out and "inspect" in out
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and "0.1.0" in out


def test_the_process_command_ends_the_process_once_its_output_is_out(capsys, tmp_path):
    """As the process's own command (argv from sys.argv) main ends the process with the command's exit code as soon
    as stdout and stderr are flushed, without the interpreter's own ending (0.13-0.4 s of an export: freeing every
    object torch and numba made): the whole output arrives, and the exit codes are the command's."""
    cmd = [sys.executable, "-m", "auralise.cli"]
    code, help_text, _ = run_cli(capsys, "--help")
    assert code == 0
    done = subprocess.run([*cmd, "--help"], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, help_text, "")
    done = subprocess.run([*cmd, "export", "model.pt", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ") and not (tmp_path / "o").exists()
    # a reader that has gone: the command ends (click reports the closed pipe with code 1), no traceback
    with subprocess.Popen([*cmd, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()
        assert proc.wait(timeout=60) == 1 and b"Traceback" not in proc.stderr.read()


def test_called_with_arguments_main_leaves_the_interpreter_and_the_collector_alone(capsys):
    """Called with arguments, as by a program or these tests, main raises SystemExit and returns control."""
    import gc

    code, _, _ = run_cli(capsys, "--version")
    assert code == 0 and gc.get_freeze_count() == 0


@pytest.mark.parametrize("process", [True, False])
def test_a_songs_work_keeps_the_commands_objects_out_of_collections(monkeypatch, process):
    """The export command pauses cyclic collections while it imports torch and loads the model; its progress
    reports mark each song: from its loading to its end the objects alive are out of the collector's sight, and
    back in it after (as the process's own command only)."""
    import gc

    import auralise.cli as cli_module
    from auralise.cli.songs import _ExportProgress

    monkeypatch.setattr(cli_module, "_PROCESS_COMMAND", [process])
    try:
        cli_module.pause_collections()  # as the export command starts
        assert gc.isenabled() != process
        with _ExportProgress(1, quiet=True) as progress:
            progress("song", 0, 0, "loading")
            assert gc.isenabled() and (gc.get_freeze_count() > 0) == process
            progress("song", 1, 10, "forward pass")
            assert (gc.get_freeze_count() > 0) == process
            progress("song", 10, 10, "done")
            assert gc.get_freeze_count() == 0 and gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def _python_m(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "auralise.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_subprocess_run_and_error(tmp_path, choi_model, music_files):
    out_dir = tmp_path / "out"
    proc = _python_m(choi_model, music_files["stereo44k"], "--layer", 5, "--feature", 7, "--out", out_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.split() == [
        "wrote",
        str(out_dir / "layer5_feature7.wav"),
        "wrote",
        str(out_dir / "layer5_feature7.png"),
        "wrote",
        str(out_dir / "layer5_feature7.json"),
    ]
    assert "note: downmixed 2 channels to mono" in proc.stderr
    # nothing but our own notes reaches the user: no library warnings, no stack traces
    assert all(line.startswith(("note: ", "warning: ")) for line in proc.stderr.splitlines()), proc.stderr
    assert listing(out_dir) == ["layer5_feature7.json", "layer5_feature7.png", "layer5_feature7.wav"]

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    bad_out = tmp_path / "bad"
    proc = _python_m(corrupt, music_files["wav"], "--layer", 1, "--feature", 0, "--out", bad_out, cwd=tmp_path)
    assert_error(proc.returncode, proc.stderr, 2, "corrupt or not a PyTorch file")
    assert proc.stdout == ""
    assert_nothing_written(bad_out)


# --------------------------------------------------------------------------- bad audio


def _bad_audio_cases(tmp: Path, music: np.ndarray) -> dict[str, Path]:
    cases = {"missing": tmp / "missing.wav", "folder": tmp / "a_folder.wav"}
    cases["folder"].mkdir()
    cases["text"] = tmp / "notes.wav"
    cases["text"].write_text("these are my notes, not audio\n" * 20)
    full = write(tmp / "full.wav", music)
    cases["truncated"] = tmp / "truncated.wav"
    data = full.read_bytes()
    cases["truncated"].write_bytes(data[: len(data) // 2])
    cases["empty"] = write(tmp / "empty.wav", np.zeros(0, np.float32))
    cases["zero_bytes"] = tmp / "zero_bytes.wav"
    cases["zero_bytes"].write_bytes(b"")
    cases["silent"] = write(tmp / "silent.wav", np.zeros(SR * 3, np.float32))
    bad = music.copy()
    bad[1000], bad[2000] = np.nan, np.inf
    cases["nonfinite"] = write(tmp / "nan.wav", bad, subtype="FLOAT")
    cases["short"] = write(tmp / "short.wav", music[: int(0.05 * SR)])
    return cases


@pytest.mark.parametrize(
    "case, layer, phrases",
    [
        ("missing", 1, ["audio file not found", "missing.wav"]),
        ("folder", 1, ["is a folder, not an audio file"]),
        ("text", 1, ["cannot read", "notes.wav", "as audio"]),
        ("truncated", 1, ["truncated.wav is truncated"]),
        ("empty", 1, ["contains no audio samples"]),
        ("zero_bytes", 1, ["empty file (0 bytes)"]),
        ("silent", 1, ["silent"]),
        ("nonfinite", 1, ["2 NaN or infinite sample values"]),
        ("short", 5, ["too short", "0.050 s"]),
    ],
)
def test_bad_audio(capsys, tmp_path, choi_model, music, case, layer, phrases):
    audio = _bad_audio_cases(tmp_path, music)[case]
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, choi_model, audio, "--layer", layer, "--feature", 0, "--out", out_dir)
    assert_error(code, err, 2, *phrases)  # BadAudioError's exit code
    assert out == ""
    assert_nothing_written(out_dir)


def test_short_audio_is_fine_for_a_small_layer(capsys, tmp_path, choi_model, music):
    """0.5 s covers layer 1's receptive field (116 ms) but not layer 5's (2.2 s): the length needed depends on L."""
    audio = write(tmp_path / "half.wav", music[: SR // 2])
    out_dir = tmp_path / "out"
    run_ok(capsys, choi_model, audio, "--layer", 1, "--feature", 0, "--out", out_dir, "--no-plot")
    check_wav(out_dir / "layer1_feature0.wav", SR // 2)
    code, _, err = run_cli(capsys, choi_model, audio, "--layer", 5, "--feature", 0, "--out", tmp_path / "l5")
    assert_error(code, err, 2, "too short", "2.159 s")
    assert_nothing_written(tmp_path / "l5")


# --------------------------------------------------------------------------- bad model files


def _checkpoint_without_frontend(path: Path) -> Path:
    net = build_choi_small()
    torch.save(
        {
            "format": "auralise-checkpoint",
            "version": 1,
            "architecture": "choi2016",
            "config": net.config,
            "state_dict": net.state_dict(),
        },
        path,
    )
    return path


def _frontend_json(path: Path) -> Path:
    path.write_text(json.dumps(FRONTEND))
    return path


@pytest.mark.parametrize(
    "case, phrases",
    [
        ("missing", ["model file", "not found"]),
        ("folder", ["is a folder, not a model file"]),
        ("random_bytes", ["cannot read model file", "corrupt or not a PyTorch file"]),
        ("list", ["does not hold a model", "list"]),
        ("state_dict", ["bare state_dict", "save_model"]),
        ("no_frontend", ["has no front-end", "--frontend FILE.json"]),
        ("pickled_module", ["--trust-model", "arbitrary code"]),
    ],
)
def test_bad_model(capsys, tmp_path, music_files, case, phrases):
    model = tmp_path / f"{case}.pt"
    if case == "folder":
        model.mkdir()
    elif case == "random_bytes":
        model.write_bytes(np.random.default_rng(1).bytes(10_000))
    elif case == "list":
        torch.save([1, 2, 3], model)
    elif case == "state_dict":
        torch.save(build_choi_small().state_dict(), model)
    elif case == "no_frontend":
        _checkpoint_without_frontend(model)
    elif case == "pickled_module":
        torch.save(build_choi_small(), model)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, model, music_files["wav"], "--layer", 1, "--feature", 0, "--out", out_dir)
    assert_error(code, err, 2, *phrases)  # BadModelError's exit code
    assert out == ""
    assert_nothing_written(out_dir)


def test_frontend_json_remedies_missing_frontend(capsys, tmp_path, choi_model, music_files, music):
    model = _checkpoint_without_frontend(tmp_path / "nofe.pt")
    fe = _frontend_json(tmp_path / "fe.json")
    out_dir = tmp_path / "out"
    args = ["--layer", 2, "--feature", 3, "--no-plot"]
    run_ok(capsys, model, music_files["wav"], *args, "--out", out_dir, "--frontend", fe)
    got = check_wav(out_dir / "layer2_feature3.wav", len(music))
    # same weights, same front-end: the same result as the complete checkpoint
    run_ok(capsys, choi_model, music_files["wav"], *args, "--out", tmp_path / "ref")
    np.testing.assert_array_equal(got, sf.read(tmp_path / "ref" / "layer2_feature3.wav", dtype="float64")[0])
    out, _ = run_ok(capsys, "inspect", model, "--frontend", fe, "--json")
    assert [r["rf_frames"] for r in json.loads(out)["layers"]] == RF_BLOCK


def test_frontend_file_problems(capsys, tmp_path, music_files):
    model = _checkpoint_without_frontend(tmp_path / "nofe.pt")
    out_dir = tmp_path / "out"
    base = [model, music_files["wav"], "--layer", 1, "--feature", 0, "--out", out_dir]
    code, _, err = run_cli(capsys, *base, "--frontend", tmp_path / "missing.json")
    assert_error(code, err, 2, "cannot read front-end file", "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = run_cli(capsys, *base, "--frontend", broken)
    assert_error(code, err, 2, "cannot read front-end file", "broken.json")
    broken.write_text("[" * 100_000)  # nested too deeply for the parser (a RecursionError, not a ValueError)
    code, _, err = run_cli(capsys, *base, "--frontend", broken)
    assert_error(code, err, 2, "cannot read front-end file", "broken.json")
    assert_nothing_written(out_dir)


def test_pickled_module_needs_trust(capsys, tmp_path, music_files, music):
    model = tmp_path / "whole.pt"
    torch.save(build_choi_small(), model)
    fe = _frontend_json(tmp_path / "fe.json")
    out_dir = tmp_path / "out"
    args = [model, music_files["wav"], "--layer", 3, "--feature", 2, "--out", out_dir, "--no-plot"]
    code, _, err = run_cli(capsys, *args, "--frontend", fe)
    assert_error(code, err, 2, "--trust-model")
    assert_nothing_written(out_dir)
    code, _, err = run_cli(capsys, *args, "--trust-model")  # trusted, but still no front-end
    assert_error(code, err, 2, "has no front-end", "--frontend")
    assert_nothing_written(out_dir)
    run_ok(capsys, *args, "--trust-model", "--frontend", fe)
    check_wav(out_dir / "layer3_feature2.wav", len(music))


# --------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize(
    "options, code, phrases",
    [
        (["--layer", 6, "--feature", 0], 2, ["layer 6 is out of range", "layers 1-5"]),
        (["--layer", 0, "--feature", 0], 2, ["layer 0 is out of range", "1-5"]),
        (["--layer", "features.3", "--feature", 0], 2, ["no convolution layer named 'features.3'", "features.16"]),
        (["--layer", 2, "--feature", 8], 2, ["feature 8 is out of range", "features 0-7"]),
        (["--layer", 2, "--feature", 0, "--feature", 99], 2, ["feature 99", "0-7"]),
        (["--layer", 2, "--feature=-1"], 2, ["--feature", "'-1'", "0-15"]),
        (["--layer", 2, "--feature", "x"], 2, ["--feature", "'x'", "0,5,38"]),
        (["--layer", 2], 2, ["Missing option", "--feature"]),
        (["--feature", 0], 2, ["Missing option", "--layer"]),
        (["--layer", 2, "--feature", 0, "--select", "best"], 2, ["unknown selection 'best'", "topk:K"]),
        (["--layer", 2, "--feature", 0, "--select", "topk:0"], 2, ["unknown selection 'topk:0'"]),
        (["--layer", 2, "--feature", 0, "--select", "topk:"], 2, ["unknown selection"]),
        (["--layer", 2, "--feature", 0, "--method", "lrp"], 2, ["--method", "'lrp' is not one of"]),
        (["--layer", 2, "--feature", 0, "--tap", "pool"], 2, ["--tap"]),
        (["--layer", 2, "--feature", 0, "--resynth", "wiener"], 2, ["--resynth"]),
        (["--layer", 2, "--feature", 0, "--phase", "zero"], 2, ["--phase"]),
        (["--layer", 2, "--feature", 0, "--normalize", "rms"], 2, ["--normalize"]),
        (["--layer", 2, "--feature", 0, "--device", "tpu"], 2, ["unknown device 'tpu'"]),
        (["--layer", 2, "--feature", 0, "--bogus"], 2, ["No such option", "--bogus"]),
    ],
)
def test_bad_parameters(capsys, tmp_path, choi_model, music_files, options, code, phrases):
    out_dir = tmp_path / "out"
    got, out, err = run_cli(capsys, choi_model, music_files["wav"], *options, "--out", out_dir)
    assert_error(got, err, code, *phrases)
    assert out == ""
    assert_nothing_written(out_dir)


def test_missing_arguments(capsys):
    code, _, err = run_cli(capsys, "model.pt")
    assert_error(code, err, 2, "Missing argument", "AUDIO")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(capsys, tmp_path, choi_model, music_files):
    out_dir = tmp_path / "out"
    code, _, err = run_cli(
        capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "--device", "cuda", "--out", out_dir
    )
    assert_error(code, err, 2, "CUDA is not available", "--device cpu")
    assert_nothing_written(out_dir)


def test_output_folder_under_a_file(capsys, tmp_path, choi_model, music_files):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("I am a file")
    out_dir = blocker / "sub"
    code, out, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "--out", out_dir)
    assert_error(code, err, 2, "cannot write to output folder", "somefile.txt")
    assert out == "" and blocker.read_text() == "I am a file"
    assert listing(tmp_path) == ["somefile.txt"]


def test_output_folder_is_a_file(capsys, tmp_path, choi_model, music_files):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "--out", blocker)
    assert_error(code, err, 2, "taken")
    assert blocker.read_text() == "x" and listing(tmp_path) == ["taken"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_output_folder(capsys, tmp_path, choi_model, music_files):
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "--out", out_dir)
        assert_error(code, err, 2, "cannot write to output folder")
        assert_nothing_written(out_dir)
    finally:
        out_dir.chmod(0o755)


# --------------------------------------------------------------------------- failures half-way leave nothing


def _fail_on_call(n: int, exc: BaseException, real):
    """A stand-in for ``real`` that raises ``exc`` on its n-th call (1-based)."""
    calls = {"n": 0}

    def fake(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= n:
            raise exc
        return real(*args, **kwargs)

    return fake


def test_plot_failure_for_second_feature_leaves_nothing(capsys, tmp_path, monkeypatch, choi_model, music_files):

    monkeypatch.setattr(display, "save_figure", _fail_on_call(2, OutputError("disk full"), display.save_figure))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 2, "-f", 0, "-f", 1, "--out", out_dir)
    assert_error(code, err, 2, "disk full")
    assert out == ""
    assert_nothing_written(out_dir)


def test_write_failure_for_second_feature_leaves_nothing(capsys, tmp_path, monkeypatch, choi_model, music_files):
    import auralise.io.audio

    monkeypatch.setattr(
        auralise.io.audio, "write_audio", _fail_on_call(2, OutputError("disk full"), auralise.io.audio.write_audio)
    )
    out_dir = tmp_path / "out"
    args = [choi_model, music_files["wav"], "-l", 2, "-f", 0, "-f", 1, "--out", out_dir, "--no-plot"]
    code, _, err = run_cli(capsys, *args)
    assert_error(code, err, 2, "disk full")
    assert_nothing_written(out_dir)


def test_failure_with_force_keeps_previous_outputs(capsys, tmp_path, monkeypatch, choi_model, music_files):
    out_dir = tmp_path / "out"
    args = [choi_model, music_files["wav"], "-l", 2, "-f", 0, "-f", 1, "--out", out_dir]
    run_ok(capsys, *args)
    before = {name: (out_dir / name).read_bytes() for name in listing(out_dir)}
    assert len(before) == 6  # WAV, PNG and JSON of each feature

    monkeypatch.setattr(display, "save_figure", _fail_on_call(2, OutputError("disk full"), display.save_figure))
    other = [choi_model, music_files["stereo44k"], *args[2:]]  # another song: other contents, the same names
    code, _, err = run_cli(capsys, *other, "--force")
    assert_error(code, err, 2, "disk full")
    assert {name: (out_dir / name).read_bytes() for name in listing(out_dir)} == before


def test_resynthesis_failure_leaves_nothing(capsys, tmp_path, monkeypatch, choi_model, music_files):
    import auralise.render.resynth

    monkeypatch.setattr(auralise.render.resynth, "resynthesise", _fail_on_call(1, OutputError("boom"), None))
    out_dir = tmp_path / "new" / "out"
    code, _, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "--out", out_dir)
    assert_error(code, err, 2, "boom")
    assert not (tmp_path / "new").exists()  # the folders this run created are gone again


@pytest.mark.parametrize("where", ["resynth", "plot"])
def test_interrupt_leaves_nothing(capsys, tmp_path, monkeypatch, choi_model, music_files, where):
    import auralise.figures.display
    import auralise.render.resynth

    if where == "resynth":
        monkeypatch.setattr(auralise.render.resynth, "resynthesise", _fail_on_call(1, KeyboardInterrupt(), None))
    else:
        real = auralise.figures.display.save_figure
        monkeypatch.setattr(auralise.figures.display, "save_figure", _fail_on_call(2, KeyboardInterrupt(), real))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 1, "-f", 0, "-f", 1, "--out", out_dir)
    assert code == 130 and "interrupted; no partial files were left" in err and "Traceback" not in err
    assert out == ""
    assert_nothing_written(out_dir)


def test_unexpected_exception_leaves_nothing(tmp_path, monkeypatch, choi_model, music_files):
    """A bug (not an AuraliseError) propagates as itself, but still leaves no partial files."""

    monkeypatch.setattr(display, "save_figure", _fail_on_call(2, RuntimeError("bug"), display.save_figure))
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="bug"):
        main([str(choi_model), str(music_files["wav"]), "-l", 1, "-f", 0, "-f", 1, "--out", str(out_dir)])
    assert_nothing_written(out_dir)
