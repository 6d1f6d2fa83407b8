"""Where a sweep's jobs run: in this process, in parallel worker processes, or on Slurm via submitit.

Every launcher gets a batch of independent jobs (their dependencies are done), runs them, reports each start
and finish to the progress reporter and returns each job's exit status. A job's console output is appended to
the job's log under ``<root>/.sweep/logs/`` (:meth:`~vlprompt.sweep.layout.RunKey.log_path`), one header line
per attempt.

The sweep layer does not import :mod:`vlprompt.cli`: who starts a sweep gives the launcher the in-process entry
point of a job's command line (:data:`Command`, ``vlprompt.cli.main``); worker processes run ``python -m vlprompt``.

* ``local``, one job at a time: the command line's entry point in this process (no start-up cost per job);
* ``local`` with ``--jobs N`` or ``--devices``: N ``python -m vlprompt …`` worker processes; with ``--devices
  0,1,…`` each worker slot owns one device through ``CUDA_VISIBLE_DEVICES`` (as DePT's ``parallel_runner``);
* ``slurm``: a submitit job array per batch (:mod:`vlprompt.sweep.slurm`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from vlprompt.sweep.jobs import Job
from vlprompt.sweep.layout import RunKey
from vlprompt.sweep.progress import Progress

ATTEMPT = "==== vlprompt sweep job "
#: the in-process entry point of a job's ``vlprompt`` command line: ``argv -> exit status`` (``vlprompt.cli.main``)
Command = Callable[[List[str]], int]
INTERRUPTED = 130


def attempt_header(argv: Sequence[str]) -> str:
    return f"{ATTEMPT}{time.strftime('%Y-%m-%d %H:%M:%S')}: vlprompt {' '.join(argv)}\n"


PROGRESS_BAR = re.compile(r"^(?P<desc>[^|]*?):\s+\d+%\|")


def log_tail(path: Path, lines: int = 15) -> List[str]:
    """The last lines of the latest attempt in a job log; a progress bar's redraws count as its last one."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    text = text[text.rfind(ATTEMPT) :] if ATTEMPT in text else text
    rows: List[str] = []
    for row in (r.split("\r")[-1].rstrip() for r in text.split("\n")[1:]):
        bar, previous = PROGRESS_BAR.match(row), PROGRESS_BAR.match(rows[-1]) if rows else None
        if bar and previous and bar["desc"] == previous["desc"]:
            rows[-1] = row
        elif row.strip():
            rows.append(row)
    return rows[-lines:]


def run_in_process(argv: Sequence[str], log_path: Path, command: Command) -> int:
    """``command(argv)`` with stdout and stderr appended to ``log_path``; returns the exit status.

    Unexpected exceptions are logged with their traceback and count as a failure (status 1); log handlers a
    failed run left on the ``vlprompt`` logger are removed so they do not capture the next job's lines."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("vlprompt")
    handlers = list(logger.handlers)
    with open(log_path, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        fh.write(attempt_header(argv))
        fh.flush()
        try:
            code = command(list(argv))
        except SystemExit as exc:  # the command line parser rejected the arguments
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            for handler in [h for h in logger.handlers if h not in handlers]:
                logger.removeHandler(handler)
                handler.close()
    return int(code)


def child_env(device: Optional[str] = None) -> Dict[str, str]:
    """The environment of a worker process: this process's, with this vlprompt importable first (a source
    checkout run with PYTHONPATH=src must not fall back to another installed copy) and the worker's device."""
    env = dict(os.environ)
    root = package_root()
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    return env


def package_root() -> Optional[str]:
    """The folder holding the ``vlprompt`` package, unless it is an ordinary site-packages folder."""
    import vlprompt

    root = Path(vlprompt.__file__).resolve().parents[1]
    return None if root.name in ("site-packages", "dist-packages") else str(root)


@dataclass
class LocalLauncher:
    """In-process (``command``) when ``jobs == 1`` and no devices are given; else a pool of worker processes."""

    command: Command
    jobs: int = 1
    devices: Tuple[str, ...] = ()
    poll_s: float = 0.2

    @property
    def workers(self) -> int:
        return self.jobs if self.jobs > 1 else max(1, len(self.devices))

    def run(self, batch: Sequence[Job], progress: Progress) -> Dict[RunKey, int]:
        if self.workers == 1 and not self.devices:
            return self._in_process(batch, progress)
        return self._pool(batch, progress)

    def _in_process(self, batch: Sequence[Job], progress: Progress) -> Dict[RunKey, int]:
        codes = {}
        for job in batch:
            progress.started(job)
            start = time.monotonic()
            code = run_in_process(job.argv, job.log_path, self.command)
            if code == INTERRUPTED:  # Ctrl-C inside the job: stop the sweep, as a terminal user expects
                raise KeyboardInterrupt
            codes[job.key] = code
            progress.finished(job, code == 0 and job.done, time.monotonic() - start)
        return codes

    def _pool(self, batch: Sequence[Job], progress: Progress) -> Dict[RunKey, int]:
        devices = self.devices or (None,)
        slots: List[Optional[str]] = [devices[i % len(devices)] for i in range(self.workers)]
        queue = list(batch)
        running: Dict[int, Tuple[Job, subprocess.Popen, float]] = {}
        codes: Dict[RunKey, int] = {}
        try:
            while queue or running:
                for slot in range(len(slots)):
                    if slot not in running and queue:
                        job = queue.pop(0)
                        running[slot] = (job, self._start(job, slots[slot]), time.monotonic())
                        progress.started(job)
                for slot, (job, proc, start) in list(running.items()):
                    if proc.poll() is not None:
                        del running[slot]
                        codes[job.key] = proc.returncode
                        progress.finished(job, proc.returncode == 0 and job.done, time.monotonic() - start)
                time.sleep(self.poll_s)
        finally:
            for _, proc, _ in running.values():  # interrupted: stop the workers we started
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        return codes

    @staticmethod
    def _start(job: Job, device: Optional[str]) -> subprocess.Popen:
        """``python -m vlprompt <argv>`` with its output appended to the job log (the worker keeps the file)."""
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log_path, "a") as log:
            log.write(attempt_header(job.argv))
            log.flush()
            return subprocess.Popen(
                [sys.executable, "-m", "vlprompt", *job.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(device),
            )
