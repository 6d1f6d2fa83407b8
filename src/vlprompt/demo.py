"""``vlprompt demo``: a base-to-new sweep and a few-shot sweep on the offline toy world, through the real sweep
machinery.

The base-to-new part is ``vlprompt sweep --protocol b2n --datasets toy --methods zeroshot coop ... --seeds 1`` with
every method's published base-to-new preset (CoOp with the "a photo of a" word initialisation of the CoCoOp
paper's CoOp baseline, KgCoOp, CoCoOp, IVLP, MaPLe, PromptSRC, DePT and RESTORE on their bases, Nemesis' documented
defaults); the few-shot part is ``vlprompt sweep --protocol fewshot --datasets toy --shots 4 --seeds 1`` (CoOp's
protocol: all classes of toy-b2n, zero-shot CLIP at 0 shots) for the baselines published with a few-shot setting
only — the linear probe (CoOp paper), Tip-Adapter-F, CLIP-LoRA — beside zero-shot CLIP, Tip-Adapter, CLIP-Adapter
and CoOp. Both are capped to the demo's epoch budget (``train.max_epochs``, which caps CLIP-LoRA's ``train.steps``
too), on the embedded toy CLIP. Every job is an ordinary run directory under ``<out>/b2n/`` or ``<out>/fewshot/``;
re-running the demo skips what is finished. The tables are the overviews ``vlprompt table`` prints;
``summary.csv`` / ``summary.png`` hold the Base / New / H rows, ``summary_fewshot.csv`` the few-shot accuracies,
and the zero-shot headroom of the toy world is checked. Speed option chosen explicitly: the frozen-feature methods
draw each epoch's view from a pool of ``DEMO_POOL`` cached augmented views (``train.feature_pool``) instead of a
fresh one.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from vlprompt import outputs
from vlprompt.methods.linear_probe.config import SKLEARN_MODULE

if TYPE_CHECKING:
    from vlprompt.results.summaries import Summary
    from vlprompt.sweep.checks import IdentityOf
    from vlprompt.sweep.executors import Command
    from vlprompt.sweep.jobs import Job, SweepSpec

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
#: the few-shot sweep: zero-shot CLIP, the few-shot-only baselines and the cheap ones that have a few-shot preset too
FEWSHOT_METHODS = ("zeroshot", "linear_probe", "tip_adapter", "tip_adapter_f", "clip_adapter", "lora", "coop")
QUICK_FEWSHOT_METHODS = ("zeroshot", "linear_probe")
FEWSHOT_SHOTS = 4
#: method -> the optional module it needs (vlprompt.extras); without it the demo skips that row with a note
NEEDS = {"linear_probe": SKLEARN_MODULE}
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
    """Run the demo sweeps into ``out`` (their jobs through ``command``, the command line's entry point, their
    planned run identities from ``identity_of``; ``quiet``: no progress events), print their tables and return the
    base-to-new rows."""
    from vlprompt.errors import VLPromptError
    from vlprompt.results.summaries import harmonic_mean
    from vlprompt.sweep import build_spec, plan
    from vlprompt.sweep.checks import check_plan

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VLPromptError(f"--out {out} is a file; choose a folder for the demo")
    outputs.check_outputs(summary_files(out), str(out.resolve()), "choose another --out")
    epochs = epochs or (QUICK_EPOCHS if quick else DEMO_EPOCHS)
    methods = QUICK_METHODS if quick else METHODS
    fewshot_methods, skipped = with_extras(QUICK_FEWSHOT_METHODS if quick else FEWSHOT_METHODS)
    start = time.time()
    sets = [f"train.max_epochs={epochs}", f"train.feature_pool={DEMO_POOL}"]
    toy = {"datasets": ["toy"], "seeds": [1], "sets": sets}
    specs = [
        build_spec(out, protocol="b2n", methods=methods, shots=[16], **toy),
        build_spec(out, protocol="fewshot", methods=fewshot_methods, shots=[FEWSHOT_SHOTS], **toy),
    ]
    plans = [plan(spec) for spec in specs]
    for spec, jobs in zip(specs, plans):  # both plans are checked before any job runs
        check_plan(spec, jobs, identity_of)
    b2n, fewshot = (run_part(spec, jobs, command, quiet) for spec, jobs in zip(specs, plans))
    rows = []
    for s in b2n:
        base, new = (s.value(DATASET, column).mean for column in ("base", "new"))
        rows.append({"method": s.method, "base": base, "new": new, "H": harmonic_mean(base, new)})
    fewshot_rows = [
        {"method": s.method, "shots": int(column), "accuracy": s.value(DATASET, column).mean}
        for s in fewshot
        for column in s.columns
        if s.value(DATASET, column).mean is not None
    ]
    write_summary(out, rows, fewshot_rows)
    print("".join(f"{note}\n" for note in skipped), end="")
    print_headroom(rows[0], out, epochs, time.time() - start)
    return rows


def with_extras(methods: Sequence[str]) -> Tuple[Tuple[str, ...], List[str]]:
    """``methods`` less those whose optional dependency is missing, and a one-line note for each one left out."""
    from vlprompt.errors import VLPromptError
    from vlprompt.extras import require

    kept, notes = [], []
    for method in methods:
        try:
            if method in NEEDS:
                require(NEEDS[method], method)
        except VLPromptError as exc:
            notes.append(f"{method} row skipped: {exc}")
        else:
            kept.append(method)
    return tuple(kept), notes


def run_part(spec: SweepSpec, jobs: List[Job], command: Command, quiet: bool) -> List[Summary]:
    """Run one checked sweep of the demo, print its overview table (what `vlprompt table` prints first) and return
    its methods' summaries in the demo's order."""
    from vlprompt.errors import VLPromptError
    from vlprompt.results.render import render, tables
    from vlprompt.results.summaries import summaries
    from vlprompt.sweep import run_sweep
    from vlprompt.sweep.executors import LocalLauncher
    from vlprompt.sweep.progress import Progress

    done = sum(j.done for j in jobs)
    report = run_sweep(jobs, LocalLauncher(command), Progress(len(jobs), done, stream=io.StringIO() if quiet else None))
    if not report.ok:
        print("\n".join(report.lines()), file=sys.stderr)
        log_dir = spec.root / ".sweep" / "logs"
        raise VLPromptError(f"{len(report.failed)} demo job(s) failed; the logs are under {log_dir}")
    found = [s for s in summaries(spec.root, [spec.protocol]) if s.method in spec.methods]
    found.sort(key=lambda s: spec.methods.index(s.method))
    print("\n" + render(tables(found)[:1]), end="")
    return found


def summary_files(out: Path) -> List[Path]:
    """The files the demo writes beside its sweeps (replaced only when the demo wrote them, :mod:`vlprompt.outputs`):
    the base-to-new CSV and figure, the few-shot CSV."""
    return [out / "summary.csv", out / "summary.png", out / "summary_fewshot.csv"]


def write_summary(out: Path, rows: List[Dict], fewshot_rows: List[Dict]) -> None:
    csv_path, png_path, fewshot_path = summary_files(out)
    source = str(out.resolve())
    write_csv(csv_path, source, ["method", "base", "new", "H"], rows)
    plot_summary(png_path, rows, source)
    write_csv(fewshot_path, source, ["method", "shots", "accuracy"], fewshot_rows)


def write_csv(path: Path, source: str, fieldnames: List[str], rows: List[Dict]) -> None:
    """``rows`` as a CSV owned by the demo; accuracies with two decimals."""

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fieldnames)
            w.writeheader()
            for row in rows:
                w.writerow({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in row.items()})

    outputs.write_owned(path, source, write)


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
        f"\ntoy world: each method's base-to-new preset capped to {epochs} epochs, 16 shots, seed 1; few-shot: each "
        f"method's few-shot preset capped the same way (train.steps too), {FEWSHOT_SHOTS} shots of all "
        f"{len(SPECS[DATASET].classnames)} classes, seed 1; frozen-feature methods draw from {DEMO_POOL} cached "
        "augmented views per image (train.feature_pool, a speed option)"
    )
    print(
        f"zero-shot headroom: base {zeroshot['base']:.1f}% (target 40-85%), new {zeroshot['new']:.1f}% "
        f"= {zeroshot['new'] / chance:.1f}x chance ({chance:.1f}%; target >= 3x)"
    )
    csv_path, _, fewshot_path = summary_files(out)
    print(f"-> {csv_path}, {fewshot_path.name}; done in {seconds / 60:.1f} min")
