"""The declaration of CoOp: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    CTX_NAME,
    RN50,
    Recipe,
    Rule,
    ShapeSetting,
    Trainer,
    dassl_table,
    prompt_vectors,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import (
    FEWSHOT_EPOCHS,
    POSITIONS,
    TEMPLATE_INIT,
    WORD_INIT,
    LearnerConfig,
    train_values,
)
from vlprompt.presets import Preset, rule
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, POSITIVE, setting

CTX = Rule("prompt_learner.ctx", "learner.ctx", required=True)


@LEARNERS.register("coop", implementation="vlprompt.methods.coop.model:CoOp")
@dataclass
class CoOpConfig(LearnerConfig):
    n_ctx: int = setting(16, "context vectors M (with ctx_init: must equal its word count)", bounds=AT_LEAST_1)
    ctx_init: str = setting(
        "",
        "init words, e.g. 'a photo of a' (empty: random N(0, init_std²) context); 'template': the words before {} "
        "in the run's template, whose text after {} then follows the class name",
    )
    csc: bool = setting(False, "class-specific context (one context per class)")
    class_token_position: str = setting("end", "end | middle | front")
    init_std: float = setting(0.02, "std of the random context init", bounds=POSITIVE)
    ctx_pad: bool = setting(
        False,
        "with ctx_init of fewer words than n_ctx: the words initialise the last positions, zeros the first ones "
        "(behind 'X' placeholders), as ProGrad's CTX_INIT",
    )

    presets = {
        "fewshot": Preset(
            {"train": train_values(32, 0.002, FEWSHOT_EPOCHS), "coop": {"n_ctx": 16, "ctx_init": ""}},
            "CoOp few-shot configs rn50_ep50/ep100/rn50 (Zhou et al., IJCV 2022)",
        ),
        "b2n": Preset(
            {"train": train_values(32, 0.002, 200), "coop": WORD_INIT},
            "CoOp baseline of CoCoOp's base-to-new table, config vit_b16_ctxv1 (Zhou et al., CVPR 2022)",
        ),
        "xd": Preset(
            {"train": train_values(32, 0.002, 50), "coop": WORD_INIT},
            "CoOp cross-dataset config vit_b16_ep50_ctxv1",
        ),
        "dept": Preset(
            {"train": train_values(4, 0.0035, 10), "coop": {"n_ctx": 16, "ctx_init": ""}},
            "DePT's CoOp re-run, config vit_b16_ep10_bs4_lr35 (Zhang et al., CVPR 2024)",
        ),
    }
    dataset_rules = (
        rule(["imagenet"], {"train": {"epochs": 50}}, "CoOp *_ep50 configs for ImageNet", ["fewshot", "b2n", "xd"]),
    )

    def __post_init__(self):
        if self.class_token_position not in POSITIONS:
            raise VLPromptError(
                f"unknown coop.class_token_position {self.class_token_position!r}: use end, middle or front"
            )
        words = self.init_words
        if words and self.ctx_pad and len(words.split()) > self.n_ctx:
            raise VLPromptError(
                f"coop.ctx_init {self.ctx_init!r} has {len(words.split())} words, more than coop.n_ctx={self.n_ctx}: "
                f"--set coop.n_ctx={len(words.split())}"
            )
        if words and not self.ctx_pad and len(words.split()) != self.n_ctx:
            raise VLPromptError(
                f"coop.ctx_init {self.ctx_init!r} has {len(words.split())} words but coop.n_ctx={self.n_ctx}; "
                f"the context takes one vector per word: --set coop.n_ctx={len(words.split())}"
            )
        if (words or self.ctx_init.strip() == TEMPLATE_INIT) and self.csc:
            raise VLPromptError("coop.csc does not apply with coop.ctx_init (the reference ignores it): drop one")

    @property
    def init_words(self) -> str:
        """The init words (none for ``template``: they come from the label space's template)."""
        return "" if self.ctx_init.strip() == TEMPLATE_INIT else self.ctx_init.replace("_", " ").strip()

    reference = {"coop": Trainer("CoOp", dassl_table(CTX), signature=(CTX_NAME,), precedence=40)}
    checkpoint_settings = (
        ShapeSetting("n_ctx", "learner.ctx", prompt_vectors),
        ShapeSetting("csc", "learner.ctx", lambda t: t.dim() == 3),
    )
    checkpoint_word_init = True
    recipes = (
        Recipe(
            "coop-fewshot",
            "CoOp (Zhou et al., IJCV 2022)",
            "fewshot",
            ("zeroshot", "coop"),
            backbone=RN50,
            note="16 generic context vectors, 50/100/100/200/200 epochs for 1/2/4/8/16 shots",
        ),
    )
