"""``PromptTask``: one prompt learner plus add-ons over a frozen backbone — the model a training loop trains.

Forward pipeline (:meth:`PromptTask.forward`):

1. encode — the learner produces image features (or takes cached frozen features) and text features, collecting
   per-block taps for the towers an add-on asked for;
2. adapt  — add-ons transform the features in method order (RESTORE's calibrators / surgery);
3. logits — the backbone's own logits (:meth:`~vlprompt.backbones.PromptableCLIP.logits`: ``exp(logit_scale) ·
   cos(f, t)`` with CLIP's frozen scale, plus a learned bias where the model has one).

The task runs on its own view of the shared backbone (``backbone.with_options(options)``), carrying the run's
:class:`~vlprompt.backbones.options.EncodeOptions` and the learner's block wrappers (``learner.block_wrappers()``,
:class:`~vlprompt.backbones.blocks.BlockWrapper`); the shared backbone itself is never changed.
:attr:`PromptTask.feature_cache_blocker` says why image features cannot be cached (image prompts, vision taps or
wrappers, or a component's declared ``feature_cache_blocker``), logged once.

:meth:`PromptTask.training_step` adds the losses — cross-entropy (scaled by add-ons, e.g. DePT's ``1 - λ``) plus each
add-on's named terms — and a report of extra scalars, so a training loop only sums, back-propagates, steps and logs.
:meth:`PromptTask.predict` lets an add-on replace the logits on a seen label space (DePT's fused head), and
:meth:`PromptTask.on_epoch_end` runs the epoch-level hooks and returns their metrics. A component's
``gradient_hook`` (at most one per task) takes over the backward pass (:mod:`vlprompt.engine.backward`).
"""

from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from vlprompt.backbones.adapter import cosine_logits
from vlprompt.backbones.options import EncodeOptions
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.registry import ADDONS, LEARNERS
from vlprompt.task.composition import Composition, check_composition, parse_method
from vlprompt.task.types import LabelSpace, Output, StepInfo, StepResult

__all__ = ["PromptTask", "cosine_logits"]

log = logging.getLogger(__name__)


class PromptTask(nn.Module):
    """One prompt learner + add-ons over a frozen backbone; owns only the trainable parts.

    ``method`` is a method string or a parsed :class:`~vlprompt.task.composition.Composition`; ``configs`` maps
    every component name to its config (extra entries are ignored). The composition is checked against the
    learner's capabilities before anything is built. ``options``: the encoder settings (default: the backbone's).
    """

    def __init__(
        self,
        backbone,
        method: Union[str, Composition],
        configs: Mapping[str, object],
        space: LabelSpace,
        options: Optional[EncodeOptions] = None,
    ):
        super().__init__()
        # this task's view of the frozen, shared backbone: not part of state_dict
        object.__setattr__(self, "backbone", backbone.with_options(options))
        backbone = self.backbone
        self.composition = method if isinstance(method, Composition) else parse_method(method)
        self.method = self.composition.method
        check_composition(self.composition, configs, backbone)
        self.space = space
        self.learner = LEARNERS.get(self.composition.base)(backbone, configs[self.composition.base], space)
        backbone.set_block_wrappers(self.learner.block_wrappers())
        self.addons = nn.ModuleDict()
        for name in self.composition.addons:
            config = configs[name]
            self.addons[name] = ADDONS.get(name).implementation(config)(self, config)
        for addon in self.addons.values():
            addon.set_classnames(space)
        hooks = [c for c in [self.learner, *self.addons.values()] if c.gradient_hook is not None]
        if len(hooks) > 1:
            raise VLPromptError(
                f"{self.method}: {' and '.join(c.name for c in hooks)} each replace the backward pass (a gradient "
                "hook); combine at most one of them"
            )
        #: the bound gradient hook of the one component that has it, or None (:mod:`vlprompt.engine.backward`)
        self.gradient_hook = hooks[0].gradient_hook if hooks else None

    # ------------------------------------------------------------------ properties
    @property
    def feature_cache_blocker(self) -> Optional[str]:
        """Why image features are not a pure function of the image (None when they are and can be cached)."""
        learner = self.learner
        reasons = [learner.feature_cache_blocker(learner.config)]
        if learner.image_prompts:
            reasons.append(f"{learner.name} puts prompts into the image tower")
        if self.backbone.block_wrappers.get("vision"):
            reasons.append(f"{learner.name} wraps blocks of the image tower")
        for name, addon in self.addons.items():
            reasons.append(addon.feature_cache_blocker(addon.config))
            if "vision" in addon.taps:
                reasons.append(f"add-on {name!r} taps the image tower's blocks")
        return next((r for r in reasons if r), None)

    @property
    def image_features_cacheable(self) -> bool:
        """True when image features can come from the feature cache; the reason they cannot is logged once."""
        reason = self.feature_cache_blocker
        if reason and not getattr(self, "_cache_reason_logged", False):
            log.info("%s: image features are computed every step, not cached (%s)", self.method, reason)
            self._cache_reason_logged = True
        return reason is None

    @property
    def wants_frozen_image(self) -> bool:
        """True when an add-on compares with the prompt-free image features of the batch's views (PromptSRC's
        image teacher): a training stream with a feature cache then carries them (``training_step``'s
        ``frozen_image``) and no step encodes the images twice."""
        return any(addon.frozen_image_teacher for addon in self.addons.values())

    @property
    def per_instance_text(self) -> bool:
        return Capability.PER_INSTANCE_TEXT in self.learner.provides

    def set_label_space(self, space: LabelSpace) -> None:
        self.space = space
        self.learner.set_classnames(space)
        for addon in self.addons.values():
            addon.set_classnames(space)

    # ------------------------------------------------------------------ forward
    def forward(self, images: Optional[torch.Tensor] = None, image_features: Optional[torch.Tensor] = None) -> Output:
        towers = set().union(*(a.taps for a in self.addons.values()))
        taps: Dict[str, List[tuple]] = {t: [] for t in towers}

        def hook(tower, layer, block, x_in, x_out, n_prompts):
            if tower in taps:
                taps[tower].append((layer, block, x_in, x_out, n_prompts))

        tap = hook if towers else None
        if image_features is None:
            if images is None:
                raise ValueError("forward needs images or image_features")
            image_features = self.learner.image_features(images, hook=tap)
        image_features = self.learner.adapt_image_features(image_features)
        text = self.learner.text_features(image_features=image_features, hook=tap)
        out = Output(image=image_features, text=text, image_raw=image_features, text_raw=text, images=images, taps=taps)
        for addon in self.addons.values():
            addon.adapt(out)
        out.logits = self.learner.logits(out.image, out.text)
        return out

    def loss_terms(self, out: Output, labels: torch.Tensor, step: StepInfo) -> Dict[str, torch.Tensor]:
        """Named loss terms, each already weighted; the training loss is their sum."""
        scale = 1.0
        for addon in self.addons.values():
            scale *= addon.ce_scale
        terms = {"ce": scale * F.cross_entropy(out.logits.float(), labels)}
        for addon in self.addons.values():
            terms.update(addon.losses(out, labels, step))
        return terms

    def training_step(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        step: StepInfo,
        features: bool,
        frozen_image: Optional[torch.Tensor] = None,
    ) -> StepResult:
        """Forward one batch (images, or cached image features when ``features``: stored in fp32, used in the
        backbone's dtype) and return its loss terms, logits and the add-ons' step report. ``frozen_image``: the
        prompt-free features of the same image views, from the feature cache (:attr:`wants_frozen_image`)."""
        out = self(image_features=inputs.to(self.backbone.dtype)) if features else self(images=inputs)
        if frozen_image is not None:
            out.frozen_image = frozen_image.to(self.backbone.dtype)
        losses = self.loss_terms(out, labels, step)
        report: Dict[str, float] = {}
        for addon in self.addons.values():
            report.update(addon.step_report())
        return StepResult(losses=losses, logits=out.logits.detach(), report=report)

    @torch.no_grad()
    def predict(self, images=None, image_features=None) -> torch.Tensor:
        """Evaluation logits on the current label space (an add-on may fuse its own head)."""
        out = self.forward(images=images, image_features=image_features)
        logits = out.logits
        for addon in self.addons.values():
            fused = addon.eval_logits(out, self.space)
            if fused is not None:
                logits = fused
        return logits

    def on_epoch_end(self, epoch: int, num_epochs: int) -> Dict[str, float]:
        """Run the add-ons' epoch-end updates; returns their metrics for the epoch's record."""
        metrics: Dict[str, float] = {}
        for addon in self.addons.values():
            addon.on_epoch_end(epoch, num_epochs)
        for addon in self.addons.values():
            metrics.update(addon.epoch_metrics())
        return metrics

    # ------------------------------------------------------------------ parameters and state
    def trainable_parameters(self) -> Dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def param_groups(self, lr: float) -> List[dict]:
        """SGD groups by learning-rate multiplier (learner: 1; add-ons: their ``lr_scale``)."""
        scaled: Dict[float, list] = {}
        for module, scale in [(self.learner, 1.0)] + [(a, a.lr_scale) for a in self.addons.values()]:
            params = [p for p in module.parameters() if p.requires_grad]
            if params:
                scaled.setdefault(scale, []).extend(params)
        return [{"params": ps, "lr": lr * s, "lr_scale": s} for s, ps in scaled.items()]

    def fp32_parameter_names(self) -> List[str]:
        """Names of the parameters the references keep in fp32 under their pure half mode."""
        keep = [(f"learner.{k}") for k in self.learner.fp32_params]
        keep += [f"addons.{name}.{k}" for name, a in self.addons.items() for k in a.fp32_params]
        return [n for n, _ in self.named_parameters() if any(n.startswith(k) for k in keep)]

    def shape_fitted_buffers(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Re-shape the learner's fit-sized buffers to stored release tensors (keys as in :meth:`release_state_dict`)."""
        prefix = "learner."
        self.learner.shape_fitted_buffers({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})

    def release_state_dict(self) -> Dict[str, torch.Tensor]:
        """The state to publish (``weights.safetensors``): everything but training-only buffers."""
        skip = [f"addons.{name}.{b}" for name, a in self.addons.items() for b in a.training_buffers]
        return {k: v for k, v in self.state_dict().items() if not any(k.startswith(s) for s in skip)}
