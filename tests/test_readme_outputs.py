"""The README's commands give byte-identical WAVs: their sha256 sums, pinned.

The sums below were taken *before* issue 11's re-house of the package into sub-packages (from the commands as a user
types them, on the shipped models and demo songs), and the re-house had to reproduce every one of them: they pin the
numbers of the whole pipeline (decoding and resampling, front-end, forward pass, backward rules, selection,
resynthesis, normalisation, WAV encoding). Each test runs the same commands through :func:`auralise.cli.main` in
a temporary folder and compares every WAV written with its sum. A deliberate change of the numbers (a new default,
a fixed bug) must update the sums here, in the same change, saying why; any other mismatch is a regression.

Re-pinned once since, by issue 15's fused backward step (``auralise.engine.fused``: the first pool's unpooling and the
first convolution's transpose in one pass, summing the same terms in another order): the layer-3 projections agree
with the unfused path to 4e-7 relative (``tests/test_fused.py``), and the 8 WAVs whose sums changed differ from the
old ones by at most one least significant bit, on at most 116 of 220 500 samples; the layer-1 and Pons WAVs are
byte-identical.

Re-pinned for issue 15's one-feature-at-a-time CPU projection (each feature's fused first-layer step split in two
parts, pooled rows taken in turn, summed in a fixed order; unpooling and the channel-wise ops below it written once,
channels innermost): the 7 layer-3 WAVs of ``MASK_LISTENING`` whose sums changed (and ``MASK_RUN``, the same as its
dance feature 38) differ from the old ones by one least significant bit on 1 to 82 of 220 500 samples; the float
waves of this export (``--normalize none``) agree to 4.3e-7 relative. The distinct sums and the Pons sums are
unchanged, and on the 30-s mix every float WAV of a whole-model export of the Choi demo model and of MTT_vgg is
sample-identical to before.

Re-pinned for issue 15's fused step into convolutions with many inputs (``auralise.engine.fused_wide``: the
unpooling, rectifier and transposed convolution of layers 2 and up in one pass over the non-zero values, instead of
mkldnn's dense transpose): the 7 layer-3 mask WAVs whose sums changed (``MASK_LISTENING``, ``MASK_RUN``) differ by one
least significant bit on 4 to 34 of 220 500 samples. Both paths are as far from a float64 transpose (rms 1.5e-7 of
the signal on real layer-2 inputs); the distinct sums are unchanged. In the same issue, a feature's seed (a channel
slice) then went through that pass too, instead of a grouped convolution over the unpooled zeros: 2 more layer-3
mask WAVs changed, by one least significant bit on 2 and 4 of 220 500 samples.

Re-pinned for issue 13's new default listening mode, ``distinct``: the README's commands now write distinct
auralisations (``RUN``, ``RUN2``, ``LISTENING``), and the same commands with ``--resynth mask`` must still write
exactly the old sums (``MASK_*``: Choi's method unchanged, only the single command's names gain the ``_mask`` tag).
Features silent under both modes (layer 3, feature 0 and 2) keep their sums.

**The sums depend on the CPU's widest vector instructions.** oneDNN, which runs torch's CPU convolutions (the forward
pass), sums each output in an order set by its kernel for the instruction set: on one machine, capping it with
``ONEDNN_MAX_CPU_ISA=SSE41`` instead of AVX2 moved the float WAVs of a layer-1/3 export by up to 1.8e-5 relative,
while ATen's own capability (``ATEN_CPU_CAPABILITY=default``) and numpy's SIMD (``NPY_DISABLE_CPU_FEATURES``) left
them sample-identical. The tables below hold on AVX-512 machines (among them the AMD Zen 5 of issue 15's eleventh
session); ``ON_AVX2`` lists the sums that differ on an AVX2-only CPU (an AMD EPYC Zen 2, taken in issue 15's twelfth
session, where the same code passes every other test): 20 of the 48 WAVs, 17 of them mask WAVs. A CPU of another
capability has no pinned sums; there the sum checks skip, saying so.

The commands (``M`` the repository), each also with ``--resynth mask``::

    auralise M/models/choi2016-synth.pt M/demo_audio/dance.ogg --layer 3 --feature 38 --out run
    auralise export M/models/choi2016-synth.pt M/demo_audio/dance.ogg M/demo_audio/ballad.ogg --out listening \\
        --layers 1,3 --features 0-3,38 --quiet
    auralise M/models/pons-synth.pt M/demo_audio/hiphop.ogg --layer 2 --feature 5 --select max --out run2

About 50 s on two CPU cores, the exports most of it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from auralise.cli import main

REPO = Path(__file__).resolve().parents[1]
CHOI = REPO / "models" / "choi2016-synth.pt"
PONS = REPO / "models" / "pons-synth.pt"
DANCE, BALLAD, HIPHOP = (REPO / "demo_audio" / f"{name}.ogg" for name in ("dance", "ballad", "hiphop"))
CPU = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", ...: the instruction set oneDNN's kernels use

MASK_RUN = {
    "run/layer3_feature38_mask.wav": "d6e410d571548fd51870e114fabe67faa3612d778f466ef070fd198fa0d3570a",
}
MASK_RUN2 = {  # --select max is named in the file (issue 16's naming template); the sum is unchanged
    "run2/layer2_feature5_max_mask.wav": "a82d84c15e76a779b272e5ab164402cab2d233f172030ef7664e02c926754a88",
}
MASK_LISTENING = {  # an export names its files without option tags
    "listening/ballad/layer1_feature0.wav": "b07f596d4c9704cbee442d4aab2a88c2a37d81276a31aa4e5309dde60faa9965",
    "listening/ballad/layer1_feature1.wav": "370e9715dd624131d79a2b9ac4b94b2e74e2dd53c4df523a48e33247f300e92f",
    "listening/ballad/layer1_feature2.wav": "c0f557df6eed3db60936acce8418752ec254bed47390d08bfd188987354479b0",
    "listening/ballad/layer1_feature3.wav": "ac2493800b517b31637fecea100e641af19e5edfacf47c0342c36c2b1bf3de28",
    "listening/ballad/layer1_feature38.wav": "744e049dfdb099a3b82f0d79a5403d7550b6587a39237708c94f429aa3f9dd6b",
    "listening/ballad/layer3_feature0.wav": "c9c8736644135d3e74e865d5f600de198f8f35f13eb39902d8d949ea370d853d",
    "listening/ballad/layer3_feature1.wav": "55bbcc5d66f5d86526260ca9a18a0a125c73cd26432ffae48cf45f51068a77b1",
    "listening/ballad/layer3_feature2.wav": "c9c8736644135d3e74e865d5f600de198f8f35f13eb39902d8d949ea370d853d",
    "listening/ballad/layer3_feature3.wav": "20a669727a59bb889bfe9e98e1d07e447f4fc5e08e15c43f55df0318a1664aea",
    "listening/ballad/layer3_feature38.wav": "69522466de2e149a76d15ad0e0eeb7990d8bf75b924102e1c4fbc7168b69da64",
    "listening/ballad/original.wav": "bdd5fba49ae161c0e3b9f0c3df4164a2d7cd8d40a912f08d870c9eb234c284c3",
    "listening/dance/layer1_feature0.wav": "581b5508ce17773d80c4d8d58f449dc9a5dadb8b20e1fa407938d866a7611cab",
    "listening/dance/layer1_feature1.wav": "701ac12c75d095ae55c6ac1d14815ee69214efe01f3993ac1602aa58c4b9f047",
    "listening/dance/layer1_feature2.wav": "3cfd3e54dacc42e5a0e3021ea7ac9044f597fd6648d92b2ef330e9964665e65c",
    "listening/dance/layer1_feature3.wav": "03be36b921cd54a31ebde7cc24b93ec05d9b70a2434e9b6da031ad2384569125",
    "listening/dance/layer1_feature38.wav": "2eb6d2120786aab0cae6edeabd472007fe438a6e502a1b9ea9f2770960981035",
    "listening/dance/layer3_feature0.wav": "c9c8736644135d3e74e865d5f600de198f8f35f13eb39902d8d949ea370d853d",
    "listening/dance/layer3_feature1.wav": "039d1dd6b5066cdb1fab3e2f3cd07f05faf97c7e11bc65045d291f2c270b227c",
    "listening/dance/layer3_feature2.wav": "5bbe893e53ad335599685f5178b773e34fdbb8a882ff99e0632529b3bbb45adc",
    "listening/dance/layer3_feature3.wav": "e7b4fa309f9546431841393c22d186ac0fd1b9a54d89c0c7884c91d87181cd1a",
    "listening/dance/layer3_feature38.wav": "d6e410d571548fd51870e114fabe67faa3612d778f466ef070fd198fa0d3570a",
    "listening/dance/original.wav": "58b424f168c1536d4a4d731c83b07ec195306611dd080b1eecc5929167012c27",
}

RUN = {
    "run/layer3_feature38.wav": "9bfbe5572a75bac6ea6092b34987cc0c7942c878c6100b463d972190c08449f4",
}
RUN2 = {
    "run2/layer2_feature5_max.wav": "1a05749b61a0c2d6a6ea66e5d68515b679622e73047e8682980feb0eed3d17bd",
}
LISTENING = {
    "listening/ballad/layer1_feature0.wav": "a062a66947e4601825e276f6f6f35043950daf39ff0a1a981604779933eae2db",
    "listening/ballad/layer1_feature1.wav": "bc565ac06664ce33be32002d69bed1464b472886ae82e722e754b6d4c92ecd9c",
    "listening/ballad/layer1_feature2.wav": "176a8c9262afbb688b7219ecbf5fa5dc2712dfaee9dbf41e68b4c186d27032a6",
    "listening/ballad/layer1_feature3.wav": "0266a08c28ca24a03e2767311542d82210c13528b0c1f3424990db6711155937",
    "listening/ballad/layer1_feature38.wav": "fecc684945fcf2810c1e75452aa0a24cff4330fe75bc9ac8c5d7f525c2f4abfa",
    "listening/ballad/layer3_feature0.wav": "c9c8736644135d3e74e865d5f600de198f8f35f13eb39902d8d949ea370d853d",
    "listening/ballad/layer3_feature1.wav": "1850eeee7461587608e9f5d88b595cf4022b1bc34a89f56fbc99f6b9ecb62d3d",
    "listening/ballad/layer3_feature2.wav": "c9c8736644135d3e74e865d5f600de198f8f35f13eb39902d8d949ea370d853d",
    "listening/ballad/layer3_feature3.wav": "370eae47c538f3dd3f338d3a9a913a9ed7bbe92478bf956f82a9ecaf0ef7a9fa",
    "listening/ballad/layer3_feature38.wav": "ad84e2eff6e6588fe2995bc69531d9714f0e1c125e91ec7ccb739a9fc7e12c11",
    "listening/ballad/original.wav": "bdd5fba49ae161c0e3b9f0c3df4164a2d7cd8d40a912f08d870c9eb234c284c3",
    "listening/dance/layer1_feature0.wav": "6fcbdb5843140e1dfe9b1ba7103c7052b6426eab5bcc03167e9f53c682c647f6",
    "listening/dance/layer1_feature1.wav": "c323e7040a70799338de203358e02c1921357b5e4be1bf733d96471724ea6f75",
    "listening/dance/layer1_feature2.wav": "edbfa681a1d4fc5890cb986ec8a64369ec306d77c94bc52f66f45a07396db056",
    "listening/dance/layer1_feature3.wav": "2c25d4a555d1f6f6ae32dbd568ef867ed5d901976dc48e508c031f23582b1063",
    "listening/dance/layer1_feature38.wav": "e22c694d5d6f13ba104af569841ba9d0ed23e27d0d6f804650d5c436044ba3ee",
    "listening/dance/layer3_feature0.wav": "c9c8736644135d3e74e865d5f600de198f8f35f13eb39902d8d949ea370d853d",
    "listening/dance/layer3_feature1.wav": "830a5ec0ebea91217926b8be38f2448995a0d0a9705f9604a2053fd726a5c6e0",
    "listening/dance/layer3_feature2.wav": "2563275a6ccaee7649140406c6330fce31d11d7395218ef575358309b050cd7d",
    "listening/dance/layer3_feature3.wav": "d5b7e7aa7cc5cabdf5b17d346cc8708d812e252dce5acfd85ded2ad92a8dcbea",
    "listening/dance/layer3_feature38.wav": "9bfbe5572a75bac6ea6092b34987cc0c7942c878c6100b463d972190c08449f4",
    "listening/dance/original.wav": "58b424f168c1536d4a4d731c83b07ec195306611dd080b1eecc5929167012c27",
}

ON_AVX2 = {  # table -> the sums that differ on CPUs whose widest vector instructions are AVX2 (see the docstring)
    "MASK_RUN": {
        "run/layer3_feature38_mask.wav": "0a0be56c1696302d31dc0f4cb4b404d25691c60b989017aeb7fdd707fd0fe749",
    },
    "MASK_LISTENING": {
        "listening/ballad/layer1_feature0.wav": "45892da4af3974ddda48887789a14c0935b1e135c21991f32ecab6a6f007080d",
        "listening/ballad/layer1_feature1.wav": "13d8a12ceb30bf1ed20b78757a404f08fcf6f28f084c33ea96ae91f0fec17bea",
        "listening/ballad/layer1_feature2.wav": "4226eefa123b9359d85da90939fdc692c22c3d7bbac1095fdbd222c648bac826",
        "listening/ballad/layer1_feature3.wav": "3517a1264c29faf01dd8bda38d509253d2961ddcad49057c0c4ccbfb2fc3bc12",
        "listening/ballad/layer1_feature38.wav": "5f824d5ee9bb63942c0695919a8726aab41aa4c2dfc9cbaa0b3effe7057b4787",
        "listening/ballad/layer3_feature1.wav": "22ab7b2a7e343f88bf504b0b262faeb93b1e44e29215ca72b330b20309f90530",
        "listening/ballad/layer3_feature3.wav": "299ee66a618ce43a898dd5cead4b4aa113df72d1eab01f2fbf85c89c8dfc69ce",
        "listening/ballad/layer3_feature38.wav": "767338517ca8050a20ff1084cc62873012a96d9cdef3e4e2488ea4b84252137b",
        "listening/dance/layer1_feature0.wav": "02ef0245a80a41809ed6359a2cc839dd7f0b2ab8dcc8f54b9dc6ec28e5780410",
        "listening/dance/layer1_feature1.wav": "48dc124ca6f3d56619480ee052392ff0c96ca456160d2b4f1f2aac570510b913",
        "listening/dance/layer1_feature2.wav": "de1e211aafbb515b37d1f4bf9fff986af193ab36148a9824e53554c072dcb860",
        "listening/dance/layer1_feature3.wav": "69350de1f4e7f988c91f1262efa7a9f255d4f9589d74097bb63c64b3cb083b3f",
        "listening/dance/layer1_feature38.wav": "9d39e448a1c68a033f3bbd49acae0ec011877e566c4b24e820aee05b23e6b040",
        "listening/dance/layer3_feature1.wav": "f8e96619aed50693ef17aabaae7c3e6532488895e5cd19ed44b3a8a3358f91cd",
        "listening/dance/layer3_feature3.wav": "1ce618a40cdbad782aab80b7b372c239486644519266057a71c4338de29945be",
        "listening/dance/layer3_feature38.wav": "0a0be56c1696302d31dc0f4cb4b404d25691c60b989017aeb7fdd707fd0fe749",
    },
    "LISTENING": {
        "listening/ballad/layer1_feature3.wav": "5739e36f2caf98f2120dc2ec234653f021b488f0f3c37128c57cd64a338081b0",
        "listening/dance/layer1_feature3.wav": "e99547545de977938c9d373febac2a4aff67731cea77f89f271bc08d71b7fbb1",
        "listening/dance/layer3_feature1.wav": "442f739273fc2ee04d514da1e64c0d8c278dad1a35fcd752235c3375c6483d23",
    },
}


def pinned(name: str) -> dict[str, str]:
    """The sums of table ``name`` for this machine's CPU (skips where none are pinned for its instruction set)."""
    sums = globals()[name]
    if CPU.startswith("AVX512"):
        return sums
    if CPU == "AVX2":
        return sums | ON_AVX2.get(name, {})
    pytest.skip(f"WAV sums are pinned for AVX-512 and AVX2 CPUs; this one's vector capability is {CPU}")


def run(*args: object) -> None:
    """``auralise ARGS`` in this process; fails the test unless it exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    assert exit_.value.code in (0, None), f"auralise {' '.join(map(str, args))} exited with {exit_.value.code}"


def wav_sums(folder: Path, under: str) -> dict[str, str]:
    """sha256 of every WAV under ``folder/under``, keyed by its path relative to ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((folder / under).rglob("*.wav"))
    }


def test_single_feature_of_the_quick_start(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run(CHOI, DANCE, "--layer", 3, "--feature", 38, "--out", "run")
    run(CHOI, DANCE, "--layer", 3, "--feature", 38, "--out", "run", "--resynth", "mask")
    assert wav_sums(tmp_path, "run") == pinned("RUN") | pinned("MASK_RUN")


def test_strongest_unit_of_the_pons_model(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run(PONS, HIPHOP, "--layer", 2, "--feature", 5, "--select", "max", "--out", "run2")
    run(PONS, HIPHOP, "--layer", 2, "--feature", 5, "--select", "max", "--out", "run2", "--resynth", "mask")
    assert wav_sums(tmp_path, "run2") == pinned("RUN2") | pinned("MASK_RUN2")


@pytest.mark.parametrize("mode", ["distinct", "mask"])
def test_listening_set_export(tmp_path, monkeypatch, mode) -> None:
    monkeypatch.chdir(tmp_path)
    extra = ["--resynth", "mask"] if mode == "mask" else []  # the README's command, and it with Choi's mask
    run("export", CHOI, DANCE, BALLAD, "--out", "listening", "--layers", "1,3", "--features", "0-3,38", "--quiet",
        *extra)  # fmt: skip
    expected, single = (pinned("LISTENING"), pinned("RUN")["run/layer3_feature38.wav"]) if mode == "distinct" else (
        pinned("MASK_LISTENING"), pinned("MASK_RUN")["run/layer3_feature38_mask.wav"])  # fmt: skip
    assert wav_sums(tmp_path, "listening") == expected
    # the single-song command and the export render the same feature of the same song identically
    assert expected["listening/dance/layer3_feature38.wav"] == single
