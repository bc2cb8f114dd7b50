"""Output files: atomic writes, output-file and output-folder checks, one-line write failures, folder locks.

Writes go to a hidden ``.part`` file beside the target that is renamed onto it only when complete
(:func:`atomic_path`), so an interrupted run never leaves a half-written output, and symbolic links or special
files (devices, FIFOs) are refused, never replaced. An ``OSError`` while writing (a full disk, a read-only file
system, permissions) becomes one :class:`~auralise.errors.OutputError` line naming the target
(:func:`write_failure`). :func:`folder_lock` keeps two exports out of one folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from auralise.errors import OutputError

__all__ = [
    "atomic_path",
    "write_failure",
    "check_output_file",
    "check_output_dir",
    "folder_lock",
    "check_folder_lock",
    "LOCK_NAME",
]


def _one_line(text: object) -> str:
    """Collapse ``text`` to a single line (libsndfile messages can contain newlines)."""
    return " ".join(str(text).split())


def _sndfile_reason(exc: BaseException) -> str:
    """A short, one-line reason from a soundfile/libsndfile exception."""
    reason = getattr(exc, "error_string", None) or str(exc)
    reason = _one_line(reason)
    # soundfile prefixes "Error opening '<path>': "; the path is already in our message.
    reason = re.sub(r"^Error opening .*?:\s*", "", reason)
    reason = re.sub(r"^Error\s*:\s*", "", reason)
    return reason.rstrip(".") or "libsndfile could not decode it"


# What a failed write means, by errno: (reason, what to do). Messages name the target, never the temporary file.
_WRITE_REASONS = {
    errno.ENOSPC: ("no space left on device", "free some space or choose another output path"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another output path"),
    errno.EFBIG: ("the file is too large for this file system", "choose another output path"),
    errno.EROFS: ("the file system is read-only", "choose another output path"),
    errno.EACCES: ("permission denied", "check the folder's permissions or choose another output path"),
    errno.EPERM: ("operation not permitted", "check the folder's permissions or choose another output path"),
    errno.EIO: ("input/output error on the device", "check the disk or choose another output path"),
}
# Temporary paths of the atomic writes in progress -> the file each will be renamed onto (for messages, and so
# that a writer given such a path, e.g. write_audio(tmp), writes it directly instead of nesting another rename).
_ACTIVE: dict[str, Path] = {}
_ACTIVE_LOCK = threading.Lock()


def _target_of(path: str | os.PathLike) -> Path:
    """The file a temporary path of :func:`atomic_path` stands for (``path`` itself otherwise)."""
    with _ACTIVE_LOCK:
        return _ACTIVE.get(os.fspath(path), Path(path))


def write_failure(path: str | os.PathLike, exc: OSError) -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` raised while writing ``path`` (or a temporary file of
    it): full disk, quota, read-only file system, permissions, missing folder, or the system's reason."""
    final = _target_of(path)
    reason, hint = _WRITE_REASONS.get(exc.errno, (None, "choose another output path"))
    if reason is None:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not final.parent.is_dir():
            reason, hint = f"its folder {final.parent} does not exist", "create it or choose another output path"
        else:
            reason = _one_line(exc.strerror or exc)
    return OutputError(f"cannot write {final}: {reason}; {hint}")


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "special file"


def _refuse_special(final: Path) -> None:
    """Refuse to replace a symbolic link or anything that is not a regular file (devices, FIFOs, folders)."""
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_failure(final, exc) from exc
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(
            f"refusing to write {final}: it is a symbolic link; remove the link or choose another output path"
        )
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"refusing to write {final}: it is a {_file_kind(st.st_mode)}, not a regular file; "
            "choose another output path"
        )


def check_output_file(path: str | os.PathLike, *, force: bool) -> Path:
    """Check an output file before any work: not a symbolic link or a special file, and not an existing file
    unless ``force``. Returns the path; raises :class:`OutputError` with a one-line message otherwise."""
    final = Path(path)
    _refuse_special(final)
    if final.exists() and not force:
        raise OutputError(f"{final} already exists; pass --force to overwrite or choose another --out")
    return final


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name is hidden and keeps the real extension last, so writers that pick the format
    from the name (soundfile, matplotlib) still work: ``out/f3.wav`` -> ``out/.f3.<random>.part.wav``.
    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the exception
    propagates; ``path`` is then untouched. An ``OSError`` of the block (a full disk, a read-only file system)
    becomes a one-line :class:`OutputError` naming ``path``. ``path`` must not be a symbolic link or anything
    but a regular file (a device, a FIFO): those are refused, never replaced. Given a temporary path of an
    enclosing ``atomic_path``, it yields that path as it is (the enclosing block renames it).

    Parameters
    ----------
    path : str or PathLike
        The final file.

    Yields
    ------
    Path
        Where to write.

    Raises
    ------
    OutputError
        ``path`` is a symbolic link or not a regular file, the block failed with an ``OSError``, finished
        without creating the temporary file, or the rename failed.

    Examples
    --------
    >>> with atomic_path("out/fig.png") as tmp:  # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    final = Path(path)
    with _ACTIVE_LOCK:
        nested = os.fspath(final) in _ACTIVE
    if nested:  # already a temporary file: the enclosing atomic_path checks, renames and cleans up
        try:
            yield final
        except OSError as exc:
            raise write_failure(final, exc) from exc
        except Exception as exc:
            _raise_sndfile_failure(final, exc)
            raise
        return
    _refuse_special(final)
    suffix = final.suffix
    stem = final.name[: len(final.name) - len(suffix)] if suffix else final.name
    tmp = final.with_name(f".{stem}.{secrets.token_hex(4)}.part{suffix}")
    with _ACTIVE_LOCK:
        _ACTIVE[os.fspath(tmp)] = final
    try:
        try:
            yield tmp
            if not tmp.exists():
                raise OutputError(f"nothing was written to {final}; this is a bug, please report it")
            _refuse_special(final)
            os.replace(tmp, final)
        except OSError as exc:
            raise write_failure(final, exc) from exc
        except Exception as exc:  # libsndfile writing to tmp directly (soundfile.SoundFile) reports no errno
            _raise_sndfile_failure(tmp, exc)
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(os.fspath(tmp), None)


# libsndfile reports a failed write as "System error." without the errno; below this much free space, that
# failure is a full disk.
_NEARLY_FULL = 1 << 20


def _raise_sndfile_failure(tmp: Path, exc: Exception) -> None:
    """Raise the one-line error for ``exc`` if it is a soundfile error (nothing else is soundfile's)."""
    import sys

    sf = sys.modules.get("soundfile")
    if sf is not None and isinstance(exc, sf.SoundFileError):
        raise _sndfile_write_error(tmp, exc) from exc


def _sndfile_write_error(tmp: Path, exc: BaseException) -> OutputError:
    """The one-line error for a libsndfile failure while writing ``tmp``, diagnosing a full or read-only disk."""
    import soundfile as sf

    if isinstance(exc, sf.SoundFileError):
        reason = _sndfile_reason(exc)
    else:
        reason = _one_line(getattr(exc, "strerror", None) or exc)
    with contextlib.suppress(OSError, AttributeError):
        st = os.statvfs(tmp.parent)
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        free = (st.f_bfree if root else st.f_bavail) * st.f_frsize
        if st.f_flag & os.ST_RDONLY:
            return write_failure(tmp, OSError(errno.EROFS, os.strerror(errno.EROFS)))
        if free < _NEARLY_FULL or (st.f_files > 0 and st.f_favail == 0):
            return write_failure(tmp, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    return OutputError(f"cannot write {_target_of(tmp)}: {reason}; choose another output path")


def check_output_dir(path: str | os.PathLike, *, create: bool = True) -> Path:
    """Make sure ``path`` is a writable folder, creating it (and its parents) if needed.

    Parameters
    ----------
    path : str or PathLike
        The output folder.
    create : bool
        Create it when missing; otherwise a missing folder is an error.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    OutputError
        It exists but is not a folder, cannot be created, or cannot be written.

    Examples
    --------
    >>> out = check_output_dir("auralised/song1")  # doctest: +SKIP
    """
    import tempfile

    d = Path(path)
    if d.exists() and not d.is_dir():
        raise OutputError(f"cannot write to output folder {d}: it exists and is not a folder; choose another --out")
    if not d.exists():
        if not create:
            raise OutputError(f"output folder {d} does not exist; create it or choose another --out")
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot write to output folder {d}: {_one_line(exc.strerror or exc)}; choose another --out"
            ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".auralise-write-test-", suffix=".part", dir=d)
    except OSError as exc:
        raise OutputError(
            f"cannot write to output folder {d}: {_one_line(exc.strerror or exc)}; choose another --out"
        ) from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return d


def parse_json(text: str | bytes) -> object:
    """``json.loads`` for text that may come from someone else: JSON nested too deeply for the parser (its
    RecursionError) is a ``json.JSONDecodeError``, a ValueError, like any other malformed JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text if isinstance(text, str) else "", 0) from None


# --------------------------------------------------------------------------- folder locks

LOCK_NAME = ".auralise-lock"
_LOCK_TRIES = 150  # x 20 ms: how long to wait for a lock that is being created, or taken over, to settle
_LOCK_YOUNG_S = 2.0  # a lock file without valid details younger than this is still being written


def _lock_details(raw: bytes) -> dict | None:
    """The {pid, host, started} of a lock file, or None if it holds no valid details."""
    try:
        info = parse_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    pid, host = info.get("pid"), info.get("host")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31 or not isinstance(host, str):
        return None
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists and belongs to someone else
        return True
    return True


def _in_use(folder: Path, info: dict | None) -> OutputError:
    if info is None:
        who = "a process that is starting"
    else:
        who = f"pid {info['pid']} on {_one_line(info['host'])[:80]}"
        if isinstance(info.get("started"), str):
            who += f", started {_one_line(info['started'])[:40]}"
    return OutputError(
        f"{folder} is in use by another auralise export ({who}); wait for it to finish or, if it is no longer "
        f"running, delete {folder / LOCK_NAME}"
    )


def _examine_lock(folder: Path, *, take_over: bool) -> str:
    """Look at ``folder``'s lock file: raise if a live export holds it; otherwise 'absent', 'stale' (with
    ``take_over``: removed, so 'retry'), or 'retry' when it is being written or taken over right now."""
    import socket

    path = folder / LOCK_NAME
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        if os.path.islink(path):
            raise OutputError(f"{path} is a symbolic link, not an auralise lock file; remove it") from exc
        raise OutputError(f"cannot read the lock file {path}: {_one_line(exc.strerror or exc)}; remove it") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path} is not an auralise lock file (it is a {_file_kind(st.st_mode)}); remove it")
        held = False
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = True  # a live process holds it
        except (ImportError, OSError):
            pass  # no flock here (some network file systems): the pid decides
        info = _lock_details(os.read(fd, 1 << 16))
        if info is not None and (info["host"] != socket.gethostname() or _pid_alive(info["pid"])):
            raise _in_use(folder, info)  # alive, or on another machine, where it cannot be checked
        if held or (info is None and time.time() - st.st_mtime < _LOCK_YOUNG_S):
            return "retry"  # being written by its owner, or being taken over by another export
        if not take_over:
            return "stale"
        try:  # remove the stale lock, unless another export replaced it meanwhile
            now = os.lstat(path)
        except FileNotFoundError:
            return "retry"
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return "retry"
    finally:
        os.close(fd)


def check_folder_lock(folder: str | os.PathLike) -> None:
    """Raise :class:`OutputError` if a live auralise export holds ``folder``'s lock; write nothing."""
    d = Path(folder)
    if not d.is_dir():
        return
    for _ in range(_LOCK_TRIES):
        if _examine_lock(d, take_over=False) in ("absent", "stale"):
            return
        time.sleep(0.02)
    raise _in_use(d, None)


def _acquire_lock(folder: Path) -> int:
    import socket
    from datetime import UTC, datetime

    path = folder / LOCK_NAME
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_LOCK_TRIES):
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            if _examine_lock(folder, take_over=True) != "absent":
                time.sleep(0.02)
            continue
        except OSError as exc:
            raise write_failure(path, exc) from exc
        try:
            with contextlib.suppress(ImportError, OSError):
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            started = datetime.now(UTC).isoformat(timespec="seconds")
            details = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
            data = memoryview(json.dumps(details).encode())
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except BaseException as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            if isinstance(exc, OSError):
                raise write_failure(path, exc) from exc
            raise
        return fd
    raise _in_use(folder, None)


def _release_lock(path: Path, fd: int) -> None:
    try:
        mine, now = os.fstat(fd), os.lstat(path)
        if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
            os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder``'s exclusive lock for the block: ``FOLDER/.auralise-lock`` holding ``{pid, host,
    started}``, created with ``O_EXCL`` (and ``flock``-ed while held). A lock left by a process of this machine
    that no longer runs is taken over; a live one raises :class:`OutputError` naming its pid and host. The lock
    is removed when the block ends, however it ends (errors, Ctrl-C). ``folder`` must exist.

    Examples
    --------
    >>> with folder_lock("listening"):  # doctest: +SKIP
    ...     write_the_export()
    """
    d = Path(folder)
    fd = _acquire_lock(d)
    try:
        yield d / LOCK_NAME
    finally:
        _release_lock(d / LOCK_NAME, fd)
