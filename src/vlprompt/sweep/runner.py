"""Run a sweep: skip finished jobs, run the rest in dependency stages, keep going past failures, report.

* A job is done when its run directory holds ``results.json``; done jobs are never run again, so re-running
  the same sweep command finishes only what is missing. The plan is checked first
  (:func:`vlprompt.sweep.checks.check_plan`): a run directory made by another plan is refused, so "done" is
  always the planned run's result. An interrupted training run resumes from its
  checkpoint (the run directory resumes itself when re-run with the same command); a failed job runs again.
* Stages: every job whose dependencies are done runs in the current stage (first the training runs and
  zero-shot evaluations, then the evaluations of the trained runs). A failed job never stops the sweep; the
  jobs that depend on it are skipped and reported as blocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Protocol, Sequence, Tuple

from vlprompt.sweep.executors import log_tail
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.layout import RunKey
from vlprompt.sweep.progress import Progress


class Launcher(Protocol):
    workers: int

    def run(self, batch: Sequence[Job], progress: Progress) -> Dict[RunKey, int]: ...


@dataclass
class SweepReport:
    jobs: List[Job]
    done_before: List[Job] = field(default_factory=list)
    completed: List[Job] = field(default_factory=list)
    failed: List[Tuple[Job, int]] = field(default_factory=list)
    blocked: List[Job] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked

    def lines(self, tail: int = 15) -> List[str]:
        out = [
            f"sweep: {len(self.jobs)} jobs: {len(self.done_before)} already done, {len(self.completed)} ran, "
            f"{len(self.failed)} failed, {len(self.blocked)} blocked by a failed job"
        ]
        for job, code in self.failed:
            out.append(f"\nFAILED (exit {code}): {job.key.relpath}\n  {job.command_line()}")
            out.append(f"  log: {job.log_path}")
            out.extend(f"  | {line}" for line in log_tail(job.log_path, tail))
        if self.blocked:
            out.append("\nblocked (their training run failed): " + ", ".join(j.key.relpath for j in self.blocked))
        if not self.ok:
            out.append("\nfix the cause and re-run the same command: finished jobs are skipped")
        return out


def run_sweep(jobs: Sequence[Job], launcher: Launcher, progress: Progress) -> SweepReport:
    report = SweepReport(list(jobs))
    done = {job.key for job in jobs if job.done}
    report.done_before = [job for job in jobs if job.key in done]
    failed: Dict[RunKey, int] = {}
    remaining = [job for job in jobs if job.key not in done]
    progress.expect(remaining)
    try:
        while remaining:
            ready = [job for job in remaining if all(dep in done for dep in job.deps)]
            blocked = [job for job in remaining if any(dep in failed for dep in job.deps)]
            for job in blocked:
                progress.skipped(job, "its training run failed")
            report.blocked += blocked
            if not ready:
                break
            codes = launcher.run(ready, progress)
            for job in ready:
                code = codes.get(job.key, 1)
                if code == 0 and job.done:
                    done.add(job.key)
                    report.completed.append(job)
                else:
                    failed[job.key] = code if code else 1
                    report.failed.append((job, failed[job.key]))
            remaining = [job for job in remaining if job not in ready and job not in blocked]
    finally:
        progress.close()
    return report
