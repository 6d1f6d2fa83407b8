"""Prompt learners: how the frozen encoders are prompted.

A prompt learner owns the trainable prompt tensors of one method and produces image and text features
through the backbone adapter. Everything that depends on the class names (prompt prefix/suffix buffers,
hand-crafted text features) is rebuilt by :meth:`PromptLearner.set_classnames` and never saved, so a
prompt trained on base classes can be evaluated on new classes or on another dataset.

Capabilities a learner may *provide* (add-ons declare what they *require*, checked before training):

``shared_text``       one text feature per class (``[K, E]``), not per image
``per_instance_text`` image-conditioned text features ``[B, K, E]`` (CoCoOp)
``prompt_vectors``    named prompt tensors whose second-to-last axis is the prompt position (Nemesis)
``image_prompts``     the image tower carries prompts (no frozen-feature cache)
``deep_text`` / ``deep_vision``  per-layer prompts in the text / vision tower (RESTORE)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterator, List, Optional

import torch
from torch import nn

from vlprompt.registry import Registry

#: method name -> learner class
LEARNERS: Registry = Registry("method", "--method")


@dataclass
class LabelSpace:
    """The classes a model is asked to tell apart, with the dataset's hand-crafted prompts.

    ``seen`` is True when these are the classes the model was trained on (DePT's head applies only then);
    ``rows`` maps each class to its row in the training label space when the classes are a subset of it
    (ImageNet-A/-R against a 1000-class head), else None.
    """

    classnames: List[str]
    template: str = "a photo of a {}."
    kgcoop_template: Optional[str] = None
    ensemble_templates: Optional[List[str]] = None
    seen: bool = True
    rows: Optional[List[int]] = None

    def __len__(self) -> int:
        return len(self.classnames)


@dataclass
class LearnerConfig:
    """Fields shared by all learners; subclasses add their own (dataclass inheritance)."""


class PromptLearner(nn.Module):
    name: str = ""
    config_class = LearnerConfig
    provides: FrozenSet[str] = frozenset()
    #: parameter-name substrings kept in fp32 under ``--precision fp16`` (METHODS §1.6)
    fp32_params: tuple = ()

    def __init__(self, backbone, config, space: "LabelSpace"):
        super().__init__()
        # a plain attribute, not a sub-module: the frozen backbone is shared and never saved with prompts
        object.__setattr__(self, "backbone", backbone)
        self.config = config
        self.classnames: list = []
        self._overrides: Dict[str, torch.Tensor] = {}

    # ---------------------------------------------------------------- class names
    def set_classnames(self, space: "LabelSpace") -> None:
        """Rebuild every class-dependent buffer for a label space."""
        raise NotImplementedError

    # ---------------------------------------------------------------- features
    @property
    def image_prompts(self) -> bool:
        return "image_prompts" in self.provides

    def image_features(self, images: torch.Tensor, hook=None) -> torch.Tensor:
        """Unnormalised image features ``[B, E]``; the default runs the prompt-free image tower."""
        return self.backbone.encode_image(images, hook=hook)

    def text_features(self, image_features: Optional[torch.Tensor] = None, hook=None) -> torch.Tensor:
        """Unnormalised text features ``[K, E]`` (or ``[B, K, E]`` for image-conditioned learners)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- prompt tensors
    def prompt_vectors(self) -> Dict[str, torch.Tensor]:
        """Named prompt tensors ``[..., M, D]`` (M = positions) that Nemesis normalises and corrupts."""
        return {}

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
