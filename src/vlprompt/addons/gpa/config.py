"""The declaration of Gaussian prompt aggregation: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.presets import Preset, rule
from vlprompt.registry import ADDONS
from vlprompt.settings import FINITE, POSITIVE, setting

GPA_SOURCE = "PromptSRC configs (Khattak et al., ICCV 2023)"


def _gpa(mean: float, std: float):
    return {"gpa": {"mean": mean, "std": std}}


@ADDONS.register("gpa", implementation="vlprompt.addons.gpa.model:GPA")
@dataclass
class GPAConfig(AddOnConfig):
    enabled: bool = setting(True, "aggregate the prompts over epochs (false: keep the last epoch's)")
    mean: float = setting(
        15.0, "μ of the Gaussian over epochs; presets: B2N 15, XD/DG 6, few-shot 30 (45)", bounds=FINITE
    )
    std: float = setting(
        1.0, "σ of the Gaussian over epochs; presets: B2N 1, XD/DG 10, few-shot 30 (5)", bounds=POSITIVE
    )

    presets = {
        "b2n": Preset(_gpa(15.0, 1.0), f"{GPA_SOURCE}, base-to-new"),
        "xd": Preset(_gpa(6.0, 10.0), f"{GPA_SOURCE}, cross-dataset / domain generalisation"),
        "fewshot": Preset(_gpa(30.0, 30.0), f"{GPA_SOURCE}, few-shot"),
    }
    dataset_rules = (
        rule(
            ["stanford_cars", "oxford_flowers", "fgvc_aircraft", "dtd", "eurosat"],
            _gpa(45.0, 5.0),
            f"{GPA_SOURCE}, comment in the few-shot config",
            ["fewshot"],
        ),
    )
