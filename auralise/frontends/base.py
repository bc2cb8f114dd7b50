"""The front-end base: what every kind shares, and the dispatch from ``kind`` to its class.

A :class:`Frontend` travels with a model. It computes the complex STFT ``X`` that resynthesis keeps for its phase
(every kind has one), turns the audio into the model input ``S`` (:meth:`Frontend.input_spectrogram`, then
compression and layout) and carries a deconvolved ``D`` (same shape as ``S``) back onto ``X``'s time-frequency grid
(:meth:`Frontend.to_grid`). The kinds are subclasses, one per module (:mod:`~auralise.frontends.stft`,
:mod:`~auralise.frontends.mel`, :mod:`~auralise.frontends.cqt`, :mod:`~auralise.frontends.waveform`);
``Frontend(kind=..., ...)`` and :meth:`Frontend.from_dict` build the one that ``kind`` names (default "stft").
librosa and torch are imported lazily.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from auralise.choices import COMPRESSIONS, FRONTEND_KINDS, LAYOUTS, PAD_MODES
from auralise.errors import BadModelError
from auralise.frontends import checks, compression
from auralise.frontends.checks import MAX_PATCH_VALUES, bad, check_range
from auralise.frontends.grid import StftGrid
from auralise.frontends.mapping import ModelInput

__all__ = ["Frontend", "COMPRESSIONS", "LAYOUTS", "PAD_MODES", "REQUIRED", "frontend_class", "kinds"]

REQUIRED = ("sr", "n_fft", "hop_length")
_KINDS: dict[str, type[Frontend]] = {}  # kind -> class, filled as the kind modules define their classes
_LOG_SCALE_ONLY = "front-end key 'log_scale' applies only to compression 'log10p'; remove it or set that compression"


def kinds() -> tuple[str, ...]:
    """The front-end kinds there are classes for, in the order of :data:`auralise.choices.FRONTEND_KINDS`."""
    rank = {k: i for i, k in enumerate(FRONTEND_KINDS)}
    return tuple(sorted(_KINDS, key=lambda k: rank.get(k, len(rank))))


def frontend_class(kind: Any) -> type[Frontend]:
    """The class of front-end ``kind``; :class:`BadModelError` for an unknown one."""
    if not isinstance(kind, str) or kind not in _KINDS:
        raise bad("kind", f"one of {', '.join(kinds())}", kind)
    return _KINDS[kind]


def _keys(kind: str) -> list[str]:
    return [f.name for f in fields(_KINDS[kind])]


def _all_keys() -> list[str]:
    """Every key some kind accepts, in field order (the shared keys first)."""
    return list(dict.fromkeys(key for kind in kinds() for key in _keys(kind)))


def _check_known(keys: Any) -> None:
    """Refuse keys that no kind has, listing the keys there are."""
    allowed = _all_keys()
    unknown = sorted(str(k) for k in keys if k not in allowed)
    if unknown:
        raise BadModelError(
            f"unknown front-end key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(allowed)}"
        )


def _check_own(cls: type[Frontend], keys: Any) -> None:
    """Refuse keys that belong to other kinds than ``cls``'s, naming the kinds they belong to."""
    for key in sorted(set(keys) - {f.name for f in fields(cls)}):
        users = " or ".join(repr(kind) for kind in kinds() if key in _keys(kind))
        raise BadModelError(
            f"front-end key {key!r} applies only to kind {users}, not {cls.kind!r}; remove it or change kind"
        )


@dataclass(frozen=True, kw_only=True)
class Frontend(StftGrid, ModelInput):
    """The model's view of audio: STFT parameters, compression and input layout (the fields every kind shares).

    ``Frontend(...)`` returns the class of its ``kind`` (:class:`~auralise.frontends.StftFrontend` by default);
    each kind adds its own fields, checks, mapping to the model input and back, and description.

    Parameters
    ----------
    kind : {"stft", "mel", "cqt", "waveform"}
        Front-end type: the (compressed) STFT magnitude, a mel spectrogram of it, a constant-Q transform of the
        audio, or the samples themselves.
    sr : int
        Sample rate in Hz the model expects.
    n_fft : int
        FFT size; ``F = n_fft // 2 + 1`` frequency bins.
    hop_length : int
        Hop between frames in samples.
    win_length : int or None
        Window length (``<= n_fft``); None means ``n_fft``.
    window : str
        Window name understood by ``scipy.signal.get_window`` (default "hann").
    center : bool
        Centre frames on ``t * hop_length`` by padding ``n_fft // 2`` on both sides.
    pad_mode : str
        Padding used when ``center`` (one of :data:`PAD_MODES`).
    compression : {"linear", "power", "db", "log1p", "log10p"}
        Applied to ``m = scale * v`` (``v`` = ``|X|``, the mel energies or ``|CQT|``): ``m``, ``m**2``,
        ``20 log10(max(m, amin))``, ``log(1 + m)``, ``log10(1 + log_scale * m)`` (:mod:`.compression`).
    amin : float
        Floor for "db" compression.
    scale : float
        Multiplier applied to the magnitude before compression.
    layout : {"BCFT", "BCTF", "BFT", "BTF"}
        Model input layout: batch x 1 x freq x time, batch x 1 x time x freq, batch x freq x time
        (1-D convolutions, frequency as channels), batch x time x freq (:mod:`.layout`).
    patch_seconds : float or None
        Fixed input length the model was trained on, if any (informational; conv layers accept any length).
    log_scale : float
        ``C`` of the "log10p" compression ``log10(1 + C m)`` (default 10000, musicnn's). Only with "log10p".

    Every number is bounded (:data:`.checks.BOUNDS`): sr 1000..384000 Hz, n_fft 16..65536, hop_length
    n_fft/64..n_fft (rounded up), win_length 1..n_fft, amin 1e-20..1, scale 1e-12..1e12, log_scale 1e-6..1e12,
    patch_seconds 0.01..600 and at most 2**27 input values per patch; booleans, NaN and infinities are refused.

    Examples
    --------
    >>> fe = Frontend(sr=11025, n_fft=512, hop_length=256)
    >>> fe.describe()
    'STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT'
    >>> Frontend.from_dict(fe.to_dict()) == fe
    True
    >>> mel = Frontend(kind="mel", sr=16000, n_fft=512, hop_length=256, compression="log10p")
    >>> mel.input_shape(10)
    (1, 96, 10)
    """

    kind: str
    sr: int
    n_fft: int
    hop_length: int
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    compression: str = "linear"
    amin: float = 1e-5
    scale: float = 1.0
    layout: str = "BCFT"
    patch_seconds: float | None = None
    log_scale: float = 10000.0

    #: the model input is computed frame by frame from the STFT, so long songs can be streamed
    streamable: ClassVar[bool] = False
    #: a feature's projection is itself audio (no resynthesis)
    projection_is_audio: ClassVar[bool] = False

    # ------------------------------------------------------------------ construction / validation
    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:  # a kind's class (its field default names it)
            _KINDS[cls.__dict__["kind"]] = cls

    def __new__(cls, **kw: Any) -> Frontend:
        if cls is Frontend:
            cls = frontend_class(kw.get("kind", "stft"))
        elif "kind" in kw and kw["kind"] != cls.kind:
            raise bad("kind", f"{cls.kind!r} for a {cls.__name__} (or build it with Frontend(kind=...))", kw["kind"])
        _check_known(kw)
        _check_own(cls, kw)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        for key in REQUIRED:
            checks.positive_int(self, key)
        check_range("sr", self.sr)
        check_range("n_fft", self.n_fft)
        check_range("hop_length", self.hop_length, -(-self.n_fft // 64), self.n_fft, " (n_fft/64..n_fft)")
        if self.win_length is not None:
            if not checks.is_int(self.win_length) or not 0 < self.win_length <= self.n_fft:
                raise bad("win_length", f"null or an integer in 1..n_fft ({self.n_fft})", self.win_length)
            checks.set_field(self, "win_length", int(self.win_length))
        self._check_window()
        checks.boolean(self, "center")
        checks.one_of(self, "pad_mode", PAD_MODES)
        checks.one_of(self, "compression", COMPRESSIONS)
        for key in ("amin", "scale"):
            checks.positive_number(self, key)
            check_range(key, getattr(self, key))
        checks.one_of(self, "layout", LAYOUTS)
        if self.patch_seconds is not None:
            checks.positive_number(self, "patch_seconds", "null or a positive number of seconds")
            check_range("patch_seconds", self.patch_seconds)
        checks.positive_number(self, "log_scale", "a positive number (the C of log10(1 + C x))")
        check_range("log_scale", self.log_scale)
        if self.compression != "log10p" and self.log_scale != 10000.0:
            raise BadModelError(_LOG_SCALE_ONLY)
        self._check()
        if self.patch_seconds is not None:
            values = self.frames_for(self.patch_seconds) * self.n_input_freq
            if values > MAX_PATCH_VALUES:
                raise BadModelError(
                    f"front-end key 'patch_seconds' is {self.patch_seconds:g}: one patch would be {values} input "
                    f"values, more than the supported {MAX_PATCH_VALUES}; fix the model's front-end"
                )

    def _check_window(self) -> None:
        want = "a window name such as 'hann', 'hamming' or 'blackman'"
        if not isinstance(self.window, str) or not self.window:
            raise bad("window", want, self.window)
        try:
            from auralise.frontends.windows import check_window

            check_window(self.window, self.win_length or self.n_fft)
        except (ValueError, TypeError) as exc:
            raise bad("window", want, self.window) from exc

    def _check(self) -> None:
        """The kind's own checks (its fields, and how they combine with the shared ones)."""

    @classmethod
    def from_dict(cls, d: dict) -> Frontend:
        """Build a front-end from a plain dict (e.g. a model file's ``"frontend"`` entry).

        Parameters
        ----------
        d : dict
            Must contain ``sr``, ``n_fft`` and ``hop_length``; ``kind`` (default "stft") chooses the class, whose
            keys the others are (see the class); ``log_scale`` only with "log10p" compression.

        Returns
        -------
        Frontend
            An instance of the class of ``d["kind"]``.

        Raises
        ------
        BadModelError
            Not a dict, an unknown or missing key, a key of another kind, or a value of the wrong type or range.
        """
        if not isinstance(d, dict):
            raise BadModelError(
                f"the model's front-end must be a dict with keys {', '.join(REQUIRED)}, got {type(d).__name__}"
            )
        _check_known(d)
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise BadModelError(
                f"the model's front-end lacks {', '.join(map(repr, missing))}; give at least {', '.join(REQUIRED)}"
            )
        if "log_scale" in d and d.get("compression") != "log10p":
            raise BadModelError(_LOG_SCALE_ONLY)
        return cls(**d)

    def to_dict(self) -> dict:
        """The front-end as a JSON-serialisable dict; ``Frontend.from_dict(fe.to_dict()) == fe``.

        Holds the shared keys and the kind's own, and ``log_scale`` only with "log10p" compression, so an STFT
        front-end's dict is what it always was.
        """
        d = asdict(self)
        if self.compression != "log10p":
            del d["log_scale"]
        return d

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        """One line, e.g. ``"STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT"``."""
        parts = [f"{self.kind.upper()} {self.sr} Hz", f"n_fft {self.n_fft}", f"hop {self.hop_length}"]
        parts += self._describe_input()
        if self.win_length is not None and self.win_length != self.n_fft:
            parts.append(f"win {self.win_length}")
        if self.window != "hann":
            parts.append(f"{self.window} window")
        if not self.center:
            parts.append("not centred")
        elif self.pad_mode != "constant":
            parts.append(f"{self.pad_mode} padding")
        comp = compression.NAMES[self.compression]
        if self.compression == "db":
            comp += f" (amin {self.amin:g})"
        elif self.compression == "log10p":
            comp = f"log10(1+{self.log_scale:g}x)"
        if self.scale != 1.0:
            comp = f"{comp} of {self.scale:g}x|X|"
        parts += [comp, self.layout]
        if self.patch_seconds is not None:
            parts.append(f"{self.patch_seconds:g} s patches")
        return ", ".join(parts)

    def _describe_input(self) -> list[str]:
        """The kind's own parts of :meth:`describe` (after the STFT's)."""
        return []
