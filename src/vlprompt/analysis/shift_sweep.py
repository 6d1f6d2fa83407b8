"""Feature shift against generalisation over a base-to-new sweep (RESTORE, Yang et al., ECCV 2024, Sec. 3-4):
``vlprompt analyze feature-shift SWEEP_ROOT``.

RESTORE's claim: the more the two towers' feature shifts disagree, the worse a prompt generalises to new
classes. For every finished base-to-new training run, ``vlprompt analyze feature-shift --run`` measures the
per-layer ‖Ω_l^v‖ and ‖Ω_l^t‖ (:mod:`vlprompt.analysis.feature_shift`, Eq. 6) on the run's base-class test
images, cached next to the run as ``.../seed<S>/feature-shift/feature_shift.json`` (a sweep job: never
recomputed). Each run is one point: its cross-modal shift discrepancy

    D = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)²      (the consistency loss L^fs of Eqs. 7-9, on the test data)

over the blocks both towers have, against its new-class accuracy (``eval-new``) and H = 2BN/(B+N); Spearman's
rank correlation of D with New and with H is printed, and the points are plotted coloured by method.
Runs on a CNN image tower (no vision shift) have no D and are left out.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from vlprompt import fileio
from vlprompt.analysis.stats import spearman
from vlprompt.analysis.sweep_runs import SweepRun
from vlprompt.errors import VLPromptError
from vlprompt.results.summaries import harmonic_mean
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.layout import RESULTS, TRAIN, RunKey, eval_kind, parse_relpath

KIND = "feature-shift"
RESULT = "feature_shift.json"
FOLDER = "b2n"


def discrepancy(vision: Optional[Sequence[float]], text: Sequence[float]) -> Optional[float]:
    """D = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² over the blocks both towers have; None without a vision shift (CNN)."""
    if vision is None:
        return None
    return sum((v - t) ** 2 for v, t in zip(vision, text))


def _check_settings(path: Path, norm: str, max_images: int) -> None:
    if not path.is_file():
        return
    stored = fileio.read_json(path)
    if stored.get("norm") != norm or stored.get("max_images", 0) != max_images:
        raise VLPromptError(
            f"{path} was measured with --norm {stored.get('norm')} --max-images {stored.get('max_images', 0)}: "
            f"delete it or pass the same settings"
        )


def jobs(runs: Sequence[SweepRun], norm: str = "token", max_images: int = 0) -> List[Job]:
    """One ``vlprompt analyze feature-shift --run`` job per run, on the label space it was trained on."""
    out = []
    for run in runs:
        key = run.sibling(KIND)
        target = key.path(run.root) / RESULT
        _check_settings(target, norm, max_images)
        argv = ["analyze", "feature-shift", "--run", str(run.path), *run.data_args(), "--norm", norm]
        argv += ["--max-images", str(max_images), "--out", str(target), "--quiet"]
        out.append(Job(key, run.root, tuple(argv), marker=RESULT))
    return out


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
    for path in sorted(root.glob(f"{FOLDER}/*/*/shots*/seed*/{KIND}/{RESULT}")):
        key = parse_relpath(path.parent.relative_to(root).as_posix())
        if key is None:
            continue
        shift = fileio.read_json(path)
        d = discrepancy(shift["vision"], shift["text"])
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


def write_csv(path: Path, found: Sequence[Point]) -> Path:
    buf = io.StringIO()
    fields = list(Point.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(p) for p in found)
    fileio.write_text(path, buf.getvalue())
    return path


def figure(root: Path, out: Path) -> Optional[Path]:
    """``feature_shift.png`` in ``out`` when the sweep folder has cached shifts of finished runs."""
    from vlprompt.analysis.plots import plot_shift_scatter

    found, _ = points(root)
    return plot_shift_scatter(found, correlations(found), Path(out) / "feature_shift.png") if found else None


def format_rho(value: Optional[float]) -> str:
    return "n/a (fewer than 2 distinct points)" if value is None else f"{value:+.3f}"


def analyze(root: Path, norm: str = "token", max_images: int = 0, workers=None, quiet: bool = False) -> Dict:
    """``vlprompt analyze feature-shift SWEEP_ROOT``: measure the missing runs, then correlate and plot."""
    from vlprompt.analysis.sweep_runs import run_jobs, training_runs
    from vlprompt.extras import available

    runs = training_runs(root, FOLDER)
    if not runs:
        raise VLPromptError(f"{root} has no finished base-to-new training run ({FOLDER}/...): run `vlprompt sweep "
                            f"--protocol b2n --root {root}` first")  # fmt: skip
    report = run_jobs(jobs(runs, norm, max_images), workers, quiet)
    found, left_out = points(root)
    rho = correlations(found)
    written = [write_csv(Path(root) / "feature-shift.csv", found)]
    if found and available("matplotlib"):
        written.append(figure(root, Path(root) / "plots"))
    if not quiet:
        for line in left_out:
            print(f"left out {line}")
        print(f"{len(found)} runs: cross-modal shift discrepancy D = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² ({norm} norm)")
        print(f"Spearman ρ(D, new-class accuracy) = {format_rho(rho['new'])}")
        print(f"Spearman ρ(D, H) = {format_rho(rho['H'])}")
        for path in written:
            print(f"-> {path}")
    return {"report": report, "points": found, "rho": rho, "written": written}
