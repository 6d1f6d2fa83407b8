"""The training runs of a sweep folder that a sweep-wide analysis visits, and its jobs run like a sweep's.

An analysis of a sweep (``vlprompt analyze low-norm|feature-shift SWEEP_ROOT``) is one ``vlprompt`` command per
finished training run, written next to it in the sweep layout (``.../seed<S>/<analysis kind>/``, see
:mod:`vlprompt.sweep.layout`). The jobs go through the sweep's runner and launchers
(:func:`vlprompt.sweep.run_sweep`): a job whose result file exists is never run again (so a re-run computes
nothing), ``--jobs N`` / ``--devices`` run them in parallel, failures are reported with the tail of their log
under ``SWEEP_ROOT/.sweep/logs``.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from vlprompt import fileio
from vlprompt.engine.rundir import WEIGHTS_META
from vlprompt.errors import VLPromptError
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.layout import TRAIN, RunKey, finished_runs
from vlprompt.sweep.runner import SweepReport


@dataclass(frozen=True)
class SweepRun:
    """A finished training run of a sweep folder and its ``weights.json`` sidecar."""

    key: RunKey
    root: Path
    meta: Dict

    @property
    def path(self) -> Path:
        return self.key.path(self.root)

    @property
    def tensors(self) -> Dict[str, List[int]]:
        """The trained tensors' shapes by name, without the ``learner.`` prefix of the learner's own."""
        return {k.split(".", 1)[1]: v for k, v in self.meta.get("tensors", {}).items() if k.startswith("learner.")}

    def sibling(self, kind: str) -> RunKey:
        """The key of an analysis of this run (``.../seed<S>/<kind>``)."""
        return replace(self.key, kind=kind)

    def data_args(self) -> List[str]:
        """The data flags that test the run on the label space and prompts it was trained with."""
        data = (self.meta.get("run_config") or {}).get("data") or {}
        args = ["--dataset", data.get("dataset") or self.key.dataset]
        for flag, name in (("--data-root", "data_root"), ("--split-file", "split_file"), ("--template", "template"),
                           ("--classnames", "classnames_file")):  # fmt: skip
            if data.get(name):
                args += [flag, str(data[name])]
        return args + ["--subsample", data.get("subsample") or "all", "--seed", str(data.get("seed", self.key.seed))]


def training_runs(root: Path, folder: Optional[str] = None) -> List[SweepRun]:
    """Every finished training run under ``root`` (only protocol folder ``folder`` when given)."""
    root = Path(root)
    if not root.is_dir():
        raise VLPromptError(f"{root} is not a folder: pass the --root of a `vlprompt sweep`")
    runs = []
    for key in finished_runs(root):
        sidecar = key.path(root) / WEIGHTS_META
        if key.kind == TRAIN and (folder is None or key.folder == folder) and sidecar.is_file():
            runs.append(SweepRun(key, root, fileio.read_json(sidecar)))
    return runs


def launcher(command, jobs: int = 1, devices: Sequence[str] = ()):
    """The sweep's local launcher: ``command(argv)`` (the command line's entry point) in this process, or
    ``jobs`` worker processes / one per device."""
    from vlprompt.sweep.executors import LocalLauncher

    if jobs < 1:
        raise VLPromptError(f"--jobs {jobs}: give at least 1")
    return LocalLauncher(command, jobs=jobs, devices=tuple(devices))


def run_jobs(jobs: Sequence[Job], workers, quiet: bool = False) -> SweepReport:
    """Run the jobs not done yet with launcher ``workers`` (through the sweep runner); prints the sweep report
    on stderr."""
    from vlprompt.sweep.progress import Progress
    from vlprompt.sweep.runner import run_sweep

    progress = Progress(len(jobs), sum(j.done for j in jobs), min(workers.workers, max(1, len(jobs))),
                        stream=io.StringIO() if quiet else None)  # fmt: skip
    report = run_sweep(jobs, workers, progress)
    if not quiet or not report.ok:
        print("\n".join(report.lines()), file=sys.stderr)
    return report


def parse_devices(text: Optional[str]) -> Tuple[str, ...]:
    return tuple(d.strip() for d in text.split(",") if d.strip()) if text else ()
