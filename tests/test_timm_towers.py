"""timm image towers inside open_clip (EVA02 with RoPE, SigLIP's attention-pool head): features equal open_clip's
without prompts, prompts go after the trunk's prefix tokens and are dropped before pooling, and non-ViT trunks
are refused naming their type (issue 20, item 1)."""

import pytest
import torch

import tiny_towers
from vlprompt.backbones.adapter import PromptableCLIP
from vlprompt.backbones.loading import build_model
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

SIGLIP = {
    "embed_dim": 32,
    "custom_text": True,
    "vision_cfg": tiny_towers.TINY_SIGLIP_VISION,
    "text_cfg": tiny_towers.TEXT,
}


def _backbone(config, seed=0):
    torch.manual_seed(seed)
    return PromptableCLIP(build_model(config))


@pytest.fixture(scope="module", params=["eva02", "siglip"])
def family(request):
    return request.param, _backbone(tiny_towers.TINY_EVA02 if request.param == "eva02" else SIGLIP)


def test_features_equal_open_clip_without_prompts(family):
    _, bb = family
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want = bb.clip.encode_image(images)
        torch.testing.assert_close(bb.encode_image(images), want, atol=1e-5, rtol=0)
        tapped = []
        got = bb.encode_image(images, hook=lambda *a: tapped.append(a[1]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert tapped == [0, 1] and bb.vision_layers == 2 and bb.vision_width == 32
    assert {Capability.VISION_PROMPTS, Capability.LAYER_TAPS} <= bb.capabilities("vision")


def test_prompts_sit_after_the_prefix_tokens_and_leave_the_patches_alone(family):
    name, bb = family
    trunk = bb.vision_tower.trunk
    assert trunk.num_prefix_tokens == (1 if name == "eva02" else 0)  # EVA02: class token; SigLIP: none
    images = torch.randn(2, 3, 32, 32)
    prompts = torch.randn(3, 32, requires_grad=True)
    deep = [None, torch.randn(3, 32, requires_grad=True)]
    seen = {}

    def hook(tower, layer, block, x_in, x_out, n):
        seen[layer] = (x_in.detach(), x_out.detach(), n)
        # the tower's own block run on the same tokens gives the same output (what RESTORE's taps rely on)
        torch.testing.assert_close(bb.run_block("vision", block, x_in), x_out, atol=1e-5, rtol=0)

    out = bb.encode_image(images, prompts, deep, hook=hook)
    out.sum().backward()
    assert prompts.grad.abs().sum() > 0 and deep[1].grad.abs().sum() > 0
    s = trunk.num_prefix_tokens
    x_in, _, n = seen[0]
    assert n == 3 and x_in.shape[1] == s + 3 + 16
    torch.testing.assert_close(x_in[:, s : s + 3], trunk.norm_pre(prompts.detach().expand(2, -1, -1)))
    torch.testing.assert_close(seen[1][0][:, s : s + 3], deep[1].detach().expand(2, -1, -1))
    assert bb.strip_prompts("vision", x_in, 3).shape[1] == s + 16
    if name == "eva02":  # a prompt token is not rotated: alone with the class token it acts like a second class token
        rope = trunk.rope.get_embed()
        padded = bb.vision_tower._rope(rope, 3)
        torch.testing.assert_close(padded[3:], rope)
        assert torch.equal(
            padded[:3], torch.cat([torch.zeros(3, rope.shape[1] // 2), torch.ones(3, rope.shape[1] // 2)], 1)
        )


def test_prompts_change_the_features_only_through_attention():
    """Zero-influence check: with every attention output projection zeroed, tokens do not mix, so the pooled class
    token (EVA02) equals the prompt-free one whatever the prompts are."""
    bb = _backbone(tiny_towers.TINY_EVA02)
    with torch.no_grad():
        for block in bb.vision_tower.blocks:
            block.attn.proj.weight.zero_()
            block.attn.proj.bias.zero_()
        images = torch.randn(2, 3, 32, 32)
        plain = bb.encode_image(images)
        prompted = bb.encode_image(images, torch.randn(4, 32), [None, torch.randn(4, 32)])
    torch.testing.assert_close(prompted, plain, atol=1e-6, rtol=0)


def test_non_vit_trunk_is_refused_naming_its_type():
    bb = _backbone(tiny_towers.TINY_CONVNEXT)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(bb.encode_image(images), bb.clip.encode_image(images))
    assert bb.capabilities("vision") == frozenset() and bb.vision_layers == 0
    with pytest.raises(
        VLPromptError,
        match=r"^vision prompts need a ViT image tower; this backbone's image tower is timm ConvNeXt \(not a ViT",
    ):
        _ = bb.vision_width
    with pytest.raises(VLPromptError, match="timm ConvNeXt"):
        bb.encode_image(images, torch.randn(2, 32))


def test_hybrid_trunk_is_refused_naming_its_stem():
    bb = _backbone(tiny_towers.TINY_HYBRID)
    with pytest.raises(VLPromptError, match=r"timm VisionTransformer with a HybridEmbed stem \(a hybrid CNN trunk\)"):
        bb.encode_image(torch.randn(1, 3, 32, 32), torch.randn(2, bb.vision_tower.trunk.embed_dim))
    assert bb.capabilities("vision") == frozenset()
