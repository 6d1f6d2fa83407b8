"""The declarations of the built-in add-ons: config dataclasses (fields and defaults) with their published settings
(``presets``, ``dataset_rules``; :mod:`vlprompt.presets`) and the add-ons they imply, each registered in
:data:`~vlprompt.registry.ADDONS` with the class that implements it. Nothing here imports torch; the
implementations (``vlprompt.addons.<module>``) are imported when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from vlprompt.errors import VLPromptError
from vlprompt.methods.configs import FEWSHOT_EPOCHS, promptsrc_ivlp
from vlprompt.presets import Preset, rule
from vlprompt.registry import ADDONS
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, FINITE, POSITIVE, UNIT, setting

PROMPTSRC_REPO = "PromptSRC (Khattak et al., ICCV 2023)"
GPA_SOURCE = "PromptSRC configs (Khattak et al., ICCV 2023)"
NEMESIS_REPO = "Nemesis (Fu et al., ICLR 2024)"
RESTORE_SCRIPT = "RESTORE run_maple_fsa.sh"
PROGRAD_REPO = "ProGrad (Zhu et al., ICCV 2023), BeierZhu/Prompt-align"


@dataclass
class AddOnConfig:
    """Fields shared by all add-ons; subclasses add their own. Class attributes (not fields): ``presets`` and
    ``dataset_rules`` — the add-on's published settings (:mod:`vlprompt.presets`); ``implies`` — add-ons it brings
    along (``src`` implies ``gpa``)."""

    presets = {}  # type: Mapping[str, Preset]
    dataset_rules = ()  # type: Tuple[DatasetRule, ...]
    implies = ()  # type: Tuple[str, ...]


# ------------------------------------------------------------------------------------------ KgCoOp
WORD_INIT = {"n_ctx": 4, "ctx_init": "a photo of a"}
#: KgCoOp's published settings configure CoOp; in TCP (which implies ``kg``) TCP's own presets stand
NOT_WITH_TCP = frozenset({"tcp"})


@ADDONS.register("kg", implementation="vlprompt.addons.kg:KgAddOn")
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


# ------------------------------------------------------------------------------------------ PromptSRC + GPA
@ADDONS.register("src", implementation="vlprompt.addons.promptsrc:SrcAddOn")
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


def _gpa(mean: float, std: float):
    return {"gpa": {"mean": mean, "std": std}}


@ADDONS.register("gpa", implementation="vlprompt.addons.gpa:GPA")
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


# ------------------------------------------------------------------------------------------ Nemesis
@ADDONS.register("nemesis", implementation="vlprompt.addons.nemesis:NemesisAddOn")
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


# ------------------------------------------------------------------------------------------ RESTORE
#: the published MaPLe_FSA settings are RESTORE_m's; with PromptSRC (RESTORE_p: no config released) they do not
#: apply and PromptSRC's own settings stand
NOT_WITH_SRC = ("src",)


def _ratios(vis: float, text: float, fs: float):
    return {"restore": {"vis_calib_r": vis, "text_calib_r": text, "fs_weight": fs}}


def _fsa(train: dict, source: str) -> Preset:
    values = {"train": train, "maple": {"n_ctx": 2, "depth": 9}, "restore": {"formulation": "code"}}
    return Preset(values, source, frozenset(NOT_WITH_SRC))


@ADDONS.register("restore", implementation="vlprompt.addons.restore:Restore")
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


# ------------------------------------------------------------------------------------------ DePT
@ADDONS.register("dept", implementation="vlprompt.addons.dept:DePTAddOn")
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


@ADDONS.register("prograd", implementation="vlprompt.addons.prograd:ProGrad")
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
