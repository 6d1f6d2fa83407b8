"""The declaration of RESTORE: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.components import (
    Recipe,
    Rule,
    Trainer,
    dassl_table,
)
from vlprompt.methods.maple.config import MAPLE
from vlprompt.presets import Preset, rule
from vlprompt.registry import ADDONS
from vlprompt.settings import AT_LEAST_0, setting

RESTORE_SCRIPT = "RESTORE run_maple_fsa.sh"


# ------------------------------------------------------------------------------------------ RESTORE
#: the published MaPLe_FSA settings are RESTORE_m's; with PromptSRC (RESTORE_p: no config released) they do not
#: apply and PromptSRC's own settings stand
NOT_WITH_SRC = ("src",)


def _ratios(vis: float, text: float, fs: float):
    return {"restore": {"vis_calib_r": vis, "text_calib_r": text, "fs_weight": fs}}


def _fsa(train: dict, source: str) -> Preset:
    values = {"train": train, "maple": {"n_ctx": 2, "depth": 9}, "restore": {"formulation": "code"}}
    return Preset(values, source, frozenset(NOT_WITH_SRC))


#: MaPLe_FSA's Feature Calibrators (post_ln -> FFN.0 -> QuickGELU -> FFN.2) and calibration ratios
RESTORE = tuple(
    Rule(f"{ref}_adapter.{layer}.{{w}}", f"addons.restore.calibrator_{tower}.{ours}.{{w}}", required=True)
    for ref, tower in (("text", "t"), ("visual", "v"))
    for layer, ours in (("post_ln", "norm"), ("FFN.0", "fc1"), ("FFN.2", "fc2"))
) + (
    Rule("text_cali_ratio", "addons.restore.text_ratio", required=True, config="restore.text_calib_r"),
    Rule("vis_cali_ratio", "addons.restore.vis_ratio", required=True, config="restore.vis_calib_r"),
)


@ADDONS.register("restore", implementation="vlprompt.addons.restore.model:Restore")
@dataclass
class RestoreConfig(AddOnConfig):
    formulation: str = setting("code", "code (the released code, default) | paper (activation-level Ω, surgery)")
    fs_weight: float = setting(1.0, "λ_fs (code: FS_LOSS_R; DTD 0.5)", bounds=AT_LEAST_0)
    # code formulation
    variant: str = setting(
        "auto", "code: auto (promptsrc with src in the method, else maple) | maple (RESTORE_m) | promptsrc (RESTORE_p)"
    )
    text_calib_r: float = setting(0.1, "code, maple variant: initial text calibration ratio r_t", bounds=AT_LEAST_0)
    vis_calib_r: float = setting(0.1, "code, maple variant: initial vision calibration ratio r_v", bounds=AT_LEAST_0)
    # paper formulation: the values the paper leaves open are ours
    omega_norm: str = setting(
        "token", "paper: ‖Ω‖ per sequence, token: ‖Ω‖_F / √T | sequence: ‖Ω‖_F (not given in the paper: our choice)"
    )
    surgery: bool = setting(True, "paper: add the surgery adapters")
    fs_guided: bool = setting(True, "paper: α from Σ‖Ω‖ (false: the fixed surgery_alpha)")
    gamma: float = setting(0.1, "paper: α_v = γ Σ_l ‖Ω_l^v‖ (not given in the paper: our choice)", bounds=AT_LEAST_0)
    beta: float = setting(0.1, "paper: α_t = β Σ_l ‖Ω_l^t‖ (not given in the paper: our choice)", bounds=AT_LEAST_0)
    surgery_alpha: float = setting(
        0.1, "paper: fixed α when fs_guided is false (not given in the paper: our choice)", bounds=AT_LEAST_0
    )
    adapter_hidden: int = setting(
        0, "paper: surgery bottleneck width; 0 → embed_dim // 4 (not given in the paper: our choice)", bounds=AT_LEAST_0
    )

    presets = {
        "b2n": _fsa(
            {"batch_size": 4, "lr": 0.0035, "epochs": 10},
            "RESTORE config vit_b16_c2_ep5_batch4_2ctx (MAX_EPOCH 10 despite its name)",
        ),
        "xd": _fsa(
            {"batch_size": 4, "lr": 0.0035, "epochs": 2}, "RESTORE cross-dataset config (MAX_EPOCH 2; the paper says 4)"
        ),
    }
    dataset_rules = (
        rule(
            ["fgvc_aircraft", "caltech101", "stanford_cars", "oxford_flowers", "food101"],
            _ratios(0.1, 0.1, 1.0),
            RESTORE_SCRIPT,
            not_with=NOT_WITH_SRC,
        ),
        rule(["oxford_pets", "eurosat"], _ratios(0.01, 0.1, 1.0), RESTORE_SCRIPT, not_with=NOT_WITH_SRC),
        rule(["sun397", "ucf101", "imagenet"], _ratios(0.05, 0.05, 1.0), RESTORE_SCRIPT, not_with=NOT_WITH_SRC),
        rule(["dtd"], _ratios(0.15, 0.1, 0.5), RESTORE_SCRIPT, not_with=NOT_WITH_SRC),
    )

    reference = {
        "maple+restore": Trainer(
            "MaPLe_FSA",
            dassl_table(*MAPLE, *RESTORE),
            derive="vlprompt.addons.restore.code_formulation:initial_grams",
            settings=(("restore.formulation", "code"),),
            signature=(r"^((text|visual)_adapter\.|(text|vis)_cali_ratio$)",),
            precedence=100,
        )
    }
    recipes = (
        Recipe(
            "restore-b2n",
            "RESTORE (Yang et al., ECCV 2024)",
            "b2n",
            ("maple+restore",),
            note="released-code formulation (MaPLe_FSA), 10 epochs",
        ),
        Recipe(
            "restore-xd",
            "RESTORE (Yang et al., ECCV 2024)",
            "xd",
            ("maple+restore",),
            note="released code: prompt depth 9, lr 0.0035, 2 epochs (the paper says 4); also for --protocol dg",
        ),
    )
