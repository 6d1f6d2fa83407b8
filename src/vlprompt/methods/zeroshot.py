"""Zero-shot CLIP (METHODS §4.1, §2.4): hand-crafted prompts, nothing trained.

``templates="single"``: the dataset's CoOp template. ``templates="ensemble"`` (ZeroshotCLIP2): the 7
``IMAGENET_TEMPLATES_SELECT`` plus the dataset's template (not for ImageNet), each feature normalised,
averaged, re-normalised. Logits = 100 · f̂ · T̂ᵀ.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.errors import VLPromptError
from vlprompt.methods.base import LEARNERS, LabelSpace, LearnerConfig, PromptLearner
from vlprompt.methods.prompts import hand_crafted_features


@dataclass
class ZeroShotConfig(LearnerConfig):
    templates: str = "single"  # single | ensemble


@LEARNERS.register("zeroshot")
class ZeroShot(PromptLearner):
    name = "zeroshot"
    config_class = ZeroShotConfig
    provides = frozenset({"shared_text"})

    def __init__(self, backbone, config: ZeroShotConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        if config.templates not in ("single", "ensemble"):
            raise VLPromptError(f"unknown --templates {config.templates!r}: use single or ensemble")
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        templates = [space.template]
        if self.config.templates == "ensemble":
            templates = list(space.ensemble_templates or [space.template])
        self.classnames = list(space.classnames)
        self.register_buffer(
            "classifier", hand_crafted_features(self.backbone, space.classnames, templates), persistent=False
        )

    def text_features(self, image_features=None, hook=None):
        return self.classifier
