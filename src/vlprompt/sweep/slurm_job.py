"""The function a submitit task runs: one sweep job, requeued on preemption (imports submitit)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import submitit

from vlprompt.sweep.executors import Command, run_in_process


class SweepJob(submitit.helpers.Checkpointable):
    """``vlprompt <argv>`` (``command``, the command line's entry point) in the task's process, its output appended
    to ``log_path``.

    Checkpointable: on preemption or time-out submitit requeues the call with the same arguments; the run
    directory then resumes from its last checkpoint (``vlprompt train`` re-run with the same command)."""

    def __init__(self, command: Command):
        self.command = command

    def __call__(self, argv: Sequence[str], log_path: str) -> int:
        return run_in_process(argv, Path(log_path), self.command)
