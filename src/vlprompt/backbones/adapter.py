"""``PromptableCLIP``: a frozen CLIP-style model as two tower adapters, so prompts can be injected from outside.

The backbone is a text tower and a vision tower, each an adapter chosen from a registry by the tower module's
type (:mod:`vlprompt.backbones.towers`): the adapter owns the embedding, where prompt tokens go in and how they are
stripped, how a block runs (:mod:`vlprompt.backbones.blocks`), pooling, and its capabilities. The public methods
here (``encode_text``, ``encode_text_shared``, ``encode_image``, ...) delegate to the two adapters with this
backbone's :class:`~vlprompt.backbones.options.EncodeOptions` and block wrappers; neither is ever written onto a
shared backbone: :meth:`PromptableCLIP.with_options` returns a separate view of the same frozen modules (one per
task), and every encode call also accepts ``options=`` explicitly.

Both tower loops call an optional ``hook(tower, layer, block, x_in, x_out, n_prompts)`` after every block — the
per-layer taps of block inputs and outputs (batch-first) that RESTORE's feature-shift needs.

The backbone provides its own logits (:meth:`PromptableCLIP.logits`): CLIP's ``exp(s)·cos(f, t)``, plus a learned
bias where the model has one (SigLIP's ``logit_bias``).
"""

from __future__ import annotations

import copy
from typing import Dict, FrozenSet, Mapping, Optional, Sequence

import torch
from torch import nn

from vlprompt.backbones.blocks import BlockWrapper
from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.tokenizers import prompt_start
from vlprompt.backbones.towers import TEXT_TOWERS, VISION_TOWERS, BlockHook, DeepPrompts, TextTower, VisionTower
from vlprompt.backbones.towers.base import check_wrappers, maybe_checkpoint
from vlprompt.capabilities import Capability
from vlprompt.data.transforms import CLIP_MEAN, CLIP_STD

__all__ = ["PromptableCLIP", "cosine_logits", "maybe_checkpoint", "CLIP_MEAN", "CLIP_STD"]


def cosine_logits(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``scale · f̂ · t̂ᵀ``; text ``[K, E]`` (shared) or ``[B, K, E]`` (per image)."""
    f = image / image.norm(dim=-1, keepdim=True)
    t = text / text.norm(dim=-1, keepdim=True)
    if t.dim() == 3:
        return scale * torch.einsum("be,bke->bk", f, t)
    return scale * f @ t.t()


class PromptableCLIP(nn.Module):
    """A frozen open_clip ``CLIP``/``CustomTextCLIP`` behind a text-tower and a vision-tower adapter.

    ``options`` (:class:`EncodeOptions`) are this view's encoder settings; :meth:`with_options` gives another view
    of the same frozen modules with other settings. ``block_wrappers`` (set once per view by
    :meth:`set_block_wrappers`, usually by the task from its learner) are honoured by every tower loop.
    """

    def __init__(self, clip: nn.Module, spec=None, tokenizer=None, options: Optional[EncodeOptions] = None):
        super().__init__()
        self.clip = clip
        self.spec = spec
        self.tokenizer = tokenizer
        self.options = options or EncodeOptions()
        #: the text and vision tower adapters (plain objects over ``clip``'s modules)
        self.text_tower: TextTower = TEXT_TOWERS.adapter(clip.text if hasattr(clip, "text") else clip)
        self.vision_tower: VisionTower = VISION_TOWERS.adapter(clip.visual)
        if tokenizer is not None and hasattr(self.text_tower, "prompt_start"):
            self.text_tower.prompt_start = prompt_start(tokenizer)
        self.block_wrappers: Dict[str, Mapping[int, BlockWrapper]] = {}
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.clip.eval()

    # ------------------------------------------------------------------------------ views and settings
    def with_options(self, options: Optional[EncodeOptions] = None) -> "PromptableCLIP":
        """A new view of the same frozen modules (shared, not copied) with ``options`` (default: this view's)
        and no block wrappers; nothing of this backbone changes."""
        return PromptableCLIP(self.clip, self.spec, self.tokenizer, options or self.options)

    def set_block_wrappers(self, wrappers: Mapping[str, Mapping[int, BlockWrapper]]) -> None:
        """Put block wrappers ``{tower: {layer index: wrapper}}`` into this view's towers (refused, with one
        line, where a tower cannot honour them). The wrappers stay the learner's modules."""
        towers = {t.name: t for t in (self.text_tower, self.vision_tower)}
        for name, layer_wrappers in wrappers.items():
            if name not in towers:
                raise ValueError(f"block wrappers for an unknown tower {name!r}: use 'text' or 'vision'")
            tower = towers[name]
            check_wrappers(name, layer_wrappers, tower.layers, tower.block_blocker)
        self.block_wrappers = {name: dict(w) for name, w in wrappers.items() if w}

    def tower(self, name: str):
        """The ``"text"`` or ``"vision"`` tower adapter."""
        return self.text_tower if name == "text" else self.vision_tower

    def capabilities(self, tower: str) -> FrozenSet[Capability]:
        """What the ``"text"`` or ``"vision"`` tower offers."""
        return self.tower(tower).capabilities

    def train(self, mode: bool = True):
        """The frozen backbone always stays in eval mode (matters for RN50 BatchNorm)."""
        super().train(mode)
        self.clip.eval()
        return self

    # ------------------------------------------------------------------------------ properties
    @property
    def dtype(self) -> torch.dtype:
        """The dtype both towers compute in: their weights' (as open_clip's ``get_cast_dtype`` and CLIP's
        ``dtype``); fp16 under ``--precision fp16``, whose embeddings stay fp32 and are cast at use."""
        return self.text_tower.dtype

    @property
    def device(self) -> torch.device:
        return self.text_tower.device

    @property
    def text_width(self) -> int:
        """``ctx_dim``: width of the text tower's tokens (512 for ViT-B/16 and RN50)."""
        return self.text_tower.width

    @property
    def vision_width(self) -> int:
        """Width of the image tower's tokens (raises, with one line, for a tower without prompts)."""
        return self.vision_tower.width

    @property
    def embed_dim(self) -> int:
        """Width of the joint embedding (read from the image tower's adapter)."""
        return self.vision_tower.embed_dim

    @property
    def text_layers(self) -> int:
        return self.text_tower.layers

    @property
    def vision_layers(self) -> int:
        """Blocks that take prompts/taps in the image tower (0 for a CNN)."""
        return self.vision_tower.layers

    @property
    def context_length(self) -> int:
        return self.text_tower.context_length

    @property
    def logit_scale(self) -> torch.Tensor:
        """exp(logit_scale), CLIP's frozen learned temperature (100 for released checkpoints)."""
        return self.clip.logit_scale.detach().exp()

    @property
    def logit_bias(self) -> Optional[torch.Tensor]:
        """The model's frozen learned logit bias (SigLIP), or None (CLIP)."""
        bias = getattr(self.clip, "logit_bias", None)
        return bias.detach() if bias is not None else None

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Class logits: ``exp(s) · cos(f, t)`` (CLIP, Radford et al., ICML 2021, Fig. 3), ``+ b`` where the model
        has a learned bias (SigLIP, Zhai et al., ICCV 2023). Text ``[K, E]`` or ``[B, K, E]``."""
        logits = cosine_logits(image_features, text_features, self.logit_scale)
        bias = self.logit_bias
        return logits if bias is None else logits + bias

    @property
    def image_size(self) -> int:
        return self.vision_tower.image_size

    @property
    def image_mean(self):
        cfg = getattr(self.clip.visual, "preprocess_cfg", None) or {}
        return tuple(cfg.get("mean", CLIP_MEAN))

    @property
    def image_std(self):
        cfg = getattr(self.clip.visual, "preprocess_cfg", None) or {}
        return tuple(cfg.get("std", CLIP_STD))

    def float_copy(self) -> "PromptableCLIP":
        """This backbone in fp32: itself when it computes in fp32, else an fp32 copy of the frozen model (a
        half backbone's weights convert exactly). PromptSRC's frozen text targets come from such a separate
        fp32 CLIP in the reference."""
        if self.dtype == torch.float32:
            return self
        return PromptableCLIP(copy.deepcopy(self.clip).float(), self.spec, self.tokenizer, self.options)

    # ------------------------------------------------------------------------------ text
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids ``[N, context_length]``: ``[SOS] BPE(text) [EOT]`` zero-padded (CLIP's tokenizer)."""
        if self.tokenizer is None:
            from open_clip.tokenizer import SimpleTokenizer

            self.tokenizer = SimpleTokenizer(context_length=self.context_length)
        return self.tokenizer(list(texts))

    def token_embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Frozen token embeddings ``[N, L, D]`` of token ids ``[N, L]``."""
        return self.text_tower.token_embed(token_ids)

    @property
    def prompt_start(self) -> int:
        """Position of the first prompt vector in a text sequence: after CLIP's SOS (1), or 0 where the
        tokenizer puts no start token (SigLIP)."""
        return self.text_tower.prompt_start

    def pool_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of the pooled position per sequence (EOT for CLIP's text tower)."""
        return self.text_tower.pool_index(token_ids)

    def encode_text(
        self,
        embeddings: torch.Tensor,
        token_ids: torch.Tensor,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        truncate: Optional[bool] = None,
        chunk: Optional[int] = None,
        options: Optional[EncodeOptions] = None,
    ) -> torch.Tensor:
        """Text features ``[N, E]`` (unnormalised) from prompt embeddings ``[N, L, D]``; see
        :meth:`vlprompt.backbones.towers.openclip_text.OpenCLIPText.encode`."""
        return self.text_tower.encode(
            embeddings,
            token_ids,
            deep_prompts,
            hook,
            truncate,
            chunk,
            options=options or self.options,
            wrappers=self.block_wrappers.get("text"),
        )

    def text_chunk_size(self, tokens: int, chunk: Optional[int] = None, options: Optional[EncodeOptions] = None) -> int:
        """Sequences per text-tower pass for sequences of ``tokens`` tokens (the ``text_chunk`` option)."""
        return self.text_tower.chunk_size(tokens, chunk, options or self.options)

    def text_prefix_sharable(
        self,
        prefix_len: int,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        groups: int = 1,
        options: Optional[EncodeOptions] = None,
    ) -> bool:
        """Whether prompts sharing their first ``prefix_len`` positions go through :meth:`encode_text_shared`
        (the single rule every prompt learner follows, via ``ClassPrompts``)."""
        return self.text_tower.prefix_sharable(prefix_len, deep_prompts, hook, groups, options or self.options)

    def encode_text_shared(
        self,
        prefix: torch.Tensor,
        suffix: torch.Tensor,
        pool: torch.Tensor,
        deep_prompts: DeepPrompts = None,
        chunk: Optional[int] = None,
        options: Optional[EncodeOptions] = None,
    ) -> torch.Tensor:
        """Text features of prompts ``[prefix; suffix_k]`` that share their first ``P`` positions; see
        :meth:`vlprompt.backbones.towers.openclip_text.OpenCLIPText.encode_shared`."""
        return self.text_tower.encode_shared(
            prefix,
            suffix,
            pool,
            deep_prompts,
            chunk,
            options=options or self.options,
            wrappers=self.block_wrappers.get("text"),
        )

    # ------------------------------------------------------------------------------ vision
    def encode_image(
        self,
        images: torch.Tensor,
        prompts: Optional[torch.Tensor] = None,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        options: Optional[EncodeOptions] = None,
    ) -> torch.Tensor:
        """Image features ``[B, E]`` (unnormalised); ``prompts`` ``[n, W]`` or ``[B, n, W]`` are appended."""
        images = images.to(device=self.device, dtype=self.dtype)
        return self.vision_tower.encode(
            images,
            prompts,
            deep_prompts,
            hook,
            options=options or self.options,
            wrappers=self.block_wrappers.get("vision"),
        )

    # ------------------------------------------------------------------------------ taps
    def strip_prompts(self, tower: str, x: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """The non-prompt tokens of a (batch-first) block input/output (text: drop 1..n; vision: the last n)."""
        return self.tower(tower).strip_prompts(x, n_prompts)

    def run_block(self, tower: str, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run one frozen block on a batch-first token sequence (causal mask for text, sized to the sequence)."""
        return self.tower(tower).run_block(block, x)
