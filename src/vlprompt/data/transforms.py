"""Image transforms of the reference pipeline (Dassl ``build_transform`` with the CoOp configs).

* train (``augment``): ``RandomResizedCrop(size, scale=(0.08, 1.0), bicubic)`` -> ``RandomHorizontalFlip(0.5)``
  -> ``ToTensor`` -> ``Normalize`` (no resize before the crop);
* train (``resize``, the references' non-random path, for parity checks): ``Resize((size, size))`` of both sides
  (bicubic, aspect not kept) -> ``ToTensor`` -> ``Normalize``;
* test: ``Resize(size)`` of the shorter side (bicubic) -> ``CenterCrop(size)`` -> ``ToTensor`` ->
  ``Normalize``.

Both start by converting the PIL image to RGB (a no-op for RGB images), as Dassl's ``read_image`` does, but as a
viewer shows it (:func:`~vlprompt.data.pixels.to_viewer_rgb`: 16-bit and float images scaled, alpha on white).
"""

from __future__ import annotations

from typing import Sequence

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from vlprompt.data.pixels import to_viewer_rgb

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def build_transform(
    train: bool, image_size: int = 224, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> T.Compose:
    """The train or test transform for square ``image_size`` inputs (see module doc)."""
    bicubic = InterpolationMode.BICUBIC
    if train:
        geometry = [
            T.RandomResizedCrop(image_size, scale=(0.08, 1.0), interpolation=bicubic),
            T.RandomHorizontalFlip(p=0.5),
        ]
    else:
        geometry = [T.Resize(image_size, interpolation=bicubic), T.CenterCrop(image_size)]
    return T.Compose([to_viewer_rgb, *geometry, T.ToTensor(), T.Normalize(mean=list(mean), std=list(std))])


def resize_transform(
    image_size: int = 224, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> T.Compose:
    """The deterministic train transform: both sides resized to ``image_size`` (bicubic), no crop or flip."""
    resize = T.Resize((image_size, image_size), interpolation=InterpolationMode.BICUBIC)
    return T.Compose([to_viewer_rgb, resize, T.ToTensor(), T.Normalize(mean=list(mean), std=list(std))])


def backbone_transform(backbone, kind: str = "test") -> T.Compose:
    """``test``, ``augment`` or ``resize`` at the backbone's input size and normalisation."""
    size, mean, std = backbone.image_size, backbone.image_mean, backbone.image_std
    if kind == "resize":
        return resize_transform(size, mean, std)
    return build_transform(kind == "augment", size, mean, std)
