"""The papers' result tables as numbers, from the ``results.json`` of a sweep's run directories.

* base-to-new: per dataset Base (the training run's test accuracy), New (its evaluation on the new classes)
  and H = 2BN/(B+N) of the seed means; the average row is **H of the averaged Base and New** (CoCoOp,
  Zhou et al., CVPR 2022; DePT's result parser), not the mean of the per-dataset H;
* few-shot: per dataset and number of shots K, with the mean over datasets per K;
* cross-dataset / domain generalisation: the source (ImageNet) accuracy and per-target accuracies, averaged
  (plain mean) over the targets.

Each cell is the mean ± standard deviation (population, ``ddof=0``) over the seeds found; a cell also records
how many seeds it has and how many the method has elsewhere (a missing seed shows as ``(2/3)``). Nothing is
parsed from logs.

Only runs of one setting are averaged: the seeds of a cell must have the same run identity (the marker of their
run directories, the seed and the source run's path aside), and a method's table one backbone (name, weights,
architecture, from ``results.json``); otherwise the table is refused naming the runs and the first difference.
A ``results.json`` that does not parse or holds no finite accuracy is refused naming the file.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from vlprompt.engine.rundir import RunDir, first_difference
from vlprompt.errors import VLPromptError
from vlprompt.protocols import BASE_NEW, BENCHMARKS, DG_TARGETS, PROTOCOLS, SHOTS, target_protocol
from vlprompt.sweep.layout import RESULTS, TRAIN, RunKey, finished_runs


def harmonic_mean(base: float, new: float) -> float:
    """H = 2BN / (B + N), the base-to-new summary number."""
    return 0.0 if base + new == 0 else 2 * base * new / (base + new)


AVERAGE = "average"


#: identity keys that differ between the seeds of one cell by design
PER_SEED = ("data.seed", "source")
#: the results.json fields that name the backbone a run used
BACKBONE_FIELDS = ("backbone", "pretrained", "architecture")


@dataclass(frozen=True)
class Result:
    key: RunKey
    accuracy: float
    backbone: Optional[str]
    #: the backbone fields of results.json and the run identity without its per-seed keys (compared, not averaged)
    used: Dict[str, Any] = field(default_factory=dict, compare=False)
    settings: Dict[str, Any] = field(default_factory=dict, compare=False)


def read_result(root: Path, key: RunKey) -> Result:
    """One finished run's result; a damaged or hand-edited ``results.json`` is a one-line error naming it."""
    path = key.path(root) / RESULTS
    fix = "re-run that job (delete its folder) or move the file away"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VLPromptError(f"cannot read {path}: {exc}; {fix}") from None
    accuracy = data.get("accuracy") if isinstance(data, dict) else None
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
        raise VLPromptError(f"{path} holds no finite accuracy ({accuracy!r}); {fix}")
    marker = RunDir.read_marker(key.path(root)) or {}
    settings = {k: v for k, v in (marker.get("identity") or {}).items() if k != "source"}
    settings = {"kind": marker.get("kind"), **settings}
    if isinstance(settings.get("data"), dict):
        settings["data"] = {k: v for k, v in settings["data"].items() if k != "seed"}
    used = {k: data.get(k) for k in BACKBONE_FIELDS}
    return Result(key, float(accuracy), data.get("backbone"), used, settings if marker else {})


def collect(root: Path) -> List[Result]:
    """Every finished run of the sweep folder ``root``."""
    return [read_result(root, key) for key in finished_runs(root)]


def check_one_setting(root: Path, results: Sequence[Result]) -> None:
    """Refuse to average runs of different settings: the seeds of a cell (one run identity but the seed) and the
    runs of one method's table (one backbone)."""
    cells: Dict[Tuple, List[Result]] = {}
    tables: Dict[Tuple, List[Result]] = {}
    for r in results:
        cells.setdefault((r.key.folder, r.key.method, r.key.dataset, r.key.shots, r.key.kind), []).append(r)
        tables.setdefault((r.key.folder, r.key.method), []).append(r)
    for group in cells.values():
        first = group[0]
        for other in group[1:]:
            diff = first_difference(first.settings, other.settings) if first.settings and other.settings else None
            if diff:
                _refuse(root, first, other, "settings", diff)
    for group in tables.values():
        first = group[0]
        for other in group[1:]:
            diff = first_difference(first.used, other.used)
            if diff:
                _refuse(root, first, other, "backbones", diff)


def _refuse(root: Path, a: Result, b: Result, what: str, diff: Tuple[str, Any, Any]) -> None:
    key, x, y = diff
    raise VLPromptError(
        f"{root}: {a.key.relpath} and {b.key.relpath} were run with different {what} ({key}: {x!r} and {y!r}); "
        "a table averages runs of one setting: re-run one of them with the other's settings, or move it away"
    )


@dataclass(frozen=True)
class Value:
    """One table cell: mean (None = missing) and std over seeds (or, in an average row, over datasets)."""

    mean: Optional[float]
    std: Optional[float] = None
    n: int = 0  # seeds found (average row: datasets found)
    expected: int = 0  # seeds the method has (average row: datasets in the table)
    per_seed: Dict[int, float] = field(default_factory=dict)

    @classmethod
    def of_seeds(cls, per_seed: Dict[int, float], expected: int) -> "Value":
        values = [per_seed[s] for s in sorted(per_seed)]
        if not values:
            return cls(None, expected=expected)
        std = statistics.pstdev(values) if len(values) > 1 else None
        return cls(statistics.fmean(values), std, len(values), expected, dict(sorted(per_seed.items())))


MISSING = Value(None)


@dataclass
class Summary:
    """One method's table: ``rows[row][column]``; ``targets`` = the rows averaged into the average row."""

    protocol: str  # fewshot | b2n | xd | dg
    method: str
    backbone: Optional[str]
    shots: Optional[int]  # None for few-shot (its columns are the shots)
    seeds: Tuple[int, ...]
    columns: List[str]
    rows: Dict[str, Dict[str, Value]]
    targets: List[str] = field(default_factory=list)

    @property
    def layout(self) -> str:
        """Its protocol's table layout (:data:`vlprompt.protocols.SHOTS`, ``BASE_NEW``, ``TRANSFER``)."""
        return PROTOCOLS[self.protocol].layout

    def value(self, row: str, column: str) -> Value:
        return self.rows.get(row, {}).get(column, MISSING)


def dataset_order(name: str) -> Tuple[int, int, str]:
    """The published tables' order: the 11 benchmarks, then the ImageNet variants, then anything else."""
    if name in BENCHMARKS:
        return (0, BENCHMARKS.index(name), name)
    if name in DG_TARGETS:
        return (1, DG_TARGETS.index(name), name)
    return (2, 0, name)


def _ordered(names: Iterable[str]) -> List[str]:
    return sorted(set(names), key=dataset_order)


def _per_seed(results: Iterable[Result]) -> Dict[int, float]:
    return {r.key.seed: r.accuracy for r in results}


def _backbone(results: Sequence[Result]) -> Optional[str]:
    return next((r.backbone for r in results if r.backbone), None)


def _mean_of(values: Sequence[Value], expected: int) -> Value:
    """Average row cell: the plain mean of the rows' means (over the rows that have one)."""
    means = [v.mean for v in values if v.mean is not None]
    if not means:
        return Value(None, expected=expected)
    seeds = sorted(set.intersection(*(set(v.per_seed) for v in values if v.mean is not None)))
    per_seed = {s: statistics.fmean(v.per_seed[s] for v in values if v.mean is not None) for s in seeds}
    return Value(statistics.fmean(means), None, len(means), expected, per_seed)


def b2n_summary(protocol: str, results: Sequence[Result], datasets: Sequence[str]) -> Summary:
    """Base / New / H per dataset for one method and shot count; H of the averages in the average row."""
    seeds = tuple(sorted({r.key.seed for r in results}))
    rows: Dict[str, Dict[str, Value]] = {}
    for dataset in datasets:
        base = _per_seed(r for r in results if r.key.dataset == dataset and r.key.kind == TRAIN)
        new = _per_seed(r for r in results if r.key.dataset == dataset and r.key.target == "new")
        b, n = Value.of_seeds(base, len(seeds)), Value.of_seeds(new, len(seeds))
        per_seed_h = {s: harmonic_mean(base[s], new[s]) for s in base if s in new}
        h = Value.of_seeds(per_seed_h, len(seeds))
        mean_h = harmonic_mean(b.mean, n.mean) if b.mean is not None and n.mean is not None else None
        rows[dataset] = {"base": b, "new": n, "H": Value(mean_h, h.std, h.n, h.expected, h.per_seed)}
    complete = [d for d in datasets if rows[d]["H"].mean is not None]
    base = _mean_of([rows[d]["base"] for d in complete], len(datasets))
    new = _mean_of([rows[d]["new"] for d in complete], len(datasets))
    h_seeds = {s: harmonic_mean(base.per_seed[s], new.per_seed[s]) for s in base.per_seed if s in new.per_seed}
    h = harmonic_mean(base.mean, new.mean) if complete else None
    rows[AVERAGE] = {"base": base, "new": new, "H": Value(h, None, len(complete), len(datasets), h_seeds)}
    key = results[0].key
    return Summary(
        protocol, key.method, _backbone(results), key.shots, seeds, ["base", "new", "H"], rows, list(datasets)
    )


def fewshot_summary(protocol: str, results: Sequence[Result], datasets: Sequence[str], shots: Sequence[int]) -> Summary:
    """Accuracy per dataset (rows) and shots (columns), with the mean over datasets per shot count."""
    seeds = tuple(sorted({r.key.seed for r in results}))
    columns = [str(k) for k in shots]
    rows = {
        d: {
            str(k): Value.of_seeds(_per_seed(r for r in results if r.key.dataset == d and r.key.shots == k), len(seeds))
            for k in shots
        }
        for d in datasets
    }
    rows[AVERAGE] = {c: _mean_of([rows[d][c] for d in datasets], len(datasets)) for c in columns}
    key = results[0].key
    return Summary(protocol, key.method, _backbone(results), None, seeds, columns, rows, list(datasets))


def transfer_summary(protocol: str, results: Sequence[Result], targets: Sequence[str]) -> Summary:
    """Source accuracy (the training runs') and per-target accuracy; the average is over the targets."""
    seeds = tuple(sorted({r.key.seed for r in results}))
    sources = _ordered(r.key.dataset for r in results)
    rows = {}
    for source in sources:
        trained = [r for r in results if r.key.dataset == source and r.key.kind == TRAIN]
        rows[source] = {"acc": Value.of_seeds(_per_seed(trained), len(seeds))}
    for t in targets:
        rows[t] = {"acc": Value.of_seeds(_per_seed(r for r in results if r.key.target == t), len(seeds))}
    rows[AVERAGE] = {"acc": _mean_of([rows[t]["acc"] for t in targets], len(targets))}
    key = results[0].key
    return Summary(protocol, key.method, _backbone(results), key.shots, seeds, ["acc"], rows, list(targets))


def summaries(root: Path, protocols: Optional[Sequence[str]] = None) -> List[Summary]:
    """Every method's tables found under ``root``, in protocol order (few-shot, b2n, xd, dg)."""
    results = collect(root)
    check_one_setting(root, results)
    wanted = list(protocols or PROTOCOLS)
    out: List[Summary] = []
    by_folder: Dict[str, List[Result]] = {}
    for r in results:
        by_folder.setdefault(r.key.folder, []).append(r)
    for protocol in (p for p in PROTOCOLS.values() if p.name in wanted):
        runs = by_folder.get(protocol.folder, [])
        if protocol.layout == SHOTS:
            if not runs:
                continue
            datasets = _ordered(r.key.dataset for r in runs)
            shots = sorted({r.key.shots for r in runs})
            for method in _methods(runs):
                out.append(fewshot_summary(protocol.name, [r for r in runs if r.key.method == method], datasets, shots))
        elif protocol.layout == BASE_NEW:
            for shots in sorted({r.key.shots for r in runs}):
                group = [r for r in runs if r.key.shots == shots]
                datasets = _ordered(r.key.dataset for r in group)
                out += [
                    b2n_summary(protocol.name, [r for r in group if r.key.method == m], datasets)
                    for m in _methods(group)
                ]
        else:  # the transfer protocols sharing a folder's source runs each own the targets they declare
            evals = [
                r
                for r in runs
                if r.key.target is not None and target_protocol(protocol.folder, r.key.target) == protocol.name
            ]
            for shots in sorted({r.key.shots for r in evals}):
                group = [r for r in runs if r.key.shots == shots and (r.key.kind == TRAIN or r in evals)]
                targets = _ordered(r.key.target for r in group if r.key.target is not None)
                for method in _methods(group):
                    out.append(transfer_summary(protocol.name, [r for r in group if r.key.method == method], targets))
    return out


def _methods(results: Sequence[Result]) -> List[str]:
    """Methods in first-seen order of their folders (zero-shot CLIP first, as in the papers)."""
    names = list(dict.fromkeys(r.key.method for r in results))
    return sorted(names, key=lambda m: (m != "zeroshot", names.index(m)))
