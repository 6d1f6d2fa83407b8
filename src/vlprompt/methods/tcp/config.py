"""The declaration of TCP: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    VIT_B16,
    Published,
    Recipe,
    ShapeSetting,
    Trainer,
    b2n_rows,
    dassl_table,
    prompt_vectors,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.cocoop.config import COCOOP_META, META_NET, knowledge_embedding
from vlprompt.methods.coop.config import CTX
from vlprompt.methods.declarations import (
    LearnerConfig,
)
from vlprompt.presets import Preset, rule
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, POSITIVE, setting

TCP_REPO = "TCP (Yao et al., CVPR 2024), htyao89/Textual-based_Class-aware_prompt_tuning"
#: TCP's ``CUSTOM_TEMPLATES`` (trainers/tcp.py): the class prompt; its first n_ctx tokens become the context
TCP_TEMPLATES = {
    "oxford_pets": "X X X X {}, a type of pet.",
    "oxford_flowers": "X X X X {}, a type of flower.",
    "fgvc_aircraft": "X X X X {}, a type of aircraft.",
    "dtd": "X X X X {} texture.",
    "eurosat": "X X X X {}.",
    "stanford_cars": "X X X X {}, a type of car",
    "food101": "X X X X {}, a type of food.",
    "sun397": "X X X X {}.",
    "caltech101": "X X X X {}.",
    "ucf101": "a photo of a person doing {}.",
    "imagenet": "a photo of a {}.",
}
#: TCP's ``CUSTOM_TEMPLATES_ori``: the hand-crafted prompt of the textual knowledge embedding and of KgCoOp's
#: targets, where it differs from the dataset's KgCoOp template
TCP_KNOWLEDGE_TEMPLATES = {"fgvc_aircraft": "a photo of an aircraft {}.", "food101": "a photo of a {}, a type of food."}
TCP_IMAGENET_VARIANTS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")


#: TCP's base-to-new table (ViT-B/16, 16 shots): the 11 benchmarks in table order, then the average
TCP_B2N = (
    "77.27/69.87/73.38 98.23/94.67/96.42 94.67/97.20/95.92 80.80/74.13/77.32 97.73/75.57/85.23 90.57/91.37/90.97 "
    "41.97/34.43/37.83 82.63/78.20/80.35 82.77/58.07/68.25 91.63/74.73/82.32 87.13/80.77/83.83",
    "84.13/75.36/79.51",
)
TCP_B2N_SOURCE = (
    "TCP (Yao et al., CVPR 2024) base-to-new table as RMAdapter (AAAI 2026) Table 1 re-quotes it (the average also in "
    "the CLIP-SVD and Awesome-Prompt-Adapter-Learning READMEs); TCP's repository publishes none"
)


def tcp_layer(layer: int, depth: int) -> int:
    """The block that takes TCP's class-aware prompt (``tcp.layer``; 0: 8 of 12 as the reference, else 2/3 deep)."""
    return layer or (depth * 2) // 3


def _tcp_rules() -> tuple:
    source = f"{TCP_REPO}, trainers/tcp.py CUSTOM_TEMPLATES / CUSTOM_TEMPLATES_ori"
    rules = [rule([name], {"tcp": {"template": t}}, source) for name, t in TCP_TEMPLATES.items()]
    rules.append(rule(TCP_IMAGENET_VARIANTS, {"tcp": {"template": TCP_TEMPLATES["imagenet"]}}, source))
    for name, t in TCP_KNOWLEDGE_TEMPLATES.items():
        rules.append(rule([name], {"tcp": {"knowledge_template": t}, "kg": {"template": t}}, source))
    return tuple(rules)


@LEARNERS.register("tcp", implementation="vlprompt.methods.tcp.model:TCP")
@dataclass
class TCPConfig(LearnerConfig):
    n_ctx: int = setting(
        4, "context vectors M: the template's first M tokens after SOS (N(0, init_std²) init)", bounds=AT_LEAST_1
    )
    template: str = setting(
        "", "class prompt with one {}; its first n_ctx tokens become the context (empty: 'X X X X {}.', M X's)"
    )
    knowledge_template: str = setting(
        "", "hand-crafted prompt of the textual knowledge embedding (empty: the dataset's KgCoOp template)"
    )
    layer: int = setting(
        0,
        "text block whose input takes the class-aware prompt; 0: block 8 on a 12-block text tower (the reference's "
        "layers=[8]), ⌊2/3 · depth⌋ on other depths",
        bounds=AT_LEAST_0,
    )
    init_std: float = setting(0.02, "std of the random context init", bounds=POSITIVE)

    presets = {
        "b2n": Preset(
            {
                "train": {
                    "batch_size": 32,
                    "lr": 0.002,
                    "epochs": 50,
                    "optimizer": "adam",
                    "adam_eps": 1e-3,
                    "weight_decay": 5e-4,
                },
                "tcp": {"n_ctx": 4},
                "kg": {"weight": 8.0},
            },
            f"{TCP_REPO}, config TCP/vit_b16_ep100_ctxv1 (MAX_EPOCH 50, Adam), README (Adam eps 1e-3), "
            "scripts/base2new_train.sh (NCTX 4, 16 shots) and trainers/tcp.py (8.0 · KgCoOp loss)",
        )
    }
    dataset_rules = _tcp_rules()

    def __post_init__(self):
        for key in ("template", "knowledge_template"):
            value = getattr(self, key)
            if value and value.count("{}") != 1:
                raise VLPromptError(f"tcp.{key} {value!r} must contain exactly one {{}} for the class name")

    #: TCP's loss is CE + 8.0 · KgCoOp's consistency (Yao et al., CVPR 2024, Eq. 7): ``tcp`` brings ``kg`` along
    aliases = {"tcp": ("tcp", ("kg",))}
    # TCP's textual knowledge embedding has CoCoOp's meta-net names (linear2: 4·ctx_dim outputs, not ctx_dim)
    reference = {
        "tcp": Trainer(
            "TCP", dassl_table(CTX, *COCOOP_META), signature=(META_NET,), precedence=61, accepts=knowledge_embedding
        )
    }
    published = (Published("b2n", "tcp", VIT_B16[0], TCP_B2N_SOURCE, b2n_rows(*TCP_B2N)),)
    checkpoint_settings = (ShapeSetting("n_ctx", "learner.ctx", prompt_vectors),)
    recipes = (
        Recipe(
            "tcp-b2n",
            "TCP (Yao et al., CVPR 2024)",
            "b2n",
            ("tcp",),
            note="Adam (eps 1e-3), 50 epochs, batch 32, KgCoOp weight 8.0",
        ),
    )
