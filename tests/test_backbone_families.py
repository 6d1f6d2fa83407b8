"""Backbone families (``vlprompt list backbones``, README table) read from open_clip's configs, torch-free."""

import re

import pytest

from vlprompt.backbone_families import FAMILIES, family
from vlprompt.cli.list_cmd import open_clip_configs, sections


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ViT-B-16", "clip"), ("RN50", "clip-resnet"), ("EVA02-B-16", "eva"), ("ViT-B-16-SigLIP", "siglip"),
     ("ViT-B-16-SigLIP2", "siglip"), ("convnext_base", "timm-cnn"), ("ViTamin-B", "timm-cnn"),
     ("ViT-L-14-CLIPA", "bidirectional"), ("nllb-clip-base", "hf-text"), ("coca_ViT-B-32", "coca")],
)  # fmt: skip
def test_family_of_open_clip_configs(name, expected):
    assert family(open_clip_configs()[name]) == expected


def test_list_shows_each_backbones_family():
    lines = sections()["backbones"]
    assert re.fullmatch(
        r"EVA02-B-16 +\(eva: timm Eva ViT \(EVA02: RoPE\) \+ causal text\)",
        next(x for x in lines if x.startswith("EVA02-B-16 ")),
    )
    assert len(lines) == len(open_clip_configs()) + 2
    assert {line.split("(")[1].split(":")[0] for line in lines[:-1]} <= set(FAMILIES)
