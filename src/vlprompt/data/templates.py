"""Prompt template banks (CLIP's ImageNet templates, CoOp's selected seven, PromptSRC's sixty).

* :data:`IMAGENET_TEMPLATES`: the 80 CLIP ImageNet templates, in the order of CoOp's
  ``trainers/imagenet_templates.py`` (the same order as open_clip's ``OPENAI_IMAGENET_TEMPLATES``).
* :data:`IMAGENET_TEMPLATES_SELECT`: the 7 templates of CoOp's prompt ensemble (``ZeroshotCLIP2``).
* :data:`PROMPTSRC_TEMPLATES`: PromptSRC's trimmed 60-entry list (``trainers/imagenet_templates.py`` of
  muzairkhattak/PromptSRC), used for its frozen text targets: ``a photo of a {}.`` followed by the first
  59 CLIP templates other than that one.
"""

from __future__ import annotations

from typing import List

from vlprompt.data.base import DatasetSplits

IMAGENET_TEMPLATES = [
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
]

IMAGENET_TEMPLATES_SELECT = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]

PROMPTSRC_TEMPLATES = ["a photo of a {}."] + [t for t in IMAGENET_TEMPLATES if t != "a photo of a {}."][:59]


def ensemble_templates(dataset: DatasetSplits) -> List[str]:
    """CoOp's ``ZeroshotCLIP2`` ensemble: the 7 selected templates, plus the dataset's own template for
    every dataset except ImageNet itself (its variants do get theirs); a user's ensemble instead when given."""
    if dataset.templates is not None:
        return list(dataset.templates)
    extra = [] if dataset.name == "imagenet" else [dataset.template]
    return IMAGENET_TEMPLATES_SELECT + extra
