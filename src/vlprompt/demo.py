"""``vlprompt demo``: a base-to-new sweep on the offline toy world, through the real sweep machinery.

It is ``vlprompt sweep --protocol b2n --datasets toy --methods zeroshot coop ... --seeds 1`` with every method's
published base-to-new preset (CoOp with the "a photo of a" word initialisation of the CoCoOp paper's CoOp
baseline, KgCoOp, CoCoOp, IVLP, MaPLe, PromptSRC, DePT and RESTORE on their bases, Nemesis' documented defaults),
capped to the demo's epoch budget (``train.max_epochs``), on the embedded toy CLIP. Every job is an ordinary run
directory under ``<out>/b2n/``; re-running the demo skips what is finished. The table is the overview ``vlprompt table``
prints; ``summary.csv`` / ``summary.png`` hold the Base / New / H rows, and the zero-shot headroom of the toy world
is checked. Speed option chosen explicitly: the frozen-feature methods draw each epoch's view from a pool of
``DEMO_POOL`` cached augmented views (``train.feature_pool``) instead of a fresh one.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

from vlprompt import outputs

if TYPE_CHECKING:
    from vlprompt.sweep.checks import IdentityOf
    from vlprompt.sweep.executors import Command

DATASET = "toy-b2n"
METHODS = (
    "zeroshot",
    "coop",
    "coop+nemesis",
    "kgcoop",
    "coop+dept",
    "cocoop",
    "ivlp",
    "maple",
    "promptsrc",
    "maple+dept",
    "maple+restore",
    "coop+prograd",
    "tcp",
    "clip_adapter",
    "tip_adapter",
)
QUICK_METHODS = ("zeroshot", "coop", "coop+nemesis", "kgcoop", "coop+dept")
#: epochs per method (each method's published epochs, capped to this)
DEMO_EPOCHS, QUICK_EPOCHS = 10, 2
#: augmented views per image cached for the frozen-feature methods (the speed option, stated in the output)
DEMO_POOL = 4


def run_demo(
    out: Path,
    command: Command,
    identity_of: IdentityOf,
    quick: bool = False,
    epochs: Optional[int] = None,
    quiet: bool = False,
) -> List[Dict]:
    """Run the demo sweep into ``out`` (its jobs through ``command``, the command line's entry point, their planned
    run identities from ``identity_of``; ``quiet``: no progress events) and print its table."""
    from vlprompt.errors import VLPromptError
    from vlprompt.results.render import render, tables
    from vlprompt.results.summaries import harmonic_mean, summaries
    from vlprompt.sweep import build_spec, plan, run_sweep
    from vlprompt.sweep.checks import check_plan
    from vlprompt.sweep.executors import LocalLauncher
    from vlprompt.sweep.progress import Progress

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VLPromptError(f"--out {out} is a file; choose a folder for the demo")
    outputs.check_outputs(summary_files(out), str(out.resolve()), "choose another --out")
    epochs = epochs or (QUICK_EPOCHS if quick else DEMO_EPOCHS)
    methods = QUICK_METHODS if quick else METHODS
    start = time.time()
    sets = [f"train.max_epochs={epochs}", f"train.feature_pool={DEMO_POOL}"]
    spec = build_spec(out, protocol="b2n", methods=methods, datasets=["toy"], seeds=[1], shots=[16], sets=sets)
    jobs = plan(spec)
    check_plan(spec, jobs, identity_of)
    done = sum(j.done for j in jobs)
    report = run_sweep(jobs, LocalLauncher(command), Progress(len(jobs), done, stream=io.StringIO() if quiet else None))
    if not report.ok:
        print("\n".join(report.lines()), file=sys.stderr)
        raise VLPromptError(f"{len(report.failed)} demo job(s) failed; the logs are under {out / '.sweep' / 'logs'}")
    found = sorted((s for s in summaries(out, ["b2n"]) if s.method in methods), key=lambda s: methods.index(s.method))
    print("\n" + render(tables(found)[:1]), end="")  # the overview `vlprompt table` prints first
    rows = []
    for s in found:
        base, new = (s.value(DATASET, column).mean for column in ("base", "new"))
        rows.append({"method": s.method, "base": base, "new": new, "H": harmonic_mean(base, new)})
    write_summary(out, rows)
    print_headroom(rows[0], out, epochs, time.time() - start)
    return rows


def summary_files(out: Path) -> List[Path]:
    """The files the demo writes beside its sweep (replaced only when the demo wrote them, :mod:`vlprompt.outputs`)."""
    return [out / "summary.csv", out / "summary.png"]


def write_summary(out: Path, rows: List[Dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["method", "base", "new", "H"])
            w.writeheader()
            for row in rows:
                w.writerow({k: (f"{row[k]:.2f}" if k != "method" else row[k]) for k in w.fieldnames})

    csv_path, png_path = summary_files(out)
    outputs.write_owned(csv_path, str(out.resolve()), write)
    plot_summary(png_path, rows, str(out.resolve()))


def plot_summary(path: Path, rows: List[Dict], source: str) -> None:
    from vlprompt.extras import available

    if not available("matplotlib"):
        print(f"{path.name} skipped: plots need matplotlib (pip install 'vlprompt[plot]')")
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [r["method"] for r in rows]
    fig = Figure(figsize=(max(6, 1.1 * len(names)), 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for k, (key, color) in enumerate((("base", "#4c72b0"), ("new", "#dd8452"), ("H", "#55a868"))):
        ax.bar([i + (k - 1) * 0.27 for i in range(len(names))], [r[key] for r in rows], 0.27, label=key, color=color)
    ax.set_xticks(list(range(len(names))))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{DATASET} base-to-new")
    ax.legend()
    fig.tight_layout()
    outputs.write_owned(path, source, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def print_headroom(zeroshot: Dict, out: Path, epochs: int, seconds: float) -> None:
    from vlprompt.toy.datasets import SPECS

    chance = 100.0 / (len(SPECS[DATASET].classnames) // 2)
    print(
        f"\ntoy world: each method's base-to-new preset capped to {epochs} epochs, 16 shots, seed 1; frozen-feature "
        f"methods draw from {DEMO_POOL} cached augmented views per image (train.feature_pool, a speed option)"
    )
    print(
        f"zero-shot headroom: base {zeroshot['base']:.1f}% (target 40-85%), new {zeroshot['new']:.1f}% "
        f"= {zeroshot['new'] / chance:.1f}x chance ({chance:.1f}%; target >= 3x)"
    )
    print(f"-> {out / 'summary.csv'}; done in {seconds / 60:.1f} min")
