"""The declaration of Tip-Adapter and Tip-Adapter-F: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    RN50,
    Published,
    Recipe,
    Rule,
    Trainer,
    shot_rows,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import (
    TEMPLATE_MODES,
    LearnerConfig,
)
from vlprompt.presets import Preset, rule
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, Bounds, setting

TIP_REPO = "Tip-Adapter (Zhang et al., ECCV 2022), gaopengcuhk/Tip-Adapter"
#: configs/<dataset>.yaml of Tip-Adapter: (init_alpha, search_scale [beta, alpha]); init_beta 1, search_step
#: [200, 20] and augment_epoch 10 everywhere
TIP_CONFIGS = {
    "caltech101": (3.0, 12.0, 5.0),
    "dtd": (2.0, 13.0, 13.0),
    "eurosat": (2.0, 12.0, 10.0),
    "fgvc_aircraft": (5.0, 30.0, 30.0),
    "food101": (1.17, 10.0, 10.0),
    "imagenet": (1.17, 7.0, 3.0),
    "oxford_flowers": (10.0, 50.0, 50.0),
    "oxford_pets": (1.17, 7.0, 3.0),
    "stanford_cars": (3.0, 20.0, 10.0),
    "sun397": (1.17, 12.0, 10.0),
    "ucf101": (3.0, 7.0, 3.0),
}
TIP_SEARCH_SPLITS = ("val", "fewshot_val", "test")


def tip_rules(section: str) -> tuple:
    """Tip-Adapter's per-dataset configs (and ImageNet's template ensemble) as dataset rules of ``section``."""
    return tuple(
        rule(
            [name],
            {section: {"init_alpha": alpha, "beta_scale": beta_scale, "alpha_scale": alpha_scale}},
            f"{TIP_REPO} configs/{name.replace('fgvc_aircraft', 'fgvc')}.yaml",
        )
        for name, (alpha, beta_scale, alpha_scale) in TIP_CONFIGS.items()
    ) + (rule(["imagenet"], {section: {"templates": "ensemble"}}, f"{TIP_REPO} datasets/imagenet.py templates"),)


TIP_EXP_LOG = (
    f"{TIP_REPO} exp.log (RN50; the numbers of the paper's Figures 4 and 5; the paper's Table 2 prints ImageNet "
    "62.03 for Tip-Adapter at 16 shots and 61.32 for Tip-Adapter-F at 1 shot)"
)
#: exp.log's rows, 1 / 2 / 4 / 8 / 16 shots (the log lists 16 first)
TIP_ROWS = {
    "tip_adapter": {
        "imagenet": "60.70 60.96 60.98 61.45 62.01",
        "sun397": "61.30 62.70 64.15 65.62 66.85",
        "oxford_pets": "86.10 87.03 86.45 87.03 88.14",
        "eurosat": "54.38 61.68 65.32 67.95 70.54",
        "caltech101": "87.18 88.44 89.39 89.83 90.18",
        "dtd": "46.22 49.47 53.96 58.63 60.93",
        "fgvc_aircraft": "19.05 21.21 22.41 25.59 29.76",
        "food101": "77.42 77.52 77.54 77.76 77.83",
        "oxford_flowers": "73.12 79.13 83.80 87.98 89.89",
        "ucf101": "62.60 64.74 66.46 68.68 70.58",
        "stanford_cars": "57.54 57.93 61.45 62.93 66.77",
    },
    "tip_adapter_f": {
        "imagenet": "61.13 61.69 62.52 64.00 65.51",
        "sun397": "62.50 63.64 66.21 68.87 71.47",
        "oxford_pets": "87.00 87.03 87.54 88.09 89.70",
        "eurosat": "59.53 66.15 74.12 77.93 84.54",
        "caltech101": "89.33 89.74 90.56 91.44 92.86",
        "dtd": "49.65 53.72 57.39 62.71 66.55",
        "fgvc_aircraft": "20.22 23.19 25.80 30.21 35.55",
        "food101": "77.51 77.81 78.24 78.64 79.43",
        "oxford_flowers": "79.98 82.30 88.83 91.51 94.80",
        "ucf101": "64.87 66.43 70.55 74.25 78.03",
        "stanford_cars": "58.86 61.50 64.57 69.25 75.74",
    },
}
#: Tip-Adapter's cache (``build_cache_model``; :mod:`vlprompt.convert.tip_adapter`), in the reference's layout
TIP_ADAPTER = (
    Rule("cache_keys", "learner.cache_keys", required=True),
    Rule("cache_values", "learner.cache_values", required=True),
    Rule("fine_tuned_keys", kind="unused"),  # Tip-Adapter-F's: not used by the training-free cache
)
#: Tip-Adapter-F's: its fine-tuned keys (``best_F_Kshots.pt``) replace the cache's
TIP_ADAPTER_F = (
    Rule("fine_tuned_keys", "learner.cache_keys", required=True),
    Rule("cache_values", "learner.cache_values", required=True),
    Rule("cache_keys", kind="unused"),
)


@LEARNERS.register("tip_adapter", implementation="vlprompt.methods.tip_adapter.model:TipAdapter")
@dataclass
class TipAdapterConfig(LearnerConfig):
    section = "tip_adapter"  # the --set section named in errors (not a field)
    augment_views: int = setting(
        10, "augmented views of the few-shot images averaged into the cache keys", bounds=AT_LEAST_1
    )
    crop_scale: float = setting(
        0.5, "smallest area fraction of the cache views' random resized crops", bounds=Bounds(0, 1, open_low=True)
    )
    init_beta: float = setting(1.0, "β reported before the search (and used when search=false)")
    init_alpha: float = setting(2.0, "α reported before the search (and used when search=false)")
    search: bool = setting(True, "search β and α on search_split (the reference's grid)")
    beta_scale: float = setting(13.0, "the β grid's end: β_i = i · (scale − 0.1) / steps + 0.1")
    alpha_scale: float = setting(13.0, "the α grid's end")
    beta_steps: int = setting(200, "β grid points", bounds=AT_LEAST_1)
    alpha_steps: int = setting(20, "α grid points", bounds=AT_LEAST_1)
    search_split: str = setting(
        "val", "val: the label space's whole val split (the reference); fewshot_val: the few-shot val; test"
    )
    templates: str = setting("single", "single: the dataset's template; ensemble: CoOp's 7 templates (+ it)")

    presets = {
        "fewshot": Preset(
            {"tip_adapter": {"augment_views": 10, "crop_scale": 0.5, "search": True}},
            f"{TIP_REPO}, main.py with configs/<dataset>.yaml",
        )
    }
    dataset_rules = tip_rules("tip_adapter")

    def __post_init__(self):
        section = self.section
        if self.search_split not in TIP_SEARCH_SPLITS:
            raise VLPromptError(f"unknown {section}.search_split {self.search_split!r}: use val, fewshot_val or test")
        if self.templates not in TEMPLATE_MODES:
            raise VLPromptError(f"unknown {section}.templates {self.templates!r}: use single or ensemble")

    reference = {"tip_adapter": Trainer("Tip-Adapter", TIP_ADAPTER, signature=(r"^cache_keys$",), precedence=20)}
    published = tuple(Published("fewshot", m, RN50[0], TIP_EXP_LOG, shot_rows(rows)) for m, rows in TIP_ROWS.items())
    recipes = (
        Recipe(
            "tip-adapter-fewshot",
            "Tip-Adapter (Zhang et al., ECCV 2022)",
            "fewshot",
            ("zeroshot", "tip_adapter", "tip_adapter_f"),
            backbone=RN50,
            note="configs/<dataset>.yaml search grids; beta/alpha searched on the val split",
        ),
    )


#: Tip-Adapter-F's training (main.py ``run_tip_adapter_F``): AdamW(lr, eps=1e-4; torch's default weight decay
#: 0.01) with CosineAnnealingLR over every iteration, batch 256, ``train_epoch`` epochs
TIP_F_TRAIN = {
    "batch_size": 256, "lr": 0.001, "epochs": 20, "optimizer": "adamw", "adam_eps": 1e-4, "weight_decay": 0.01,
    "schedule": "step_cosine",
}  # fmt: skip


@LEARNERS.register("tip_adapter_f", implementation="vlprompt.methods.tip_adapter.model:TipAdapterF")
@dataclass
class TipAdapterFConfig(TipAdapterConfig):
    section = "tip_adapter_f"

    presets = {
        "fewshot": Preset(
            {"train": TIP_F_TRAIN, "tip_adapter_f": {"augment_views": 10, "crop_scale": 0.5, "search": True}},
            f"{TIP_REPO}, main.py run_tip_adapter_F with configs/<dataset>.yaml (lr 0.001, train_epoch 20)",
        )
    }
    reference = {
        "tip_adapter_f": Trainer("Tip-Adapter-F", TIP_ADAPTER_F, signature=(r"^fine_tuned_keys$",), precedence=21)
    }
    dataset_rules = tip_rules("tip_adapter_f") + (
        rule(["eurosat"], {"train": {"epochs": 100}}, f"{TIP_REPO} configs/eurosat.yaml (train_epoch 100)"),
    )
