"""Feature shift against generalisation over a base-to-new sweep (RESTORE, Yang et al., ECCV 2024, Sec. 3-4):
``vlprompt analyze feature-shift SWEEP_ROOT``.

RESTORE's claim: the more the two towers' feature shifts disagree, the worse a prompt generalises to new
classes. For every finished base-to-new training run, ``vlprompt analyze feature-shift --run`` measures the
per-layer ‖Ω_l^v‖ and ‖Ω_l^t‖ (:mod:`vlprompt.analysis.feature_shift`, Eq. 6) on the run's base-class test
images, cached next to the run as ``.../seed<S>/feature-shift/feature_shift.json`` (a sweep job: never
recomputed). Each run is one point: its cross-modal shift discrepancy

    D = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)²      (the consistency loss L^fs of Eqs. 7-9, on the test data)

over the blocks both towers have, against its new-class accuracy (``eval-new``) and H = 2BN/(B+N); Spearman's
rank correlation of D with New and with H is printed, and the points are plotted coloured by method
(:mod:`vlprompt.results.analyses`). Runs on a CNN image tower (no vision shift) have no D and are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from vlprompt import fileio
from vlprompt.analysis.sweep_runs import SweepRun
from vlprompt.errors import VLPromptError
from vlprompt.sweep.jobs import Job

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
