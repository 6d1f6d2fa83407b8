"""Rank statistics for the sweep-wide analyses (no SciPy needed)."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence


def ranks(values: Sequence[float]) -> List[float]:
    """1-based ranks; tied values share the mean of the ranks they span (``scipy.stats.rankdata``'s average)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Pearson's r; None for fewer than two points or a constant series."""
    n = len(x)
    if n < 2 or n != len(y):
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Spearman's rank correlation ρ: Pearson's r of the (tie-averaged) ranks."""
    return pearson(ranks(x), ranks(y))
