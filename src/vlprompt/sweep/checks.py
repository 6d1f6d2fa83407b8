"""A sweep's plan, checked once before any job starts (nothing is written by the checks).

* The root (``--root``) is a folder that is absent, empty, or a sweep's: it holds only the protocol folders, the
  sweep's bookkeeping (``.sweep``), the default figure folder (``plots``) and files vlprompt wrote there
  (:mod:`vlprompt.outputs`). A file, a run directory or a folder holding anything else is refused.
* Every job's command line is parsed and resolved as the command itself would (method string, ``--set`` keys and
  values, templates, the zero-shot ``--templates`` file, a class-names file): a bad value is one line here, not
  one failure per job.
* A job whose run directory exists must have the planned run identity — the check ``vlprompt train`` (``eval``,
  ``zeroshot``) applies to its ``--out`` (:meth:`vlprompt.engine.rundir.RunDir.check`). A changed plan (another
  ``--set``, ``--backbone``, template) is refused naming the job and the first difference; the finished results of
  another plan are never reported as done. An evaluation holding results while its training run is not finished
  (the training run was deleted) is refused too: its results would belong to a training run that no longer exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Sequence, Tuple

from vlprompt.engine.rundir import MARKER, RunDir, first_difference
from vlprompt.errors import VLPromptError
from vlprompt.protocols import PROTOCOLS
from vlprompt.sweep.jobs import Job, SweepSpec
from vlprompt.sweep.layout import SWEEP_DIR

#: the folder ``vlprompt plot`` writes into by default
PLOTS = "plots"


def check_root(root: Path) -> None:
    """Refuse a ``--root`` that cannot be a sweep folder (see the module doc)."""
    from vlprompt import fileio, outputs

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise VLPromptError(f"--root {root} is a file; give a folder for the sweep")
    if not root.is_dir():
        fileio.check_writable(root, "--root")
        return
    if (root / MARKER).exists():
        raise VLPromptError(
            f"--root {root} is a vlprompt run directory, not a sweep folder; choose an empty or new --root"
        )
    allowed = {p.folder for p in PROTOCOLS.values()} | {SWEEP_DIR, PLOTS, outputs.SIDECAR}
    for entry in sorted(root.iterdir()):
        if entry.name in allowed or (entry.is_file() and outputs.owned(entry, str(root.resolve()))):
            continue
        raise VLPromptError(
            f"--root {root} holds {entry.name}, which is not part of a vlprompt sweep; choose an empty or new "
            "--root, or the --root of an earlier sweep"
        )


def _refuse(spec: SweepSpec, job: Job, problem: str) -> VLPromptError:
    return VLPromptError(
        f"--root {spec.root}: {job.key.relpath} {problem}; run the sweep with the settings it was made with, "
        f"choose another --root, or delete {job.path} to redo it"
    )


def check_existing(spec: SweepSpec, job: Job, kind: str, identity: Dict) -> None:
    """Refuse the run directory of ``job`` unless it is absent or a run of the planned kind and identity."""
    path = job.path
    if not path.exists():
        return
    if not path.is_dir():
        raise VLPromptError(f"--root {spec.root}: {path} is a file where the sweep puts a run directory; move it away")
    marker = RunDir.read_marker(path)
    if marker is None:
        if any(path.iterdir()):
            raise VLPromptError(f"--root {spec.root}: {path} holds files that are not a vlprompt run; move them away")
        return
    if marker.get("kind") != kind:
        raise _refuse(spec, job, f"holds a `vlprompt {marker.get('kind')}` run, not the planned {kind} run")
    diff = first_difference(_same_sweep(spec, job, marker.get("identity", {})), identity)
    if diff:
        key, old, new = diff
        raise _refuse(spec, job, f"was run with other settings ({key}: {old!r} there, {new!r} now)")


def _same_sweep(spec: SweepSpec, job: Job, recorded: Dict) -> Dict:
    """An evaluation's recorded identity with its source run read inside this sweep: a sweep folder that was moved
    or copied records its training runs at the old place, under the same path relative to the root."""
    source, deps = recorded.get("source"), job.deps
    if job.command != "eval" or not isinstance(source, str) or len(deps) != 1:
        return recorded
    relpath = deps[0].relpath
    if Path(source).as_posix().endswith("/" + relpath):
        return {**recorded, "source": str(deps[0].path(spec.root).resolve())}
    return recorded


#: ``(kind, identity)`` of the run directory a job would write, resolved as its command would resolve it (bad
#: flags and settings fail in it); given by the command line, which owns the commands' parsing
IdentityOf = Callable[[Job], Tuple[str, Dict]]


def check_plan(spec: SweepSpec, jobs: Sequence[Job], identity_of: IdentityOf) -> None:
    """Check the whole plan once (see the module doc); raises the first problem as a one-line error."""
    from vlprompt.data.overrides import read_classnames, read_templates

    check_root(spec.root)
    if spec.templates not in (None, "single", "ensemble"):
        read_templates(spec.templates)
    if "--classnames" in spec.job_args:
        read_classnames(spec.job_args[spec.job_args.index("--classnames") + 1])
    done = {job.key for job in jobs if job.done}
    for job in jobs:
        if job.command == "eval":
            if job.path.exists() and job.done and not all(dep in done for dep in job.deps):
                train = next(j for j in jobs if j.key in job.deps)
                raise VLPromptError(
                    f"--root {spec.root}: {job.key.relpath} holds the results of a training run that is not "
                    f"finished ({train.key.relpath}); delete {job.path} to evaluate the new training run"
                )
            if not (job.path.exists() and all(dep in done for dep in job.deps)):
                continue  # its training run does not exist yet: the eval command checks the folder itself
        kind, identity = identity_of(job)
        check_existing(spec, job, kind, identity)
