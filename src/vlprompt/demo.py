"""``vlprompt demo``: the base-to-new protocol on the offline toy world, for every available method.

Each method trains on the base half of ``toy-b2n`` (16 shots, seed 1) and is evaluated on the base test
images (seen label space) and, through ``vlprompt eval``, on the new classes (unseen label space).
Zero-shot CLIP is evaluated on both directly. The table reports Base / New / H = 2BN/(B+N), writes
``summary.csv`` and ``summary.png``, and prints the zero-shot headroom check of the toy world.
All methods share one setting (epochs, batch size, shots) so the comparison is like for like; learning
rates and method settings come from each method's published preset.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from vlprompt import fileio
from vlprompt.errors import VLPromptError
from vlprompt.results.summaries import harmonic_mean

DATASET = "toy-b2n"
#: (method, extra --set overrides); methods whose components are not installed are skipped
METHODS: List[Tuple[str, List[str]]] = [
    ("coop", []),
    ("coop+nemesis", ["nemesis.weight=1"]),
    ("kgcoop", []),
    ("coop+dept", []),
    ("cocoop", []),
    ("ivlp", []),
    ("maple", []),
    ("promptsrc", []),
    ("maple+dept", []),
    ("maple+restore", []),
]
QUICK_METHODS = ("coop", "coop+nemesis", "kgcoop", "coop+dept")


def run_demo(out: Path, quick: bool = False, epochs: Optional[int] = None) -> List[Dict]:
    from vlprompt.api import evaluate, train, zeroshot
    from vlprompt.config import make_config

    out = Path(out)
    check_demo_folder(out)
    epochs = epochs or (2 if quick else 10)
    data = {"shots": 16, "seed": 1}
    start = time.time()
    zs, chance = {"method": "zeroshot"}, {}
    for subsample in ("base", "new"):
        cfg = make_config("zeroshot", DATASET, subsample=subsample, out=str(out / f"zeroshot-{subsample}"), **data)
        res = zeroshot(cfg, quiet=True)
        zs[subsample], chance[subsample] = res["accuracy"], 100.0 / res["num_classes"]
    summary = [zs]
    methods = [(m, s) for m, s in METHODS if not quick or m in QUICK_METHODS]
    for i, (method, sets) in enumerate(methods, 1):
        t0 = time.time()
        name = method.replace("+", "_")
        cfg = make_config(
            method, DATASET, subsample="base", epochs=epochs, batch_size=8, overrides=sets,
            out=str(out / f"{name}-base"), **data,
        )  # fmt: skip
        base = train(cfg, quiet=True).results
        new = evaluate(out / f"{name}-base", subsample="new", out=out / f"{name}-new", quiet=True)
        summary.append({"method": method, "base": base["accuracy"], "new": new["accuracy"]})
        print(
            f"[{i}/{len(methods)}] {method}: base {base['accuracy']:.1f}  new {new['accuracy']:.1f}  "
            f"({time.time() - t0:.0f}s)",
            flush=True,
        )
    for row in summary:
        row["H"] = harmonic_mean(row["base"], row["new"])
    write_summary(out, summary)
    print_table(summary, chance, time.time() - start, epochs)
    return summary


def check_demo_folder(out: Path) -> None:
    """``--out`` must be absent, empty, or a demo folder (its runs and summary files only): nothing else in it is
    touched. The runs themselves are checked by their run directories."""
    if out.exists() and not out.is_dir():
        raise VLPromptError(f"--out {out} is a file; choose a folder for the demo")
    names = {f"zeroshot-{s}" for s in ("base", "new")} | {"summary.csv", "summary.png"}
    names |= {f"{m.replace('+', '_')}-{s}" for m, _ in METHODS for s in ("base", "new")}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in names) if out.is_dir() else []
    if foreign:
        raise VLPromptError(f"--out {out} holds files that are not a vlprompt demo ({foreign[0]}, ...); choose another")
    fileio.check_writable(out)


def write_summary(out: Path, summary: List[Dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["method", "base", "new", "H"])
            w.writeheader()
            for row in summary:
                w.writerow({k: (f"{row[k]:.2f}" if k != "method" else row[k]) for k in w.fieldnames})

    fileio.atomic_write(out / "summary.csv", write)
    plot_summary(out / "summary.png", summary)


def plot_summary(path: Path, summary: List[Dict]) -> None:
    from vlprompt.extras import available, require

    if not available("matplotlib"):
        print(f"{path.name} skipped: plots need matplotlib (pip install 'vlprompt[plot]')")
        return
    require("matplotlib", "the demo plot").use("Agg")
    import matplotlib.pyplot as plt

    names = [r["method"] for r in summary]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
    for k, (key, color) in enumerate((("base", "#4c72b0"), ("new", "#dd8452"), ("H", "#55a868"))):
        ax.bar([i + (k - 1) * 0.27 for i in x], [r[key] for r in summary], width=0.27, label=key, color=color)
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("toy-b2n base-to-new")
    ax.legend()
    fig.tight_layout()
    fileio.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def print_table(summary: List[Dict], chance: Dict[str, float], seconds: float, epochs: int) -> None:
    print(f"\nBase-to-new on {DATASET} (16 shots, seed 1, {epochs} epochs, toy backbone)")
    print(f"{'method':<16}{'Base':>8}{'New':>8}{'H':>8}")
    for row in summary:
        print(f"{row['method']:<16}{row['base']:>8.2f}{row['new']:>8.2f}{row['H']:>8.2f}")
    zs = summary[0]
    print(
        f"\nzero-shot headroom: base {zs['base']:.1f}% (target 40-85%), new {zs['new']:.1f}% "
        f"= {zs['new'] / chance['new']:.1f}x chance ({chance['new']:.1f}%; target >= 3x); "
        f"base chance {chance['base']:.1f}%"
    )
    print(f"done in {seconds / 60:.1f} min")
