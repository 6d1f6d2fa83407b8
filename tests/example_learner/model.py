"""The implementation of the example learner: the zero-shot classifier with a residual linear adapter on its text
features."""

import torch
from torch import nn

from example_learner.config import TextAdapterConfig
from vlprompt.capabilities import Capability
from vlprompt.methods.base import PromptLearner
from vlprompt.methods.prompts import hand_crafted_features


class TextAdapter(PromptLearner):
    """t = t₀ + α · t₀ W: t₀ the frozen hand-crafted class features, W [E, E] trained. W does not depend on the
    classes, so a run trained on base classes evaluates on new ones."""

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({Capability.SHARED_TEXT, Capability.TRAINED_TEXT, Capability.CLASS_TOKEN_END})

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
