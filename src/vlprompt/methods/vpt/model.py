"""Deep vision prompting, ``vpt`` (VPT-deep, Jia et al., "Visual Prompt Tuning", ECCV 2022, on CLIP as in the
MaPLe repository): per-layer prompts in the image tower (:mod:`vlprompt.methods.deep_prompts`); the text side is the
fixed classifier of ``"a photo of a {name}."`` computed with the frozen text tower (for every dataset, as in the
reference; a ``--template`` does not change it). The reference VPT trainer runs fp32 whatever its precision
setting (its ``load_clip_to_cpu`` returns ``model.float()``), so ``--precision fp16`` keeps a ``vpt`` run in fp32
(``half_precision = False``).
"""

from __future__ import annotations

from vlprompt.capabilities import Capability
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.deep_prompts import per_block, vision_depth, vision_prompts
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.methods.vpt.config import VPTConfig

#: the fixed text of deep vision prompting
VPT_TEMPLATE = "a photo of a {}."


class VPT(PromptLearner):
    half_precision = False

    @classmethod
    def capabilities(cls, config, backbone):
        caps = {Capability.SHARED_TEXT, Capability.PROMPT_VECTORS, Capability.CLASS_TOKEN_END, Capability.IMAGE_PROMPTS}
        if vision_depth(backbone, config.depth_vision) > 1:
            caps.add(Capability.DEEP_VISION)
        return frozenset(caps)

    def __init__(self, backbone, config: VPTConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        settings = (f"{self.name}.n_ctx_vision", f"{self.name}.depth_vision")
        self.vision_ctx, self.vision_deep = vision_prompts(
            backbone, config.n_ctx_vision, config.depth_vision, config.init_std, settings
        )
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        self.classnames = list(space.classnames)
        feats = hand_crafted_features(self.backbone, space.classnames, [VPT_TEMPLATE])
        self.register_buffer("classifier", feats, persistent=False)

    def text_features(self, image_features=None, hook=None):
        return self.classifier.to(self.backbone.dtype)

    def image_features(self, images, hook=None):
        return self.backbone.encode_image(
            images, prompts=self.param("vision_ctx"), deep_prompts=per_block(self.param("vision_deep")), hook=hook
        )

    def prompt_vectors(self):
        """``vision_ctx`` [n_v, W] and ``vision_deep`` [J_v−1, n_v, W] (when present)."""
        return {n: getattr(self, n) for n in ("vision_ctx", "vision_deep") if getattr(self, n) is not None}
