"""The declaration of VPT: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    Trainer,
    dassl_table,
)
from vlprompt.methods.declarations import (
    MAPLE_REPO,
    LearnerConfig,
)
from vlprompt.methods.deep.config import VISION_IVLP, VISION_SHAPES
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, POSITIVE, setting


@LEARNERS.register("vpt", implementation="vlprompt.methods.vpt.model:VPT")
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

    reference = {"vpt": Trainer("VPT", dassl_table(*VISION_IVLP), signature=("VPT",), precedence=70)}
    checkpoint_settings = VISION_SHAPES
