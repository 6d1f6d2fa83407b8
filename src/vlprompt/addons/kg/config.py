"""The declaration of KgCoOp's add-on: its config, published settings and facts (torch-free;
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
from vlprompt.presets import Preset
from vlprompt.registry import ADDONS
from vlprompt.settings import AT_LEAST_0, setting

# ------------------------------------------------------------------------------------------ KgCoOp
WORD_INIT = {"n_ctx": 4, "ctx_init": "a photo of a"}
#: KgCoOp's published settings configure CoOp; in TCP (which implies ``kg``) TCP's own presets stand
NOT_WITH_TCP = frozenset({"tcp"})


#: KgCoOp's module defines these but its forward never uses them; a whole-model checkpoint (DePT) holds the
#: meta-net twice, as ``prompt_learner.meta_net`` and as its alias ``meta_net`` (both match the first form)
KGCOOP_UNUSED = (
    Rule("prompt_learner.bias_vectors", kind="unused"),
    Rule("prompt_learner.meta_net.linear1.{w}", kind="unused"),
    Rule("adapter.fc.{i}.weight", kind="unused"),
)


@ADDONS.register("kg", implementation="vlprompt.addons.kg.model:KgAddOn")
@dataclass
class KgConfig(AddOnConfig):
    weight: float = setting(
        8.0, "λ: official base-to-new runs 8.0; DePT 2.0; the reference train.py default 1.0", bounds=AT_LEAST_0
    )
    template: str = setting("", "hand-crafted prompt of the targets (empty: the dataset's KgCoOp template)")

    presets = {
        "b2n": Preset(
            {"train": {"batch_size": 128, "lr": 0.002, "epochs": 100}, "coop": WORD_INIT, "kg": {"weight": 8.0}},
            "KgCoOp config vit_b16_ep100_ctxv1 and scripts/run.sh (W = 8.0)",
            NOT_WITH_TCP,
        ),
        "dept": Preset(
            {"coop": WORD_INIT, "kg": {"weight": 2.0}},
            "DePT's KgCoOp re-run, config vit_b16_ep10_ctxv1_bs4_lr35 (W = 2.0)",
            NOT_WITH_TCP,
        ),
    }

    aliases = {"kgcoop": ("coop", ("kg",))}
    reference = {
        "kgcoop": Trainer(
            "KgCoOp", dassl_table(CTX, *KGCOOP_UNUSED), signature=(r"^(prompt_learner\.)?bias_vectors$",), precedence=50
        )
    }
    published = (
        Published(
            "b2n",
            "kgcoop",
            VIT_B16[0],
            "KgCoOp (Yao et al., CVPR 2023) README",
            {"average": b2n_cell(80.73, 73.6, 77.0)},
        ),
    )
    recipes = (
        Recipe(
            "kgcoop-b2n", "KgCoOp (Yao et al., CVPR 2023)", "b2n", ("kgcoop",), note="batch 128, 100 epochs, lambda 8.0"
        ),
    )
