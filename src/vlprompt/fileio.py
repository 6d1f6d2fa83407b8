"""Atomic file writes: a result file is either the old version or the complete new one, never partial.

A failed write (disk full, permission denied) raises :class:`WriteError` — both an ``OSError`` and a one-line
:class:`~vlprompt.errors.VLPromptError` naming the file and saying that its previous version is intact. Output
paths given by the user are checked before any work (:func:`check_writable`, :func:`check_output_file`): a file
vlprompt did not write is never overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from vlprompt.errors import VLPromptError


class WriteError(VLPromptError, OSError):
    """A write that failed with an OS error; the message is the one line shown to the user."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_failed(path: Path, exc: OSError) -> WriteError:
    """The :class:`WriteError` of a failed write of ``path``, whose previous version (if any) is intact."""
    reason = exc.strerror or str(exc)
    hint = "free some space" if exc.errno == errno.ENOSPC else "check the folder's permissions"
    state = f"{path} is unchanged; " if Path(path).exists() else ""
    return WriteError(exc.errno, f"cannot write {path}: {reason}; {state}{hint} and run the command again")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then atomically rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except WriteError:
        raise
    except OSError as exc:
        raise write_failed(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: Path, obj: Any) -> None:
    import yaml

    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def append_jsonl(path: Path, obj: Any) -> None:
    """Append one whole JSON line: a single write, synced; a failed or short write (disk full) is undone, so the
    file never ends in half a line."""
    line = (json.dumps(obj) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_failed(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, size)
            raise write_failed(path, exc) from None
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def nearest_existing(path: Path) -> Path:
    """``path`` if it exists, else its closest existing ancestor."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: Path, flag: str = "--out") -> None:
    """Refuse, before any work, an output ``path`` that cannot be created or written: a file where a folder is
    needed on the way, or a folder this user may not write into (checked on the closest existing folder)."""
    existing = nearest_existing(path)
    if existing != Path(path).absolute() and not existing.is_dir():
        raise VLPromptError(f"{flag} {path}: {existing} is a file, not a folder; choose another path")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VLPromptError(f"{flag} {path}: cannot write in {folder} (permission denied); choose a writable folder")


def check_output_file(path: Path, flag: str, what: str, ours: Callable[[Path], bool]) -> None:
    """Refuse an output file path that is a folder, or an existing file that is not a ``what`` written by vlprompt
    (``ours(path)`` decides; see :func:`json_where`), before any work; the path must be writable."""
    path = Path(path)
    if path.is_dir():
        raise VLPromptError(f"{flag} {path} is a folder; give the path of the {what} file to write")
    if path.exists() and not ours(path):
        raise VLPromptError(
            f"{flag} {path} exists and is not a {what} written by vlprompt; choose another path or delete it"
        )
    check_writable(path, flag)


def json_where(test: Callable[[Any], bool]) -> Callable[[Path], bool]:
    """An ``ours`` test of :func:`check_output_file` for JSON outputs: the file parses and ``test(parsed)`` holds."""

    def ours(path: Path) -> bool:
        try:
            return bool(test(json.loads(Path(path).read_text())))
        except (OSError, ValueError):
            return False

    return ours


def update_hash(h, path: Path):
    """Feed a file's bytes to hash object ``h`` in 1 MiB blocks; returns ``h``."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algorithm``: a :mod:`hashlib` name)."""
    return update_hash(hashlib.new(algorithm), path).hexdigest()


def content_sha256(path: Path, preferred: Sequence[str] = ()) -> Optional[str]:
    """A SHA-256 of what a file or folder holds: a file's bytes; a folder's files (names and bytes, sorted) — only
    the ``preferred`` ones when it has them; None when ``path`` does not exist."""
    path = Path(path)
    if path.is_dir():
        files = [path / n for n in preferred if (path / n).is_file()] or sorted(
            p for p in path.rglob("*") if p.is_file()
        )
    else:
        files = [path] if path.is_file() else []
    if not files:
        return None if not path.exists() else hashlib.sha256().hexdigest()
    h = hashlib.sha256()
    for file in files:
        h.update(f"{file.relative_to(path).as_posix() if file != path else file.name}\n".encode())
        try:
            update_hash(h, file)
        except OSError as exc:
            raise VLPromptError(f"cannot read {file}: {exc.strerror or exc}") from None
    return h.hexdigest()
