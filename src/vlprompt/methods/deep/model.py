"""Independent deep prompting (Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023, Sec. 4 baselines):
``lpt`` (deep language prompting) and ``ivlp`` (independent vision-language prompting).

Text tower, n_t vectors of width D, depth J_t (:mod:`vlprompt.methods.deep_prompts`):
  * block 0: the input-level context ``ctx`` = P_0 ∈ R^{n_t×D} in ``[SOS][P_0][suffix]`` (partial init from
    "a photo of a" keeps the remaining words as fixed tokens);
  * blocks i = 1..J_t−1: ``text_deep[i−1]`` = P_i ∈ R^{n_t×D} ~ N(0, 0.02²) replaces positions 1..n_t of the block
    input (``VPT_shallow`` in the reference).

Vision tower (``ivlp``), n_v tokens of width W, depth J_v: ``vision_ctx`` = Q_0 appended after the positional
embedding; ``vision_deep[i−1]`` = Q_i replaces the last n_v tokens at block i. No coupling between the towers.
The per-layer prompts and the visual prompts stay fp32 under ``--precision fp16`` (``fp32_params``), as in the
reference; ``ctx`` is half like CoOp's.
"""

from __future__ import annotations

from typing import Tuple

from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.deep_prompts import (
    check_prompts,
    clamp_depth,
    deep_parameter,
    per_block,
    text_context,
    vision_depth,
    vision_prompts,
)
from vlprompt.methods.prompts import ClassPrompts, prompt_text


class LPT(PromptLearner):
    """Deep language prompting: per-layer prompts in the text tower only (the image tower stays prompt-free)."""

    fp32_params = ("text_deep",)

    def text_settings(self, config) -> Tuple[int, int, Tuple[str, str]]:
        """(n_t, J_t, the two setting names for messages) of ``config``."""
        return config.n_ctx_text, config.depth_text, (f"{self.name}.n_ctx_text", f"{self.name}.depth_text")

    @classmethod
    def text_depth(cls, config, backbone) -> int:
        return min(config.depth_text, backbone.text_layers)

    @classmethod
    def capabilities(cls, config, backbone):
        caps = {Capability.SHARED_TEXT, Capability.TRAINED_TEXT, Capability.PROMPT_VECTORS, Capability.CLASS_TOKEN_END}
        if cls.text_depth(config, backbone) > 1:
            caps.add(Capability.DEEP_TEXT)
        return frozenset(caps)

    def __init__(self, backbone, config, space: LabelSpace):
        super().__init__(backbone, config, space)
        self.build_text(*self.text_settings(config), space.template)
        self.build_vision(config)
        self.set_classnames(space)

    def build_text(self, n_ctx: int, depth: int, settings: Tuple[str, str], template: str) -> None:
        """P_0 = ``ctx`` and P_1..P_{J−1} = ``text_deep`` (config ``ctx_init``, ``init_std``; ``template``: the label
        space's, for ``ctx_init="template"``)."""
        bb, cfg = self.backbone, self.config
        check_prompts(n_ctx, depth, *settings)
        words, self.ending = prompt_text(cfg.ctx_init, template)
        ctx, self.prefix_text = text_context(bb, words, n_ctx, cfg.init_std)
        self.ctx = nn.Parameter(ctx)
        depth = clamp_depth(depth, bb.text_layers, settings[1])
        self.text_deep = deep_parameter(depth, n_ctx, bb.text_width, cfg.init_std, bb.device)

    def build_vision(self, config) -> None:
        """Subclasses with image prompts create them here."""

    def set_classnames(self, space: LabelSpace) -> None:
        self.classnames = list(space.classnames)
        self.prompts = ClassPrompts(self.backbone, space.classnames, self.prefix_text, self.ctx.shape[0], self.ending)

    def text_features(self, image_features=None, hook=None):
        return self.prompts.encode(self.param("ctx"), deep_prompts=per_block(self.param("text_deep")), hook=hook)

    def prompt_vectors(self):
        """``ctx`` [n_t, D] and ``text_deep`` [J_t−1, n_t, D] (when present); positions on axis −2."""
        return {n: getattr(self, n) for n in ("ctx", "text_deep") if getattr(self, n) is not None}

    def input_text_prompts(self) -> int:
        return int(self.ctx.shape[0])


class IVLP(LPT):
    """Independent vision-language prompting: deep prompts in both towers."""

    fp32_params = ("text_deep", "vision_ctx", "vision_deep")

    @classmethod
    def capabilities(cls, config, backbone):
        caps = set(super().capabilities(config, backbone))
        depth = vision_depth(backbone, config.depth_vision) if config.n_ctx_vision > 0 else 0
        if depth:
            caps.add(Capability.IMAGE_PROMPTS)
        if depth > 1:
            caps.add(Capability.DEEP_VISION)
        if Capability.DEEP_TEXT in caps and Capability.DEEP_VISION in caps:
            caps.add(Capability.PROMPT_PAIRS)
        return frozenset(caps)

    def build_vision(self, config) -> None:
        self.vision_ctx = self.vision_deep = None
        if config.n_ctx_vision > 0:
            settings = (f"{self.name}.n_ctx_vision", f"{self.name}.depth_vision")
            self.vision_ctx, self.vision_deep = vision_prompts(
                self.backbone, config.n_ctx_vision, config.depth_vision, config.init_std, settings
            )

    def image_features(self, images, hook=None):
        if self.vision_ctx is None:
            return super().image_features(images, hook=hook)
        return self.backbone.encode_image(
            images, prompts=self.param("vision_ctx"), deep_prompts=per_block(self.param("vision_deep")), hook=hook
        )

    def prompt_vectors(self):
        """``ctx``, ``text_deep``, ``vision_ctx`` [n_v, W], ``vision_deep`` [J_v−1, n_v, W] — those present."""
        vectors = super().prompt_vectors()
        vectors.update({n: getattr(self, n) for n in ("vision_ctx", "vision_deep") if getattr(self, n) is not None})
        return vectors

    def deep_prompt_pairs(self):
        """``[(P_i, Q_i)]`` for i = 1..min(J_t, J_v)−1: the text and vision prompts of block i."""
        if self.text_deep is None or self.vision_deep is None:
            return []
        return list(zip(self.param("text_deep").unbind(0), self.param("vision_deep").unbind(0)))
