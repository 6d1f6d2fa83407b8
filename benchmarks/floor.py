"""The floor the prompted-method benchmarks compare with: a minimal training loop over the same frozen open_clip
blocks in the fast (sequence-first) layout, with the same prompt tokens and nothing of vlprompt around them.

The blocks are a copy of the model's own ``ResidualAttentionBlock``s with their attention's ``batch_first`` off, fed
``[L, N, D]`` — the layout OpenAI's ``model.py`` runs (issue 25). Prompts are plain tensors:

* image tower: ``n_v`` shallow prompt tokens appended after the positional embedding (through ``ln_pre``); at
  blocks ``1..depth_v-1`` the last ``n_v`` tokens are replaced by that block's prompts; class-token pooling;
* text tower: every class prompt cut after the longest EOT (a causal mask makes the rest irrelevant); positions
  ``1..n_t`` replaced by the learned context, and by each deep prompt at blocks ``1..depth_t-1``; EOT pooling;
* ``coupled`` (MaPLe): the image prompts are linear maps of the text prompts, one map per depth;
* ``teacher`` (PromptSRC): one extra no-grad pass of the prompt-free image tower on the batch (the computation the
  method needs per batch; vlprompt takes it from the feature cache, computed per epoch);
* loss: cross-entropy of ``100 · cos``, backward, one SGD step.

Nothing here is imported by vlprompt; it is the yardstick.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Prompts:
    """The prompt tokens of a method: image ``(n, depth)``, text ``(n, depth)`` (None: fixed text classifier)."""

    n_vision: int
    depth_vision: int
    n_text: int = 0
    depth_text: int = 0
    coupled: bool = False
    teacher: bool = False


#: the prompt tokens each benchmarked method carries (its dtd preset: vlprompt's defaults)
METHOD_PROMPTS = {
    "maple": Prompts(2, 9, 2, 9, coupled=True),
    "ivlp": Prompts(2, 12, 2, 12),
    "vpt": Prompts(8, 12),
    "promptsrc": Prompts(4, 9, 4, 9, teacher=True),
    "maple+restore": Prompts(2, 9, 2, 9, coupled=True),
}


def sequence_first(blocks: nn.ModuleList) -> nn.ModuleList:
    """A copy of open_clip blocks whose attention takes ``[L, N, D]`` (``batch_first`` off), frozen."""
    blocks = copy.deepcopy(blocks)
    for block in blocks:
        block.attn.batch_first = False
        for p in block.parameters():
            p.requires_grad_(False)
    return blocks


class FloorModel(nn.Module):
    """Image and text towers of an open_clip CLIP (shared frozen weights) as minimal sequence-first loops."""

    def __init__(self, clip: nn.Module, vision: bool = True):
        super().__init__()
        v = clip.visual
        self.visual = v
        self.vblocks = sequence_first(v.transformer.resblocks) if vision else None
        self.tblocks = sequence_first(clip.transformer.resblocks)
        self.clip = clip

    def encode_image(self, images, shallow: Optional[torch.Tensor], deep: List[torch.Tensor]) -> torch.Tensor:
        v = self.visual
        b = images.shape[0]
        x = v.conv1(images.to(v.conv1.weight.dtype))
        x = x.reshape(b, x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([v.class_embedding.to(x.dtype).expand(b, 1, -1), x], dim=1) + v.positional_embedding.to(x.dtype)
        n = 0
        if shallow is not None:
            n = shallow.shape[0]
            x = torch.cat([x, shallow.to(x.dtype).expand(b, -1, -1)], dim=1)
        x = v.ln_pre(x).permute(1, 0, 2)  # [L, N, D]
        for i, block in enumerate(self.vblocks):
            if 0 < i <= len(deep):
                x = torch.cat([x[: x.shape[0] - n], deep[i - 1].to(x.dtype).unsqueeze(1).expand(-1, b, -1)])
            x = block(x)
        x = v.ln_post(x[0])
        return x @ v.proj

    def encode_text(self, embeds: torch.Tensor, eot: torch.Tensor, mask, ctx, deep: List[torch.Tensor]):
        """``embeds`` ``[K, L, D]`` token embeddings of the (cut) class prompts; ``ctx`` ``[n, D]`` replaces
        positions ``1..n`` (and ``deep[i-1]`` at block ``i``); then the positional embedding."""
        k, length = embeds.shape[:2]
        n = ctx.shape[0]
        x = torch.cat([embeds[:, :1], ctx.to(embeds.dtype).expand(k, -1, -1), embeds[:, 1 + n :]], dim=1)
        x = (x + self.clip.positional_embedding[:length].to(x.dtype)).permute(1, 0, 2)
        for i, block in enumerate(self.tblocks):
            if 0 < i <= len(deep):
                x = torch.cat([x[:1], deep[i - 1].to(x.dtype).unsqueeze(1).expand(-1, k, -1), x[1 + n :]])
            x = block(x, attn_mask=mask)
        x = self.clip.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(k), eot] @ self.clip.text_projection


class FloorLoop:
    """One method's floor: its trainable prompt tensors, an SGD optimizer, and ``step(images, labels)``."""

    def __init__(self, clip: nn.Module, tokenize, classnames: List[str], prompts: Prompts, lr: float = 0.0035):
        self.model = FloorModel(clip)
        self.prompts = prompts
        dtype, device = clip.visual.conv1.weight.dtype, clip.visual.conv1.weight.device
        width_v, width_t = clip.visual.conv1.out_channels, clip.token_embedding.weight.shape[1]
        g = torch.Generator().manual_seed(0)

        def param(*shape):
            return nn.Parameter((torch.randn(*shape, generator=g) * 0.02).to(device=device, dtype=dtype))

        p = prompts
        params: List[nn.Parameter] = []
        self.ctx = param(p.n_text, width_t) if p.n_text else None
        self.text_deep = [param(p.n_text, width_t) for _ in range(p.depth_text - 1)] if p.n_text else []
        if p.coupled:
            self.couplings = nn.ModuleList(nn.Linear(width_t, width_v) for _ in range(p.depth_vision))
            self.couplings.to(device=device, dtype=dtype)
            params += list(self.couplings.parameters())
            self.v_ctx, self.v_deep = None, []
        else:
            self.v_ctx = param(p.n_vision, width_v)
            self.v_deep = [param(p.n_vision, width_v) for _ in range(p.depth_vision - 1)]
        params += [t for t in [self.ctx, *self.text_deep, self.v_ctx, *self.v_deep] if t is not None]
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
        ids = tokenize([f"a photo of a {c}." for c in classnames])
        self.eot = ids.argmax(dim=-1)
        length = int(self.eot.max()) + 1
        with torch.no_grad():
            ids = ids[:, :length].to(clip.token_embedding.weight.device)
            self.embeds = clip.token_embedding(ids).to(dtype)
            self.mask = torch.full((length, length), float("-inf"), device=ids.device).triu(1).to(dtype)
            self.fixed_text = None
            if not p.n_text:  # a fixed classifier from the frozen text tower (VPT)
                self.fixed_text = self.model.encode_text(self.embeds, self.eot, self.mask, self.embeds[0, 1:1], [])
        self.clip = clip

    def image_prompts(self):
        if not self.prompts.coupled:
            return self.v_ctx, self.v_deep
        maps = list(self.couplings)
        return maps[0](self.ctx), [m(t) for m, t in zip(maps[1:], self.text_deep)]

    def features(self, images):
        shallow, deep = self.image_prompts()
        image = self.model.encode_image(images, shallow, deep)
        if self.fixed_text is not None:
            return image, self.fixed_text
        return image, self.model.encode_text(self.embeds, self.eot, self.mask, self.ctx, self.text_deep)

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        image, text = self.features(images)
        logits = 100.0 * F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
        loss = F.cross_entropy(logits, labels)
        if self.prompts.teacher:
            with torch.no_grad():
                teacher = self.model.encode_image(images, None, [])
            loss = loss + (F.normalize(image.float(), dim=-1) - F.normalize(teacher.float(), dim=-1)).abs().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        image, text = self.features(images)
        return F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
