"""The example learner of CONTRIBUTING.md ("A learner as one module"): the zero-shot classifier with a residual
linear adapter on its text features. conftest.py registers it, so the composition matrix
(tests/test_composition.py) picks it up — every add-on x it — without any list being edited."""

from dataclasses import dataclass

import torch
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.config import setting
from vlprompt.methods.base import PromptLearner
from vlprompt.methods.configs import LearnerConfig
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.registry import LEARNERS


@dataclass
class TextAdapterConfig(LearnerConfig):
    alpha: float = setting(0.2, "α of t = t₀ + α · t₀ W (W starts at zero: the run starts as zero-shot CLIP)")


@LEARNERS.register("text_adapter", TextAdapterConfig)
class TextAdapter(PromptLearner):
    """t = t₀ + α · t₀ W: t₀ the frozen hand-crafted class features, W [E, E] trained. W does not depend on the
    classes, so a run trained on base classes evaluates on new ones."""

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({Capability.SHARED_TEXT, Capability.CLASS_TOKEN_END})

    def __init__(self, backbone, config: TextAdapterConfig, space):
        super().__init__(backbone, config, space)
        self.weight = nn.Parameter(torch.zeros(backbone.embed_dim, backbone.embed_dim))
        self.set_classnames(space)

    def set_classnames(self, space) -> None:
        self.classnames = list(space.classnames)
        features = hand_crafted_features(self.backbone, space.classnames, [space.template])
        self.register_buffer("classifier", features, persistent=False)

    def text_features(self, image_features=None, hook=None):
        t0 = self.classifier
        return t0 + self.config.alpha * (t0.float() @ self.weight).to(t0.dtype)
