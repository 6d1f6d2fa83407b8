"""The frequency of the Low-Norm Effect over a sweep (Nemesis, Fu et al., ICLR 2024, Sec. 3 and the README
figure "The frequency of the Low-Norm Effect across 11 datasets"): ``vlprompt analyze low-norm SWEEP_ROOT``.

For every finished training run with a prompt tensor (``ctx``, else ``vision_ctx``, or ``--tensor``), the
corruption sweep of :mod:`vlprompt.analysis.corruption` runs once per operation — REPLACE(j, σ) and
RESCALE(j, s) at every position j and every weight — as a ``vlprompt corrupt --sweep`` job writing
``.../seed<S>/low-norm-<op>/`` next to the run (``sweep.csv``: accuracy, Δ over ``original`` and the norm ratio
‖c_j'‖/‖c_j‖ of each corruption). Per method, dataset and shot count, over seeds and both operations:

* ``reduced`` corruptions (norm ratio < 1) and how many of them ``improved`` accuracy (Δ > 0): the Low-Norm
  Effect;
* ``increased`` corruptions (norm ratio > 1) and how many of them ``hurt`` accuracy (Δ < 0)

(tabulated and plotted by :mod:`vlprompt.results.analyses`).

Default weights: REPLACE σ ∈ {0, 1e-4} and RESCALE s ∈ {0.001, 0.1, 0.5} — the values of the Nemesis README
and ``scripts/coop_crt/eval_loop.sh`` (its full grid is not published) — plus s = 2, a norm increase, so that
"increasing it hurt" has corruptions to count.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from vlprompt.analysis.sweep_runs import SweepRun
from vlprompt.engine.rundir import RunDir
from vlprompt.errors import VLPromptError
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.layout import RunKey, parse_relpath

KIND_PREFIX = "low-norm-"
MARKER = "summary.json"
ROWS = "sweep.csv"
DEFAULT_WEIGHTS = {"replace": "0,0.0001", "scale": "0.001,0.1,0.5,2"}
TENSORS = ("ctx", "vision_ctx")


@dataclass(frozen=True)
class Grid:
    """The corruptions of every run: ``ops`` at ``positions`` (``all`` or ``0,3``) × each op's ``weights``."""

    ops: Tuple[str, ...] = ("replace", "scale")
    positions: str = "all"
    replace_weights: str = DEFAULT_WEIGHTS["replace"]
    scale_weights: str = DEFAULT_WEIGHTS["scale"]
    tensor: Optional[str] = None

    def weights(self, op: str) -> str:
        return self.replace_weights if op == "replace" else self.scale_weights


def choose_tensor(run: SweepRun, tensor: Optional[str]) -> Optional[str]:
    """The prompt tensor of ``run`` to corrupt (``tensor``, else ``ctx``, else ``vision_ctx``); None if absent."""
    names = run.tensors
    return next((t for t in ((tensor,) if tensor else TENSORS) if t in names), None)


def _check_settings(path: Path, argv: Sequence[str]) -> None:
    """A finished corruption sweep made with other settings is never mixed into the counts."""
    marker = RunDir.read_marker(path)
    if marker is None or not (path / MARKER).exists():
        return
    stored = marker.get("identity", {}).get("corruption", {})
    wanted = dict(zip(argv[::2], argv[1::2]))
    for flag, field in (("--op", "op"), ("--positions", "positions"), ("--weights", "weights"), ("--tensor", "tensor")):
        if str(stored.get(field)) != wanted[flag]:
            raise VLPromptError(
                f"{path} holds a corruption sweep with {field} {stored.get(field)!r}, not {wanted[flag]!r}: "
                f"delete that folder or pass the same settings"
            )


def jobs(runs: Sequence[SweepRun], grid: Grid) -> Tuple[List[Job], List[SweepRun]]:
    """The ``vlprompt corrupt --sweep`` jobs of every run with a prompt tensor, and the runs without one."""
    out, skipped = [], []
    for run in runs:
        tensor = choose_tensor(run, grid.tensor)
        if tensor is None:
            skipped.append(run)
            continue
        for op in grid.ops:
            key = run.sibling(KIND_PREFIX + op)
            settings = ["--op", op, "--positions", grid.positions, "--weights", grid.weights(op), "--tensor", tensor]
            _check_settings(key.path(run.root), settings)
            argv = ["corrupt", "--run", str(run.path), *run.data_args(), "--sweep", *settings]
            out.append(Job(key, run.root, (*argv, "--out", str(key.path(run.root))), marker=MARKER))
    return out, skipped


# ----------------------------------------------------------------------------------- counting
def read_rows(path: Path) -> List[Dict]:
    """The corruption rows of a ``sweep.csv`` with ``delta`` and ``norm_ratio`` as numbers."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{**r, "delta": float(r["delta"]), "norm_ratio": float(r["norm_ratio"])} for r in rows]


def results(root: Path) -> Iterator[Tuple[RunKey, List[Dict]]]:
    """(key, rows) of every finished low-norm corruption sweep under ``root``."""
    root = Path(root)
    for marker in sorted(root.glob(f"*/*/*/shots*/seed*/{KIND_PREFIX}*/{MARKER}")):
        key = parse_relpath(marker.parent.relative_to(root).as_posix())
        if key is not None and (marker.parent / ROWS).is_file():
            yield key, read_rows(marker.parent / ROWS)


@dataclass
class Counts:
    runs: int = 0
    reduced: int = 0
    improved: int = 0
    increased: int = 0
    hurt: int = 0

    def add(self, rows: Sequence[Dict]) -> None:
        for r in rows:
            if r["op"] == "original" or math.isnan(r["norm_ratio"]):
                continue
            if r["norm_ratio"] < 1:
                self.reduced += 1
                self.improved += r["delta"] > 0
            elif r["norm_ratio"] > 1:
                self.increased += 1
                self.hurt += r["delta"] < 0


def frequencies(found: Sequence[Tuple[RunKey, List[Dict]]]) -> Dict[Tuple[str, str, int], Counts]:
    """(method, dataset, shots) -> counts over the seeds and operations found."""
    groups: Dict[Tuple[str, str, int], Counts] = {}
    seen = {}
    for key, rows in found:
        group = (key.method, key.dataset, key.shots)
        counts = groups.setdefault(group, Counts())
        seen.setdefault(group, set()).add(key.seed)
        counts.runs = len(seen[group])
        counts.add(rows)
    return dict(sorted(groups.items()))
