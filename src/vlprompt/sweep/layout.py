"""The run-directory layout of a sweep — the one place that knows it.

Every job of a sweep is an ordinary run directory::

    <root>/<folder>/<method>/<dataset>/shots<K>/seed<S>/<kind>/

* ``folder``: the protocol's folder (``fewshot``, ``b2n``, ``xd``; cross-dataset and domain-generalisation
  evaluations share their ImageNet source runs, so both live under ``xd``);
* ``method``: the method string with ``+`` written as ``_`` (``coop+dept`` -> ``coop_dept``; component names
  never contain ``_``);
* ``dataset``: the dataset the run trained on (the source, for cross-dataset and domain generalisation);
* ``kind``: ``train`` (the training run; its own test result is the accuracy on the label space it was trained
  on) or ``eval-<target>`` (the trained run evaluated on ``<target>``: ``new`` = the new classes of the same
  dataset, otherwise another dataset).

A run is finished when its ``results.json`` exists. The run directory holds only the run's own files (a run
directory accepts no foreign files); the sweep appends each attempt's console output to
``<root>/.sweep/logs/<folder>/.../<kind>.log`` (:meth:`RunKey.log_path`), and submitit's bookkeeping also
lives under ``<root>/.sweep``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from vlprompt.engine.rundir import RESULTS

SWEEP_DIR = ".sweep"
TRAIN = "train"
EVAL_PREFIX = "eval-"


def method_folder(method: str) -> str:
    """``coop+dept`` -> ``coop_dept`` (a safe folder name, as in DePT's config keys)."""
    return method.replace("+", "_")


def method_from_folder(folder: str) -> str:
    """The method of a sweep folder (:func:`method_folder`'s inverse): its ``_``-separated parts joined back into the
    registered component names, longest first (``tip_adapter_f_dept`` -> ``tip_adapter_f+dept``); a folder of
    unregistered names splits at every ``_``."""
    from vlprompt.registry import ADDONS, LEARNERS
    from vlprompt.task.composition import aliases

    names = set(LEARNERS.names()) | set(ADDONS.names()) | set(aliases())
    parts = folder.split("_")

    def split(start: int) -> Optional[list]:
        if start == len(parts):
            return []
        for stop in range(len(parts), start, -1):
            name = "_".join(parts[start:stop])
            rest = split(stop) if name in names else None
            if rest is not None:
                return [name, *rest]
        return None

    found = split(0)
    return "+".join(found) if found else folder.replace("_", "+")


def eval_kind(target: str) -> str:
    """The kind of the evaluation of a trained run on ``target`` (``new`` or a dataset name)."""
    return f"{EVAL_PREFIX}{target}"


@dataclass(frozen=True)
class RunKey:
    """Where one job's run directory is: the coordinates of the layout above."""

    folder: str
    method: str
    dataset: str
    shots: int
    seed: int
    kind: str

    @property
    def relpath(self) -> str:
        return (
            f"{self.folder}/{method_folder(self.method)}/{self.dataset}/shots{self.shots}/seed{self.seed}/{self.kind}"
        )

    def path(self, root: Path) -> Path:
        return Path(root) / self.relpath

    def log_path(self, root: Path) -> Path:
        """The sweep's log of this job's attempts (outside the run directory, which holds only the run's files)."""
        return Path(root) / SWEEP_DIR / "logs" / f"{self.relpath}.log"

    @property
    def target(self) -> Optional[str]:
        """``new`` / the target dataset of an evaluation run; None for a training run."""
        return self.kind[len(EVAL_PREFIX) :] if self.kind.startswith(EVAL_PREFIX) else None


def parse_relpath(relpath: str) -> Optional[RunKey]:
    """The inverse of :attr:`RunKey.relpath`; None for a path that is not a run directory of the layout."""
    parts = Path(relpath).parts
    if len(parts) != 6 or not parts[3].startswith("shots") or not parts[4].startswith("seed"):
        return None
    try:
        shots, seed = int(parts[3][5:]), int(parts[4][4:])
    except ValueError:
        return None
    return RunKey(parts[0], method_from_folder(parts[1]), parts[2], shots, seed, parts[5])


def finished_runs(root: Path) -> Iterator[RunKey]:
    """The keys of every finished run directory under ``root`` (those holding a ``results.json``)."""
    root = Path(root)
    for results in sorted(root.glob(f"*/*/*/shots*/seed*/*/{RESULTS}")):
        key = parse_relpath(results.parent.relative_to(root).as_posix())
        if key is not None and key.folder != SWEEP_DIR:
            yield key
