"""The declaration of LPT and IVLP: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    CTX_NAME,
    Rule,
    ShapeSetting,
    Trainer,
    dassl_table,
    prompt_depth,
    prompt_tokens,
    prompt_vectors,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CTX
from vlprompt.methods.declarations import (
    INIT_WORDS,
    MAPLE_REPO,
    LearnerConfig,
)
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, POSITIVE, setting

TEXT_DEEP_IVLP = Rule("text_encoder.transformer.resblocks.{i}.VPT_shallow", "learner.text_deep", "stack", first=1)
TEXT_SHAPES = (
    ShapeSetting("n_ctx_text", "learner.ctx", prompt_vectors),
    ShapeSetting("depth_text", "learner.text_deep", prompt_depth, 1),
)
VISION_SHAPES = (
    ShapeSetting("n_ctx_vision", "learner.vision_ctx", prompt_tokens),
    ShapeSetting("depth_vision", "learner.vision_deep", prompt_depth, 1),
)
VISION_IVLP = (
    Rule("image_encoder.VPT", "learner.vision_ctx", required=True),
    Rule("image_encoder.transformer.resblocks.{i}.VPT_shallow", "learner.vision_deep", "stack", first=1),
)


@LEARNERS.register("lpt", implementation="vlprompt.methods.deep.model:LPT")
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

    reference = {
        "lpt": Trainer(
            "IVLP (language prompts only)",
            dassl_table(CTX, TEXT_DEEP_IVLP),
            signature=("VPT", CTX_NAME),
            precedence=71,
        )
    }
    checkpoint_settings = TEXT_SHAPES


def promptsrc_ivlp(epochs: int, depth: int) -> dict:
    """The PromptSRC repository's IVLP settings (its baseline and PromptSRC's own configs): batch 4, lr 0.0025,
    4 + 4 prompt tokens in the first ``depth`` blocks of both towers, ``epochs`` epochs."""
    return {
        "train": {"batch_size": 4, "lr": 0.0025, "epochs": epochs},
        "ivlp": {"n_ctx_text": 4, "n_ctx_vision": 4, "depth_text": depth, "depth_vision": depth},
    }


@LEARNERS.register("ivlp", implementation="vlprompt.methods.deep.model:IVLP")
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

    reference = {
        "ivlp": Trainer(
            "IVLP",
            dassl_table(CTX, TEXT_DEEP_IVLP, *VISION_IVLP),
            signature=("VPT", CTX_NAME, r"^image_encoder\.VPT$"),
            precedence=72,
        )
    }
    checkpoint_settings = TEXT_SHAPES + VISION_SHAPES
