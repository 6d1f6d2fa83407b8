"""MaPLe — Multi-modal Prompt Learning (Khattak et al., CVPR 2023).

Text prompts as in :class:`~vlprompt.methods.deep.LPT` (n = 2 vectors, depth J = 9):

* P_0 = ``ctx`` ∈ R^{n×D}: the token embeddings of the first n tokens of "a photo of a"; the prompt string stays
  ``"a photo of a {name}."``, so the input is ``[SOS][P_0] of a {name}. [EOT]``;
* P_i = ``text_deep[i−1]`` ∈ R^{n×D} ~ N(0, 0.02²), i = 1..J−1, replaces text positions 1..n at block i.

Vision prompts are *coupled* to the text prompts (Sec. 3.3, Eqs. 5-7; no free vision parameters):

* V_0 = ``proj``(P_0), ``proj``: Linear(D → W), appended after the positional embedding (through ``ln_pre``);
* V_i = F_i(P_i), F_i = ``couplings[i−1]``: Linear(D → W), replaces the last n vision tokens at block i.
  All F_i are deep copies of one freshly initialised Linear, so they start identical (as in the reference).

Blocks ≥ J propagate the prompt tokens of block J−1 in both towers. J is clamped to the smaller tower's layer
count. The deep prompts and their couplings stay fp32 under ``--precision fp16``; ``ctx`` and ``proj`` are half.
:meth:`MaPLe.deep_prompt_pairs` exposes (P_i, V_i) per layer for RESTORE.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Tuple

import torch
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.methods.deep.model import LPT
from vlprompt.methods.deep_prompts import clamp_depth


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return layer(x.to(layer.weight.dtype))


class MaPLe(LPT):
    fp32_params = ("text_deep", "couplings")

    def text_settings(self, config):
        bb = self.backbone
        bb.vision_width  # noqa: B018  (raises the one-line error for a CNN image tower)
        depth = clamp_depth(config.depth, min(bb.text_layers, bb.vision_layers), f"{self.name}.depth")
        return config.n_ctx, depth, (f"{self.name}.n_ctx", f"{self.name}.depth")

    @classmethod
    def capabilities(cls, config, backbone):
        depth = min(config.depth, backbone.text_layers, backbone.vision_layers)
        caps = {
            Capability.SHARED_TEXT,
            Capability.TRAINED_TEXT,
            Capability.PROMPT_VECTORS,
            Capability.CLASS_TOKEN_END,
            Capability.IMAGE_PROMPTS,
        }
        if depth > 1:
            caps |= {Capability.DEEP_TEXT, Capability.DEEP_VISION, Capability.PROMPT_PAIRS}
        return frozenset(caps)

    def build_vision(self, config) -> None:
        bb = self.backbone
        width = bb.vision_width  # raises for a CNN image tower
        self.proj = nn.Linear(bb.text_width, width, device=bb.device)
        coupling = nn.Linear(bb.text_width, width, device=bb.device)
        layers = 0 if self.text_deep is None else self.text_deep.shape[0]
        self.couplings = nn.ModuleList(copy.deepcopy(coupling) for _ in range(layers))

    def deep_prompt_pairs(self) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """``[(P_i, V_i = F_i(P_i))]`` for i = 1..J−1 (list index i−1): the deep text prompts and the projected
        vision prompts that replace tokens at block i (RESTORE's released formulation)."""
        if self.text_deep is None:
            return []
        return [(p, _linear(f, p)) for p, f in zip(self.param("text_deep").unbind(0), self.couplings)]

    def vision_prompts(self) -> Tuple[torch.Tensor, List[Optional[torch.Tensor]]]:
        """V_0 = proj(P_0) and the adapter's per-block list ``[None, V_1, ..., V_{J−1}]``."""
        return _linear(self.proj, self.param("ctx")), [None] + [v for _, v in self.deep_prompt_pairs()]

    def image_features(self, images, hook=None):
        v0, deep = self.vision_prompts()
        return self.backbone.encode_image(images, prompts=v0, deep_prompts=deep, hook=hook)
