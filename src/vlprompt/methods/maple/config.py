"""The declaration of MaPLe: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    VIT_B16,
    Published,
    Recipe,
    Rule,
    ShapeSetting,
    Trainer,
    b2n_cell,
    dassl_table,
    prompt_depth,
    prompt_vectors,
)
from vlprompt.methods.coop.config import CTX
from vlprompt.methods.declarations import (
    INIT_WORDS,
    LearnerConfig,
)
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, POSITIVE, setting


def _maple(lr: float, epochs: int, depth: int):
    return {"train": {"batch_size": 4, "lr": lr, "epochs": epochs}, "maple": {"n_ctx": 2, "depth": depth}}


MAPLE = (
    CTX,
    Rule("prompt_learner.proj.{w}", "learner.proj.{w}", required=True),
    Rule("prompt_learner.compound_prompts_text.{i}", "learner.text_deep", "stack"),
    Rule("prompt_learner.compound_prompt_projections.{i}.{w}", "learner.couplings.{i}.{w}"),
)
MAPLE_README = "MaPLe (Khattak et al., CVPR 2023) README, base-to-new table"
#: the averages of the base-to-new table of MaPLe's README (its baselines' and its own)
B2N_AVERAGES = {
    "zeroshot": ((69.34, 74.22, 71.70), "MaPLe and PromptSRC (Khattak et al., CVPR 2023 / ICCV 2023) READMEs"),
    "coop": ((82.69, 63.22, 71.66), MAPLE_README + " (CoOp as in CoCoOp, Zhou et al., CVPR 2022)"),
    "cocoop": ((80.47, 71.69, 75.83), MAPLE_README + " (CoCoOp, Zhou et al., CVPR 2022)"),
    "vpt": ((80.24, 73.43, 76.68), MAPLE_README + " (deep vision prompting)"),
    "lpt": ((81.72, 73.81, 77.56), MAPLE_README + " (deep language prompting)"),
    "ivlp": ((82.15, 74.07, 77.90), MAPLE_README + " (IVLP 2+2 prompts, depth 12)"),
    "maple": ((82.28, 75.14, 78.55), MAPLE_README),
}


@LEARNERS.register("maple", implementation="vlprompt.methods.maple.model:MaPLe")
@dataclass
class MaPLeConfig(LearnerConfig):
    n_ctx: int = setting(2, "prompt vectors n per block", bounds=AT_LEAST_1)
    depth: int = setting(
        9, "prompt depth J of both towers (prompts in blocks 0..J-1; XD/DG preset: 3)", bounds=AT_LEAST_1
    )
    ctx_init: str = setting(INIT_WORDS, "its first n tokens initialise P_0")
    init_std: float = setting(0.02, "std of the random prompt init", bounds=POSITIVE)

    presets = {
        "b2n": Preset(_maple(0.0035, 5, 9), "MaPLe config vit_b16_c2_ep5_batch4_2ctx (Khattak et al., CVPR 2023)"),
        "xd": Preset(_maple(0.0026, 2, 3), "MaPLe cross-dataset config vit_b16_c2_ep5_batch4_2ctx_cross_datasets"),
        "dept": Preset(_maple(0.0035, 10, 9), "DePT's MaPLe re-run, config vit_b16_c2_ep10_batch4_2ctx"),
    }

    reference = {
        "maple": Trainer(
            "MaPLe",
            dassl_table(*MAPLE),
            signature=(r"^(prompt_learner\.)?(compound_prompt|proj\.weight$)",),
            precedence=90,
        )
    }
    checkpoint_settings = (
        ShapeSetting("n_ctx", "learner.ctx", prompt_vectors),
        ShapeSetting("depth", "learner.text_deep", prompt_depth, 1),
    )
    published = tuple(
        Published("b2n", m, VIT_B16[0], source, {"average": b2n_cell(*v)}) for m, (v, source) in B2N_AVERAGES.items()
    )
    recipes = (
        Recipe("maple-b2n", "MaPLe (Khattak et al., CVPR 2023)", "b2n", ("maple",)),
        Recipe(
            "maple-xd",
            "MaPLe (Khattak et al., CVPR 2023)",
            "xd",
            ("maple",),
            note="prompt depth 3, 2 epochs; also for --protocol dg",
        ),
    )
