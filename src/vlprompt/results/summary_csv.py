"""Machine-readable ``summary.csv`` per method, in the column layout of DePT's result CSVs.

* base-to-new: ``dataset, base_acc_seed1, new_acc_seed1, H_seed1, …, base_acc, new_acc, H``, one row per
  dataset and a final ``average`` row (column means; every H recomputed from the averaged base and new);
* cross-dataset / domain generalisation (one file, as the runs share their source): ``dataset,
  acc_seed1, …, acc`` in blocks — the source, the cross-dataset targets and ``average_xd``, the
  domain-generalisation targets and ``average_dg``;
* few-shot: ``dataset, shots, acc_seed1, …, acc`` with an ``average`` row per shot count.

Values are rounded to 2 decimals; a missing value is an empty field. The file is
``<root>/<protocol folder>/<method>/summary.csv`` (``summary-shots<K>.csv`` when the method was run with
several shot counts under base-to-new or cross-dataset).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from vlprompt import outputs
from vlprompt.protocols import BASE_NEW, PROTOCOLS, SHOTS
from vlprompt.results.summaries import AVERAGE, Summary, Value
from vlprompt.sweep.layout import method_folder


def _num(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.2f}"


def _seed_cells(value: Value, seeds: Sequence[int]) -> List[str]:
    return [_num(value.per_seed.get(s)) for s in seeds]


def b2n_rows(summary: Summary) -> List[List[str]]:
    seeds = summary.seeds
    header = ["dataset"] + [f"{m}_seed{s}" for s in seeds for m in ("base_acc", "new_acc", "H")]
    rows = [header + ["base_acc", "new_acc", "H"]]
    for name, cells in summary.rows.items():
        per_seed = zip(*(_seed_cells(cells[c], seeds) for c in ("base", "new", "H")))
        rows.append(
            [name, *(x for triple in per_seed for x in triple), *(_num(cells[c].mean) for c in summary.columns)]
        )
    return rows


def transfer_rows(parts: Sequence[Summary]) -> List[List[str]]:
    """Source block, then per protocol (xd, dg) its targets and ``average_<protocol>``."""
    seeds = sorted({s for p in parts for s in p.seeds})
    rows = [["dataset", *(f"acc_seed{s}" for s in seeds), "acc"]]

    def line(name: str, value: Value) -> List[str]:
        return [name, *_seed_cells(value, seeds), _num(value.mean)]

    first = parts[0]
    rows += [line(r, first.value(r, "acc")) for r in first.rows if r not in first.targets and r != AVERAGE]
    for part in sorted(parts, key=lambda p: list(PROTOCOLS).index(p.protocol)):
        rows += [line(t, part.value(t, "acc")) for t in part.targets]
        rows.append(line(f"average_{part.protocol}", part.value(AVERAGE, "acc")))
    return rows


def fewshot_rows(summary: Summary) -> List[List[str]]:
    seeds = summary.seeds
    rows = [["dataset", "shots", *(f"acc_seed{s}" for s in seeds), "acc"]]
    for column in summary.columns:
        for name, cells in summary.rows.items():
            rows.append([name, column, *_seed_cells(cells[column], seeds), _num(cells[column].mean)])
    return rows


def write_summaries(root: Path, summaries: Sequence[Summary]) -> List[Path]:
    """Write every method's ``summary.csv`` under ``root``; returns the paths written. A file of that name that
    ``vlprompt table`` did not write for this sweep is refused before any is written (:mod:`vlprompt.outputs`)."""
    groups: Dict[Tuple[str, str], Dict[Optional[int], List[Summary]]] = {}
    for s in summaries:
        folder = PROTOCOLS[s.protocol].folder
        groups.setdefault((folder, s.method), {}).setdefault(s.shots, []).append(s)
    planned = []
    for (folder, method), by_shots in groups.items():
        for shots, parts in by_shots.items():
            name = "summary.csv" if len(by_shots) == 1 else f"summary-shots{shots}.csv"
            layout = parts[0].layout
            rows = (
                fewshot_rows(parts[0])
                if layout == SHOTS
                else b2n_rows(parts[0])
                if layout == BASE_NEW
                else transfer_rows(parts)
            )
            planned.append((Path(root) / folder / method_folder(method) / name, rows))
    source = str(Path(root).resolve())
    outputs.check_outputs([path for path, _ in planned], source, "move that file away")
    return [outputs.write_owned(path, source, lambda tmp, rows=rows: _write_csv(tmp, rows)) for path, rows in planned]


def _write_csv(path: Path, rows: List[List[str]]) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
