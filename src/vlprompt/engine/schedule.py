"""Learning-rate schedule of the reference code (Dassl's ConstantWarmupScheduler + CosineAnnealingLR), stepped once per epoch.

Constant warm-up at ``warmup_lr`` for ``warmup_epochs`` epochs, then cosine annealing with
``T_max = E`` and ``η_min = 0`` whose epoch count restarts after warm-up (``WARMUP_RECOUNT``):

    η(e) = warmup_lr                                   for e < W
    η(e) = η0 · ½ · (1 + cos(π · (e − W) / E))          for e ≥ W

With W = 1 the first trained epoch runs at the full η0 and the last epoch's LR is > 0. Example
(E = 5, η0 = 0.0035): 1e-5, 0.0035, 0.003166, 0.002291, 0.001209.

Parameter groups with a learning-rate multiplier s (DePT's head and FiLM: s = 6.5) run at s · η(e) after the
warm-up, but at the plain ``warmup_lr`` during it: Dassl's constant warm-up scheduler sets one LR for every
group (:func:`group_lrs`). For DePT with E = 3: (1e-5, 1e-5), (η0, 6.5 η0), (0.75 η0, 6.5 · 0.75 η0).
"""

from __future__ import annotations

import math
from typing import List, Sequence


def lr_at_epoch(epoch: int, num_epochs: int, base_lr: float, warmup_epochs: int = 1, warmup_lr: float = 1e-5) -> float:
    if epoch < warmup_epochs:
        return warmup_lr
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / num_epochs))


def lr_sequence(num_epochs: int, base_lr: float, warmup_epochs: int = 1, warmup_lr: float = 1e-5) -> List[float]:
    return [lr_at_epoch(e, num_epochs, base_lr, warmup_epochs, warmup_lr) for e in range(num_epochs)]


def group_lrs(
    epoch: int,
    num_epochs: int,
    base_lr: float,
    scales: Sequence[float],
    warmup_epochs: int = 1,
    warmup_lr: float = 1e-5,
) -> List[float]:
    """The LR of each parameter group (multipliers ``scales``) in ``epoch``: ``warmup_lr`` for every group during
    the warm-up, ``scale · η(e)`` after it."""
    if epoch < warmup_epochs:
        return [warmup_lr for _ in scales]
    lr = lr_at_epoch(epoch, num_epochs, base_lr, warmup_epochs, warmup_lr)
    return [lr * s for s in scales]
