"""CLIP-Adapter (Gao et al., "CLIP-Adapter: Better Vision-Language Models with Feature Adapters", IJCV 2023;
gaopengcuhk/CLIP-Adapter's ``clip_adapter.py`` trainer on CoOp/Dassl).

A bottleneck MLP ``A(f) = ReLU(W_2 ReLU(W_1 f))`` (``W_1`` ``[E/r, E]``, ``W_2`` ``[E, E/r]``, no biases, torch's
default Linear init) on the frozen, unnormalised CLIP image feature, mixed back with the residual ratio α
(Eq. 3 of the paper): ``f' = α · A(f) + (1 − α) · f``; logits = ``exp(s) · cos(f', t_k)`` with the text features
of the hand-crafted prompt (the dataset's CoOp template), which the reference recomputes through the frozen text
tower at every forward (the same values, computed once here). Only the adapter is trained. ``towers`` ``text`` /
``both`` put a second adapter on the text features (the paper's textual and joint variants, Sec. 3.2); the
released trainer adapts the image features only. The adapter's input width is the backbone's embedding
dimension (the reference hard-codes RN50's 1024). The frozen image features are a pure function of the image, so
the adapter runs on cached features.
"""

from __future__ import annotations

from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.clip_adapter.config import CLIPAdapterConfig
from vlprompt.methods.prompts import hand_crafted_features


def bottleneck(width: int, reduction: int) -> nn.Sequential:
    """``Linear(E, E/r) -> ReLU -> Linear(E/r, E) -> ReLU``, without biases (the reference's ``Adapter``)."""
    hidden = width // reduction
    return nn.Sequential(
        nn.Linear(width, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, width, bias=False), nn.ReLU()
    )


class CLIPAdapter(PromptLearner):
    """CLIP-Adapter's learner (config :class:`~vlprompt.methods.clip_adapter.config.CLIPAdapterConfig`)."""

    @classmethod
    def capabilities(cls, config, backbone):
        trained_text = {Capability.TRAINED_TEXT} if config.towers in ("text", "both") else set()
        return frozenset({Capability.SHARED_TEXT, Capability.CLASS_TOKEN_END, *trained_text})

    def __init__(self, backbone, config: CLIPAdapterConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        width = backbone.embed_dim
        if config.towers in ("image", "both"):
            self.adapter = bottleneck(width, config.reduction).to(backbone.device)
        if config.towers in ("text", "both"):
            self.text_adapter = bottleneck(width, config.reduction).to(backbone.device)
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        self.classnames = list(space.classnames)
        classifier = hand_crafted_features(self.backbone, space.classnames, [space.template])
        self.register_buffer("classifier", classifier.to(self.backbone.dtype), persistent=False)

    def mix(self, adapter: nn.Module, features):
        ratio = self.config.ratio
        return ratio * adapter(features) + (1 - ratio) * features

    def adapt_image_features(self, features):
        return self.mix(self.adapter, features) if hasattr(self, "adapter") else features

    def text_features(self, image_features=None, hook=None):
        return self.mix(self.text_adapter, self.classifier) if hasattr(self, "text_adapter") else self.classifier
