"""Image towers open_clip takes from timm (``TimmModel``) as :class:`~vlprompt.backbones.towers.base.VisionTower`.

open_clip wraps a timm network as ``TimmModel(trunk, head)``: EVA02 / EVA-CLIP (timm ``Eva``, rotary position
embeddings; Fang et al., 2023), SigLIP / SigLIP 2 (timm ``VisionTransformer`` with a multi-head attention-pool
head, "map"; Zhai et al., ICCV 2023) and other timm ViTs. For the two ViT trunk types the adapter calls the
trunk's own modules in the order of ``forward_features`` + ``forward_head`` and of ``TimmModel.forward``::

    x = patch_embed(image);  x, rope = _pos_embed(x)      (class / register tokens first, as the trunk does)
    x = [x_prefix ; P_0 ; x_patches]                       (n shallow prompts, no position of their own)
    x = norm_pre(x)
    for block i:  (i >= 1 with P_i: replace the n prompt tokens by P_i)   x = block_i(x[, rope'])
    x = norm(strip(x));  f = head(forward_head(x))         (token / avg / map pooling and projections)

**Where the prompts go.** Prompt tokens (VPT, Jia et al., ECCV 2022; MaPLe, Khattak et al., CVPR 2023) sit right
after the trunk's own extra tokens (``num_prefix_tokens``: the class token and any register tokens), not after the
patches. With rotary embeddings (EVA02) every attention layer rotates the queries and keys of all tokens after the
first ``num_prefix_tokens`` with a table of exactly one rotation per patch, so tokens appended after the patches
would either break that table's shape or be rotated as if they were patches. Placed with the tower's extra tokens,
the prompts are, like the class token, tokens without a position: the table ``rope'`` handed to each block gets
identity rotations (sin 0, cos 1) for the prompt positions, so their queries and keys are left as they are and the
patches keep exactly their own rotations. Without prompts, ``rope' = rope`` and every computation is the trunk's.
Prompts are dropped before the final norm and pooling, so "token", "avg" and the SigLIP attention-pool head see
exactly the trunk's tokens. The "replace" semantics of deep prompts are the open_clip ViT adapter's.

Blocks are timm's own modules, run by their ``forward`` (batch-first); block wrappers (LoRA) are not offered
here. Other trunks (ConvNeXt, ResNet, hybrid CNN+ViT stems) run as a whole and refuse prompts and taps with one
line that names the trunk type.
"""

from __future__ import annotations

from typing import FrozenSet, Optional

import torch
from torch import nn

from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.towers.base import (
    DEFAULT_OPTIONS,
    VISION_TOWERS,
    BlockHook,
    DeepPrompts,
    VisionTower,
    Wrappers,
    deep_prompt,
    expand_prompts,
)
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

try:
    from open_clip.timm_model import TimmModel
except ImportError:  # pragma: no cover
    TimmModel = None
try:
    from timm.layers import PatchEmbed
    from timm.layers.pos_embed_sincos import RotaryEmbeddingCat
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer as TimmViT
except ImportError:  # pragma: no cover
    Eva = TimmViT = PatchEmbed = RotaryEmbeddingCat = None


def _trunk_problem(trunk: nn.Module) -> Optional[str]:
    """Why the adapter cannot place prompts in ``trunk`` (None when it can)."""
    kind = f"timm {type(trunk).__name__}"
    if TimmViT is None or type(trunk) not in (TimmViT, Eva):
        return f"{kind} (not a ViT: prompts need the timm VisionTransformer or Eva trunk)"
    if type(getattr(trunk, "patch_embed", None)) is not PatchEmbed:
        return f"{kind} with a {type(trunk.patch_embed).__name__} stem (a hybrid CNN trunk)"
    if getattr(trunk, "dynamic_img_size", False):
        return f"{kind} with dynamic image size"
    if type(trunk) is Eva:
        if getattr(trunk, "rope_mixed", False):
            return f"{kind} with depth-mixed rotary embeddings"
        if trunk.rope is not None and type(trunk.rope) is not RotaryEmbeddingCat:
            return f"{kind} with {type(trunk.rope).__name__} rotary embeddings"
    return None


@VISION_TOWERS.register(*(t for t in (TimmModel,) if t is not None))
class TimmVisionTower(VisionTower):
    """open_clip's ``TimmModel``: prompts after the trunk's prefix tokens (module doc) for ViT trunks."""

    def __init__(self, module: nn.Module):
        super().__init__(module)
        self.trunk = module.trunk
        self.problem = _trunk_problem(self.trunk)
        self.blocks = self.trunk.blocks if self.problem is None else []
        self.prefix_tokens = int(getattr(self.trunk, "num_prefix_tokens", 0))

    def _refuse(self, what: str):
        raise VLPromptError(
            f"{what} need a ViT image tower; this backbone's image tower is {self.problem} "
            "(use a text-side method such as coop/cocoop/kgcoop)"
        )

    @property
    def capabilities(self) -> FrozenSet[Capability]:
        return frozenset() if self.problem else frozenset({Capability.VISION_PROMPTS, Capability.LAYER_TAPS})

    @property
    def block_blocker(self) -> Optional[str]:
        return f"timm blocks ({type(self.trunk).__name__}) run by their own forward"

    @property
    def width(self) -> int:
        if self.problem:
            self._refuse("vision prompts")
        return int(self.trunk.embed_dim)

    @property
    def layers(self) -> int:
        return len(self.blocks)

    @property
    def embed_dim(self) -> int:
        """Output width: the open_clip head's projection, else the trunk's classifier, else its features."""
        for layer in reversed(list(self.module.head.modules())):
            if isinstance(layer, nn.Linear):
                return layer.out_features
        head = getattr(self.trunk, "head", None)
        return head.out_features if isinstance(head, nn.Linear) else int(self.trunk.num_features)

    def strip_prompts(self, x: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """Drop the ``n`` prompt tokens that follow the trunk's prefix tokens."""
        if n_prompts == 0:
            return x
        s = self.prefix_tokens
        return torch.cat([x[:, :s], x[:, s + n_prompts :]], dim=1)

    def _rope(self, rope: Optional[torch.Tensor], n_prompts: int) -> Optional[torch.Tensor]:
        """The rotation table with identity rotations (sin 0, cos 1) for ``n`` prompt positions in front."""
        if rope is None or n_prompts == 0:
            return rope
        half = rope.shape[-1] // 2
        identity = torch.cat([rope.new_zeros(n_prompts, half), rope.new_ones(n_prompts, half)], dim=-1)
        return torch.cat([identity.expand(*rope.shape[:-2], -1, -1), rope], dim=-2)

    def _block(self, block: nn.Module, x: torch.Tensor, rope: Optional[torch.Tensor], n_prompts: int):
        if type(self.trunk) is Eva:
            return block(x, rope=self._rope(rope, n_prompts))
        return block(x)

    def run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One frozen block on batch-first tokens ``[prefix ; prompts ; patches]`` (the patches are the last
        ``grid`` tokens, so the prompts are what lies between them and the prefix)."""
        if self.problem:
            self._refuse("per-layer vision taps")
        rope = self._embeddings_rope()
        n_patches = self.trunk.patch_embed.num_patches
        return self._block(block, x, rope, x.shape[1] - self.prefix_tokens - n_patches)

    def _embeddings_rope(self) -> Optional[torch.Tensor]:
        rope = getattr(self.trunk, "rope", None)
        return rope.get_embed() if rope is not None else None

    def _embed(self, images: torch.Tensor):
        """Patch, prefix-token and position embeddings as the trunk computes them; ``(tokens, rope)``."""
        trunk = self.trunk
        x = trunk.patch_embed(images)
        if type(trunk) is Eva:
            x, rope = trunk._pos_embed(x)
            return x, rope
        return trunk.patch_drop(trunk._pos_embed(x)), None

    def encode(
        self,
        images: torch.Tensor,
        prompts: Optional[torch.Tensor] = None,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        options: EncodeOptions = DEFAULT_OPTIONS,
        wrappers: Optional[Wrappers] = None,
    ) -> torch.Tensor:
        """Image features ``[B, E]`` (unnormalised); ``prompts`` ``[n, W]`` or ``[B, n, W]`` go after the trunk's
        prefix tokens (module doc)."""
        has_deep = deep_prompts is not None and any(p is not None for p in deep_prompts)
        if wrappers:
            raise VLPromptError(
                f"block wrappers in the vision tower: its blocks cannot be wrapped ({self.block_blocker})"
            )
        if self.problem:
            if prompts is not None or has_deep:
                self._refuse("vision prompts")
            if hook is not None:
                self._refuse("per-layer vision taps")
            return self.module(images)
        trunk, fp16, s = self.trunk, options.fp16_prompts, self.prefix_tokens
        b = images.shape[0]
        x, rope = self._embed(images)
        n_prompts = 0
        if prompts is not None:
            n_prompts = prompts.shape[-2]
            x = torch.cat([x[:, :s], expand_prompts(prompts, b, x.dtype, fp16), x[:, s:]], dim=1)
        x = trunk.norm_pre(x)
        for i, block in enumerate(self.blocks):
            p = deep_prompt(deep_prompts, i)
            if i > 0 and p is not None:
                rest = x[:, s + n_prompts :]
                n_prompts = p.shape[-2]
                x = torch.cat([x[:, :s], expand_prompts(p, b, x.dtype, fp16), rest], dim=1)
            x_in = x
            x = self._block(block, x, rope, n_prompts)
            if hook is not None:
                hook("vision", i, block, x_in, x, n_prompts)
        x = trunk.norm(self.strip_prompts(x, n_prompts))
        return self.module.head(trunk.forward_head(x))
