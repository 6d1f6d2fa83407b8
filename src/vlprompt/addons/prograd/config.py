"""The declaration of ProGrad: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.components import (
    RN50,
    Recipe,
    Trainer,
    dassl_table,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CTX
from vlprompt.methods.declarations import FEWSHOT_EPOCHS
from vlprompt.presets import Preset, rule
from vlprompt.registry import ADDONS
from vlprompt.settings import AT_LEAST_0, POSITIVE, setting

PROGRAD_REPO = "ProGrad (Zhu et al., ICCV 2023), BeierZhu/Prompt-align"


# ------------------------------------------------------------------------------------------ ProGrad
#: ProGrad's ``CUSTOM_TEMPLATES`` (trainers/prograd.py) where they differ from the datasets' CoOp templates: the
#: zero-shot teacher's prompt and, without ``{}.``, the words that initialise the last positions of the context
PROGRAD_TEMPLATES = {
    "oxford_pets": "a type of pet, a photo of a {}.",
    "oxford_flowers": "a type of flower, a photo of a {}.",
    "fgvc_aircraft": "a type of aircraft, a photo of a {}.",
    "dtd": "a texture of {}.",
    "eurosat": "a centered satellite photo of {}.",
    "stanford_cars": "a photo of a {}.",
    "food101": "a type of food, a photo of {}.",
    "sun397": "a photo of a {}.",
    "caltech101": "a photo of a {}.",
    "ucf101": "a photo of a person doing {}.",
    "imagenet": "a photo of a {}.",
}
PROGRAD_IMAGENET_VARIANTS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")


def _prograd_rule(datasets, template: str):
    """ProGrad's template for ``datasets``: the teacher's prompt, and (``CTX_INIT: True``) its words before ``{}``
    initialise the last positions of CoOp's 16-vector context, the others zero (``coop.ctx_pad``)."""
    words = template.replace(" {}.", "")
    values = {"prograd": {"template": template}, "coop": {"ctx_init": words, "ctx_pad": True}}
    return rule(datasets, values, f"{PROGRAD_REPO}, trainers/prograd.py CUSTOM_TEMPLATES and CTX_INIT: True")


def _prograd(epochs) -> dict:
    return {
        "train": {"batch_size": 32, "lr": 0.002, "epochs": epochs},
        "coop": {"n_ctx": 16, "ctx_init": "", "csc": False, "class_token_position": "end"},
        "prograd": {"lam": 1.0, "temperature": 1.0},
    }


@ADDONS.register("prograd", implementation="vlprompt.addons.prograd.model:ProGrad")
@dataclass
class ProGradConfig(AddOnConfig):
    lam: float = setting(
        1.0,
        "λ (LOSS.LAMBDA): how much of the conflicting component is removed (README: 0.8 for 8/16 shots on Flowers, "
        "DTD, EuroSAT)",
        bounds=AT_LEAST_0,
    )
    temperature: float = setting(1.0, "T (LOSS.T) of the distillation term", bounds=POSITIVE)
    template: str = setting("", "the zero-shot teacher's prompt with one {} (empty: the run's dataset template)")

    presets = {
        "fewshot": Preset(
            _prograd(FEWSHOT_EPOCHS),
            f"{PROGRAD_REPO}, configs ProGrad/rn50_ep50|rn50_ep100|rn50 by shots (README), scripts/prograd.sh (M = 16, λ = 1.0)",
        ),
        "b2n": Preset(
            _prograd(100), f"{PROGRAD_REPO}, config ProGrad/rn50_ep100 and scripts/base2new_train_prograd.sh"
        ),
    }
    dataset_rules = tuple(_prograd_rule([name], template) for name, template in PROGRAD_TEMPLATES.items()) + (
        _prograd_rule(PROGRAD_IMAGENET_VARIANTS, PROGRAD_TEMPLATES["imagenet"]),
        rule(["imagenet"], {"train": {"epochs": 50}}, f"{PROGRAD_REPO}, README: ImageNet uses rn50_ep50", ["b2n"]),
    )

    def __post_init__(self):
        if self.template and self.template.count("{}") != 1:
            raise VLPromptError(f"prograd.template {self.template!r} must contain exactly one {{}} for the class name")

    reference = {"coop+prograd": Trainer("ProGrad", dassl_table(CTX))}
    recipes = (
        Recipe(
            "prograd-fewshot",
            "ProGrad (Zhu et al., ICCV 2023)",
            "fewshot",
            ("coop", "coop+prograd"),
            backbone=RN50,
            note="16 context vectors from ProGrad's templates, lambda 1.0 (README: 0.8 for 8/16 shots on Flowers, DTD, "
            "EuroSAT), CoOp's epochs",
        ),
        Recipe(
            "prograd-b2n",
            "ProGrad (Zhu et al., ICCV 2023)",
            "b2n",
            ("coop+prograd",),
            backbone=RN50,
            note="config rn50_ep100 (ImageNet 50 epochs); its script trains on 4 shots: add --shots 4",
        ),
    )
