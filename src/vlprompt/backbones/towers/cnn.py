"""open_clip's ``ModifiedResNet`` (CLIP's RN50/RN101 image towers) as a prompt-free
:class:`~vlprompt.backbones.towers.base.VisionTower`: images in, features out, no prompts, taps or wrappers."""

from __future__ import annotations

from typing import Optional

import torch

from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.towers.base import (
    DEFAULT_OPTIONS,
    VISION_TOWERS,
    BlockHook,
    DeepPrompts,
    VisionTower,
    Wrappers,
)
from vlprompt.errors import VLPromptError

try:
    from open_clip.modified_resnet import ModifiedResNet
except ImportError:  # pragma: no cover
    ModifiedResNet = None

CNN_PROMPTS = (
    "vision prompts need a ViT image tower; this backbone's image tower is a CNN "
    "(use a text-side method such as coop/cocoop/kgcoop, or a ViT backbone)"
)


@VISION_TOWERS.register(*(t for t in (ModifiedResNet,) if t is not None))
class OpenCLIPResNet(VisionTower):
    """A CNN image tower run as a whole (BatchNorm stays in eval mode with the frozen backbone)."""

    @property
    def width(self) -> int:
        raise VLPromptError("vision prompts need a ViT image tower; this backbone's image tower is a CNN")

    def encode(
        self,
        images: torch.Tensor,
        prompts: Optional[torch.Tensor] = None,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        options: EncodeOptions = DEFAULT_OPTIONS,
        wrappers: Optional[Wrappers] = None,
    ) -> torch.Tensor:
        if prompts is not None or (deep_prompts is not None and any(p is not None for p in deep_prompts)):
            raise VLPromptError(CNN_PROMPTS)
        if hook is not None:
            raise VLPromptError("per-layer vision taps need a ViT image tower; this backbone's is a CNN")
        if wrappers:
            raise VLPromptError("block wrappers in the vision tower need a ViT image tower; this backbone's is a CNN")
        return self.module(images)
