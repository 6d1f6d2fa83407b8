"""The declaration of PromptSRC's add-on: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.components import (
    VIT_B16,
    Published,
    Recipe,
    Rule,
    Trainer,
    b2n_cell,
    dassl_table,
)
from vlprompt.methods.coop.config import CTX
from vlprompt.methods.deep.config import TEXT_DEEP_IVLP, VISION_IVLP, promptsrc_ivlp
from vlprompt.presets import Preset
from vlprompt.registry import ADDONS
from vlprompt.settings import AT_LEAST_0, setting

PROMPTSRC_REPO = "PromptSRC (Khattak et al., ICCV 2023)"


@ADDONS.register("src", implementation="vlprompt.addons.src.model:SrcAddOn")
@dataclass
class SrcConfig(AddOnConfig):
    text_weight: float = setting(25.0, "λ_text of the L1 text-feature constraint", bounds=AT_LEAST_0)
    image_weight: float = setting(10.0, "λ_img of the L1 image-feature constraint", bounds=AT_LEAST_0)
    kl_weight: float = setting(1.0, "λ_kl of the logit-distribution (KL) constraint", bounds=AT_LEAST_0)

    implies = ("gpa",)
    presets = {
        "b2n": Preset(promptsrc_ivlp(20, 9), f"{PROMPTSRC_REPO}, config vit_b16_c2_ep20_batch4_4+4ctx"),
        "xd": Preset(promptsrc_ivlp(20, 3), f"{PROMPTSRC_REPO}, config vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets"),
        "fewshot": Preset(promptsrc_ivlp(50, 9), f"{PROMPTSRC_REPO}, few-shot config (50 epochs)"),
    }

    aliases = {"promptsrc": ("ivlp", ("src",))}
    reference = {
        "promptsrc": Trainer(
            "PromptSRC",
            dassl_table(CTX, TEXT_DEEP_IVLP, *VISION_IVLP, Rule("prompt_learner.ZS_image_encoder.*", kind="frozen")),
            signature=(r"^prompt_learner\.ZS_image_encoder\.",),
            precedence=80,
        )
    }
    published = (
        Published(
            "b2n", "promptsrc", VIT_B16[0], f"{PROMPTSRC_REPO} README", {"average": b2n_cell(84.26, 76.10, 79.97)}
        ),
    )
    recipes = (
        Recipe("promptsrc-b2n", PROMPTSRC_REPO, "b2n", ("promptsrc",)),
        Recipe("promptsrc-xd", PROMPTSRC_REPO, "xd", ("promptsrc",), note="also for --protocol dg"),
        Recipe("promptsrc-fewshot", PROMPTSRC_REPO, "fewshot", ("promptsrc",)),
    )
