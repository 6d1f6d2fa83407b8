"""The declaration of CLIP-Adapter: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    RN50,
    Published,
    Recipe,
    Rule,
    ShapeSetting,
    Trainer,
    dassl_table,
    shot_rows,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import (
    FEWSHOT_EPOCHS,
    LearnerConfig,
    train_values,
)
from vlprompt.presets import Preset, rule
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, UNIT, setting

CLIP_ADAPTER_TOWERS = ("image", "text", "both")
CLIP_ADAPTER_SOURCE = "CLIP-Adapter (Gao et al., IJCV 2023), whose README runs clip_adapter.py with CoOp's commands"


#: CLIP-Adapter's few-shot accuracies as its authors posted them (RN50), 1 / 2 / 4 / 8 / 16 shots
CLIP_ADAPTER_ROWS = {
    "imagenet": "61.20 61.52 61.84 62.68 63.59",
    "sun397": "61.30 63.29 65.96 67.50 69.55",
    "oxford_pets": "85.99 86.73 87.46 87.65 87.84",
    "eurosat": "61.40 63.90 73.38 77.93 84.43",
    "caltech101": "88.60 89.37 89.98 91.40 92.49",
    "dtd": "45.80 51.48 56.86 61.00 65.96",
    "fgvc_aircraft": "17.49 20.10 22.59 26.25 32.10",
    "food101": "76.82 77.22 77.92 78.04 78.25",
    "oxford_flowers": "73.49 81.61 87.17 91.72 93.90",
    "ucf101": "62.20 67.12 69.05 73.30 76.76",
    "stanford_cars": "55.13 58.74 62.45 67.89 74.01",
}
CLIP_ADAPTER_RESULTS = (
    "CLIP-Adapter (Gao et al., IJCV 2023) results, the CLIP-A rows of gaopengcuhk/Tip-Adapter's exp.log (posted by "
    "the authors: gaopengcuhk/CLIP-Adapter issue #7; its own README publishes none)"
)
#: CLIP-Adapter's trainer registers the adapter module alone: ``fc.0`` / ``fc.2`` of its ``nn.Sequential``
CLIP_ADAPTER = (
    Rule("fc.0.weight", "learner.adapter.0.weight", required=True),
    Rule("fc.2.weight", "learner.adapter.2.weight", required=True),
)


@LEARNERS.register("clip_adapter", implementation="vlprompt.methods.clip_adapter.model:CLIPAdapter")
@dataclass
class CLIPAdapterConfig(LearnerConfig):
    reduction: int = setting(4, "bottleneck reduction r of the adapter (E -> E/r -> E)", bounds=AT_LEAST_1)
    ratio: float = setting(0.2, "residual ratio α: f' = α · A(f) + (1 - α) · f", bounds=UNIT)
    towers: str = setting(
        "image", "image: the adapter on the image features (the released trainer); text / both: the paper's variants"
    )

    presets = {
        "fewshot": Preset(
            {"train": train_values(32, 0.002, FEWSHOT_EPOCHS), "clip_adapter": {"reduction": 4, "ratio": 0.2}},
            f"{CLIP_ADAPTER_SOURCE} (CoOp few-shot configs rn50_ep50/ep100/rn50)",
        ),
        "b2n": Preset(
            {"train": train_values(32, 0.002, 50), "clip_adapter": {"reduction": 4, "ratio": 0.2}},
            f"{CLIP_ADAPTER_SOURCE} (CoOp config vit_b16_ep50)",
        ),
    }
    dataset_rules = (rule(["imagenet"], {"train": {"epochs": 50}}, "CoOp *_ep50 configs for ImageNet", ["fewshot"]),)

    def __post_init__(self):
        if self.towers not in CLIP_ADAPTER_TOWERS:
            raise VLPromptError(f"unknown clip_adapter.towers {self.towers!r}: use {', '.join(CLIP_ADAPTER_TOWERS)}")

    reference = {
        "clip_adapter": Trainer(
            "CLIP_Adapter", dassl_table(*CLIP_ADAPTER), signature=(r"^fc\.0\.weight$",), precedence=30
        )
    }
    published = (Published("fewshot", "clip_adapter", RN50[0], CLIP_ADAPTER_RESULTS, shot_rows(CLIP_ADAPTER_ROWS)),)
    checkpoint_settings = (ShapeSetting("reduction", "learner.adapter.0.weight", lambda t: t.shape[1] // t.shape[0]),)
    recipes = (
        Recipe(
            "clip-adapter-fewshot",
            "CLIP-Adapter (Gao et al., IJCV 2023)",
            "fewshot",
            ("zeroshot", "clip_adapter"),
            backbone=RN50,
            note="released trainer (image adapter, reduction 4, ratio 0.2) with CoOp's few-shot configs",
        ),
    )
