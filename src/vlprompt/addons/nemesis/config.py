"""The declaration of Nemesis: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.components import (
    RN50,
    Published,
    Recipe,
    Trainer,
    acc_rows,
    dassl_table,
    shot_rows,
)
from vlprompt.methods.coop.config import CTX
from vlprompt.presets import Preset, rule
from vlprompt.protocols import DG_TARGETS
from vlprompt.registry import ADDONS
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, UNIT, setting

NEMESIS_REPO = "Nemesis (Fu et al., ICLR 2024)"


# ------------------------------------------------------------------------------------------ Nemesis
NEMESIS_FEWSHOT = "Nemesis (Fu et al., ICLR 2024) README, few-shot figure (read off a line plot, +-0.2)"
NEMESIS_DG = "Nemesis (Fu et al., ICLR 2024) README, domain-generalisation figure"
#: CoOp-based, RN50, 16 shots; +Nemesis = the position-uniform loss with omega = 1; ImageNet then the DG targets
NEMESIS_DG_ROWS = {
    "coop": "62.70 55.04 32.64 22.44 54.60",
    "coop+nemesis": "62.96 55.48 33.64 22.96 55.72",
}
NEMESIS_FEWSHOT_ROWS = {"coop": "59.3 62.2 66.3 69.8 73.2", "coop+nemesis": "59.8 64.0 67.9 71.1 74.0"}


@ADDONS.register("nemesis", implementation="vlprompt.addons.nemesis.model:NemesisAddOn")
@dataclass
class NemesisConfig(AddOnConfig):
    weight: float = setting(1.0, "A: the PUN weight (the README figures' ω: 1, 10 or 20)", bounds=AT_LEAST_0)
    norm_type: str = setting("two", "NT: two | one | inf")
    beta: float = setting(1.0, "β: 1 = PUN only, 0 = PAN only", bounds=UNIT)
    num_positions: Union[int, str, None] = setting(
        None, "NP for PAN: an int up to the prompt's length, or random<N>", bounds=AT_LEAST_1
    )
    corruption_weight: Optional[float] = setting(
        None, "CW: the RESCALE factor of the PAN pre-inference", bounds=AT_LEAST_0
    )
    pan_weight: Optional[float] = setting(
        None, "s: PAN weight (default A; 50 on Food101/OxfordPets)", bounds=AT_LEAST_0
    )
    omega_schedule: str = setting("logistic", "logistic | constant (constant on Food101/OxfordPets)")

    presets = {
        "fewshot": Preset({"nemesis": {"weight": 1.0, "beta": 1.0}}, f"{NEMESIS_REPO}, README figures: PUN, ω = 1"),
    }
    dataset_rules = (
        rule(["imagenet"], {"train": {"epochs": 50}}, f"{NEMESIS_REPO} train.py forces 50 epochs on ImageNet"),
        rule(
            ["food101", "oxford_pets"],
            {"nemesis": {"omega_schedule": "constant", "pan_weight": 50.0}},
            f"{NEMESIS_REPO} trainer: ω ≡ 1 and PAN weight 50 for Food101 and OxfordPets",
        ),
    )

    reference = {"coop+nemesis": Trainer("CoOpNemesis", dassl_table(CTX))}
    published = tuple(
        Published("dg", m, RN50[0], NEMESIS_DG, acc_rows(("imagenet", *DG_TARGETS), v))
        for m, v in NEMESIS_DG_ROWS.items()
    ) + tuple(
        Published(
            "fewshot",
            m,
            RN50[0],
            NEMESIS_FEWSHOT,
            shot_rows({"average": v}),
        )
        for m, v in NEMESIS_FEWSHOT_ROWS.items()
    )
    recipes = (
        Recipe(
            "nemesis-fewshot",
            NEMESIS_REPO,
            "fewshot",
            ("coop", "coop+nemesis"),
            backbone=RN50,
            note="position-uniform normalisation, omega = 1 (the README figure's exact loss settings are unverified)",
        ),
        Recipe("nemesis-dg", NEMESIS_REPO, "dg", ("coop", "coop+nemesis"), backbone=RN50),
    )
