"""One exception root for everything auralise reports to a user.

Every message is one line that names the problem and says what to do about it. The command line prints
``error: <message>`` and exits with :attr:`AuraliseError.exit_code` (2 for usage errors, 1 otherwise).
"""

from __future__ import annotations


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
