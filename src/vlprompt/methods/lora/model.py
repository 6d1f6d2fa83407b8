"""CLIP-LoRA — low-rank updates of the attention projections of both towers (Zanella & Ben Ayed, "Low-Rank
Few-Shot Adaptation of Vision-Language Models", CVPRW 2024; MaxZanella/CLIP-LoRA; LoRA: Hu et al., ICLR 2022,
Eq. 3).

Each adapted projection ``W`` (``q``, ``k``, ``v`` of the in-projection, ``o`` the output projection) of every
chosen block computes

    h = W x + s · B A dropout(x),      s = α / √r                            (CLIP-LoRA's ``LoRALayer.scaling``)

with ``A`` ``[r, d_in]`` Kaiming-uniform (a = √5) and ``B`` ``[d_out, r]`` zero, so training starts at zero-shot
CLIP; the dropout (rate ``lora.dropout``, one mask per projection) acts on the low-rank branch only and only in
training. ``x`` is the normalised block input ``ln_1(x)`` for ``q, k, v`` and the attention result for ``o``:
the :class:`~vlprompt.backbones.blocks.BlockWrapper` contract, honoured by every tower loop. The low-rank branch
is computed as ``(x Aᵀ) Bᵀ`` (the reference forms ``B A`` first: equal up to float rounding).

Text features are the class prompts ``lora.template`` (CLIP-LoRA's: "a photo of a {}." for every dataset) through
the adapted text tower, every forward; logits = CLIP's scale · cosine. Blocks: CLIP-LoRA's ``INDEX_POSITIONS``
(``lora.position``; indices beyond a tower's depth are skipped, as its ``if i in indices``).
"""

from __future__ import annotations

import math
from typing import Dict, FrozenSet, List

import torch
from torch import nn

from vlprompt.backbones.blocks import BlockWrapper
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.lora.config import LoRAConfig, lora_layers
from vlprompt.methods.prompts import clean_classname

#: CLIP-LoRA's letters -> the block runner's projection names
PROJECTION = {"q": "q", "k": "k", "v": "v", "o": "out"}


class LowRank(nn.Module):
    """``s · B A dropout(x)`` for a ``d_out × d_in`` projection."""

    def __init__(self, d_in: int, d_out: int, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.scaling = alpha / math.sqrt(rank)
        self.lora_A = nn.Parameter(torch.empty(rank, d_in))
        self.lora_B = nn.Parameter(torch.zeros(d_out, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.lora_A.to(x.dtype), self.lora_B.to(x.dtype)
        return (self.dropout(x) @ a.t()) @ b.t() * self.scaling


class LoRABlock(BlockWrapper):
    """The low-rank updates of one block's attention projections (``projection_delta``)."""

    def __init__(self, width: int, config: LoRAConfig):
        super().__init__()
        self.adapters = nn.ModuleDict(
            {
                PROJECTION[p]: LowRank(width, width, config.rank, config.alpha, config.dropout)
                for p in config.projections
            }
        )

    def projection_delta(self, name: str, x: torch.Tensor):
        if name not in self.adapters:
            return None
        return self.adapters[name](x)


class LoRA(PromptLearner):
    """CLIP-LoRA's learner (config :class:`~vlprompt.methods.lora.config.LoRAConfig`)."""

    @classmethod
    def capabilities(cls, config, backbone):
        trained_text = {Capability.TRAINED_TEXT} if config.encoder in ("text", "both") else set()
        return frozenset({Capability.SHARED_TEXT, *trained_text})

    @classmethod
    def wrapped_towers(cls, config: LoRAConfig) -> FrozenSet[str]:
        return frozenset(t for t in ("text", "vision") if config.encoder in (t, "both"))

    def __init__(self, backbone, config: LoRAConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        self.blocks = nn.ModuleDict()
        for tower in sorted(self.wrapped_towers(config), reverse=True):  # text first, as before
            adapter = backbone.tower(tower)
            if Capability.BLOCK_WRAPPERS not in adapter.capabilities:
                raise VLPromptError(
                    f"lora.encoder={config.encoder}: the {tower} tower of this backbone cannot take LoRA "
                    f"({adapter.block_blocker or 'no transformer blocks'}); use --set lora.encoder="
                    f"{'vision' if tower == 'text' else 'text'}"
                )
            layers = lora_layers(config.position, adapter.layers)
            if not layers:
                raise VLPromptError(
                    f"lora.position={config.position} selects no block of the {adapter.layers}-block {tower} tower; "
                    "use --set lora.position=all"
                )
            self.blocks[tower] = nn.ModuleDict({str(i): LoRABlock(adapter.width, config) for i in layers})
        self.to(backbone.device)
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        template = self.config.template or space.template
        self.classnames = list(space.classnames)
        ids = self.backbone.tokenize([template.format(clean_classname(c)) for c in space.classnames])
        pool = self.backbone.pool_index(ids)
        if self.backbone.options.causal_truncation and Capability.CAUSAL_TEXT in self.backbone.capabilities("text"):
            ids = ids[:, : int(pool.max()) + 1]
        self.register_buffer("ids", ids.to(self.backbone.device), persistent=False)

    def block_wrappers(self) -> Dict[str, Dict[int, nn.Module]]:
        return {tower: {int(i): w for i, w in blocks.items()} for tower, blocks in self.blocks.items()}

    def text_features(self, image_features=None, hook=None):
        return self.backbone.encode_text(self.backbone.token_embed(self.ids), self.ids, hook=hook)

    def lora_modules(self) -> List[LowRank]:
        """Every low-rank module in CLIP-LoRA's ``list_lora_layers`` order: text blocks, then vision blocks, each by
        block index, within a block q, k, v, o."""
        order = [PROJECTION[p] for p in "qkvo"]
        return [
            block.adapters[name]
            for tower in ("text", "vision")
            if tower in self.blocks
            for _, block in sorted(self.blocks[tower].items(), key=lambda kv: int(kv[0]))
            for name in order
            if name in block.adapters
        ]
