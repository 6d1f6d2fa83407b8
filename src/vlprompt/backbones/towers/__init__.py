"""Tower adapters by tower type (see :mod:`vlprompt.backbones.towers.base`): open_clip's text transformer, open_clip's
ViT and open_clip's ModifiedResNet (no prompts) are registered here; other families register in their own module."""

from vlprompt.backbones.towers import cnn, openclip_text, openclip_vit, timm_vit  # noqa: F401  (registers the adapters)
from vlprompt.backbones.towers.base import (
    TEXT_TOWERS,
    VISION_TOWERS,
    BlockHook,
    DeepPrompts,
    TextTower,
    TowerRegistry,
    VisionTower,
    Wrappers,
)

__all__ = [
    "TEXT_TOWERS",
    "VISION_TOWERS",
    "BlockHook",
    "DeepPrompts",
    "TextTower",
    "TowerRegistry",
    "VisionTower",
    "Wrappers",
]
