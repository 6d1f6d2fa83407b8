"""open_clip's ``VisionTransformer`` as a prompt-ready :class:`~vlprompt.backbones.towers.base.VisionTower`.

The adapter calls the same modules in the same order as ``VisionTransformer.forward`` and inserts prompt tokens
between them (VPT, Jia et al., ECCV 2022; MaPLe, Khattak et al., CVPR 2023):

* patch embedding, class token, positional embedding (prompts get none), patch dropout;
* shallow prompt tokens appended at the end of the sequence, then ``ln_pre`` on all tokens;
* deep prompts, "replace" semantics: at block ``i >= 1`` the last ``n`` tokens are replaced by ``P_i``;
* prompt tokens are dropped before pooling (``ln_post`` on the class token, then ``proj``).
"""

from __future__ import annotations

from typing import FrozenSet, Optional

import torch
from torch import nn

from vlprompt.backbones.blocks import unsupported_block
from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.towers.base import (
    DEFAULT_OPTIONS,
    VISION_TOWERS,
    BlockHook,
    DeepPrompts,
    Layout,
    VisionTower,
    Wrappers,
    deep_prompt,
    expand_prompts,
    runner_layout,
)
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

try:
    from open_clip.transformer import VisionTransformer
except ImportError:  # pragma: no cover
    VisionTransformer = None


@VISION_TOWERS.register(*(t for t in (VisionTransformer,) if t is not None))
class OpenCLIPViT(VisionTower):
    """open_clip's ViT: class token first, batch-first residual attention blocks, class-token pooling."""

    def __init__(self, module: nn.Module):
        super().__init__(module)
        if not getattr(module.transformer, "batch_first", False):
            raise VLPromptError("unsupported open_clip version: expected batch-first transformers (open_clip>=3.3)")
        self.blocks = module.transformer.resblocks
        self._block_blocker = next(
            (f"unsupported vision block: {r}" for r in map(unsupported_block, self.blocks) if r), None
        )

    @property
    def capabilities(self) -> FrozenSet[Capability]:
        caps = {Capability.VISION_PROMPTS, Capability.LAYER_TAPS}
        return frozenset(caps | ({Capability.BLOCK_WRAPPERS} if self._block_blocker is None else set()))

    @property
    def block_blocker(self) -> Optional[str]:
        return self._block_blocker

    @property
    def width(self) -> int:
        return self.module.conv1.out_channels

    @property
    def layers(self) -> int:
        return len(self.blocks)

    def strip_prompts(self, x: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """Drop the last ``n`` tokens (the appended prompts)."""
        return x if n_prompts == 0 else x[:, : x.shape[1] - n_prompts]

    def run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        layout = Layout(runner_layout(None, self._block_blocker))
        return layout.leave(layout.block(block, layout.enter(x), None, None))

    def encode(
        self,
        images: torch.Tensor,
        prompts: Optional[torch.Tensor] = None,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        options: EncodeOptions = DEFAULT_OPTIONS,
        wrappers: Optional[Wrappers] = None,
    ) -> torch.Tensor:
        """Image features ``[B, E]`` (unnormalised); ``prompts`` ``[n, W]`` or ``[B, n, W]`` are appended."""
        v = self.module
        fp16 = options.fp16_prompts
        b = images.shape[0]
        x = v.conv1(images)
        x = x.reshape(b, x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.patch_dropout(x)
        n_prompts = 0
        if prompts is not None:
            n_prompts = prompts.shape[-2]
            x = torch.cat([x, expand_prompts(prompts, b, x.dtype, fp16)], dim=1)
        layout = Layout(runner_layout(wrappers, self._block_blocker))
        x = layout.enter(v.ln_pre(x))
        wrappers = wrappers or {}
        for i, block in enumerate(self.blocks):
            p = deep_prompt(deep_prompts, i)
            if i > 0 and p is not None:
                kept = layout.tokens(x, 0, layout.length(x) - n_prompts)
                n_prompts = p.shape[-2]
                x = torch.cat([kept, layout.prompts(expand_prompts(p, b, x.dtype, fp16))], dim=layout.dim)
            x_in = x
            x = layout.block(block, x, None, wrappers.get(i))
            if hook is not None:
                hook("vision", i, block, layout.leave(x_in), layout.leave(x), n_prompts)
        x = layout.leave(x)
        x = x[:, : x.shape[1] - n_prompts]
        pooled, _ = v._pool(x)
        return pooled @ v.proj if v.proj is not None else pooled
