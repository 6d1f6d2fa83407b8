"""CoCoOp — Conditional Context Optimization (Zhou et al., "Conditional Prompt Learning for Vision-Language
Models", CVPR 2022).

CoOp's context C = [c_1..c_M] (M = 4, from "a photo of a"; :class:`~vlprompt.methods.coop.CoOp` builds it and the
class prompts) plus a meta-net h that turns each image into one bias shared by all context tokens (Sec. 3.2):

    f̂      = f / ‖f‖                         (the frozen image feature, E-dim)
    π(x)   = h(f̂) = W_2 · ReLU(W_1 f̂ + b_1) + b_2,   W_1: E → E/16,  W_2: E/16 → D
    c_m(x) = c_m + π(x)                        (m = 1..M)
    t_k(x) = text tower([SOS][c_1(x)..c_M(x)][name_k][.][EOT])   for every image and every class
    z_ik   = 100 · ⟨f̂_i, t̂_k(x_i)⟩              (Eq. 4)

so the text features are ``[B, K, E]``: B·K text sequences per batch. The B prefixes [SOS][c_1(x)..c_M(x)]
are encoded once per image and paired with the K class suffixes, in chunks of the backbone's ``text_chunk``
(image, class) pairs. The image tower carries no prompts, so the frozen-feature cache applies.
Trainable: ``ctx`` and ``meta_net``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.methods.base import LabelSpace
from vlprompt.methods.cocoop.config import CoCoOpConfig
from vlprompt.methods.coop.model import CoOp


class CoCoOp(CoOp):
    @classmethod
    def capabilities(cls, config, backbone):
        return (super().capabilities(config, backbone) - {Capability.SHARED_TEXT}) | {Capability.PER_INSTANCE_TEXT}

    def __init__(self, backbone, config: CoCoOpConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        embed, width = backbone.embed_dim, backbone.text_width
        hidden = max(1, embed // 16)
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(embed, hidden)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(hidden, width)),
                ]
            )
        ).to(backbone.device)

    def conditioned_context(self, image_features: torch.Tensor) -> torch.Tensor:
        """c_m(x) = c_m + h(f̂): ``[B, M, D]`` (``[B, K, M, D]`` for a class-specific context)."""
        f = image_features / image_features.norm(dim=-1, keepdim=True)
        pi = self.meta_net(f.to(self.meta_net.linear1.weight.dtype))
        ctx = self.param("ctx")
        return ctx.unsqueeze(0) + pi.view(pi.shape[0], *([1] * (ctx.dim() - 1)), pi.shape[-1])

    def text_features(self, image_features=None, hook=None):
        """Unnormalised text features ``[B, K, E]`` for unnormalised image features ``[B, E]``."""
        if image_features is None:
            raise ValueError("cocoop's text features are conditioned on image features")
        contexts = self.conditioned_context(image_features)
        return self.prompts.encode_per_image(contexts, self.config.class_token_position, hook=hook)
