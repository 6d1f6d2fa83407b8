"""The ``slurm`` launcher: each batch of a sweep is one submitit job array.

Every array task runs one job in-process (:func:`vlprompt.sweep.executors.run_in_process`). The job function is
*checkpointable*: on preemption or time-out submitit requeues it with the same arguments, and the run directory
resumes itself from its last checkpoint. ``cluster="local"`` runs the same code path with submitit's local
executor (one process per task on this machine) — how the tests exercise it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

from vlprompt.errors import VLPromptError
from vlprompt.sweep.executors import Command, attempt_header, package_root
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.layout import SWEEP_DIR, RunKey
from vlprompt.sweep.progress import Progress

CLUSTERS = ("slurm", "local")


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise VLPromptError(
            "--launcher slurm needs submitit: pip install 'vlprompt[slurm]' (or pip install submitit)"
        ) from None
    return submitit


def parse_minutes(text: str) -> int:
    """``--slurm-time`` in Slurm's formats (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) as whole
    minutes (seconds round up)."""
    days, dash, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in [*parts, *([days] if dash else [])]) or len(parts) > 3:
        raise VLPromptError(f"--slurm-time {text!r}: use Slurm's format, e.g. 240 (minutes), 04:00:00 or 1-00:00:00")
    values = [int(p) for p in parts]
    if dash:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (values + [0, 0])[:3]
    elif len(values) == 3:  # H:M:S
        hours, minutes, seconds = values
    elif len(values) == 2:  # M:S
        hours, minutes, seconds = 0, *values
    else:  # M
        hours, minutes, seconds = 0, values[0], 0
    return int(days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0)


@dataclass
class SlurmLauncher:
    root: Path
    command: Command
    partition: Optional[str] = None
    gpus_per_job: int = 1
    cpus_per_job: Optional[int] = None
    time: str = "24:00:00"
    array_parallelism: int = 256
    cluster: str = "slurm"

    def __post_init__(self):  # bad flags fail before anything is submitted
        if self.cluster not in CLUSTERS:
            raise VLPromptError(f"--slurm-cluster {self.cluster!r}: choose one of {', '.join(CLUSTERS)}")
        parse_minutes(self.time)

    @property
    def workers(self) -> int:
        return self.array_parallelism

    def executor(self):
        submitit = import_submitit()
        executor = submitit.AutoExecutor(folder=Path(self.root) / SWEEP_DIR / "submitit" / "%j", cluster=self.cluster)
        params = {
            "name": "vlprompt-sweep",
            "timeout_min": parse_minutes(self.time),
            "gpus_per_node": self.gpus_per_job,
            "cpus_per_task": self.cpus_per_job,
            "nodes": 1,
            "tasks_per_node": 1,
            "slurm_partition": self.partition,
            "slurm_array_parallelism": self.array_parallelism,
        }
        root = package_root()
        if root is not None:  # the workers import this vlprompt (a source checkout), not another installed copy
            params[f"{self.cluster}_setup"] = [f"export PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}"]
        executor.update_parameters(**params)
        return executor

    def run(self, batch: Sequence[Job], progress: Progress) -> Dict[RunKey, int]:
        from vlprompt.sweep.slurm_job import SweepJob  # imports submitit

        executor = self.executor()
        for job in batch:
            job.log_path.parent.mkdir(parents=True, exist_ok=True)
        submitted = executor.map_array(
            SweepJob(self.command), [list(job.argv) for job in batch], [str(job.log_path) for job in batch]
        )
        started = time.monotonic()
        for job in batch:
            progress.started(job)
        pending = dict(zip([job.key for job in batch], zip(batch, submitted)))
        codes: Dict[RunKey, int] = {}
        poll_s = 0.5 if self.cluster == "local" else 15.0
        try:
            while pending:
                for key, (job, sjob) in list(pending.items()):
                    if sjob.done():
                        del pending[key]
                        codes[key] = self._exit_code(job, sjob)
                        progress.finished(job, codes[key] == 0 and job.done, time.monotonic() - started)
                time.sleep(poll_s)
        finally:
            for _, sjob in pending.values():  # interrupted: do not leave jobs writing into the run directories
                sjob.cancel(check=False)
        return codes

    @staticmethod
    def _exit_code(job: Job, sjob) -> int:
        try:
            return int(sjob.result())
        except Exception as exc:  # the task died (killed, out of memory, time limit without requeue)
            with open(job.log_path, "a") as fh:
                fh.write(attempt_header(job.argv))
                fh.write(f"submitit job {sjob.job_id} failed: {exc}\n")
            return 1
