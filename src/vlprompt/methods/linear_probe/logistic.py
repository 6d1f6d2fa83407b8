"""L2-regularised multinomial logistic regression, the solver of the linear probe, and lpclip's search of its C.

Objective (scikit-learn's ``LogisticRegression(penalty="l2", C)``, the intercept unpenalised)::

    min_{W, b}  ½ ‖W‖²  +  C · Σ_i CE(W x_i + b, y_i)

* ``sklearn`` — ``LogisticRegression(solver="lbfgs", max_iter=1000, penalty="l2", C=C)``, exactly as the CoOp
  repository's ``lpclip/linear_probe.py`` calls it (the ``[probe]`` extra); two classes give one weight vector,
  turned into the equivalent ``[0, w]`` rows;
* ``torch`` — the same objective (divided by ``C · n``) minimised by ``torch.optim.LBFGS`` with a strong-Wolfe line
  search, warm-started from the previous C of the search, in float64: the same optimum (the objective is strictly
  convex in W), converged further than scikit-learn's tolerance (slower on a CPU: ``benchmarks/bench_linear_probe.py``).

Search (:func:`search_c`, lpclip's): fit every C of ``grid`` and keep the first with the best validation accuracy
C*; then ``steps`` rounds of a bisection in log10 space between ``C*/10`` and ``10 C*``: fit both ends, keep the
better one (the left on a tie) and halve the interval towards it. The final classifier is the last round's.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from vlprompt.extras import require
from vlprompt.methods.linear_probe.config import SKLEARN_MODULE

Classifier = Tuple[torch.Tensor, torch.Tensor]


def fit_sklearn(x: torch.Tensor, y: torch.Tensor, c: float, num_classes: int, max_iter: int = 1000) -> Classifier:
    """``(W [K, E], b [K])`` from scikit-learn's lbfgs solver, called as lpclip calls it."""
    linear_model = require(SKLEARN_MODULE, "linear_probe.solver=sklearn")
    clf = linear_model.LogisticRegression(solver="lbfgs", max_iter=max_iter, C=c)  # penalty l2 is the default
    clf.fit(x.double().numpy(), y.numpy())
    coef, intercept = torch.from_numpy(clf.coef_).float(), torch.from_numpy(clf.intercept_).float()
    if coef.shape[0] == 1:  # binary: P(class 1) = σ(w·x + b), i.e. logits [0, w·x + b]
        coef, intercept = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros(1), intercept])
    weight, bias = torch.zeros(num_classes, x.shape[1]), torch.zeros(num_classes)
    classes = torch.from_numpy(clf.classes_).long()
    weight[classes], bias[classes] = coef, intercept
    if len(classes) < num_classes:  # classes without training items never win
        bias[[k for k in range(num_classes) if k not in set(classes.tolist())]] = -math.inf
    return weight, bias


class TorchLBFGS:
    """The objective of the module doc minimised with torch's L-BFGS, warm-started across calls."""

    def __init__(self, max_iter: int = 1000, tolerance: float = 1e-7):
        self.max_iter = max_iter
        self.tolerance = tolerance
        self.start: Dict[int, Classifier] = {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor, c: float, num_classes: int) -> Classifier:
        x64, n = x.double(), len(y)
        w0, b0 = self.start.get(num_classes, (torch.zeros(num_classes, x.shape[1]), torch.zeros(num_classes)))
        weight = w0.double().clone().requires_grad_(True)
        bias = b0.double().clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], lr=1, max_iter=self.max_iter, tolerance_grad=self.tolerance,
            tolerance_change=self.tolerance * 1e-3, history_size=20, line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(x64 @ weight.t() + bias, y, reduction="mean") + weight.pow(2).sum() / (2 * c * n)
            loss.backward()
            return loss

        with torch.enable_grad():  # fitted learners are fitted under no_grad
            optimizer.step(closure)
        result = (weight.detach().float(), bias.detach().float())
        self.start[num_classes] = result
        return result


def accuracy(classifier: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    weight, bias = classifier
    return float(((x @ weight.t() + bias).argmax(-1) == y).float().mean())


def search_c(
    fit: Callable[[float], Classifier], x_val: torch.Tensor, y_val: torch.Tensor, grid: Sequence[float], steps: int
) -> Tuple[Classifier, Dict[str, object]]:
    """lpclip's search (module doc): the final classifier and the record of every fit (C, val accuracy)."""
    scores = [accuracy(fit(c), x_val, y_val) for c in grid]
    peak = float(grid[max(range(len(grid)), key=lambda i: (scores[i], -i))])  # the first of the best
    left, right = 0.1 * peak, 10.0 * peak
    rounds: List[Dict[str, float]] = []
    final, chosen = None, peak
    for _ in range(steps):
        clf_left, clf_right = fit(left), fit(right)
        acc_left, acc_right = accuracy(clf_left, x_val, y_val), accuracy(clf_right, x_val, y_val)
        rounds.append({"c_left": left, "c_right": right, "val_acc_left": acc_left, "val_acc_right": acc_right})
        mid = 0.5 * (math.log10(right) + math.log10(left))
        # the ends go through log10 and back, as in lpclip (10 ** log10(c) may differ from c in the last bit)
        if acc_left < acc_right:
            final, chosen = clf_right, right
            left, right = 10.0**mid, 10.0 ** math.log10(right)
        else:
            final, chosen = clf_left, left
            left, right = 10.0 ** math.log10(left), 10.0**mid
    if final is None:  # steps = 0: the grid's best
        final = fit(peak)
    record = {"grid": list(grid), "grid_val_acc": scores, "c_peak": peak, "rounds": rounds, "c": chosen}
    return final, record
