"""The export folder's bookkeeping: the journal of finished items, the claim on the folder, and what --force removes.

The journal (``DIR/.auralise-journal.jsonl``) is a header line (model, front-end and options) followed by one JSON
record per finished item; :meth:`Journal.finished` trusts a record only once it checks out (see
:func:`auralise.listening.export.export`, ``--resume``). :func:`claim_folder` holds the folder's lock for a run,
checks again under it what the folder holds (:func:`check_folder`), clears what ``--force`` or a killed run left,
starts the journal, and undoes a start that finished nothing. :func:`remove_export` deletes a previous export's
files and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from auralise.choices import PAGE_NAME as PAGE
from auralise.errors import OutputError
from auralise.io.files import parse_json
from auralise.io.naming import output_name

__all__ = ["JOURNAL", "MANIFEST", "Journal", "check_out_path", "check_folder", "claim_folder", "remove_export"]

JOURNAL = ".auralise-journal.jsonl"
MANIFEST = "manifest.json"
# What a song id (a folder name made by song_ids) may be: one plain path component, never "." or "..".
_SONG_ID = re.compile(r"[\w-](?:[\w.\- ]*[\w-])?")
# The files this layout puts in a song folder, and the temporary names they are written under (atomic_path's
# ".<stem>.<8 hex>.part.<ext>", nested twice by older versions).
_LAYOUT_FILE = re.compile(r"original\.(?:wav|png)|layer\d+_feature\d+(?:\.wav|\.png|_figure\.png)")
_TEMP_FILE = re.compile(r"\.+(?:original|layer\d+_feature\d+(?:_figure)?)(?:\.[0-9a-f]{8}\.part)+\.(?:wav|png|raw)")
_TOP_TEMP = re.compile(
    r"\.+(?:manifest|index|auralise-journal)(?:\.[0-9a-f]{8}\.part)+\.(?:json|html|jsonl)|\.auralise-write-test-\w+\.part"
)


class Journal:
    """Append-only record of finished items: a header line (model and options), then one JSON object per item;
    a torn last line is ignored. Nothing in it is trusted before it is checked (:meth:`finished`)."""

    def __init__(self, path: Path, header: dict):
        self.path, self.header = path, header
        self.appended = 0  # items this run recorded

    def read(self) -> tuple[dict | None, list]:
        """(header, records); (None, []) without a journal or when its first line is not a header."""
        try:
            st = os.lstat(self.path)
            if not stat.S_ISREG(st.st_mode):
                raise OutputError(
                    f"{self.path} is not a regular file (a symbolic link or a special file); remove it or pass "
                    "--force to start over"
                )
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return None, []
        except OSError as exc:
            reason = " ".join(str(exc.strerror or exc).split())
            raise OutputError(f"cannot read {self.path}: {reason}; pass --force to start over") from exc
        header = _json_or_none(lines[0]) if lines else None
        if not isinstance(header, dict):
            return None, []
        return header, [r for r in map(_json_or_none, lines[1:]) if r is not None]

    def finished(self) -> dict[tuple[str, int, int], dict]:
        """Finished items of an export with this header, keyed by (song id, layer, feature).

        Only records that are what this export writes count: a song id that is a plain folder name, integer layer
        and feature, exactly the file names of that item, statistics of the right types, and files that are
        regular files (not symbolic links) in a real song folder inside the export. Anything else is redone.
        """
        header, records = self.read()
        if header is None:
            return {}
        if header != self.header:
            raise OutputError(self._mismatch(header))
        out_dir = self.path.parent
        root = out_dir.resolve()
        figures = bool(self.header.get("figures"))
        done = {}
        for r in records:
            if _valid_record(r, out_dir, root, figures):  # kept: the fields an export writes, nothing else
                done[(r["song"], r["layer"], r["feature"])] = {k: r[k] for k in _RECORD_KEYS if k in r}
        return done

    def _mismatch(self, header: dict) -> str:
        out = self.path.parent
        if header.get("format") != self.header.get("format"):
            return f"{self.path} is not a journal of this auralise version; pass --force to start over"
        what, details = [], []
        if header.get("model") != self.header.get("model"):
            what.append("another model")
            there, now = str(header.get("model"))[:12], str(self.header.get("model"))[:12]
            details.append(f"model sha256 {there}... there, {now}... now")
        if header.get("frontend") != self.header.get("frontend"):
            what.append("another front-end")
        changed = [k for k in dict.fromkeys([*self.header, *header]) if k not in ("format", "model", "frontend")]
        changed = [k for k in changed if header.get(k) != self.header.get(k)]
        if changed:
            what.append("other options")
            details += [f"--{k} {_short(header.get(k))} there, {_short(self.header.get(k))} now" for k in changed]
        detail = f" ({'; '.join(details)})" if details else ""
        return (
            f"{out} holds an export made with {' and '.join(what)}{detail}; use the same model and options to "
            "--resume, or pass --force to start over"
        )

    def start(self) -> None:
        from auralise.io.files import atomic_path

        with atomic_path(self.path) as tmp:  # complete or absent: never an empty or torn header
            tmp.write_text(json.dumps(self.header) + "\n", encoding="utf-8")
        self.appended = 0

    def append(self, records: list[dict]) -> None:
        from auralise.io.files import write_failure

        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in records))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise write_failure(self.path, exc) from exc
        self.appended += len(records)


def _json_or_none(line: str):
    try:
        return parse_json(line)
    except ValueError:
        return None


def _short(value) -> str:
    text = " ".join(json.dumps(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite int or float (an int too large for a float is not one: JSON allows any number of digits)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_RECORD_KEYS = ("song", "layer", "feature", "wav", "png", "figure", "activation_max", "activation_energy", "rank",
                "silent", "silent_reason", "gain", "seeds")  # fmt: skip


def _valid_seeds(seeds) -> bool:
    """``seeds`` as an export writes them (``--select max/topk``): absent, or units with their places and times."""
    if seeds is None:
        return True
    if not isinstance(seeds, list):
        return False
    for seed in seeds:
        if not isinstance(seed, dict) or set(seed) != {"unit", "activation", "time", "time_in_file", "hz"}:
            return False
        if not (isinstance(seed["unit"], list) and all(map(_is_int, seed["unit"])) and _is_number(seed["activation"])):
            return False
        if not all(seed[k] is None or _is_number(seed[k]) for k in ("time", "time_in_file", "hz")):
            return False
    return True


def _valid_record(r, out_dir: Path, root: Path, figures: bool) -> bool:
    """Whether a journal record is one this export wrote, for files that are still in place (see Journal)."""
    if not isinstance(r, dict):
        return False
    song, layer, feature = r.get("song"), r.get("layer"), r.get("feature")
    if not (isinstance(song, str) and _SONG_ID.fullmatch(song) and _is_int(layer) and _is_int(feature)):
        return False
    if layer < 1 or feature < 0:
        return False
    wav = f"{song}/{output_name(layer, feature, 'wav')}"
    expected = {"wav": wav, "png": wav[:-3] + "png", "figure": wav[:-4] + "_figure.png" if figures else None}
    if any(r.get(k) != v for k, v in expected.items()):
        return False
    if not all(_is_number(r.get(k)) for k in ("activation_max", "activation_energy", "gain")):
        return False
    if not (_is_int(r.get("rank")) and r["rank"] >= 1 and isinstance(r.get("silent"), bool)):
        return False
    if r.get("silent_reason") not in (None, "never active", "projection is numerically zero"):
        return False
    if not _valid_seeds(r.get("seeds")):
        return False
    return all(_own_file(out_dir, root, rel) for rel in expected.values() if rel)


def _own_file(out_dir: Path, root: Path, rel: str) -> bool:
    """``out_dir/rel`` (``song/name``) is a regular file in a real (not linked) song folder inside the export."""
    song, name = rel.split("/")
    try:
        if not stat.S_ISDIR(os.lstat(out_dir / song).st_mode):
            return False
        if not stat.S_ISREG(os.lstat(out_dir / song / name).st_mode):
            return False
        return (out_dir / song / name).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def check_out_path(out: Path) -> None:
    """--out is a folder or does not exist yet (a device or a file is not a place for an export)."""
    from auralise.io.files import _file_kind

    try:
        st = out.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        reason = " ".join(str(exc.strerror or exc).split())
        raise OutputError(f"cannot write to output folder {out}: {reason}; choose another --out") from exc
    if not stat.S_ISDIR(st.st_mode):
        kind = "file" if stat.S_ISREG(st.st_mode) else _file_kind(st.st_mode)
        raise OutputError(
            f"cannot write to output folder {out}: it exists and is a {kind}, not a folder; choose another --out"
        )


def check_folder(out: Path, ids: Sequence[str], journal: Journal, *, force: bool, resume: bool) -> dict:
    """The checks of what --out already holds; returns the finished items under ``resume``. Writes nothing."""
    if not out.is_dir():
        return {}
    if not (force or resume):
        if os.path.lexists(out / JOURNAL) or os.path.lexists(out / MANIFEST):
            raise OutputError(f"{out} already holds an export; pass --resume to finish it or --force to start over")
        clashes = [out / i for i in ids if os.path.lexists(out / i)]
        if clashes:
            raise OutputError(f"{clashes[0]} already exists; pass --force to overwrite or choose another --out")
    for name in (MANIFEST, PAGE):
        _check_replaceable(out / name)
    for song in ids:
        d = out / song
        try:
            mode = os.lstat(d).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            raise OutputError(f"{d} is {what}; the export writes only into folders it makes: remove it or choose "
                              "another --out")  # fmt: skip
        with os.scandir(d) as entries:
            for entry in entries:
                if _LAYOUT_FILE.fullmatch(entry.name):
                    _check_replaceable(Path(entry.path))
    return journal.finished() if resume else {}


def _check_replaceable(path: Path) -> None:
    """A file of the layout may be replaced if it is a regular file or a symbolic link (the link is removed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OutputError(f"{path} is not a regular file; remove it or choose another --out")


@contextlib.contextmanager
def claim_folder(out: Path, ids: Sequence[str], journal: Journal, *, force: bool, resume: bool):
    """Create --out if needed and hold its lock for the block; check again under the lock, clear what --force
    or --resume clear, start the journal. If the block fails before this run finished any item, what the run
    wrote is removed: the journal, the song files, the folders it made (when empty)."""
    from auralise.io.files import check_output_dir, folder_lock, write_failure

    created = _missing_folders(out)
    try:
        check_output_dir(out)
        with folder_lock(out):
            done = check_folder(out, ids, journal, force=force, resume=resume)  # nothing changes it from now
            if force:
                remove_export(out, ids)
            _clear_leftovers(out, ids)
            new_folders = [out / i for i in ids if not os.path.lexists(out / i)]
            started = not (resume and journal.read()[0] is not None)
            if started:
                journal.start()
            try:
                yield done
            except BaseException as exc:
                if started and not journal.appended:
                    _undo_start(out, ids, new_folders)
                if isinstance(exc, OSError):
                    raise write_failure(_visible_name(exc.filename) if exc.filename else out, exc) from exc
                raise
    except BaseException:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _visible_name(path) -> Path:
    """The file a temporary file stands for (``.layer1_feature0.1a2b3c4d.part.raw`` -> ``layer1_feature0.wav``)."""
    p = Path(os.fsdecode(path))
    m = re.fullmatch(r"\.(.+?)(?:\.[0-9a-f]{8}\.part)+(\.\w+)?", p.name)
    if not m:
        return p
    ext = m.group(2) or ""
    return p.with_name(m.group(1) + (".wav" if ext == ".raw" else ext))


def _missing_folders(out: Path) -> list[Path]:
    """The folders that creating ``out`` creates, outermost first."""
    missing, p = [], Path(os.path.abspath(out))
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing[::-1]


def _clear_leftovers(out: Path, ids: Sequence[str]) -> None:
    """Remove what a killed run leaves in this run's places: temporary files, and symbolic links standing where
    the layout's files go (only the links; what they point to is not touched)."""
    for name in (MANIFEST, PAGE):
        if os.path.islink(out / name):
            os.unlink(out / name)
    with os.scandir(out) as entries:
        for entry in entries:
            if _TOP_TEMP.fullmatch(entry.name):
                _unlink_own(Path(entry.path))
    for song in ids:
        d = out / song
        if not _SONG_ID.fullmatch(song) or not os.path.isdir(d) or os.path.islink(d):
            continue
        with os.scandir(d) as entries:
            for entry in entries:
                if _TEMP_FILE.fullmatch(entry.name) or (_LAYOUT_FILE.fullmatch(entry.name) and entry.is_symlink()):
                    _unlink_own(Path(entry.path))


def _undo_start(out: Path, ids: Sequence[str], new_folders: Sequence[Path]) -> None:
    """Remove what a run that finished no item wrote: its journal, its songs' files, and the song folders it
    made (when that leaves them empty)."""
    with contextlib.suppress(OSError):
        _unlink_own(out / JOURNAL)
        for song in ids:
            _remove_song_files(out, song)
    for d in new_folders:
        with contextlib.suppress(OSError):
            d.rmdir()


def remove_export(out: Path, song_ids: Sequence[str] = ()) -> None:
    """Delete a previous export's files in ``out``, and nothing else.

    Removed: the journal, the manifest, the page, their temporary files, and in each song folder (of the
    manifest, of the journal, or of ``song_ids``) the files this layout defines (``original.wav``/``.png``,
    ``layer{L}_feature{F}.wav``/``.png``/``_figure.png``) and their temporary files; a song folder goes only if
    that emptied it. A song id that is not a plain folder name (``../x``, ``/abs``) is ignored, a song folder
    that is a symbolic link is not followed, and other files (yours) stay. The lock file is never touched.
    """
    out = Path(out)
    if not out.is_dir():
        return
    ids = dict.fromkeys([*song_ids, *_manifest_songs(out), *_journal_songs(out)])
    for song in ids:
        _remove_song_files(out, song)
    for name in (JOURNAL, MANIFEST, PAGE):
        _unlink_own(out / name)
    with os.scandir(out) as entries:
        for entry in entries:
            if _TOP_TEMP.fullmatch(entry.name):
                _unlink_own(Path(entry.path))


def _unlink_own(path: Path) -> bool:
    """Unlink ``path`` if it is a regular file or a symbolic link (never what the link points to)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return False
    path.unlink(missing_ok=True)
    return True


def _remove_song_files(out: Path, song) -> None:
    if not isinstance(song, str) or not _SONG_ID.fullmatch(song):
        return
    d = out / song
    try:
        if not stat.S_ISDIR(os.lstat(d).st_mode) or d.resolve().parent != out.resolve():
            return
    except OSError:
        return
    removed = False
    with os.scandir(d) as entries:
        for entry in entries:
            if _LAYOUT_FILE.fullmatch(entry.name) or _TEMP_FILE.fullmatch(entry.name):
                removed |= _unlink_own(Path(entry.path))
    if removed:
        with contextlib.suppress(OSError):
            d.rmdir()  # only if that emptied it


def _manifest_songs(out: Path) -> list[str]:
    """The song ids a previous manifest lists (nothing if it is missing, not a regular file, or not JSON)."""
    path = out / MANIFEST
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return []
        data = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    songs = data.get("songs") if isinstance(data, dict) else None
    if not isinstance(songs, list):
        return []
    return [s["id"] for s in songs if isinstance(s, dict) and isinstance(s.get("id"), str)]


def _journal_songs(out: Path) -> list[str]:
    """The song ids a previous journal's records name."""
    try:
        _, records = Journal(out / JOURNAL, {}).read()
    except OutputError:
        return []
    return [r["song"] for r in records if isinstance(r, dict) and isinstance(r.get("song"), str)]
