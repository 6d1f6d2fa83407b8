"""CoOp — Context Optimization (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022); also
the prompt learner of KgCoOp (Yao et al., CVPR 2023).

Trainable: the context C, generic ``[M, D]`` or class-specific (CSC) ``[K, M, D]``, initialised N(0, 0.02²) behind
a placeholder prefix ``X X ... X``, or — with ``ctx_init`` — from the token embeddings of the init words (then M is
the number of words, ``n_ctx`` must equal it, and CSC does not apply, as in the reference; with ``ctx_pad``, ProGrad's
variant, the words initialise the last positions of ``n_ctx`` and the first ``n_ctx − words`` are zero vectors behind
``X`` placeholders: ``X X … X a texture of``, so a word that tokenizes to several tokens pushes its last tokens
into the fixed suffix, as in ProGrad's code). Per class the prompt is
``[SOS][c_1..c_M][name][.][EOT]`` (class token ``end``; ``middle``/``front`` rearrange it), encoded by the frozen
text tower and pooled at EOT; logits = 100 · cos(f, t_k) (Eq. 2 of the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.methods.prompts import ClassPrompts, init_context_from_words, placeholder_prefix, prompt_text


class CoOp(PromptLearner):
    """CoOp's learner (config :class:`~vlprompt.methods.coop.config.CoOpConfig`)."""

    @classmethod
    def capabilities(cls, config, backbone):
        caps = {Capability.SHARED_TEXT, Capability.TRAINED_TEXT, Capability.PROMPT_VECTORS}
        if config.class_token_position == "end":
            caps.add(Capability.CLASS_TOKEN_END)
        return frozenset(caps)

    def __init__(self, backbone, config: CoOpConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        width = backbone.text_width
        words, self.ending = prompt_text(config.ctx_init, space.template)
        fits = len(words.split()) <= config.n_ctx if config.ctx_pad else len(words.split()) == config.n_ctx
        if words and not fits:  # only ctx_init=template gets here (see CoOpConfig)
            raise VLPromptError(
                f"{self.name}.ctx_init=template: the template {space.template!r} has {len(words.split())} words before "
                f"{{}} but {self.name}.n_ctx={config.n_ctx}; --set {self.name}.n_ctx={len(words.split())}"
            )
        if words:
            self.n_ctx = config.n_ctx
            pad = self.n_ctx - len(words.split())  # > 0 only with ctx_pad (ProGrad's init)
            ctx = init_context_from_words(backbone, words, self.n_ctx - pad)
            ctx = torch.cat([ctx.new_zeros(pad, width), ctx])
            self.prefix_text = f"{placeholder_prefix(pad)} {words}" if pad else words
            self.csc = False
        else:
            self.n_ctx = config.n_ctx
            self.csc = config.csc
            shape = (len(space), self.n_ctx, width) if self.csc else (self.n_ctx, width)
            ctx = torch.empty(shape).normal_(0, config.init_std)
            self.prefix_text = placeholder_prefix(self.n_ctx)
        self.ctx = nn.Parameter(ctx.to(backbone.device))
        self.trained_classnames = list(space.classnames)
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        if self.csc and list(space.classnames) != self.trained_classnames:
            raise VLPromptError(
                f"this class-specific (CSC) context was trained for {len(self.trained_classnames)} other classes "
                f"and cannot be evaluated on these {len(space)}; train a generic context (coop.csc=false) for transfer"
            )
        self.classnames = list(space.classnames)
        self.prompts = ClassPrompts(self.backbone, space.classnames, self.prefix_text, self.n_ctx, self.ending)

    def text_features(self, image_features=None, hook=None):
        return self.prompts.encode(self.param("ctx"), self.config.class_token_position, hook=hook)

    def prompt_vectors(self):
        return {"ctx": self.ctx}

    def input_text_prompts(self) -> int:
        return self.n_ctx if Capability.CLASS_TOKEN_END in self.provides else 0
