"""The declaration of DePT: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.addons.kg.config import KgConfig
from vlprompt.components import (
    VIT_B16,
    Published,
    Recipe,
    Rule,
    acc_rows,
    b2n_rows,
)
from vlprompt.methods.cocoop.config import CoCoOpConfig
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.methods.maple.config import MaPLeConfig
from vlprompt.presets import Preset
from vlprompt.protocols import DG_TARGETS, XD_TARGETS
from vlprompt.registry import ADDONS
from vlprompt.settings import POSITIVE, UNIT, setting

# ------------------------------------------------------------------------------------------ DePT
#: DePT's ExtrasLinearProbe* trainers: FiLM (cwT module) + the linear head (base-class runs only)
DEPT = (
    Rule("film_lp_img.scale", "addons.dept.film_v_scale", required=True),
    Rule("film_lp_img.bias", "addons.dept.film_v_bias", required=True),
    Rule("film_lp_text.scale", "addons.dept.film_t_scale", required=True),
    Rule("film_lp_text.bias", "addons.dept.film_t_bias", required=True),
    Rule("linear_probe_proj.{w}", "addons.dept.head.{w}"),
)
DEPT_NAMES = r"^(film_lp_(img|text)|linear_probe_proj)\."
#: DePT's runs on new classes train no head: their checkpoints convert as the base method
HEADLESS = ("dept", "addons.dept.head.weight")
DEPT_PAPER = "DePT (Zhang et al., CVPR 2024)"
DEPT_B2N = "DePT (Zhang et al., CVPR 2024) README, base_to_new_performance.png"
DEPT_XD = "DePT (Zhang et al., CVPR 2024) README, cross_dataset_performance.png"
DEPT_DG = "DePT (Zhang et al., CVPR 2024) additional_results/domain_generalization.md"
#: the base-to-new figure: DePT on each base, the 11 benchmarks in table order, then the average
DEPT_B2N_ROWS = {
    "coop+dept": (
        "77.13/70.10/73.45 98.33/94.33/96.29 94.70/97.63/96.14 79.67/72.40/75.86 98.20/72.00/83.08 90.43/91.33/90.88 "
        "42.53/22.53/29.46 82.37/75.07/78.55 83.20/56.13/67.04 88.27/66.27/75.70 85.43/72.17/78.24",
        "83.66/71.82/77.29",
    ),
    "cocoop+dept": (
        "76.87/70.47/73.53 98.37/93.87/96.06 94.03/97.20/95.59 79.87/73.33/76.46 98.33/72.57/83.51 90.30/91.30/90.80 "
        "43.07/31.30/36.25 82.20/76.73/79.37 82.77/55.40/66.37 90.27/66.87/76.82 85.70/72.80/78.73",
        "83.80/72.89/77.97",
    ),
    "kgcoop+dept": (
        "77.03/70.13/73.42 98.30/94.60/96.41 94.33/97.23/95.76 79.13/75.47/77.26 98.00/76.37/85.84 90.50/91.60/91.05 "
        "43.20/34.83/38.57 82.33/77.80/80.00 82.20/59.13/68.78 89.03/71.07/79.04 85.80/77.23/81.29",
        "83.62/75.04/79.10",
    ),
    "maple+dept": (
        "77.87/70.23/73.85 98.53/95.03/96.75 95.03/97.83/96.41 80.93/71.73/76.06 98.03/73.17/83.79 90.33/91.53/90.93 "
        "44.53/32.80/37.78 82.90/76.40/79.52 83.87/59.93/69.91 94.43/76.23/84.36 86.87/78.10/82.25",
        "84.85/74.82/79.52",
    ),
    "promptsrc+dept": (
        "78.20/70.27/74.02 98.57/94.10/96.28 95.43/97.33/96.37 80.80/75.00/77.79 98.40/77.10/86.46 90.87/91.57/91.22 "
        "45.70/36.73/40.73 83.27/78.97/81.06 84.80/61.20/71.09 93.23/77.90/84.88 87.73/77.70/82.46",
        "85.19/76.17/80.43",
    ),
}
#: ImageNet (source), average over the 10 targets, then the targets in table order
DEPT_XD_ROWS = {
    "coop": "71.80 64.40 93.97 89.60 64.60 69.13 85.47 20.70 65.70 43.07 44.50 67.23",
    "coop+dept": "72.63 65.02 93.30 90.00 65.53 70.50 85.97 21.90 66.07 43.17 44.97 68.80",
    "cocoop": "71.17 65.73 94.30 90.80 65.53 71.80 86.13 22.83 67.73 45.57 43.47 69.10",
    "cocoop+dept": "72.77 65.88 94.10 90.63 66.23 72.17 86.27 22.90 67.30 45.50 44.17 69.53",
    "kgcoop": "71.17 65.06 94.17 89.70 64.77 70.30 86.47 22.43 66.83 44.43 43.53 68.00",
    "kgcoop+dept": "72.77 65.55 94.23 90.03 65.57 70.57 86.37 23.27 66.67 45.97 43.53 69.30",
    "maple": "72.47 64.17 92.97 90.20 63.97 70.03 84.83 23.23 66.00 43.23 40.03 67.23",
    "maple+dept": "73.27 64.56 92.53 90.10 64.60 70.10 85.57 23.63 66.40 45.03 40.13 67.53",
    "promptsrc": "71.33 65.71 93.77 90.40 65.77 70.80 86.30 23.67 66.93 46.07 44.23 69.20",
    "promptsrc+dept": "71.60 66.02 93.80 90.13 66.00 70.93 86.27 24.30 67.23 46.60 45.83 69.10",
}
#: ImageNet, -V2, -Sketch, -A, -R (the DePT figure lists R before A; reordered here)
DEPT_DG_ROWS = {
    "coop": "70.53 64.13 49.13 51.43 77.20",
    "coop+dept": "70.70 64.13 49.40 51.57 77.33",
    "cocoop": "70.70 63.93 48.93 50.87 76.97",
    "cocoop+dept": "70.57 63.97 49.83 50.90 76.87",
    "kgcoop": "70.33 63.47 48.77 50.53 76.73",
    "kgcoop+dept": "70.63 63.70 48.90 50.77 76.57",
    "maple": "70.87 63.87 49.00 49.03 77.03",
    "maple+dept": "70.97 64.33 49.33 49.70 77.37",
}
PUBLISHED = (
    tuple(Published("b2n", m, VIT_B16[0], DEPT_B2N, b2n_rows(*rows)) for m, rows in DEPT_B2N_ROWS.items())
    + tuple(
        Published("xd", m, VIT_B16[0], DEPT_XD, acc_rows(("imagenet", "average", *XD_TARGETS), v))
        for m, v in DEPT_XD_ROWS.items()
    )
    + tuple(
        Published("dg", m, VIT_B16[0], DEPT_DG, acc_rows(("imagenet", *DG_TARGETS), v)) for m, v in DEPT_DG_ROWS.items()
    )
)
DEPT_METHODS = ("coop+dept", "cocoop+dept", "kgcoop+dept", "maple+dept")


@ADDONS.register("dept", implementation="vlprompt.addons.dept.model:DePTAddOn")
@dataclass
class DePTConfig(AddOnConfig):
    weight: float = setting(
        0.7, "λ (LINEAR_PROBE.WEIGHT): the CAT head's share of the loss and of the fused logits", bounds=UNIT
    )
    lr_mult: float = setting(6.5, "learning-rate multiplier of the head and FiLM (OPTIM.LR_EXP)", bounds=POSITIVE)
    test_time_fusion: bool = setting(True, "seen classes: fused logits (false: the linear head alone)")

    presets = {
        "dept": Preset({"dept": {"weight": 0.7, "lr_mult": 6.5}}, "DePT train.py defaults (Zhang et al., CVPR 2024)")
    }
    #: with DePT in a composition every component takes its ``dept`` preset (DePT's re-runs fix every base's settings)
    composition_preset = "dept"

    #: DePT's ExtrasLinearProbe<Base> trainers: the base trainer's tensors plus DePT's, told apart from the base's
    #: checkpoints by DePT's tensors
    reference = {
        f"{base}+dept": replace(
            trainer,
            name=f"ExtrasLinearProbe{trainer.name}",
            rules=trainer.rules + DEPT,
            optional_addon=HEADLESS,
            signature=(*trainer.signature, DEPT_NAMES),
            precedence=trainer.precedence + 5,
        )
        for base, trainer in (
            ("coop", CoOpConfig.reference["coop"]),
            ("cocoop", CoCoOpConfig.reference["cocoop"]),
            ("kgcoop", KgConfig.reference["kgcoop"]),
            ("maple", MaPLeConfig.reference["maple"]),
        )
    }
    published = PUBLISHED
    recipes = (
        Recipe("dept-b2n", DEPT_PAPER, "b2n", DEPT_METHODS, note="DePT's configs: 10 epochs, head lr x6.5, lambda 0.7"),
        Recipe("dept-xd", DEPT_PAPER, "xd", DEPT_METHODS, note="also for --protocol dg"),
    )
