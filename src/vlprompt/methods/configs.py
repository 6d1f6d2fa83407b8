"""The declarations of the built-in prompt learners: config dataclasses (fields, defaults, validation) with their
published settings (``presets``, ``dataset_rules``; :mod:`vlprompt.presets`), each registered in
:data:`~vlprompt.registry.LEARNERS` with the class that implements it. Nothing here imports torch, so resolving
a configuration never loads a model library; the implementations (``vlprompt.methods.<module>``) are imported
when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.errors import VLPromptError
from vlprompt.presets import Preset, rule
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, FINITE, POSITIVE, setting

#: the init phrase of CoOp-family and deep-prompting context vectors
INIT_WORDS = "a photo of a"
#: CoOp's class-token positions
POSITIONS = ("end", "middle", "front")
#: CoOp's few-shot schedule (configs rn50_ep50 / rn50_ep100 / rn50): epochs by shots
FEWSHOT_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}
#: zero-shot template modes
TEMPLATE_MODES = ("single", "ensemble")
#: ``ctx_init`` value that takes the init words and the text after the class name from the run's template
TEMPLATE_INIT = "template"
MAPLE_REPO = "MaPLe repository (Khattak et al., CVPR 2023)"


@dataclass
class LearnerConfig:
    """Fields shared by all learners; subclasses add their own (dataclass inheritance). Class attributes (not
    fields): ``presets`` — ``{name: Preset}``, the settings the method's paper or repository publishes;
    ``dataset_rules`` — values the reference sets for particular datasets."""

    presets = {}  # type: Mapping[str, Preset]
    dataset_rules = ()  # type: Tuple[DatasetRule, ...]


# ------------------------------------------------------------------------------------------ CoOp / CoCoOp
def _train(batch_size, lr, epochs):
    return {"batch_size": batch_size, "lr": lr, "epochs": epochs}


WORD_INIT = {"n_ctx": 4, "ctx_init": INIT_WORDS}


@LEARNERS.register("coop", implementation="vlprompt.methods.coop:CoOp")
@dataclass
class CoOpConfig(LearnerConfig):
    n_ctx: int = setting(16, "context vectors M (with ctx_init: must equal its word count)", bounds=AT_LEAST_1)
    ctx_init: str = setting(
        "",
        "init words, e.g. 'a photo of a' (empty: random N(0, init_std²) context); 'template': the words before {} "
        "in the run's template, whose text after {} then follows the class name",
    )
    csc: bool = setting(False, "class-specific context (one context per class)")
    class_token_position: str = setting("end", "end | middle | front")
    init_std: float = setting(0.02, "std of the random context init", bounds=POSITIVE)
    ctx_pad: bool = setting(
        False,
        "with ctx_init of fewer words than n_ctx: the words initialise the last positions, zeros the first ones "
        "(behind 'X' placeholders), as ProGrad's CTX_INIT",
    )

    presets = {
        "fewshot": Preset(
            {"train": _train(32, 0.002, FEWSHOT_EPOCHS), "coop": {"n_ctx": 16, "ctx_init": ""}},
            "CoOp few-shot configs rn50_ep50/ep100/rn50 (Zhou et al., IJCV 2022)",
        ),
        "b2n": Preset(
            {"train": _train(32, 0.002, 200), "coop": WORD_INIT},
            "CoOp baseline of CoCoOp's base-to-new table, config vit_b16_ctxv1 (Zhou et al., CVPR 2022)",
        ),
        "xd": Preset(
            {"train": _train(32, 0.002, 50), "coop": WORD_INIT},
            "CoOp cross-dataset config vit_b16_ep50_ctxv1",
        ),
        "dept": Preset(
            {"train": _train(4, 0.0035, 10), "coop": {"n_ctx": 16, "ctx_init": ""}},
            "DePT's CoOp re-run, config vit_b16_ep10_bs4_lr35 (Zhang et al., CVPR 2024)",
        ),
    }
    dataset_rules = (
        rule(["imagenet"], {"train": {"epochs": 50}}, "CoOp *_ep50 configs for ImageNet", ["fewshot", "b2n", "xd"]),
    )

    def __post_init__(self):
        if self.class_token_position not in POSITIONS:
            raise VLPromptError(
                f"unknown coop.class_token_position {self.class_token_position!r}: use end, middle or front"
            )
        words = self.init_words
        if words and self.ctx_pad and len(words.split()) > self.n_ctx:
            raise VLPromptError(
                f"coop.ctx_init {self.ctx_init!r} has {len(words.split())} words, more than coop.n_ctx={self.n_ctx}: "
                f"--set coop.n_ctx={len(words.split())}"
            )
        if words and not self.ctx_pad and len(words.split()) != self.n_ctx:
            raise VLPromptError(
                f"coop.ctx_init {self.ctx_init!r} has {len(words.split())} words but coop.n_ctx={self.n_ctx}; "
                f"the context takes one vector per word: --set coop.n_ctx={len(words.split())}"
            )
        if (words or self.ctx_init.strip() == TEMPLATE_INIT) and self.csc:
            raise VLPromptError("coop.csc does not apply with coop.ctx_init (the reference ignores it): drop one")

    @property
    def init_words(self) -> str:
        """The init words (none for ``template``: they come from the label space's template)."""
        return "" if self.ctx_init.strip() == TEMPLATE_INIT else self.ctx_init.replace("_", " ").strip()


_COCOOP = {"train": {"batch_size": 1, "lr": 0.002, "epochs": 10}, "cocoop": {"n_ctx": 4, "ctx_init": INIT_WORDS}}


@LEARNERS.register("cocoop", implementation="vlprompt.methods.cocoop:CoCoOp")
@dataclass
class CoCoOpConfig(CoOpConfig):
    n_ctx: int = setting(4, "context vectors M (with ctx_init: must equal its word count)", bounds=AT_LEAST_1)
    ctx_init: str = setting(INIT_WORDS, "init words (empty: random N(0, init_std²) context)")

    presets = {
        "b2n": Preset(_COCOOP, "CoCoOp config vit_b16_c4_ep10_batch1_ctxv1 (Zhou et al., CVPR 2022)"),
        "xd": Preset(_COCOOP, "CoCoOp config vit_b16_c4_ep10_batch1_ctxv1, also used for cross-dataset"),
        "dept": Preset(_COCOOP, "DePT's CoCoOp re-run, config vit_b16_c4_ep10_batch1_ctxv1 (Zhang et al., CVPR 2024)"),
    }
    dataset_rules = ()


# ------------------------------------------------------------------------------------------ deep prompting
@LEARNERS.register("lpt", implementation="vlprompt.methods.deep:LPT")
@dataclass
class LPTConfig(LearnerConfig):
    n_ctx_text: int = setting(4, "text prompt vectors n_t per block", bounds=AT_LEAST_1)
    depth_text: int = setting(12, "text prompt depth J_t (prompts in blocks 0..J_t-1)", bounds=AT_LEAST_1)
    ctx_init: str = setting(
        INIT_WORDS,
        "its first n_t tokens initialise P_0 (random when it has fewer); 'template': the words before {} in the "
        "run's template, whose text after {} then follows the class name",
    )
    init_std: float = setting(0.02, "std of the random prompt init", bounds=POSITIVE)

    presets = {
        "b2n": Preset(
            {
                "train": {"batch_size": 4, "lr": 0.0025, "epochs": 5},
                "lpt": {"n_ctx_text": 4, "depth_text": 12, "ctx_init": INIT_WORDS},
            },
            f"{MAPLE_REPO}, deep language prompting config",
        )
    }


def promptsrc_ivlp(epochs: int, depth: int) -> dict:
    """The PromptSRC repository's IVLP settings (its baseline and PromptSRC's own configs): batch 4, lr 0.0025,
    4 + 4 prompt tokens in the first ``depth`` blocks of both towers, ``epochs`` epochs."""
    return {
        "train": {"batch_size": 4, "lr": 0.0025, "epochs": epochs},
        "ivlp": {"n_ctx_text": 4, "n_ctx_vision": 4, "depth_text": depth, "depth_vision": depth},
    }


@LEARNERS.register("ivlp", implementation="vlprompt.methods.deep:IVLP")
@dataclass
class IVLPConfig(LPTConfig):
    n_ctx_text: int = setting(2, "text prompt vectors n_t per block", bounds=AT_LEAST_1)
    n_ctx_vision: int = setting(2, "vision prompt tokens n_v per block (0: no vision prompts)", bounds=AT_LEAST_0)
    depth_vision: int = setting(12, "vision prompt depth J_v (>= 1 with vision prompts)", bounds=AT_LEAST_0)

    presets = {
        "b2n": Preset(
            {
                "train": {"batch_size": 4, "lr": 0.0035, "epochs": 5},
                "ivlp": {"n_ctx_text": 2, "n_ctx_vision": 2, "depth_text": 12, "depth_vision": 12},
            },
            f"{MAPLE_REPO}, IVLP config vit_b16_c2_ep5_batch4_2+2ctx",
        ),
        "promptsrc": Preset(
            promptsrc_ivlp(20, 9),
            "PromptSRC repository, IVLP baseline 4+4 prompts, depth 9 (Khattak et al., ICCV 2023)",
        ),
    }

    def __post_init__(self):
        if self.n_ctx_vision and self.depth_vision < 1:
            raise VLPromptError(
                f"ivlp.depth_vision must be >= 1 with vision prompts (ivlp.n_ctx_vision={self.n_ctx_vision}), got "
                f"{self.depth_vision} (e.g. --set ivlp.depth_vision=12, or --set ivlp.n_ctx_vision=0)"
            )


@LEARNERS.register("vpt", implementation="vlprompt.methods.vpt:VPT")
@dataclass
class VPTConfig(LearnerConfig):
    n_ctx_vision: int = setting(8, "vision prompt tokens n_v per block", bounds=AT_LEAST_1)
    depth_vision: int = setting(12, "vision prompt depth J_v (prompts in blocks 0..J_v-1)", bounds=AT_LEAST_1)
    init_std: float = setting(0.02, "std of the random prompt init", bounds=POSITIVE)

    presets = {
        "b2n": Preset(
            {"train": {"batch_size": 4, "lr": 0.0025, "epochs": 5}, "vpt": {"n_ctx_vision": 8, "depth_vision": 12}},
            f"{MAPLE_REPO}, deep vision prompting config",
        )
    }


def _maple(lr: float, epochs: int, depth: int):
    return {"train": {"batch_size": 4, "lr": lr, "epochs": epochs}, "maple": {"n_ctx": 2, "depth": depth}}


@LEARNERS.register("maple", implementation="vlprompt.methods.maple:MaPLe")
@dataclass
class MaPLeConfig(LearnerConfig):
    n_ctx: int = setting(2, "prompt vectors n per block", bounds=AT_LEAST_1)
    depth: int = setting(
        9, "prompt depth J of both towers (prompts in blocks 0..J-1; XD/DG preset: 3)", bounds=AT_LEAST_1
    )
    ctx_init: str = setting(INIT_WORDS, "its first n tokens initialise P_0")
    init_std: float = setting(0.02, "std of the random prompt init", bounds=POSITIVE)

    presets = {
        "b2n": Preset(_maple(0.0035, 5, 9), "MaPLe config vit_b16_c2_ep5_batch4_2ctx (Khattak et al., CVPR 2023)"),
        "xd": Preset(_maple(0.0026, 2, 3), "MaPLe cross-dataset config vit_b16_c2_ep5_batch4_2ctx_cross_datasets"),
        "dept": Preset(_maple(0.0035, 10, 9), "DePT's MaPLe re-run, config vit_b16_c2_ep10_batch4_2ctx"),
    }


# ------------------------------------------------------------------------------------------ TCP
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


@LEARNERS.register("tcp", implementation="vlprompt.methods.tcp:TCP")
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


# ------------------------------------------------------------------------------------------ CLIP-LoRA
LORA_REPO = "CLIP-LoRA (Zanella & Ben Ayed, CVPRW 2024), MaxZanella/CLIP-LoRA"
#: CLIP-LoRA's ``INDEX_POSITIONS_TEXT`` / ``INDEX_POSITIONS_VISION['ViT-B/16']`` (loralib/utils.py), 12-block towers
LORA_POSITIONS = {
    "top": (11,),
    "top1": (11,),
    "top2": (10, 11),
    "top3": (9, 10, 11),
    "bottom": (0, 1, 2, 3),
    "mid": (4, 5, 6, 7),
    "up": (8, 9, 10, 11),
    "half-up": (6, 7, 8, 9, 10, 11),
    "half-bottom": (0, 1, 2, 3, 4, 5),
    "all": tuple(range(12)),
}
#: ``INDEX_POSITIONS_VISION['ViT-L/14']``: the positions CLIP-LoRA defines for 24-block towers
LORA_POSITIONS_24 = {"half-up": tuple(range(12, 24)), "half-bottom": tuple(range(12)), "all": tuple(range(24))}
LORA_ENCODERS = ("text", "vision", "both")
#: CLIP-LoRA's fixed settings (run_utils.py defaults, lora.py's optimizer and schedule)
LORA_SETTINGS = {
    "train": {
        "optimizer": "adamw",
        "lr": 2e-4,
        "weight_decay": 1e-2,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "schedule": "step_cosine",
        "min_lr": 1e-6,
        "batch_size": 32,
        "steps": {shots: 500 * shots for shots in (1, 2, 4, 8, 16)},
    },
    "lora": {"rank": 2, "alpha": 1.0, "dropout": 0.25, "params": "q,k,v", "position": "all"},
}


def lora_layers(position: str, depth: int) -> tuple:
    """The block indices CLIP-LoRA adapts at ``position`` in a ``depth``-block tower (those beyond it skipped)."""
    table = LORA_POSITIONS_24 if depth == 24 else LORA_POSITIONS
    if position not in table:
        raise VLPromptError(
            f"lora.position={position!r} is not defined for a {depth}-block tower; choose one of: {', '.join(table)}"
        )
    return tuple(i for i in table[position] if i < depth)


@LEARNERS.register("lora", implementation="vlprompt.methods.lora:LoRA")
@dataclass
class LoRAConfig(LearnerConfig):
    rank: int = setting(2, "r: rank of the low-rank updates (--r)", bounds=AT_LEAST_1)
    alpha: float = setting(1.0, "α: the update is scaled by α/√r, as CLIP-LoRA's LoRALayer (--alpha)", bounds=FINITE)
    dropout: float = setting(0.25, "dropout on the input of each low-rank branch, in training (--dropout_rate)")
    params: str = setting("q,k,v", "attention matrices adapted, comma-separated: q, k, v, o (o: output projection)")
    position: str = setting("all", f"blocks adapted: {' | '.join(LORA_POSITIONS)} (CLIP-LoRA's INDEX_POSITIONS)")
    encoder: str = setting("both", "towers adapted: text | vision | both")
    template: str = setting(
        "a photo of a {}.", "class prompt (CLIP-LoRA's datasets all use this one; empty: the run's dataset template)"
    )

    presets = {
        "fewshot": Preset(
            LORA_SETTINGS,
            f"{LORA_REPO}, run_utils.py defaults (n_iters 500 x shots, lr 2e-4, batch 32, r 2, alpha 1, dropout "
            "0.25, q,k,v of all blocks of both towers) and lora.py (AdamW wd 1e-2, CosineAnnealingLR eta_min 1e-6)",
        ),
        "b2n": Preset(
            LORA_SETTINGS,
            f"{LORA_REPO}, the same settings (README: fixed hyperparameters for every task and number of shots)",
        ),
    }

    def __post_init__(self):
        if not 0 <= self.dropout < 1:
            raise VLPromptError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        bad = [p for p in self.projections if p not in "qkvo"] or ([] if self.projections else [self.params])
        if bad or len(set(self.projections)) != len(self.projections):
            raise VLPromptError(f"lora.params={self.params!r}: use distinct letters of q, k, v, o, e.g. q,k,v")
        if self.position not in LORA_POSITIONS:
            raise VLPromptError(f"unknown lora.position {self.position!r}; choose one of: {', '.join(LORA_POSITIONS)}")
        if self.encoder not in LORA_ENCODERS:
            raise VLPromptError(f"unknown lora.encoder {self.encoder!r}: use text, vision or both")
        if self.template and self.template.count("{}") != 1:
            raise VLPromptError(f"lora.template {self.template!r} must contain exactly one {{}} for the class name")

    @property
    def projections(self) -> tuple:
        """The adapted matrices as CLIP-LoRA's letters, in the order given."""
        return tuple(p.strip() for p in self.params.split(",") if p.strip())


# ------------------------------------------------------------------------------------------ zero-shot
@LEARNERS.register("zeroshot", implementation="vlprompt.methods.zeroshot:ZeroShot")
@dataclass
class ZeroShotConfig(LearnerConfig):
    templates: str = setting("single", "single: the dataset's template; ensemble: CoOp's 7 templates + it")

    def __post_init__(self):
        if self.templates not in TEMPLATE_MODES:
            raise VLPromptError(f"unknown --templates {self.templates!r}: use single or ensemble")
