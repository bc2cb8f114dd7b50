"""One exception root for everything auralise reports to a user.

Every message is one line that names the problem and says what to do about it. The command line prints
``error: <message>`` and exits with :attr:`AuraliseError.exit_code` (2 for usage errors, 1 otherwise).

The bottom of the package: every other module may import it, and it imports nothing from auralise.

May import: nothing
"""

from __future__ import annotations

from collections.abc import Sequence


class AuraliseError(Exception):
    """Base class of all errors auralise raises on purpose."""

    exit_code = 1


class BadParameterError(AuraliseError):
    """A parameter value is out of range or malformed (layer, feature, method, option)."""

    exit_code = 2


class BadAudioError(AuraliseError):
    """The audio file is missing, unreadable, empty, silent, non-finite or too short."""

    exit_code = 2


class BadModelError(AuraliseError):
    """The model file is missing, corrupt, of an unknown format, untrusted or lacks a front-end."""

    exit_code = 2


class OutputError(AuraliseError):
    """An output file exists (without ``--force``) or the output folder cannot be written."""

    exit_code = 2


class AuraliseWarning(UserWarning):
    """A one-line warning for the user (the command line prints it as ``warning: <message>``)."""


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise BadParameterError listing them."""
    if value not in choices:
        raise BadParameterError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value
