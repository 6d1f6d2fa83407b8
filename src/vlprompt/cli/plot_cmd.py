"""``vlprompt plot``: figures of a sweep folder (few-shot curves, base/new/H bars, prompt-norm curves, and the
sweep-wide analyses' figures when they have run)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="figures of a sweep folder: few-shot curves, base/new/H bars, Nemesis prompt-norm curves",
        description="Plot accuracy vs shots per method (averaged over datasets and per dataset), the average "
        "Base / New / H per method, and the prompt norms and test accuracy over epochs of every run that logged "
        "them (train with +nemesis and --eval-every 1), and the Low-Norm-Effect bars and the feature-shift scatter "
        "when `vlprompt analyze low-norm|feature-shift OUT` has run.",
    )
    p.add_argument("root", metavar="OUT", help="the sweep's --root folder")
    p.add_argument(
        "--out",
        default=None,
        help="folder for the PNG files (default: OUT/plots); a file there is replaced only when `vlprompt plot` "
        "wrote it for this sweep",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from vlprompt.engine.rundir import MARKER
    from vlprompt.errors import VLPromptError
    from vlprompt.extras import require
    from vlprompt.results.plots import plot_all
    from vlprompt.results.summaries import summaries

    require("matplotlib", "vlprompt plot")
    root = Path(args.root)
    if not root.is_dir():
        raise VLPromptError(f"{root} is not a folder: pass the --root of a `vlprompt sweep`")
    out = Path(args.out) if args.out else root / "plots"
    if out.exists() and not out.is_dir():
        raise VLPromptError(f"--out {out} is a file; give a folder for the figures")
    run = next((p for p in (out.absolute(), *out.absolute().parents) if (p / MARKER).is_file()), None)
    if run is not None:  # a run directory holds only the run's own files
        raise VLPromptError(f"--out {out} is inside the run directory {run}; give a folder outside runs")
    paths = plot_all(root, summaries(root), out)
    if not paths:
        raise VLPromptError(f"{root} has nothing to plot: no few-shot or base-to-new results, no prompt-norm logs")
    for path in paths:
        print(path)
    return 0
