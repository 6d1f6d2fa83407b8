"""``linear_probe`` on cached features of 1,000 classes × 16 shots: vlprompt's solvers side by side with the
reference's (scikit-learn's ``LogisticRegression(solver="lbfgs", max_iter=1000, penalty="l2")`` as the CoOp
repository's ``lpclip/linear_probe.py`` calls it) on the same features.

Setting (the defaults): random features (CLIP dimension 512, class means N(0, 1), items mean + N(0, 1)), 16 train
and 4 val items per class, float32; timed: one fit at C = 1 with each solver, then lpclip's whole search (7 grid
points + 8 bisection rounds of two fits = 23 fits) with the solvers ``--search`` names (``both`` by default:
scikit-learn as the reference calls it, then the torch solver warm-started). Reported: seconds, the val accuracy of each fit, and the agreement of the two C = 1 fits.

Usage::

    python benchmarks/bench_linear_probe.py [--classes 1000] [--shots 16] [--dim 512] [--search sklearn|torch|both|none]
    python benchmarks/bench_linear_probe.py --quick      # 20 classes: checks that it runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

import benchlib
from vlprompt.methods.linear_probe.logistic import TorchLBFGS, accuracy, fit_sklearn, search_c

GRID = [1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6]


def features(classes: int, per_class: int, dim: int, means: torch.Tensor, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(per_class)
    return means[y] + torch.randn(len(y), dim, generator=g), y


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--search", choices=("sklearn", "torch", "both", "none"), default="both",
                        help="the solvers whose whole lpclip search is timed")  # fmt: skip
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    classes = 20 if args.quick else args.classes
    means = torch.randn(classes, args.dim, generator=torch.Generator().manual_seed(0))
    x, y = features(classes, args.shots, args.dim, means, 1)
    xv, yv = features(classes, 4, args.dim, means, 2)
    print(f"machine: {benchlib.machine()}; {classes} classes x {args.shots} shots, dim {args.dim}")
    sk, t_sk = timed(lambda: fit_sklearn(x, y, 1.0, classes))
    th, t_th = timed(lambda: TorchLBFGS()(x, y, 1.0, classes))
    same = float(((xv @ sk[0].t() + sk[1]).argmax(-1) == (xv @ th[0].t() + th[1]).argmax(-1)).float().mean())
    print(f"one fit, C=1: scikit-learn {t_sk:.1f} s (val acc {accuracy(sk, xv, yv):.4f}), "
          f"torch L-BFGS {t_th:.1f} s (val acc {accuracy(th, xv, yv):.4f}); same val predictions {100 * same:.2f}%")  # fmt: skip
    torch_solver = TorchLBFGS()
    solvers = {"sklearn": lambda c: fit_sklearn(x, y, c, classes), "torch": lambda c: torch_solver(x, y, c, classes)}
    for name in ("sklearn", "torch") if args.search == "both" else () if args.search == "none" else (args.search,):
        fit = solvers[name]
        (clf, record), seconds = timed(lambda: search_c(fit, xv, yv, GRID, 8))  # noqa: B023 (called at once)
        print(f"lpclip search (23 fits), {name}: {seconds:.1f} s, C = {record['c']:.4g}, "
              f"val acc {accuracy(clf, xv, yv):.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
