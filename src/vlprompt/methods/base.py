"""Prompt learners: how the frozen encoders are prompted.

A prompt learner owns the trainable prompt tensors of one method and produces image and text features through
the backbone adapter. Everything that depends on the class names (prompt prefix/suffix buffers, hand-crafted text
features) is rebuilt by :meth:`PromptLearner.set_classnames` and never saved, so a prompt trained on base classes
can be evaluated on new classes or on another dataset.

**Capabilities.** A learner declares what it provides with :meth:`PromptLearner.capabilities` (a class method of
its config and backbone, so it is known before anything is built) as members of
:class:`~vlprompt.capabilities.Capability` (each documented there: ``SHARED_TEXT``, ``PER_INSTANCE_TEXT``,
``PROMPT_VECTORS``, ``CLASS_TOKEN_END``, ``IMAGE_PROMPTS``, ``DEEP_TEXT``, ``DEEP_VISION``, ``PROMPT_PAIRS``);
add-ons declare what they require, and a composition that lacks something fails before training with a one-line
reason.

**Extension points.** :meth:`PromptLearner.block_wrappers` puts
:class:`~vlprompt.backbones.blocks.BlockWrapper` modules inside the frozen towers (honoured by every tower loop);
:meth:`PromptLearner.feature_cache_blocker` declares why image features cannot be cached (image prompts and vision
wrappers already count). :meth:`PromptLearner.adapt_image_features` transforms the (possibly cached) frozen image
features (CLIP-Adapter) and :meth:`PromptLearner.logits` may replace the backbone's logits (Tip-Adapter's cache).

**Fitted learners** (:mod:`vlprompt.engine.fitting`). A learner with ``fitted = True`` is fitted, not trained:
``vlprompt train`` calls :meth:`PromptLearner.fit` with the frozen features of the few-shot items and of the
search split (:class:`~vlprompt.engine.fitting.FitData`) instead of running epochs, records what it returns
(``fit.json``, results.json ``fit``) and then saves and evaluates the run as any other. A trained learner may
define ``fit_before_training`` / ``fit_after_training`` (same signature) to be fitted around its epochs
(Tip-Adapter-F: the cache, then the α/β search). Tensors whose shape the fit decides (a cache of N items) are
listed in ``fitted_buffers`` and take the stored shape when a run is loaded.

Add-ons reach learner internals only through the methods declared here: :meth:`prompt_vectors`,
:meth:`override` / :meth:`param`, :meth:`input_text_prompts` and :meth:`deep_prompt_pairs`.
"""

from __future__ import annotations

import contextlib
from typing import Dict, FrozenSet, Iterator, List, Optional, Tuple

import torch
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.data.transforms import CROP_SCALE
from vlprompt.methods.declarations import LearnerConfig
from vlprompt.registry import LEARNERS
from vlprompt.task.types import LabelSpace

__all__ = ["LearnerConfig", "PromptLearner", "LabelSpace"]


class PromptLearner(nn.Module):
    #: set by :meth:`vlprompt.registry.Registry.register`
    name: str = ""
    config_class: type = LearnerConfig
    #: parameter-name substrings kept in fp32 under ``--precision fp16`` (the references' fp32 exceptions)
    fp32_params: Tuple[str, ...] = ()
    #: False when the reference trainer runs the method in fp32 even in its fp16 mode (VPT): ``--precision fp16``
    #: then keeps the whole run in fp32
    half_precision: bool = True
    #: True when :meth:`fit` replaces the training epochs (training-free or closed-form learners)
    fitted: bool = False
    #: optional ``(self, data: FitData) -> dict`` of a trained learner, run before / after its epochs
    fit_before_training = None
    fit_after_training = None
    #: persistent buffers (or parameters) whose shape the fit decides (re-shaped to the stored tensors on loading)
    fitted_buffers: Tuple[str, ...] = ()
    #: buffers holding searched settings, which a converted reference file may lack (then: the configured values)
    fitted_settings: Tuple[str, ...] = ()
    #: smallest area fraction of the training views' random resized crops (Dassl's; Tip-Adapter-F: 0.5)
    crop_scale: float = CROP_SCALE
    #: ``gradient_hook(losses, grads)`` takes over the backward pass of every step (:mod:`vlprompt.engine.backward`)
    gradient_hook = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LEARNERS.bind(cls)

    @classmethod
    def capabilities(cls, config, backbone) -> FrozenSet[Capability]:
        """What this learner provides with ``config`` on ``backbone`` (see the module doc)."""
        return frozenset()

    @classmethod
    def feature_cache_blocker(cls, config) -> Optional[str]:
        """Why this learner's image features must be computed every step although the image tower carries no
        prompts or wrappers of it (e.g. it changes the images), or None."""
        return None

    def __init__(self, backbone, config, space: LabelSpace):
        super().__init__()
        # a plain attribute, not a sub-module: the frozen backbone is shared and never saved with prompts
        object.__setattr__(self, "backbone", backbone)
        self.config = config
        self.provides: FrozenSet[Capability] = type(self).capabilities(config, backbone)
        self.classnames: List[str] = []
        self._overrides: Dict[str, torch.Tensor] = {}

    # ---------------------------------------------------------------- class names
    def set_classnames(self, space: LabelSpace) -> None:
        """Rebuild every class-dependent buffer for a label space."""
        raise NotImplementedError

    # ---------------------------------------------------------------- features
    @property
    def image_prompts(self) -> bool:
        return Capability.IMAGE_PROMPTS in self.provides

    @classmethod
    def wrapped_towers(cls, config) -> FrozenSet[str]:
        """The towers (``"text"``, ``"vision"``) whose blocks this learner wraps with ``config``
        (:meth:`block_wrappers`); a tower without :attr:`~vlprompt.capabilities.Capability.BLOCK_WRAPPERS` refuses
        the learner. None by default."""
        return frozenset()

    def block_wrappers(self) -> Dict[str, Dict[int, nn.Module]]:
        """``{tower: {block index: BlockWrapper}}`` to put inside the frozen towers (``"text"``, ``"vision"``);
        the wrappers are sub-modules of this learner (trained and saved with it). None by default."""
        return {}

    def image_features(self, images: torch.Tensor, hook=None) -> torch.Tensor:
        """Unnormalised image features ``[B, E]``; the default runs the prompt-free image tower."""
        return self.backbone.encode_image(images, hook=hook)

    def text_features(self, image_features: Optional[torch.Tensor] = None, hook=None) -> torch.Tensor:
        """Unnormalised text features ``[K, E]`` (or ``[B, K, E]`` for image-conditioned learners)."""
        raise NotImplementedError

    def adapt_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """The image features the task uses, from the tower's (or the cache's) frozen ones; identity by default."""
        return features

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Class logits of the features; the backbone's own (``exp(s) · cos``) by default."""
        return self.backbone.logits(image_features, text_features)

    # ---------------------------------------------------------------- fitting
    def fit(self, data) -> Dict[str, object]:
        """Fit a ``fitted`` learner from :class:`~vlprompt.engine.fitting.FitData`; returns the record of the fit
        (the searched settings, their validation scores), written to ``fit.json``."""
        raise NotImplementedError

    def shape_fitted_buffers(self, tensors: Dict[str, torch.Tensor]) -> None:
        """Give each of :attr:`fitted_buffers` the shape of its stored tensor (keys relative to the learner)."""
        for name in self.fitted_buffers:
            if name in tensors:
                current = getattr(self, name)
                if isinstance(current, nn.Parameter):
                    setattr(self, name, nn.Parameter(current.new_zeros(tensors[name].shape)))
                else:
                    self.register_buffer(name, current.new_zeros(tensors[name].shape))

    # ---------------------------------------------------------------- prompt tensors
    def prompt_vectors(self) -> Dict[str, torch.Tensor]:
        """Named prompt tensors ``[..., M, D]`` (M = positions) that Nemesis normalises and corrupts."""
        return {}

    def input_text_prompts(self) -> int:
        """How many input-level text prompt vectors sit at positions ``1..M`` right after SOS in every class
        prompt (0 when there are none there)."""
        return 0

    def deep_prompt_pairs(self) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """``[(P_i, V_i)]``: the text and vision prompts that replace tokens at block ``i`` = 1, 2, … of both
        towers (list index ``i − 1``); empty unless the learner provides ``prompt_pairs``."""
        return []

    def param(self, name: str) -> torch.Tensor:
        """A prompt tensor, or its temporary override (corruption experiments, PAN pre-inference)."""
        return self._overrides.get(name, getattr(self, name))

    @contextlib.contextmanager
    def override(self, tensors: Dict[str, torch.Tensor]) -> Iterator[None]:
        """Temporarily replace named prompt tensors (see :meth:`param`)."""
        previous = self._overrides
        self._overrides = {**previous, **tensors}
        try:
            yield
        finally:
            self._overrides = previous
