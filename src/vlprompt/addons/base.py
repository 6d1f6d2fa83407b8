"""Add-ons: components stacked on a prompt learner (``coop+nemesis``, ``maple+dept+restore``).

An add-on may contribute, in the order the task runs them:

1. ``adapt(out)``       — feature transforms on ``out.image`` / ``out.text`` (RESTORE's surgery);
2. ``losses(out, y, step)`` — named, already weighted loss terms (KgCoOp, PromptSRC, Nemesis, RESTORE);
3. ``ce_scale``         — a factor on the task's cross-entropy term (DePT's ``1 - λ``);
4. ``eval_logits(out, space)`` — replacement logits at evaluation (DePT's fused head on seen classes);
5. ``on_epoch_end(epoch, num_epochs)`` — epoch-level state (GPA, RESTORE's ratio update);
6. ``epoch_metrics()``  — scalars logged with the epoch's record (Nemesis per-position norms).

Each add-on declares the learner capabilities it ``requires`` (see :mod:`vlprompt.methods.base`); a
composition that lacks one fails before training with a one-line reason. ``needs_images`` says the
add-on must see the images themselves every step (per-layer taps), which disables the frozen-feature
cache; ``taps`` names the towers whose per-block inputs/outputs it needs; ``lr_scale`` multiplies the
learning rate of its own parameters (DePT's head: 6.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional

import torch
from torch import nn

from vlprompt.registry import Registry

ADDONS: Registry = Registry("add-on", "--method (after '+')")


@dataclass
class AddOnConfig:
    """Fields shared by all add-ons; subclasses add their own."""


@dataclass
class StepInfo:
    """Where training is: 0-based epoch, number of epochs, step within the epoch."""

    epoch: int = 0
    num_epochs: int = 1
    step: int = 0


@dataclass
class Output:
    """Features and logits of one forward pass (unnormalised features; logits = scale · cos)."""

    image: torch.Tensor
    text: torch.Tensor
    logits: Optional[torch.Tensor] = None
    image_raw: Optional[torch.Tensor] = None
    text_raw: Optional[torch.Tensor] = None
    images: Optional[torch.Tensor] = None
    taps: Dict[str, List[tuple]] = field(default_factory=dict)


class AddOn(nn.Module):
    name: str = ""
    config_class = AddOnConfig
    requires: FrozenSet[str] = frozenset()
    needs_images: bool = False
    taps: FrozenSet[str] = frozenset()
    lr_scale: float = 1.0

    def __init__(self, task, config):
        super().__init__()
        object.__setattr__(self, "task", task)  # back-reference, not a sub-module
        self.config = config

    @property
    def backbone(self):
        return self.task.backbone

    @property
    def learner(self):
        return self.task.learner

    @property
    def ce_scale(self) -> float:
        return 1.0

    def check(self) -> Optional[str]:
        """Extra composition checks; return a reason string to reject the composition."""
        return None

    def set_classnames(self, space) -> None:
        """Rebuild class-dependent state for a label space (default: none)."""

    def adapt(self, out: Output) -> None:
        """Transform ``out.image`` / ``out.text`` in place (default: none)."""

    def losses(self, out: Output, labels: torch.Tensor, step: StepInfo) -> Dict[str, torch.Tensor]:
        return {}

    def eval_logits(self, out: Output, space) -> Optional[torch.Tensor]:
        return None

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Epoch-boundary updates (default: none)."""

    def epoch_metrics(self) -> Dict[str, float]:
        """Scalars merged into the epoch's ``metrics.jsonl`` record (Nemesis norms; default: none)."""
        return {}
