"""Output naming: the one template per-feature output files are named by, and the folder template of a run.

File names
----------
``layer{L}_feature{F}[_{TAG}...].{ext}``: layer ``L`` (1-based, execution order), feature ``F`` (0-based), then one
tag for each rendering option whose value is not its default, in the fixed order method, select, tap, resynth,
phase, normalize, output_sr, above_band. A tag is the option's value (``guided``, ``gradient``, ``max``,
``activation``, ``conv``, ``magnitude``, ``contrast``, ``partition``, ``griffinlim``), except ``topk:K`` -> ``topK``,
``--normalize none`` -> ``nonorm``, ``--output-sr original`` -> ``origsr``, ``--output-sr N`` -> ``srN`` and
``--above-band silent`` -> ``nohigh``. The defaults (deconvnet, map, block, mask, original, peak, model, extend)
add nothing, so a default run keeps the plain name::

    layer3_feature38.wav                    --method deconvnet --select map ... (the defaults)
    layer3_feature38_guided_max.wav         --method guided --select max
    layer2_feature5_top3_conv_nonorm.json   --select topk:3 --tap conv --normalize none

No tag is the value of two options, so a name reads back into its options (:func:`parse_output_name`); runs with
different options write different files into the same folder instead of colliding. A listening set (``auralise
export``) holds one set of options, recorded in its manifest, so its files keep the plain name whatever the
options.

Folders
-------
``auralise MODEL AUDIO...`` writes each song's files into ``--out``, a folder that may name the model and the
song: ``{model}`` is the model file's stem, ``{song}`` the audio file's stem (made safe; ``-2``, ``-3`` ... for
repeated stems in one run). The default, :data:`DEFAULT_OUT` = ``auralised/{model}/{song}``, keeps the outputs of
different models and songs apart, as demucs does (``separated/<model>/<track>/``); ``--out DIR`` without a
placeholder is that folder itself, for one song.

>>> output_name(3, 38, "wav")
'layer3_feature38.wav'
>>> output_name(3, 38, "wav", {"method": "guided", "select": "max"})
'layer3_feature38_guided_max.wav'
>>> parse_output_name("layer3_feature38_guided_max.wav").options["select"]
'max'
>>> output_folder(DEFAULT_OUT, model="choi2016-synth", song="dance").as_posix()
'auralised/choi2016-synth/dance'
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from auralise.choices import ABOVE_BANDS, METHODS, NORMALISATIONS, OUTPUT_RATES, PHASES, RESYNTH_MODES, TAPS
from auralise.errors import BadParameterError

__all__ = [
    "DEFAULT_OUT",
    "DEFAULT_OPTIONS",
    "OutputName",
    "option_tags",
    "output_name",
    "parse_output_name",
    "output_folder",
]

DEFAULT_OUT = "auralised/{model}/{song}"  # the folder of one song's outputs: see the module docstring
FOLDER_FIELDS = ("model", "song")

# The rendering options in name order, each with its default (the first value of its choices).
DEFAULT_OPTIONS = {
    "method": METHODS[0],
    "select": "map",
    "tap": TAPS[0],
    "resynth": RESYNTH_MODES[0],
    "phase": PHASES[0],
    "normalize": NORMALISATIONS[0],
    "output_sr": OUTPUT_RATES[0],
    "above_band": ABOVE_BANDS[0],
}
_VALUES = {"method": METHODS, "tap": TAPS, "resynth": RESYNTH_MODES, "phase": PHASES, "normalize": NORMALISATIONS,
           "output_sr": OUTPUT_RATES, "above_band": ABOVE_BANDS}  # fmt: skip
# bare "none", "original" or "silent" would not say what they are about
_SPECIAL = {("normalize", "none"): "nonorm", ("output_sr", "original"): "origsr", ("above_band", "silent"): "nohigh"}
_TOPK = re.compile(r"top(\d+)")
_RATE = re.compile(r"sr(\d+)")
_NAME = re.compile(r"layer(\d+)_feature(\d+)((?:_[a-z0-9]+)*)\.([A-Za-z0-9]+)")


def _tag(option: str, value: str) -> str:
    if option == "select":
        return value if value == "max" else "top" + value.partition(":")[2]
    if option == "output_sr" and value.isdigit():
        return f"sr{value}"
    return _SPECIAL.get((option, value), value)


def _tags() -> dict[str, tuple[str, str]]:
    """Every fixed tag -> (option, value); ``select``'s ``topK`` tags are matched by pattern."""
    table = {"max": ("select", "max")}
    for option, values in _VALUES.items():
        for value in values:
            if value != DEFAULT_OPTIONS[option]:
                table[_tag(option, value)] = (option, value)
    return table


def option_tags(options: Mapping[str, str] | None) -> list[str]:
    """The tags of the options that differ from :data:`DEFAULT_OPTIONS`, in name order (none for the defaults).

    Parameters
    ----------
    options : mapping of str to str, optional
        Rendering options by name (``RenderOptions.to_dict()``); missing ones are the defaults.

    Returns
    -------
    list of str
        e.g. ``["guided", "max"]``.
    """
    options = options or {}
    return [
        _tag(name, str(options[name]))
        for name, default in DEFAULT_OPTIONS.items()
        if options.get(name, default) != default
    ]


def output_name(layer: int, feature: int, ext: str, options: Mapping[str, str] | None = None) -> str:
    """The one naming template for per-feature outputs: ``layer{L}_feature{F}[_{TAG}...].{ext}``.

    Parameters
    ----------
    layer : int
        Conv layer number (1-based, execution order).
    feature : int
        Feature (output channel) of that layer, 0-based.
    ext : str
        File extension without the dot (``"wav"``, ``"png"``, ``"json"``).
    options : mapping of str to str, optional
        Rendering options; each one that is not its default adds its tag (see the module docstring).

    Returns
    -------
    str
        The file name, e.g. ``"layer3_feature38.wav"`` or ``"layer3_feature38_guided.wav"``.
    """
    return "_".join([f"layer{layer}_feature{feature}", *option_tags(options)]) + f".{ext}"


@dataclass(frozen=True)
class OutputName:
    """A file name read back: layer, feature, all six rendering options (defaults filled in) and extension."""

    layer: int
    feature: int
    options: dict[str, str]
    ext: str


def parse_output_name(name: str) -> OutputName:
    """Read a name made by :func:`output_name` back into its layer, feature, options and extension.

    Raises
    ------
    BadParameterError
        The name does not follow the template (an unknown tag, tags out of order or repeated).
    """
    m = _NAME.fullmatch(name)
    if not m:
        raise BadParameterError(f"{name!r} is not an output name: expected layer{{L}}_feature{{F}}[_TAG...].EXT")
    table, options = _tags(), dict(DEFAULT_OPTIONS)
    for tag in m.group(3).split("_")[1:]:
        top, rate = _TOPK.fullmatch(tag), _RATE.fullmatch(tag)
        if top and int(top.group(1)) > 0:
            option, value = "select", f"topk:{int(top.group(1))}"
        elif rate and int(rate.group(1)) > 0:
            option, value = "output_sr", str(int(rate.group(1)))
        else:
            option, value = table.get(tag, ("", ""))
        if not option or options[option] != DEFAULT_OPTIONS[option]:
            raise BadParameterError(f"{name!r} is not an output name: unknown or repeated tag {tag!r}")
        options[option] = value
    layer, feature, ext = int(m.group(1)), int(m.group(2)), m.group(4)
    if output_name(layer, feature, ext, options) != name:  # tags out of order, or a topK with leading zeros
        raise BadParameterError(f"{name!r} is not an output name: its tags are not in the template's order and form")
    return OutputName(layer, feature, options, ext)


def output_folder(template: str | Path, *, model: str, song: str) -> Path:
    """The folder of one song's outputs: ``template`` with ``{model}`` and ``{song}`` filled in.

    Parameters
    ----------
    template : str or Path
        A folder, optionally naming ``{model}`` and ``{song}`` (``{{``/``}}`` for literal braces); see
        :data:`DEFAULT_OUT`.
    model, song : str
        The model's and the song's names (file stems made safe).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    BadParameterError
        A placeholder other than ``{model}`` and ``{song}``, or an unbalanced brace.
    """
    text = str(template)
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise BadParameterError(f"bad --out {text!r}: {exc}; write literal braces as {{{{ and }}}}") from exc
    for field, spec, conv in fields:
        if field not in FOLDER_FIELDS or spec or conv:
            shown = field + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
            raise BadParameterError(
                f"bad --out {text!r}: unknown placeholder {{{shown}}}; use {{model}} and {{song}}, such as "
                f"--out '{DEFAULT_OUT}'"
            )
    return Path(text.format(model=model, song=song))
