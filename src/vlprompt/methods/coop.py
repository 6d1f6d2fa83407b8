"""CoOp — Context Optimization (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022); also
the prompt learner of KgCoOp (Yao et al., CVPR 2023).

Trainable: the context C, generic ``[M, D]`` or class-specific (CSC) ``[K, M, D]``, initialised N(0, 0.02²) behind
a placeholder prefix ``X X ... X``, or — with ``ctx_init`` — from the token embeddings of the init words (then M is
the number of words, ``n_ctx`` must equal it, and CSC does not apply, as in the reference). Per class the prompt is
``[SOS][c_1..c_M][name][.][EOT]`` (class token ``end``; ``middle``/``front`` rearrange it), encoded by the frozen
text tower and pooled at EOT; logits = 100 · cos(f, t_k) (Eq. 2 of the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vlprompt.config import setting
from vlprompt.errors import VLPromptError
from vlprompt.methods.base import LabelSpace, LearnerConfig, PromptLearner
from vlprompt.methods.prompts import (
    TEMPLATE_INIT,
    ClassPrompts,
    init_context_from_words,
    placeholder_prefix,
    prompt_text,
)
from vlprompt.presets import Preset, rule
from vlprompt.registry import LEARNERS

POSITIONS = ("end", "middle", "front")
#: CoOp's few-shot schedule (configs rn50_ep50 / rn50_ep100 / rn50): epochs by shots
FEWSHOT_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}
INIT_WORDS = "a photo of a"


@dataclass
class CoOpConfig(LearnerConfig):
    n_ctx: int = setting(16, "context vectors M (with ctx_init: must equal its word count)")
    ctx_init: str = setting(
        "",
        "init words, e.g. 'a photo of a' (empty: random N(0, init_std²) context); 'template': the words before {} "
        "in the run's template, whose text after {} then follows the class name",
    )
    csc: bool = setting(False, "class-specific context (one context per class)")
    class_token_position: str = setting("end", "end | middle | front")
    init_std: float = setting(0.02, "std of the random context init")

    def __post_init__(self):
        if self.n_ctx < 1:
            raise VLPromptError(f"coop.n_ctx must be >= 1, got {self.n_ctx} (e.g. --set coop.n_ctx=16)")
        if self.class_token_position not in POSITIONS:
            raise VLPromptError(
                f"unknown coop.class_token_position {self.class_token_position!r}: use end, middle or front"
            )
        words = self.init_words
        if words and len(words.split()) != self.n_ctx:
            raise VLPromptError(
                f"coop.ctx_init {self.ctx_init!r} has {len(words.split())} words but coop.n_ctx={self.n_ctx}; "
                f"the context takes one vector per word: --set coop.n_ctx={len(words.split())}"
            )
        if (words or self.ctx_init.strip() == TEMPLATE_INIT) and self.csc:
            raise VLPromptError("coop.csc does not apply with coop.ctx_init (the reference ignores it): drop one")
        if not self.init_std > 0:
            raise VLPromptError(f"coop.init_std must be > 0, got {self.init_std}")

    @property
    def init_words(self) -> str:
        """The init words (none for ``template``: they come from the label space's template)."""
        return "" if self.ctx_init.strip() == TEMPLATE_INIT else self.ctx_init.replace("_", " ").strip()


def _train(batch_size, lr, epochs):
    return {"batch_size": batch_size, "lr": lr, "epochs": epochs}


WORD_INIT = {"n_ctx": 4, "ctx_init": INIT_WORDS}


@LEARNERS.register("coop", CoOpConfig)
class CoOp(PromptLearner):
    presets = {
        "fewshot": Preset(
            {"train": _train(32, 0.002, FEWSHOT_EPOCHS), "coop": {"n_ctx": 16, "ctx_init": ""}},
            "CoOp few-shot configs rn50_ep50/ep100/rn50 (Zhou et al., IJCV 2022)",
        ),
        "b2n": Preset(
            {"train": _train(32, 0.002, 200), "coop": WORD_INIT},
            "CoOp baseline of CoCoOp's base-to-new table, config vit_b16_ctxv1 (Zhou et al., CVPR 2022)",
        ),
        "xd": Preset(
            {"train": _train(32, 0.002, 50), "coop": WORD_INIT},
            "CoOp cross-dataset config vit_b16_ep50_ctxv1",
        ),
        "dept": Preset(
            {"train": _train(4, 0.0035, 10), "coop": {"n_ctx": 16, "ctx_init": ""}},
            "DePT's CoOp re-run, config vit_b16_ep10_bs4_lr35 (Zhang et al., CVPR 2024)",
        ),
    }
    dataset_rules = (
        rule(["imagenet"], {"train": {"epochs": 50}}, "CoOp *_ep50 configs for ImageNet", ["fewshot", "b2n", "xd"]),
    )

    @classmethod
    def capabilities(cls, config, backbone):
        caps = {"shared_text", "prompt_vectors"}
        if config.class_token_position == "end":
            caps.add("class_token_end")
        return frozenset(caps)

    def __init__(self, backbone, config: CoOpConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        width = backbone.text_width
        words, self.ending = prompt_text(config.ctx_init, space.template)
        if words and len(words.split()) != config.n_ctx:  # only ctx_init=template gets here (see CoOpConfig)
            raise VLPromptError(
                f"{self.name}.ctx_init=template: the template {space.template!r} has {len(words.split())} words before "
                f"{{}} but {self.name}.n_ctx={config.n_ctx}; --set {self.name}.n_ctx={len(words.split())}"
            )
        if words:
            self.n_ctx = config.n_ctx
            ctx = init_context_from_words(backbone, words, self.n_ctx)
            self.prefix_text = words
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
        return self.n_ctx if "class_token_end" in self.provides else 0
