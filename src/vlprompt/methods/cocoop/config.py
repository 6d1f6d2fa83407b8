"""The declaration of CoCoOp: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vlprompt.components import (
    Recipe,
    Rule,
    ShapeSetting,
    Trainer,
    dassl_table,
    prompt_vectors,
)
from vlprompt.methods.coop.config import CTX, CoOpConfig
from vlprompt.methods.declarations import (
    INIT_WORDS,
)
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, setting

_COCOOP = {"train": {"batch_size": 1, "lr": 0.002, "epochs": 10}, "cocoop": {"n_ctx": 4, "ctx_init": INIT_WORDS}}


META_NET = r"^(prompt_learner\.)?meta_net\.linear2\."


def knowledge_embedding(state_dict: Mapping[str, Any]) -> bool:
    """Whether the meta-net is TCP's knowledge embedding (several tokens per class: outputs a multiple of the context
    width) rather than CoCoOp's (one bias of the context width)."""
    get = lambda n: state_dict.get(n, state_dict.get(f"prompt_learner.{n}"))
    ctx, out = get("ctx"), get("meta_net.linear2.weight")
    return ctx is not None and out is not None and out.shape[0] != ctx.shape[-1]


COCOOP_META = (
    Rule("prompt_learner.meta_net.linear1.{w}", "learner.meta_net.linear1.{w}", required=True),
    Rule("prompt_learner.meta_net.linear2.{w}", "learner.meta_net.linear2.{w}", required=True),
)


@LEARNERS.register("cocoop", implementation="vlprompt.methods.cocoop.model:CoCoOp")
@dataclass
class CoCoOpConfig(CoOpConfig):
    n_ctx: int = setting(4, "context vectors M (with ctx_init: must equal its word count)", bounds=AT_LEAST_1)
    ctx_init: str = setting(INIT_WORDS, "init words (empty: random N(0, init_std²) context)")

    presets = {
        "b2n": Preset(_COCOOP, "CoCoOp config vit_b16_c4_ep10_batch1_ctxv1 (Zhou et al., CVPR 2022)"),
        "xd": Preset(_COCOOP, "CoCoOp config vit_b16_c4_ep10_batch1_ctxv1, also used for cross-dataset"),
        "dept": Preset(_COCOOP, "DePT's CoCoOp re-run, config vit_b16_c4_ep10_batch1_ctxv1 (Zhang et al., CVPR 2024)"),
    }
    dataset_rules = ()

    reference = {
        "cocoop": Trainer(
            "CoCoOp",
            dassl_table(CTX, *COCOOP_META),
            signature=(META_NET,),
            precedence=60,
            accepts=lambda state_dict: not knowledge_embedding(state_dict),
        )
    }
    checkpoint_settings = (ShapeSetting("n_ctx", "learner.ctx", prompt_vectors),)
    recipes = (
        Recipe("cocoop-b2n", "CoCoOp (Zhou et al., CVPR 2022)", "b2n", ("zeroshot", "coop", "cocoop")),
        Recipe(
            "cocoop-xd",
            "CoCoOp (Zhou et al., CVPR 2022)",
            "xd",
            ("coop", "cocoop"),
            note="also the domain-generalisation source runs: --recipe cocoop-xd --protocol dg",
        ),
    )
