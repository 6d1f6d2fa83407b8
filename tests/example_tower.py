"""The example tower family of CONTRIBUTING.md ("Add a tower adapter"): a tiny image tower type and its adapter,
registered through :data:`vlprompt.backbones.towers.VISION_TOWERS`. tests/test_towers.py builds a backbone on it."""

import torch
import torch.nn.functional as F
from torch import nn

from vlprompt.backbones.towers import VISION_TOWERS, VisionTower


class PooledLinearTower(nn.Module):
    """An image tower: 4x4 average pooling, then one linear map to the joint embedding."""

    def __init__(self, output_dim: int, image_size: int = 32):
        super().__init__()
        self.output_dim, self.image_size = output_dim, image_size
        self.proj = nn.Linear(3 * 4 * 4, output_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(F.adaptive_avg_pool2d(images, 4).flatten(1))


@VISION_TOWERS.register(PooledLinearTower)
class PooledLinearAdapter(VisionTower):
    """No blocks, so no prompts, taps or wrappers (the base class refuses them with one line each)."""

    def encode(self, images, prompts=None, deep_prompts=None, hook=None, options=None, wrappers=None):
        if prompts is not None or deep_prompts is not None or hook is not None or wrappers:
            raise ValueError("PooledLinearTower takes no prompts, taps or block wrappers")
        return self.module(images)
