"""Text from a model file, made safe to print on a terminal.

Labels, architecture names, notes and provenance come from files that may be hostile: ``"\\x1b]0;owned\\x07"``
as a label would retitle the terminal (and other escape sequences do worse). :func:`printable` removes every
control character — C0 (U+0000–U+001F), DEL (U+007F), C1 (U+0080–U+009F) and the bidirectional embedding,
override and isolate controls (U+202A–U+202E, U+2066–U+2069) — turning tabs and line breaks into spaces, and keeps
every other character, ordinary Unicode included.

At the bottom of the package with :mod:`auralise.errors`: it imports nothing from auralise.

May import: nothing

>>> printable("techno\\x1b]0;owned\\x07")
'techno]0;owned'
>>> printable("Café\\tbeat")
'Café beat'
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``str(text)`` without control characters (line breaks and tabs become spaces); see the module docstring."""
    return _CONTROL.sub("", _WHITESPACE.sub(" ", str(text)))
