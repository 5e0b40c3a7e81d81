"""Atomic file writes: a killed process never leaves a half-written file that a later run trusts.

A write goes to a hidden temporary `.NAME.XXXX.tmp` beside its target and is renamed onto it when complete. The
finished file gets the permissions of a plainly created one (0666 / 0777 less the user's umask, e.g. 0644), not the
0600 of a temporary file, so colleagues can read a shared data folder. A temporary's name holds the writing
process's id; the first write of a process into a folder removes the temporaries that processes which no longer
run left there (a kill leaves them behind), never those of a live writer.

May import: `hacalib.errors`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_mode(directory: bool = False) -> int:
    """The mode a plainly created file (0666) or folder (0777) gets under the user's umask."""
    return (0o777 if directory else 0o666) & ~_umask()


# A temporary name adds a dot, the pid, 8 random characters and a suffix to the target's name; a file name may have
# at most 255 bytes, so a long name is shortened to its start and a hash of the whole (still unique per target).
_NAME_MAX, _TEMP_EXTRA = 255, 32


def short_name(name: str, room: int = _NAME_MAX - _TEMP_EXTRA) -> str:
    """`name` itself when it fits in `room` bytes, else its first bytes and a sha1 of the whole name."""
    if len(name.encode()) <= room:
        return name
    import hashlib

    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    head = name.encode()[: room - len(digest) - 1].decode(errors="ignore")
    return f"{head}~{digest}"


def _prefix(path: Path) -> str:
    return f".{short_name(path.name)}.{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


# A leftover of `atomic_path` / `atomic_dir` (mkstemp's 8 random characters; reproduce renames .tmp to .ipynb).
_LEFTOVER = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]{8}\.(?:tmp|old|ipynb)$")
_CLEANED: set[str] = set()  # folders this process has already cleaned


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove what killed atomic writes left in `folder` (`.NAME.<pid>-XXXXXXXX.tmp` / `.old` of a process that no
    longer runs; a live writer's are kept); return what was removed."""
    folder = Path(folder)
    gone = []
    if not folder.is_dir():
        return gone
    for leftover in folder.iterdir():
        m = _LEFTOVER.match(leftover.name)
        if m is None or _alive(int(m["pid"])):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        gone.append(leftover)
    return gone


def _clean_once(folder: Path) -> None:
    """`remove_stale_temporaries` the first time this process writes into `folder` (a listing per write would make
    writing n files into one folder cost n^2)."""
    key = str(folder.resolve())
    if key not in _CLEANED:
        remove_stale_temporaries(folder)
        _CLEANED.add(key)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, plain_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    from .errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def confined(root: str | Path, relative: str | Path, *, source: str | Path, row: int | None = None,
             key: str | None = None) -> Path:
    """`root / relative`, checked to lie inside `root`: for a path read from a data file (CSV, JSON, manifest) before
    anything is written, linked, renamed or deleted there. Refused, as a DataError naming `source` (and row or key):
    an empty or absolute path, one whose `..` parts climb out, and one whose folder is reached through a symlink
    that points out. The last part may itself be a link we made to a file elsewhere (a linked video); its folder may
    not."""
    from .errors import DataError

    root = Path(root)
    text = str(relative)
    target = root / text
    lexical = Path(os.path.normpath(target))
    inside_root = os.path.normpath(root)
    leaves = (not text.strip() or Path(text).is_absolute() or lexical == Path(inside_root)
              or not str(lexical).startswith(inside_root.rstrip(os.sep) + os.sep))
    if not leaves:
        real_root = root.resolve()
        leaves = not lexical.parent.resolve().is_relative_to(real_root)
    if leaves:
        raise DataError(source, f"path {text!r} leaves {root}: paths read from a data file must name a file inside "
                                "it (no absolute paths, no '..', no symlinked folders pointing out)", row=row, key=key)
    return lexical


@contextmanager
def command_lock(lock_file: str | Path, command: str) -> Iterator[None]:
    """Hold `lock_file` (an exclusive `flock`) while a command writes a folder: a second command on the same folder
    stops at once with one line naming the first (UsageError), instead of writing beside it and leaving a mixed
    result. The system releases the lock when the holder ends, killed or not, so none is ever left behind."""
    import datetime
    import fcntl

    from .errors import UsageError

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 400).decode(errors="replace").strip() or "another command"
        os.close(fd)
        raise UsageError(f"{lock_file.parent}: {holder} is writing here (lock {lock_file.name}); wait for it to "
                         "finish, or use another folder") from None
    try:
        since = datetime.datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"'{command}' (pid {os.getpid()}, since {since})".encode())
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, empty of meaning until the next holder writes it


# A folder this project wrote as a whole (a converted model, a fetched data root) holds this marker: the next run may
# replace it; a non-empty folder without it is the user's and is never replaced.
OWNER_MARKER = ".made-by-hacalib"


def refuse_foreign_folder(path: str | Path) -> None:
    """A UsageError if `path` exists and is not a folder, or is a non-empty folder without `OWNER_MARKER`."""
    from .errors import UsageError

    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UsageError(f"{path}: exists and is not a folder hacalib wrote; choose a new or empty folder")
    if path.is_dir() and not (path / OWNER_MARKER).is_file():
        held = sorted(p.name for p in path.iterdir())
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise UsageError(f"{path}: holds files hacalib did not write ({shown}); nothing was changed. Choose a new "
                             "or empty folder")


@contextmanager
def atomic_dir(path: str | Path, *, only_ours: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; it replaces `path` only if the block succeeds.

    (The folder analogue of `atomic_path`: a killed save never leaves a half-written model.) With `only_ours` (a
    command's output folder, named by the user) a non-empty folder this project did not make is refused, before
    and again just before the replacement, and the new folder carries `OWNER_MARKER`.
    """
    path = Path(path)
    if only_ours:
        refuse_foreign_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if only_ours:
            (tmp / OWNER_MARKER).write_text("written by hacalib: a later run may replace this folder\n")
            refuse_foreign_folder(path)  # the folder may have been filled while we wrote
        os.chmod(tmp, plain_mode(directory=True))
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_frame_csv(frame, path: str | Path) -> None:
    """A pandas frame as CSV, atomically, lines ending in CRLF (RFC 4180): the csv writer then quotes every field
    that holds a CR or an LF, so a generated answer with a bare carriage return reads back as one field. With LF
    endings such a field is written unquoted and `read_csv` splits the row there (columns shift, values mix)."""
    with atomic_path(Path(path)) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\r\n")
