"""The sweep-wide analyses as commands: run their per-run jobs, then the tables and figures of the sweep folder.

* ``vlprompt analyze low-norm SWEEP_ROOT`` (:mod:`vlprompt.analysis.low_norm`): ``low-norm.md`` / ``low-norm.csv``
  (per method, dataset and shots: corruptions that reduced a norm and improved accuracy, that increased it and
  hurt) and ``plots/low_norm.png``;
* ``vlprompt analyze feature-shift SWEEP_ROOT`` (:mod:`vlprompt.analysis.shift_sweep`): ``feature-shift.csv``
  (one point per run: discrepancy D, Base, New, H), Spearman's ρ of D with New and with H, and
  ``plots/feature_shift.png``.

The files outside run directories are written like ``vlprompt table`` / ``plot`` write theirs
(:mod:`vlprompt.outputs`: a file is replaced only when vlprompt wrote it for this sweep).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vlprompt import fileio, outputs
from vlprompt.analysis import low_norm, shift_sweep
from vlprompt.analysis.stats import spearman
from vlprompt.errors import VLPromptError
from vlprompt.results.render import Table, render
from vlprompt.results.summaries import harmonic_mean
from vlprompt.sweep.layout import RESULTS, TRAIN, RunKey, eval_kind, parse_relpath

LOW_NORM_HEADER = ["method", "dataset", "shots", "runs", "reduced", "improved", "improved %", "increased", "hurt",
                   "hurt %"]  # fmt: skip


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_files(root: Path, texts: Dict[Path, str], figures: Sequence[Tuple[Path, Any]] = ()) -> List[Path]:
    """Write text files and figures for sweep folder ``root`` (all refused before any is written when one may
    not be replaced)."""
    source = str(Path(root).resolve())
    outputs.check_outputs([*texts, *(p for p, _ in figures)], source, "move it away")
    written = [outputs.write_owned(path, source, lambda tmp, t=text: tmp.write_text(t)) for path, text in texts.items()]
    return written + [
        outputs.write_owned(path, source, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=120))
        for path, fig in figures
    ]


def _figures(drawn, quiet: bool) -> List[Tuple[Path, Any]]:
    from vlprompt.extras import available

    if not available("matplotlib"):
        if not quiet:
            print("figures skipped: plots need matplotlib (pip install 'vlprompt[plot]')")
        return []
    return [d for d in [drawn()] if d is not None]


# ----------------------------------------------------------------------------------- low-norm
def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "—"


def low_norm_table(groups: Dict[Tuple[str, str, int], low_norm.Counts]) -> Table:
    t = Table("Low-Norm Effect: corruptions that reduced a position's norm and improved accuracy, "
              "increased it and hurt accuracy", list(LOW_NORM_HEADER))  # fmt: skip
    for (method, dataset, shots), c in groups.items():
        t.rows.append([method, dataset, str(shots), str(c.runs), str(c.reduced), str(c.improved),
                       _percent(c.improved, c.reduced), str(c.increased), str(c.hurt), _percent(c.hurt, c.increased)])  # fmt: skip
    t.notes.append("runs: seeds; each run contributes every position × weight of both operations (replace, scale)")
    return t


def low_norm_figure(root: Path, out: Path) -> Optional[Tuple[Path, Any]]:
    """(``out/low_norm.png``, figure) when the sweep folder has low-norm results."""
    from vlprompt.analysis.plots import low_norm_figure as draw

    groups = low_norm.frequencies(list(low_norm.results(root)))
    return (Path(out) / "low_norm.png", draw(groups)) if groups else None


def analyze_low_norm(root: Path, grid: low_norm.Grid, workers, fmt: str = "md", quiet: bool = False) -> Dict:
    """``vlprompt analyze low-norm``: run the missing corruption sweeps, then count, tabulate and plot."""
    from vlprompt.analysis.sweep_runs import run_jobs, training_runs

    root = Path(root)
    todo, skipped = low_norm.jobs(training_runs(root), grid)
    if not todo:
        raise VLPromptError(
            f"{root} has no finished training run with a prompt tensor ({grid.tensor or 'ctx'}) to corrupt"
        )
    if skipped and not quiet:
        print(f"skipped {len(skipped)} run(s) without the prompt tensor: " + ", ".join(r.key.relpath for r in skipped))
    report = run_jobs(todo, workers, quiet)
    groups = low_norm.frequencies(list(low_norm.results(root)))
    t = low_norm_table(groups)
    texts = {root / "low-norm.md": render([t], "md"), root / "low-norm.csv": _csv_text(t.header, t.rows)}
    written = write_files(root, texts, _figures(lambda: low_norm_figure(root, root / "plots"), quiet))
    if not quiet:
        print(render([t], fmt), end="")
        for path in written:
            print(f"-> {path}")
    return {"report": report, "groups": groups, "written": written}


# ----------------------------------------------------------------------------------- feature shift
@dataclass(frozen=True)
class Point:
    method: str
    dataset: str
    shots: int
    seed: int
    discrepancy: float
    vision_sum: float
    text_sum: float
    base: float
    new: float
    H: float


def _accuracy(root: Path, key: RunKey) -> Optional[float]:
    path = key.path(root) / RESULTS
    return float(fileio.read_json(path)["accuracy"]) if path.is_file() else None


def points(root: Path) -> Tuple[List[Point], List[str]]:
    """One point per run with a cached shift, a discrepancy and both accuracies; and the runs left out (why)."""
    root = Path(root)
    found, left_out = [], []
    pattern = f"{shift_sweep.FOLDER}/*/*/shots*/seed*/{shift_sweep.KIND}/{shift_sweep.RESULT}"
    for path in sorted(root.glob(pattern)):
        key = parse_relpath(path.parent.relative_to(root).as_posix())
        if key is None:
            continue
        shift = fileio.read_json(path)
        d = shift_sweep.discrepancy(shift["vision"], shift["text"])
        base, new = _accuracy(root, replace(key, kind=TRAIN)), _accuracy(root, replace(key, kind=eval_kind("new")))
        if d is None or base is None or new is None:
            why = "no vision shift (CNN image tower)" if d is None else "no finished eval-new run"
            left_out.append(f"{path.parent.parent.relative_to(root).as_posix()}: {why}")
            continue
        found.append(Point(key.method, key.dataset, key.shots, key.seed, d, shift["vision_sum"], shift["text_sum"],
                           base, new, harmonic_mean(base, new)))  # fmt: skip
    return found, left_out


def correlations(found: Sequence[Point]) -> Dict[str, Optional[float]]:
    """Spearman's ρ of the discrepancy with the new-class accuracy and with H."""
    d = [p.discrepancy for p in found]
    return {"new": spearman(d, [p.new for p in found]), "H": spearman(d, [p.H for p in found])}


def shift_figure(root: Path, out: Path) -> Optional[Tuple[Path, Any]]:
    """(``out/feature_shift.png``, figure) when the sweep folder has cached shifts of finished runs."""
    from vlprompt.analysis.plots import shift_figure as draw

    found, _ = points(root)
    return (Path(out) / "feature_shift.png", draw(found, correlations(found))) if found else None


def format_rho(value: Optional[float]) -> str:
    return "n/a (fewer than 2 distinct points)" if value is None else f"{value:+.3f}"


def analyze_feature_shift(root: Path, workers, norm: str = "token", max_images: int = 0, quiet: bool = False):
    """``vlprompt analyze feature-shift SWEEP_ROOT``: measure the missing runs, then correlate and plot."""
    from vlprompt.analysis.sweep_runs import run_jobs, training_runs

    root = Path(root)
    runs = training_runs(root, shift_sweep.FOLDER)
    if not runs:
        raise VLPromptError(f"{root} has no finished base-to-new training run ({shift_sweep.FOLDER}/...): run "
                            f"`vlprompt sweep --protocol b2n --root {root}` first")  # fmt: skip
    report = run_jobs(shift_sweep.jobs(runs, norm, max_images), workers, quiet)
    found, left_out = points(root)
    rho = correlations(found)
    fields = list(Point.__dataclass_fields__)
    texts = {root / "feature-shift.csv": _csv_text(fields, [[asdict(p)[f] for f in fields] for p in found])}
    written = write_files(root, texts, _figures(lambda: shift_figure(root, root / "plots"), quiet) if found else [])
    if not quiet:
        for line in left_out:
            print(f"left out {line}")
        print(f"{len(found)} runs: cross-modal shift discrepancy D = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² ({norm} norm)")
        print(f"Spearman ρ(D, new-class accuracy) = {format_rho(rho['new'])}")
        print(f"Spearman ρ(D, H) = {format_rho(rho['H'])}")
        for path in written:
            print(f"-> {path}")
    return {"report": report, "points": found, "rho": rho, "written": written}
