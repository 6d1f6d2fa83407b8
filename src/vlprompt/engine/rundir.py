"""Run directories: one per run, never shared, never overwritten by a different run.

* ``--out`` must be absent, empty, or a vlprompt run directory — recognised by the marker ``.vlprompt-run.json``,
  written first. Anything else is refused before any write, so a user's own files are never touched.
* The marker stores the run's *identity* (what it computes: method, resolved settings, absolute data and weight
  paths; later the data and backbone fingerprints). The same identity resumes an interrupted run or skips a
  finished one; a different one is refused naming the first difference.
* An exclusive lock (``.lock``, with the holder's PID and host) keeps a second process out and is removed when the
  run ends; a lock left by a killed process is released by the OS and taken over with a warning.
* A run refused before it wrote anything of its own (a :class:`VLPromptError` propagating through :meth:`close`:
  an undecodable image, a bad setting found while building) leaves nothing behind: a directory that this open
  created and that holds only the bookkeeping files (marker, lock, log, ``config.yaml``) is removed again.
* ``metrics.jsonl`` is appended one whole line at a time and rewritten from the resume checkpoint's record on
  resume; temporary files left by a killed write are removed on start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from vlprompt import __version__, fileio
from vlprompt.errors import VLPromptError

log = logging.getLogger("vlprompt")

MARKER = ".vlprompt-run.json"
LOCK = ".lock"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
CONFIG = "config.yaml"
LOG = "log.txt"
#: a trained run's weights and their sidecar (:mod:`vlprompt.engine.weights` reads and writes them)
WEIGHTS = "weights.safetensors"
WEIGHTS_META = "weights.json"
#: the files a run directory holds before the run wrote anything of its own
BOOKKEEPING = (MARKER, LOCK, LOG, CONFIG)


def flatten(d: Any, prefix: str = "") -> Dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: Dict[str, Any] = {}
    for key, value in d.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def first_difference(old: Dict, new: Dict) -> Optional[Tuple[str, Any, Any]]:
    """The first dotted key whose value differs between two identities, with both values."""
    a, b = flatten(old), flatten(new)
    for key in list(a) + [k for k in b if k not in a]:
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            return key, a.get(key, "<absent>"), b.get(key, "<absent>")
    return None


class _Lock:
    """An exclusive advisory lock on ``<run>/.lock`` (fcntl where available, else an O_EXCL lock file)."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: Optional[int] = None

    def acquire(self, run: Path) -> None:
        holder = self._holder()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # no fcntl (Windows): the file's existence is the lock
                os.close(fd)
                fd = self._exclusive(run, holder)
            except OSError:
                os.close(fd)
                who = f"process {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
                raise VLPromptError(
                    f"{run} is in use by {who}; wait for it to finish (two processes never write one run directory)"
                ) from None
            if self._current(fd):
                break
            os.close(fd)  # the holder removed the file between our open and flock: lock the new one
        if holder and (holder.get("pid"), holder.get("host")) != (os.getpid(), socket.gethostname()):
            log.warning(
                "taking over the lock of %s left by process %s on %s, which has ended",
                run,
                holder.get("pid"),
                holder.get("host"),
            )
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        self.fd = fd

    def _exclusive(self, run: Path, holder: Dict) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise VLPromptError(
                f"{run} is locked by process {holder.get('pid')}; if that process has ended, delete {self.path}"
            ) from None

    def _current(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at the lock's path (a finished holder unlinks it)."""
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _holder(self) -> Dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        """Remove the lock file while still holding it, then unlock (a waiting process re-checks the file)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):  # a file system gone read-only: the next holder takes it over
                self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


class _RunLog(logging.FileHandler):
    """The run's ``log.txt``; a failed write (disk full) drops the line instead of printing a traceback — the
    run's next file write reports the problem in one line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class RunDir:
    """A locked run directory whose marker holds ``kind`` and ``identity`` (see the module doc)."""

    def __init__(self, path: Path, kind: str, identity: Dict):
        self.path = Path(path)
        self.kind = kind
        self.identity = identity
        self._lock = _Lock(self.path / LOCK)
        self._handler: Optional[logging.Handler] = None
        self._fresh = False  # opened as a new run (no marker before)
        self._created: Optional[Path] = None  # the outermost folder this open created

    # ------------------------------------------------------------------ checks before any write
    @staticmethod
    def read_marker(path: Path) -> Optional[Dict]:
        marker = Path(path) / MARKER
        if not marker.is_file():
            return None
        try:
            return json.loads(marker.read_text())
        except (OSError, ValueError):
            raise VLPromptError(f"{marker} is damaged; delete that run directory or choose another --out") from None

    @classmethod
    def check(cls, path: Path, kind: str, identity: Dict) -> Optional[Dict]:
        """Refuse ``path`` unless it is absent, empty, or a run of the same kind and identity; returns the existing
        marker (None for a new run). Writes nothing."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise VLPromptError(f"--out {path} is a file; choose a directory path for the run")
        marker = cls.read_marker(path) if path.is_dir() else None
        if marker is None:
            if path.is_dir() and any(path.iterdir()):
                raise VLPromptError(
                    f"--out {path} holds files that are not a vlprompt run; choose an empty or new directory"
                )
            fileio.check_writable(path)
            return None
        if marker.get("kind") != kind:
            raise VLPromptError(
                f"--out {path} holds a `vlprompt {marker.get('kind')}` run, not a {kind} run; choose another --out"
            )
        diff = first_difference(marker.get("identity", {}), identity)
        if diff:
            key, old, new = diff
            raise VLPromptError(
                f"{path} already holds a different run ({key}: {old!r} there, {new!r} now); "
                "choose another --out or delete that folder"
            )
        return marker

    @property
    def done(self) -> bool:
        return (self.path / RESULTS).is_file()

    def results(self) -> Dict:
        path = self.path / RESULTS
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise VLPromptError(f"cannot read {path}: {exc}; delete it to redo the evaluation") from None
        if not isinstance(results, dict) or not isinstance(results.get("accuracy"), (int, float)):
            raise VLPromptError(
                f"{path} is not a vlprompt results file (no accuracy); delete it to redo the evaluation"
            )
        return results

    # ------------------------------------------------------------------ opening
    def open(self, fingerprints: Optional[Dict] = None) -> "RunDir":
        """Create (or re-open) the directory: marker first, then the lock, the log, and clean-up of temporary files
        left by a killed write. ``fingerprints`` (data, backbone) must match those of an earlier attempt."""
        marker = self.check(self.path, self.kind, self.identity)
        if marker is not None and fingerprints and marker.get("fingerprints"):
            diff = first_difference(marker["fingerprints"], fingerprints)
            if diff:
                raise VLPromptError(
                    f"{self.path} was started on different inputs ({diff[0]} changed since); "
                    "choose another --out or delete that folder"
                )
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        self._fresh, self._created = marker is None, (missing[-1] if missing else None)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VLPromptError(
                f"cannot create --out {self.path}: {exc.strerror or exc}; choose a writable path"
            ) from None
        self._lock.acquire(self.path)
        try:
            fileio.write_json(
                self.path / MARKER,
                {
                    "kind": self.kind,
                    "vlprompt": __version__,
                    "identity": self.identity,
                    "fingerprints": fingerprints or (marker or {}).get("fingerprints"),
                },
            )
        except OSError as exc:
            self._lock.release()
            raise VLPromptError(f"cannot write to --out {self.path}: {exc.strerror or exc}") from None
        for stale in self.path.rglob(".*.tmp-*"):
            stale.unlink(missing_ok=True)
        handler = _RunLog(self.path / LOG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("vlprompt")
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:  # --verbose keeps DEBUG
            logger.setLevel(logging.INFO)
        self._handler = handler
        return self

    def close(self, error: Optional[BaseException] = None) -> None:
        """Release the log and the lock; ``error`` (default: the exception propagating, when called from a
        ``finally`` clause) decides whether a refused new run is removed (see the module doc)."""
        if self._handler is not None:
            logging.getLogger("vlprompt").removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        refused = isinstance(error if error is not None else sys.exc_info()[1], VLPromptError)
        own = refused and self._fresh and {p.name for p in self.path.iterdir()} <= set(BOOKKEEPING)
        if own:
            for name in BOOKKEEPING:
                if name != LOCK:
                    (self.path / name).unlink(missing_ok=True)
        self._lock.release()
        if own and self._created is not None:
            with contextlib.suppress(OSError):
                for folder in (self.path, *self.path.parents):
                    folder.rmdir()
                    if folder == self._created:
                        break

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close(exc[1])

    # ------------------------------------------------------------------ files
    def append_metrics(self, record: Dict) -> None:
        fileio.append_jsonl(self.path / METRICS, record)

    def rewrite_metrics(self, records: Iterable[Dict]) -> None:
        """Replace ``metrics.jsonl`` by ``records`` (atomic): on resume, exactly the epochs the checkpoint holds."""
        fileio.write_text(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in records))

    def metrics(self) -> List[Dict]:
        path = self.path / METRICS
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_results(self, results: Dict) -> None:
        fileio.write_json(self.path / RESULTS, results)
