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
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, POSITIVE, setting

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
        if words and len(words.split()) != self.n_ctx:
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


# ------------------------------------------------------------------------------------------ zero-shot
@LEARNERS.register("zeroshot", implementation="vlprompt.methods.zeroshot:ZeroShot")
@dataclass
class ZeroShotConfig(LearnerConfig):
    templates: str = setting("single", "single: the dataset's template; ensemble: CoOp's 7 templates + it")

    def __post_init__(self):
        if self.templates not in TEMPLATE_MODES:
            raise VLPromptError(f"unknown --templates {self.templates!r}: use single or ensemble")
