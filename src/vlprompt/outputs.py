"""Files vlprompt writes outside a run directory (``table``'s ``summary.csv``, ``plot``'s figures, ``demo``'s
summary): a file there is replaced only when vlprompt itself wrote it, for the same source, and nobody changed it
since.

Every folder holding such files keeps a sidecar, ``.vlprompt-outputs.json``: for each file written, its SHA-256 and
its source (the sweep folder it summarises). A path may be written when it is absent, or when the sidecar lists it
with the same source and the file still has the recorded hash; anything else — a user's file of the same name, a
file of ours the user edited, one written for another sweep, a folder — is refused before any file is written
(:func:`check_outputs`), so a refusal leaves everything as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, Iterable

from vlprompt import fileio
from vlprompt.errors import VLPromptError

SIDECAR = ".vlprompt-outputs.json"
#: the value of the sidecar's "written_by" key (how a sidecar is told from a user's file of the same name)
WRITER = "vlprompt"


def _record(folder: Path) -> Dict[str, Dict[str, str]]:
    """The sidecar of ``folder`` (empty when absent); a file of that name that is not ours is refused."""
    sidecar = folder / SIDECAR
    if not sidecar.exists():
        return {}
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("written_by") != WRITER or not isinstance(data.get("files"), dict):
        raise VLPromptError(f"{sidecar} is not vlprompt's record of the files it wrote there; move it away")
    return data["files"]


def owned(path: Path, source: str) -> bool:
    """Whether ``path`` is a file vlprompt wrote for ``source`` and nobody has changed since."""
    path = Path(path)
    entry = _record(path.parent).get(path.name)
    return (
        isinstance(entry, dict)
        and entry.get("source") == source
        and path.is_file()
        and entry.get("sha256") == fileio.file_digest(path)
    )


def check_outputs(paths: Iterable[Path], source: str, fix: str) -> None:
    """Refuse, before any write, every path that is a folder or a file vlprompt may not replace (see the module
    doc); ``fix`` is the advice appended to the one-line error (e.g. "pass another --out")."""
    for path in paths:
        path = Path(path)
        fileio.check_writable(path, "cannot write")
        if path.is_dir():
            raise VLPromptError(f"cannot write {path}: it is a folder; {fix}")
        if path.parent.is_dir():
            _record(path.parent)  # a sidecar that is not ours is refused before anything is written
        if path.exists() and not owned(path, source):
            raise VLPromptError(f"{path} exists and is not a file vlprompt wrote for {source}; {fix} or delete it")


def write_owned(path: Path, source: str, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically with ``write(tmp)`` and record it (hash, source) in its folder's sidecar; call
    :func:`check_outputs` first."""
    path = Path(path)
    fileio.atomic_write(path, write)
    files = dict(_record(path.parent))
    files[path.name] = {"sha256": fileio.file_digest(path), "source": source}
    fileio.write_json(path.parent / SIDECAR, {"written_by": WRITER, "files": files})
    return path
