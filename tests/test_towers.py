"""Tower adapters (registry by tower type), per-call encoder options, the backbone's logits, the Capability
enumeration and the feature-cache opt-out."""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import logging

import pytest
import torch
from torch import nn

from example_tower import PooledLinearAdapter, PooledLinearTower
from vlprompt import create_task
from vlprompt.backbones import EncodeOptions, PromptableCLIP
from vlprompt.backbones.towers import TEXT_TOWERS, VISION_TOWERS
from vlprompt.backbones.towers.cnn import OpenCLIPResNet
from vlprompt.backbones.towers.openclip_text import OpenCLIPText
from vlprompt.backbones.towers.openclip_vit import OpenCLIPViT
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace

SPACE = LabelSpace(["red circle", "green square", "blue star"])


def test_adapters_are_chosen_by_tower_type(tiny_vit, tiny_rn):
    assert type(tiny_vit.text_tower) is OpenCLIPText and type(tiny_vit.vision_tower) is OpenCLIPViT
    assert type(tiny_rn.vision_tower) is OpenCLIPResNet
    assert tiny_vit.capabilities("vision") >= {Capability.VISION_PROMPTS, Capability.LAYER_TAPS}
    assert Capability.VISION_PROMPTS not in tiny_rn.capabilities("vision")
    assert tiny_vit.capabilities("text") >= {Capability.CAUSAL_TEXT, Capability.SHARED_PREFIX, Capability.LAYER_TAPS}
    assert tiny_vit.embed_dim == 32 and tiny_rn.embed_dim == 32


def test_an_unsupported_tower_is_refused_naming_its_type(tiny_vit):
    clip = copy.deepcopy(tiny_vit.clip)
    clip.visual = nn.Identity()
    with pytest.raises(VLPromptError, match=r"unsupported image tower torch\.nn\.modules\.linear\.Identity: no tower"):
        PromptableCLIP(clip)


def test_a_new_tower_family_is_one_registered_adapter(tiny_vit):
    """CONTRIBUTING.md's example (tests/example_tower.py): a backbone on the new image tower encodes images,
    trains a text-side method from cached features, and refuses image prompts in one line."""
    assert VISION_TOWERS.types()[PooledLinearTower] is PooledLinearAdapter
    clip = copy.deepcopy(tiny_vit.clip)
    torch.manual_seed(0)
    clip.visual = PooledLinearTower(tiny_vit.embed_dim)
    backbone = PromptableCLIP(clip)
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(backbone.encode_image(images), clip.visual(images))
    assert backbone.embed_dim == 32 and backbone.image_size == 32 and backbone.vision_layers == 0
    task = create_task("coop", backbone, SPACE)
    assert task.image_features_cacheable
    assert task(images=images).logits.shape == (2, 3)
    with pytest.raises(VLPromptError, match=r"image tower \(PooledLinearTower\) takes no prompts"):
        create_task("maple", backbone, SPACE)


def test_contributing_shows_the_example_tower_as_it_is():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    section = (root / "CONTRIBUTING.md").read_text().split("## Checklist: add a tower adapter", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert snippet.strip() and snippet in (root / "tests" / "example_tower.py").read_text()


def test_text_tower_registry_knows_open_clip_text():
    names = {t.__name__ for t in TEXT_TOWERS.types()}
    assert {"CLIP", "TextTransformer"} <= names


# ---------------------------------------------------------------------------------------------- options
def test_run_options_travel_with_the_task_not_the_shared_backbone(tiny_vit):
    before = tiny_vit.options
    task = create_task("coop", tiny_vit, SPACE, overrides=["train.text_chunk=8", "train.fp16_prompts=true"])
    assert task.backbone.options == EncodeOptions(text_chunk=8, fp16_prompts=True)
    assert task.learner.backbone is task.backbone and task.backbone is not tiny_vit
    assert tiny_vit.options == before == EncodeOptions()
    assert task.backbone.clip is tiny_vit.clip  # a view: the frozen modules are shared, not copied


def test_per_call_options_override_the_view(tiny_vit):
    ids = tiny_vit.tokenize(["a photo of a dog.", "x"])
    emb = tiny_vit.token_embed(ids)
    seen = []
    hook = lambda *a: seen.append(a[3].shape[1])
    tiny_vit.encode_text(emb, ids, hook=hook, options=EncodeOptions(causal_truncation=False))
    tiny_vit.encode_text(emb, ids, hook=hook)
    assert seen[0] == tiny_vit.context_length and seen[-1] == int(ids.argmax(-1).max()) + 1


# ---------------------------------------------------------------------------------------------- logits
def test_backbone_logits_are_clip_logits_plus_an_optional_bias(tiny_vit):
    torch.manual_seed(0)
    f, t = torch.randn(4, 32), torch.randn(3, 32)
    expected = (
        tiny_vit.clip.logit_scale.exp() * nn.functional.normalize(f, dim=-1) @ nn.functional.normalize(t, dim=-1).T
    )
    assert torch.allclose(tiny_vit.logits(f, t), expected, atol=1e-5)
    assert tiny_vit.logit_bias is None
    clip = copy.deepcopy(tiny_vit.clip)
    clip.logit_bias = nn.Parameter(torch.tensor(-10.0))  # SigLIP's learned bias
    assert torch.allclose(PromptableCLIP(clip).logits(f, t), expected - 10.0, atol=1e-5)
    task = create_task("coop", PromptableCLIP(clip), SPACE)
    images = torch.randn(2, 3, 32, 32)
    out = task(images=images)
    assert torch.allclose(out.logits, PromptableCLIP(clip).logits(out.image, out.text))


# ---------------------------------------------------------------------------------------------- capabilities
def test_every_capability_has_a_docstring_and_keeps_its_string():
    import vlprompt.capabilities as module

    body = next(n for n in ast.parse(inspect.getsource(module)).body if isinstance(n, ast.ClassDef)).body
    documented = {
        stmt.targets[0].id
        for stmt, after in zip(body, body[1:])
        if isinstance(stmt, ast.Assign)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    }
    assert documented == {c.name for c in Capability}
    assert Capability.SHARED_TEXT == "shared_text" and "shared_text" in {Capability.SHARED_TEXT}
    assert str(Capability.PROMPT_PAIRS) == "prompt_pairs"


def test_a_missing_capability_is_named_in_one_line(tiny_vit):
    with pytest.raises(
        VLPromptError,
        match="add-on 'restore' needs deep_text, deep_vision, prompt_pairs, which 'coop' does not provide \\(it provides class_token_end",
    ):
        create_task("coop+restore", tiny_vit, SPACE)


# ---------------------------------------------------------------------------------------------- feature cache
def test_feature_cache_opt_out_by_declaration(tiny_vit, monkeypatch, caplog):
    task = create_task("coop", tiny_vit, SPACE)
    assert task.feature_cache_blocker is None and task.image_features_cacheable
    learner_cls = type(task.learner)
    monkeypatch.setattr(learner_cls, "feature_cache_blocker", classmethod(lambda cls, config: "it adapts the images"))
    with caplog.at_level(logging.INFO, logger="vlprompt.task.prompt_task"):
        assert not task.image_features_cacheable and not task.image_features_cacheable
    assert task.feature_cache_blocker == "it adapts the images"
    logged = [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
    assert logged == ["coop: image features are computed every step, not cached (it adapts the images)"]


def test_image_prompts_and_vision_taps_block_the_cache(tiny_vit):
    assert create_task("maple", tiny_vit, SPACE).feature_cache_blocker == "maple puts prompts into the image tower"
    task = create_task("maple+restore", tiny_vit, SPACE, overrides=["restore.formulation=paper"])
    assert not task.image_features_cacheable


def test_encode_options_match_the_train_settings():
    from vlprompt.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(EncodeOptions)}
    assert fields <= {f.name for f in dataclasses.fields(TrainConfig)}
    assert EncodeOptions.from_train(TrainConfig()) == EncodeOptions()  # the same defaults in one place each
