"""A sweep's jobs: argv lists for the ``vlprompt`` CLI, one building function per job kind.

A :class:`SweepSpec` (protocol, methods, datasets, seeds, shots, backbone, ``--set`` values) expands into
jobs: one training run per method × dataset × shots × seed, each followed by its evaluations (base-to-new:
the new classes; cross-dataset / domain generalisation: the targets). Zero-shot CLIP (method ``zeroshot``)
has nothing to train: its "training" run and its evaluations are ``vlprompt zeroshot`` runs on the same label
spaces, with no dependencies. An evaluation job depends on its training run. Each training run resolves the
published settings of its method for the protocol and dataset itself (``vlprompt train --protocol``, see
:mod:`vlprompt.presets`); cross-dataset and domain generalisation share the same source runs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from vlprompt.errors import VLPromptError
from vlprompt.protocols import Protocol, get_protocol
from vlprompt.sweep.layout import RESULTS, TRAIN, RunKey, eval_kind

ZEROSHOT = "zeroshot"


@dataclass
class SweepSpec:
    protocol: str
    methods: Tuple[str, ...]
    datasets: Tuple[str, ...]
    seeds: Tuple[int, ...]
    shots: Tuple[int, ...]
    root: Path
    targets: Tuple[str, ...] = ()
    data_root: Optional[str] = None
    backbone: Optional[str] = None
    pretrained: Optional[str] = None
    sets: Tuple[str, ...] = ()
    num_workers: int = 0
    #: flags for every job (--template, --classnames, --verbose); zero-shot jobs' --templates
    job_args: Tuple[str, ...] = ()
    templates: Optional[str] = None

    @property
    def proto(self) -> Protocol:
        return get_protocol(self.protocol)


@dataclass(frozen=True)
class Job:
    """One run directory to produce: ``vlprompt <argv>``, after the jobs in ``deps`` have finished; it is done
    when the run directory holds ``marker`` (an analysis job writes another file than ``results.json``)."""

    key: RunKey
    root: Path
    argv: Tuple[str, ...]
    deps: Tuple[RunKey, ...] = field(default=())
    marker: str = RESULTS

    @property
    def path(self) -> Path:
        return self.key.path(self.root)

    @property
    def log_path(self) -> Path:
        return self.key.log_path(self.root)

    @property
    def command(self) -> str:
        return self.argv[0]

    @property
    def done(self) -> bool:
        return (self.path / self.marker).exists()

    def command_line(self) -> str:
        return "vlprompt " + " ".join(shlex.quote(a) for a in self.argv)


def normalize_method(method: str) -> str:
    """``" CoOp + DePT"`` -> ``coop+dept`` (the spelling used in folders and tables); an empty part stays, for
    :func:`~vlprompt.task.parse_method` to refuse (``coop+`` is not ``coop``)."""
    return "+".join(p.strip().lower() for p in method.split("+"))


def _data_args(spec: SweepSpec, dataset: str) -> List[str]:
    args = ["--dataset", dataset]
    if spec.data_root:
        args += ["--data-root", str(spec.data_root)]
    if spec.num_workers:
        args += ["--num-workers", str(spec.num_workers)]
    return args


def _backbone_args(spec: SweepSpec) -> List[str]:
    args = ["--backbone", spec.backbone] if spec.backbone else []
    return args + (["--pretrained", spec.pretrained] if spec.pretrained else [])


def train_job(spec: SweepSpec, method: str, dataset: str, shots: int, seed: int) -> Job:
    """``vlprompt train`` on the protocol's training label space (zero-shot CLIP: ``vlprompt zeroshot``)."""
    proto = spec.proto
    key = RunKey(proto.folder, method, dataset, shots, seed, TRAIN)
    if method == ZEROSHOT:
        return zeroshot_job(spec, key, dataset, proto.subsample)
    argv = ["train", "--method", method, *_data_args(spec, dataset)]
    argv += ["--shots", str(shots), "--seed", str(seed), "--subsample", proto.subsample]
    argv += _backbone_args(spec) + ["--out", str(key.path(spec.root))]
    argv += ["--protocol", proto.preset]  # dg evaluates the xd source runs
    for pair in spec.sets:
        argv += ["--set", pair]
    return Job(key, Path(spec.root), tuple(argv + list(spec.job_args)))


def eval_job(spec: SweepSpec, train: Job, target: str) -> Job:
    """``vlprompt eval`` of a training run on ``target`` (``new``: the new classes of its own dataset)."""
    key = replace(train.key, kind=eval_kind(target))
    dataset, subsample = (train.key.dataset, "new") if target == "new" else (target, "all")
    if train.key.method == ZEROSHOT:
        return zeroshot_job(spec, key, dataset, subsample)
    argv = ["eval", "--run", str(train.path), *_data_args(spec, dataset), "--subsample", subsample]
    argv += ["--out", str(key.path(spec.root)), *spec.job_args]
    return Job(key, Path(spec.root), tuple(argv), deps=(train.key,))


def zeroshot_job(spec: SweepSpec, key: RunKey, dataset: str, subsample: str) -> Job:
    """``vlprompt zeroshot`` on a label space (``--set`` overrides are for training runs and do not apply)."""
    argv = ["zeroshot", *_data_args(spec, dataset), "--subsample", subsample, *_backbone_args(spec)]
    argv += ["--out", str(key.path(spec.root)), *spec.job_args]
    if spec.templates:
        argv += ["--templates", spec.templates]
    return Job(key, Path(spec.root), tuple(argv))


def plan(spec: SweepSpec) -> List[Job]:
    """Every job of the sweep, each training run followed by its evaluations."""
    from vlprompt.data import DATASETS
    from vlprompt.task import parse_method

    proto = spec.proto
    for method in spec.methods:
        parse_method(method)  # unknown names fail here, once, not in every job
    for name in (*spec.datasets, *(t for t in spec.targets if t != "new")):
        DATASETS.get(name)
    if not spec.methods or not spec.datasets or not spec.seeds:
        raise VLPromptError("a sweep needs at least one of each: --methods, --datasets, --seeds")
    jobs: List[Job] = []
    for method in spec.methods:
        # zero-shot CLIP has no shots to vary: the few-shot protocol shows it at 0 shots
        shots_list = (0,) if method == ZEROSHOT and proto.zeroshot_at_zero_shots else spec.shots
        for dataset in spec.datasets:
            for shots in shots_list:
                for seed in spec.seeds:
                    train = train_job(spec, method, dataset, shots, seed)
                    jobs.append(train)
                    jobs.extend(eval_job(spec, train, target) for target in spec.targets)
    return jobs


def states(jobs: Sequence[Job]) -> Dict[RunKey, str]:
    """done (results.json exists) / resume (started before: the run resumes) / pending / blocked (waits for a
    training run that is not done)."""
    done = {job.key for job in jobs if job.done}
    result = {}
    for job in jobs:
        if job.key in done:
            result[job.key] = "done"
        elif any(dep not in done for dep in job.deps):
            result[job.key] = "blocked"
        else:
            result[job.key] = "resume" if job.path.exists() else "pending"
    return result
