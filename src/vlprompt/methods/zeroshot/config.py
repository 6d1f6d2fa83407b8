"""The declaration of zero-shot CLIP: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import (
    TEMPLATE_MODES,
    LearnerConfig,
)
from vlprompt.registry import LEARNERS
from vlprompt.settings import setting


@LEARNERS.register("zeroshot", implementation="vlprompt.methods.zeroshot.model:ZeroShot")
@dataclass
class ZeroShotConfig(LearnerConfig):
    templates: str = setting("single", "single: the dataset's template; ensemble: CoOp's 7 templates + it")

    def __post_init__(self):
        if self.templates not in TEMPLATE_MODES:
            raise VLPromptError(f"unknown --templates {self.templates!r}: use single or ensemble")
