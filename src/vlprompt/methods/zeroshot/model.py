"""Zero-shot CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML
2021, Sec. 3.1.4): hand-crafted prompts, nothing trained.

``templates="single"``: the dataset's CoOp template. ``templates="ensemble"`` (CoOp's ``ZeroshotCLIP2``): the 7
``IMAGENET_TEMPLATES_SELECT`` plus the dataset's template (not for ImageNet), each feature normalised, averaged,
re-normalised. Logits = 100 · f̂ · T̂ᵀ.
"""

from __future__ import annotations

from vlprompt.capabilities import Capability
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.methods.zeroshot.config import ZeroShotConfig


class ZeroShot(PromptLearner):
    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({Capability.SHARED_TEXT, Capability.CLASS_TOKEN_END})

    def __init__(self, backbone, config: ZeroShotConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
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
