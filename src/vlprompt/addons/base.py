"""Add-ons: components stacked on a prompt learner (``coop+nemesis``, ``maple+dept+restore``).

An add-on's config class (:class:`~vlprompt.addons.declarations.AddOnConfig`) declares the add-ons it ``implies`` and
its published settings (``presets`` / ``dataset_rules``, :mod:`vlprompt.presets`). The add-on class declares, at
class level (or as a class method of its config where it depends on it):

* ``requirements(config)`` — learner capabilities it needs (see :mod:`vlprompt.methods.base`); checked, together
  with :meth:`AddOn.check_config`, before the add-on is built;
* ``tap_towers(config)`` — towers whose per-block inputs/outputs it needs each forward (RESTORE's paper
  formulation; taps of the vision tower switch the feature cache off); ``feature_cache_blocker(config)`` — why
  it must see the images every step otherwise (a reason, logged once), so image features cannot be cached;
* ``frozen_image_teacher`` — it compares with the prompt-free image features of the batch's views (PromptSRC):
  with a feature cache the training stream then carries them as ``Output.frozen_image``;
* ``fp32_params`` — parameter-name substrings kept in fp32 under ``--precision fp16``;
* ``lr_scale`` — a learning-rate multiplier for its own parameters (DePT's head: 6.5);
* ``training_buffers`` — buffer-name prefixes that are training state only (resume checkpoints, not release
  weights: GPA's running aggregate).

and may contribute, in the order the task runs them each forward / step / epoch:

1. ``adapt(out)`` — feature transforms on ``out.image`` / ``out.text`` (RESTORE's calibrators / surgery);
2. ``losses(out, labels, step)`` — named, already weighted loss terms; ``ce_scale`` — a factor on the task's
   cross-entropy (DePT's ``1 - λ``); ``step_report()`` — scalars of the step to log (averaged over the epoch);
3. ``eval_logits(out, space)`` — replacement logits at evaluation (DePT's fused head on seen classes);
4. ``on_epoch_end(epoch, num_epochs)`` — epoch-level state (GPA, RESTORE's ratio update) and
   ``epoch_metrics()`` — scalars merged into the epoch's ``metrics.jsonl`` record (Nemesis' norms).

Every add-on's ``adapt`` runs before any add-on's ``losses``, so loss terms always see the final features (those
that give the logits: PromptSRC's constraints in ``promptsrc+restore`` see RESTORE's calibrated features);
method order matters only between add-ons that both adapt.

``on_initial_values()`` runs once after ``--init-from`` replaced the task's starting values (RESTORE re-captures
the initial Gram norms of the loaded prompts).
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Optional, Tuple

import torch
from torch import nn

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.registry import ADDONS
from vlprompt.task.types import Output, StepInfo


class AddOn(nn.Module):
    #: set by :meth:`vlprompt.registry.Registry.register`
    name: str = ""
    config_class: type = AddOnConfig
    requires: FrozenSet[str] = frozenset()
    fp32_params: Tuple[str, ...] = ()
    frozen_image_teacher: bool = False
    training_buffers: Tuple[str, ...] = ()
    #: ``gradient_hook(losses, grads)`` takes over the backward pass of every step (:mod:`vlprompt.engine.backward`)
    gradient_hook = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ADDONS.bind(cls)

    # ------------------------------------------------------------------ declarations (before construction)
    @classmethod
    def implementation(cls, config) -> type:
        """The class that implements this add-on for ``config`` (RESTORE: one per formulation)."""
        return cls

    @classmethod
    def requirements(cls, config) -> FrozenSet[str]:
        return cls.requires

    @classmethod
    def tap_towers(cls, config) -> FrozenSet[str]:
        return frozenset()

    @classmethod
    def feature_cache_blocker(cls, config) -> Optional[str]:
        """Why, with ``config``, this add-on needs the images every step so image features cannot be cached
        (None: it does not; taps of the vision tower already count)."""
        return None

    @classmethod
    def check_config(cls, config, provides: FrozenSet[str]) -> Optional[str]:
        """A reason to reject ``config`` with a learner that ``provides`` these capabilities, or None."""
        return None

    def __init__(self, task, config):
        super().__init__()
        object.__setattr__(self, "task", task)  # back-reference, not a sub-module
        self.config = config

    def check(self) -> Optional[str]:
        """:meth:`check_config` for this instance's config and learner."""
        return self.check_config(self.config, self.learner.provides)

    @property
    def backbone(self):
        return self.task.backbone

    @property
    def learner(self):
        return self.task.learner

    @property
    def taps(self) -> FrozenSet[str]:
        return self.tap_towers(self.config)

    @property
    def lr_scale(self) -> float:
        return 1.0

    @property
    def ce_scale(self) -> float:
        return 1.0

    # ------------------------------------------------------------------ contributions
    def set_classnames(self, space) -> None:
        """Rebuild class-dependent state for a label space (default: none)."""

    def adapt(self, out: Output) -> None:
        """Transform ``out.image`` / ``out.text`` in place (default: none)."""

    def losses(self, out: Output, labels: torch.Tensor, step: StepInfo) -> Dict[str, torch.Tensor]:
        return {}

    def step_report(self) -> Dict[str, float]:
        """Scalars of the last training step (default: none)."""
        return {}

    def eval_logits(self, out: Output, space) -> Optional[torch.Tensor]:
        return None

    def exported_tensors(self, space) -> Optional[Dict[str, torch.Tensor]]:
        """The tensors with which a fixed classifier (``vlprompt export``) reproduces :meth:`eval_logits` on
        ``space`` (``{}`` where it does not apply). None, the default: an add-on that changes the test-time logits
        cannot be exported."""
        return None

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Epoch-boundary updates (default: none)."""

    def epoch_metrics(self) -> Dict[str, float]:
        """Scalars merged into the epoch's ``metrics.jsonl`` record (default: none)."""
        return {}

    def on_initial_values(self) -> None:
        """Re-derive state captured from the starting values after ``--init-from`` set them (default: none)."""
