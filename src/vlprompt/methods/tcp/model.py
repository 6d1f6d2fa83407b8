"""TCP — Textual-based Class-aware Prompt tuning (Yao et al., "TCP: Textual-based Class-aware Prompt tuning for
Visual-Language Model", CVPR 2024, Sec. 3.2, Eqs. 4-7; htyao89/Textual-based_Class-aware_prompt_tuning).

**Textual knowledge embedding** (TKE, Eq. 4). The frozen, L2-normalised text features w_k^clip ``[K, E]`` of the
hand-crafted prompt (``tcp.knowledge_template``; the dataset's KgCoOp template by default, TCP's
``CUSTOM_TEMPLATES_ori`` in its presets) go through

    T_k = W₂ · QuickGELU(W₁ w_k^clip + b₁) + b₂,    W₁: E → E/4,  W₂: E/4 → M·D

reshaped to M class-aware prompt tokens ``[K, M, D]`` (the reference hard-codes M·D = 4·512, ViT-B's width; here M
is ``tcp.n_ctx`` and D the text width, which equal it for ViT-B/16).

**Prompts.** The class prompt ``tcp.template`` (TCP's ``CUSTOM_TEMPLATES``: ``X X X X {}, a type of pet.``) with its
first M tokens after SOS replaced by the generic context ``[M, D]`` (random N(0, 0.02²), ``CTX_INIT: False``); at
the input of text block ``tcp.layer`` (the reference's ``layers=[8]``, weight 1; by default 8 on 12 blocks) positions ``1..M`` are replaced by
the class-aware tokens T_k (Eq. 5), a class-specific deep prompt, so every class runs its own sequence from there.

**Loss** (Eq. 7): CE + 8.0 · L_kg with KgCoOp's consistency against the same w_k^clip — the ``kg`` add-on, which
``tcp`` implies (its presets set ``kg.weight = 8.0`` and ``kg.template`` with ``tcp.knowledge_template``).
Trainable: the context and the TKE's two linear layers; the knowledge features depend on the class names, so they
are a non-persistent buffer rebuilt by :meth:`TCP.set_classnames`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from open_clip.transformer import QuickGELU
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.prompts import ClassPrompts, hand_crafted_features, placeholder_prefix
from vlprompt.methods.tcp.config import TCPConfig, tcp_layer


def tcp_template(config: TCPConfig) -> str:
    """The class prompt: ``tcp.template``, or M placeholders before ``{}.``."""
    return config.template or f"{placeholder_prefix(config.n_ctx)} {{}}."


class TCP(PromptLearner):
    """TCP's learner (config :class:`~vlprompt.methods.tcp.config.TCPConfig`)."""

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({Capability.SHARED_TEXT, Capability.TRAINED_TEXT, Capability.PROMPT_VECTORS})

    def __init__(self, backbone, config: TCPConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        self.layer = tcp_layer(config.layer, backbone.text_layers)
        if not 1 <= self.layer < backbone.text_layers:
            raise VLPromptError(
                f"tcp.layer={config.layer}: the text tower has {backbone.text_layers} blocks; "
                f"--set tcp.layer={backbone.text_layers - 1} (or lower, >= 1)"
            )
        width, embed = backbone.text_width, backbone.embed_dim
        self.n_ctx = config.n_ctx
        self.ctx = nn.Parameter(torch.empty(self.n_ctx, width).normal_(0, config.init_std))
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(embed, embed // 4)),
                    ("relu", QuickGELU()),
                    ("linear2", nn.Linear(embed // 4, self.n_ctx * width)),
                ]
            )
        )
        self.to(backbone.device)
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        before, ending = tcp_template(self.config).split("{}", 1)
        backbone = self.backbone
        before_tokens = int(backbone.pool_index(backbone.tokenize([before.strip()]))[0]) - backbone.prompt_start
        if before_tokens < self.n_ctx:
            raise VLPromptError(
                f"tcp.template {tcp_template(self.config)!r} has fewer than tcp.n_ctx={self.n_ctx} tokens before the "
                "class name; add placeholders (X) or lower tcp.n_ctx"
            )
        self.classnames = list(space.classnames)
        self.prompts = ClassPrompts(backbone, space.classnames, before.strip(), self.n_ctx, ending)
        template = self.config.knowledge_template or space.kgcoop_template or space.template
        knowledge = hand_crafted_features(self.backbone, space.classnames, [template])
        self.register_buffer("knowledge", knowledge, persistent=False)

    def class_prompts(self) -> torch.Tensor:
        """T ``[K, M, D]``: the textual knowledge embedding of the hand-crafted class features (Eq. 4)."""
        knowledge = self.knowledge.to(self.meta_net.linear1.weight.dtype)
        return self.meta_net(knowledge).view(len(self.classnames), self.n_ctx, -1)

    def text_features(self, image_features=None, hook=None):
        deep = [None] * self.layer + [self.class_prompts()]
        return self.prompts.encode(self.param("ctx"), deep_prompts=deep, hook=hook)

    def prompt_vectors(self):
        return {"ctx": self.ctx}

    def input_text_prompts(self) -> int:
        return self.n_ctx
