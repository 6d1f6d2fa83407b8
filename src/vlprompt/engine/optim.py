"""The optimizer and learning-rate plan of a run (``train.optimizer``, ``train.schedule``, ``train.steps``).

* ``sgd`` (default) — the reference trainers' Dassl SGD: momentum ``train.momentum``, weight decay
  ``train.weight_decay``, no dampening, no Nesterov.
* ``adamw`` — :class:`torch.optim.AdamW` with ``train.weight_decay``, betas (``train.adam_beta1``,
  ``train.adam_beta2``) and ``train.adam_eps`` (CLIP-LoRA, Tip-Adapter-F).
* ``adam`` — :class:`torch.optim.Adam` with the same settings, the weight decay added to the gradient (L2, as
  Dassl's ``adam``; TCP, whose README sets its epsilon to 1e-3).

Schedules (every group runs at its multiplier ``lr_scale`` times the base LR):

* ``epoch_cosine`` (default) — Dassl's constant warm-up + cosine, set once per epoch
  (:mod:`vlprompt.engine.schedule`);
* ``step_cosine`` — cosine annealing over the run's optimizer steps, set before every step as
  :class:`torch.optim.lr_scheduler.CosineAnnealingLR` (``T_max = T``, ``eta_min = train.min_lr``) stepped once per
  iteration, in its closed form::

      η_t = η_min + (η0 − η_min) · ½ · (1 + cos(π t / T)),   t = 0 … T − 1

  with ``T = train.steps`` when set, else epochs × batches per epoch. The warm-up settings do not apply, and
  ``train.min_lr`` belongs to this schedule only (Dassl's cosine ends at 0).

``train.steps`` N > 0 replaces ``train.epochs``: the run takes N optimizer steps in all, over as many epochs as that
needs, the last one cut short — for references that count iterations rather than epochs (CLIP-LoRA:
``n_iters × shots``).
"""

from __future__ import annotations

import math
from typing import List, Sequence

import torch

from vlprompt.engine.schedule import group_lrs, lr_at_epoch


def build_optimizer(groups: List[dict], cfg) -> torch.optim.Optimizer:
    """The run's optimizer over the task's parameter groups (``cfg``: the train section)."""
    if cfg.optimizer in ("adamw", "adam"):
        adam = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        return adam(
            groups, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps, weight_decay=cfg.weight_decay
        )
    return torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, dampening=0, nesterov=False
    )


def step_cosine_lr(step: int, total: int, base_lr: float, min_lr: float = 0.0) -> float:
    """η_t of ``step_cosine`` (see the module doc)."""
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * step / total))


class LRPlan:
    """The learning rate of every parameter group (multipliers ``scales``) per epoch (``epoch_cosine``) or per
    optimizer step (``step_cosine``); ``batches`` is the number of optimizer steps of a full epoch."""

    def __init__(self, cfg, scales: Sequence[float], batches: int):
        self.cfg = cfg
        self.scales = list(scales)
        self.per_step = cfg.schedule == "step_cosine"
        self.total_steps = cfg.steps or cfg.epochs * max(batches, 1)

    def base_lr(self, epoch: int, step: int) -> float:
        """The multiplier-1 LR of ``epoch`` (``epoch_cosine``) or of global ``step`` (``step_cosine``)."""
        cfg = self.cfg
        if self.per_step:
            return step_cosine_lr(min(step, self.total_steps), self.total_steps, cfg.lr, cfg.min_lr)
        return lr_at_epoch(epoch, cfg.epochs, cfg.lr, cfg.warmup_epochs, cfg.warmup_lr)

    def group_lrs(self, epoch: int, step: int) -> List[float]:
        """Every group's LR at ``epoch`` / global ``step`` (the warm-up LR is shared by all groups)."""
        cfg = self.cfg
        if self.per_step:
            return [s * self.base_lr(epoch, step) for s in self.scales]
        return group_lrs(epoch, cfg.epochs, cfg.lr, self.scales, cfg.warmup_epochs, cfg.warmup_lr)


def epochs_for_steps(steps: int, batches: int) -> int:
    """The epochs a budget of ``steps`` optimizer steps needs at ``batches`` steps per epoch."""
    return max(1, math.ceil(steps / max(batches, 1)))


def set_lrs(optimizer: torch.optim.Optimizer, lrs: Sequence[float]) -> None:
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = lr
