"""The ``lora`` learner (CLIP-LoRA): settings, block selection, identity at initialisation, the low-rank update on
every text path, and parity with CLIP-LoRA's layer math re-built in this file on the tiny OpenAI-architecture CLIP
of ``../shared/reference/models`` (outputs and gradients)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.methods.lora.config import LoRAConfig, lora_layers
from vlprompt.methods.zeroshot.config import ZeroShotConfig
from vlprompt.task import LabelSpace, PromptTask

SPACE = LabelSpace(["red circle", "green_square", "blue star"], template="a photo of a {}.")
TINY_OPENAI = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "models"


def lora_task(backbone, space=SPACE, **cfg):
    return PromptTask(backbone, "lora", {"lora": LoRAConfig(**cfg)}, space)


def randomise(task, seed=0):
    """Non-zero B matrices (they start at zero), so the updates change the towers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in task.named_parameters():
            if name.endswith("lora_B"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


# ---------------------------------------------------------------------------------------------- settings
def test_settings_are_checked_with_one_line():
    for kwargs, flag in [
        ({"dropout": 1.0}, "lora.dropout"),
        ({"params": "q,x"}, "lora.params"),
        ({"params": "q,q"}, "lora.params"),
        ({"params": ""}, "lora.params"),
        ({"position": "middle"}, "lora.position"),
        ({"encoder": "image"}, "lora.encoder"),
        ({"template": "no slot"}, "lora.template"),
    ]:
        with pytest.raises(VLPromptError, match=flag):
            LoRAConfig(**kwargs)


def test_numeric_ranges_are_checked_when_resolved():
    from vlprompt.config import make_config

    with pytest.raises(VLPromptError, match="lora.rank must be"):
        make_config("lora", overrides=["lora.rank=0"])


def test_block_selection_follows_clip_loras_index_tables():
    assert lora_layers("all", 12) == tuple(range(12))
    assert lora_layers("half-up", 12) == (6, 7, 8, 9, 10, 11)
    assert lora_layers("top3", 12) == (9, 10, 11)
    assert lora_layers("half-up", 24) == tuple(range(12, 24))  # ViT-L/14's table
    assert lora_layers("all", 2) == (0, 1) and lora_layers("up", 2) == ()  # indices beyond the depth are skipped
    with pytest.raises(VLPromptError, match="lora.position='mid'"):
        lora_layers("mid", 24)


def test_parameters_init_and_scaling(tiny_vit):
    task = lora_task(tiny_vit, rank=4, alpha=2.0, params="q,v,o")
    names = sorted(task.trainable_parameters())
    layers = tiny_vit.text_layers + tiny_vit.vision_layers
    assert len(names) == layers * 3 * 2
    assert "learner.blocks.text.0.adapters.q.lora_A" in names and "learner.blocks.vision.1.adapters.out.lora_B" in names
    low = task.learner.blocks["text"]["0"].adapters["q"]
    width = tiny_vit.text_width
    assert low.lora_A.shape == (4, width) and low.lora_B.shape == (width, 4)
    assert torch.equal(low.lora_B, torch.zeros(width, 4))
    bound = 1 / math.sqrt(width)  # kaiming_uniform(a=√5): U(-1/√fan_in, 1/√fan_in)
    assert float(low.lora_A.detach().abs().max()) <= bound and float(low.lora_A.detach().abs().max()) > 0.5 * bound
    assert low.scaling == pytest.approx(2.0 / math.sqrt(4))
    # an image tower adapted: image features must be computed every step
    assert "wraps blocks of the image tower" in task.feature_cache_blocker
    assert lora_task(tiny_vit, encoder="text").feature_cache_blocker is None


def test_dropout_acts_on_the_low_rank_branch_in_training_only():
    from vlprompt.methods.lora.model import LowRank

    torch.manual_seed(0)
    low = LowRank(6, 5, rank=2, alpha=1.0, dropout=0.5)
    with torch.no_grad():
        low.lora_B.normal_()
    x = torch.randn(4, 6)
    expected = x @ low.lora_A.t() @ low.lora_B.t() / math.sqrt(2)
    low.eval()
    assert torch.allclose(low(x), expected, atol=1e-6)
    low.train()
    torch.manual_seed(1)
    mask = F.dropout(torch.ones(4, 6), 0.5, training=True)  # the dropout mask this seed draws, scaled by 1/(1-p)
    torch.manual_seed(1)
    assert torch.allclose(low(x), (x * mask) @ low.lora_A.t() @ low.lora_B.t() / math.sqrt(2), atol=1e-6)


def test_identity_at_initialisation_equals_zero_shot(tiny_vit):
    task = lora_task(tiny_vit, template="")
    zero_shot = PromptTask(tiny_vit, "zeroshot", {"zeroshot": ZeroShotConfig()}, SPACE)
    images = torch.randn(2, 3, 32, 32)
    task.eval()
    with torch.no_grad():
        assert torch.allclose(task.predict(images=images), zero_shot.predict(images=images), atol=1e-4)
    randomise(task)
    with torch.no_grad():
        assert not torch.allclose(task.predict(images=images), zero_shot.predict(images=images), atol=1e-3)


def test_cnn_image_tower_is_refused_with_the_fix(tiny_rn):
    with pytest.raises(VLPromptError, match="lora.encoder=text"):
        lora_task(tiny_rn)
    lora_task(tiny_rn, encoder="text")


def test_update_is_honoured_on_the_shared_prefix_path(tiny_vit):
    """The wrappers act per token, so a shared-prefix encoding of LoRA-adapted prompts equals the full one."""
    from vlprompt.methods.coop.model import CoOp

    task = lora_task(tiny_vit, encoder="text", dropout=0.0)
    randomise(task)
    backbone = task.backbone
    coop = CoOp(backbone, CoOpConfig(n_ctx=4), SPACE)
    with torch.no_grad():
        shared = coop.prompts.encode(coop.ctx)
        full = backbone.encode_text(coop.prompts.assemble(coop.ctx), coop.prompts.ids)
    assert backbone.text_prefix_sharable(coop.prompts.shared_len)
    assert torch.allclose(shared, full, atol=1e-5)
    assert not torch.allclose(full, tiny_vit.encode_text(coop.prompts.assemble(coop.ctx), coop.prompts.ids), atol=1e-3)


# ---------------------------------------------------------------------------------------------- parity design
def _reference_attention(block, x, lora, mask, scaling):
    """CLIP-LoRA's ``PlainMultiheadAttentionLoRA`` on ``ln_1(x)`` (sequence-first ``[L, N, D]``): q/k/v/proj as
    separate linears, each adapted one adding ``x @ (B @ A)ᵀ · scaling``."""
    attn = block.attn
    d = x.shape[-1]
    w, b = attn.in_proj_weight, attn.in_proj_bias
    projections = {"q": (w[:d], b[:d]), "k": (w[d : 2 * d], b[d : 2 * d]), "v": (w[2 * d :], b[2 * d :])}

    def linear(name, inp, weight, bias):
        out = inp @ weight.t() + bias
        if name in lora:
            A, B = lora[name]
            out = out + inp @ (B @ A).t() * scaling
        return out

    q, k, v = (linear(n, x, *projections[n]) for n in ("q", "k", "v"))
    L, N, _ = x.shape
    h = attn.num_heads
    q, k, v = (t.reshape(L, N * h, d // h).transpose(0, 1) for t in (q, k, v))
    scores = q @ k.transpose(1, 2) / math.sqrt(d // h)
    if mask is not None:
        scores = scores + mask
    a = (scores.softmax(-1) @ v).transpose(0, 1).reshape(L, N, d)
    return linear("o", a, attn.out_proj.weight, attn.out_proj.bias)


def _reference_blocks(blocks, x, loras, mask, scaling):
    for i, block in enumerate(blocks):
        x = x + _reference_attention(block, block.ln_1(x), loras.get(i, {}), mask, scaling)
        x = x + block.mlp(block.ln_2(x))
    return x


def _reference_features(clip, ids, images, text_loras, vision_loras, scaling):
    """OpenAI CLIP's ``encode_text`` / ``encode_image`` with the LoRA attention above (fp32)."""
    x = clip.token_embedding(ids) + clip.positional_embedding
    L = x.shape[1]
    mask = torch.full((L, L), float("-inf")).triu(1)
    x = _reference_blocks(clip.transformer.resblocks, x.permute(1, 0, 2), text_loras, mask, scaling).permute(1, 0, 2)
    x = clip.ln_final(x)
    text = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ clip.text_projection
    v = clip.visual
    y = v.conv1(images).flatten(2).transpose(1, 2)
    cls = v.class_embedding + torch.zeros(y.shape[0], 1, y.shape[-1])
    y = v.ln_pre(torch.cat([cls, y], dim=1) + v.positional_embedding)
    y = _reference_blocks(v.transformer.resblocks, y.permute(1, 0, 2), vision_loras, None, scaling).permute(1, 0, 2)
    image = v.ln_post(y[:, 0]) @ v.proj
    return text, image


def test_parity_with_clip_loras_layer_math_on_the_tiny_openai_clip():
    if not (TINY_OPENAI / "tiny-openai.json").is_file():
        pytest.skip(f"shared tiny OpenAI-architecture CLIP not available: {TINY_OPENAI}")
    from vlprompt.backbones import load_backbone

    backbone = load_backbone(str(TINY_OPENAI / "tiny-openai.json"), str(TINY_OPENAI / "tiny-openai.safetensors"))
    torch.manual_seed(0)
    space = LabelSpace(["banded", "blotchy", "braided"], template="{} texture.")
    task = lora_task(backbone, space, rank=2, alpha=1.0, dropout=0.0, params="q,k,v,o")
    randomise(task)
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 2, 1])
    out = task(images=images)
    loss = F.cross_entropy(out.logits, labels)
    ours = torch.autograd.grad(loss, list(task.learner.parameters()))

    learner = task.learner
    clip = backbone.clip
    letters = {"q": "q", "k": "k", "v": "v", "out": "o"}
    loras = {"text": {}, "vision": {}}
    for tower, blocks in learner.blocks.items():
        for i, block in blocks.items():
            entry = loras[tower].setdefault(int(i), {})
            for name, low in block.adapters.items():
                A, B = low.lora_A.detach().clone().requires_grad_(), low.lora_B.detach().clone().requires_grad_()
                entry[letters[name]] = (A, B)
    ids = backbone.tokenize(["a photo of a " + c + "." for c in space.classnames])
    text, image = _reference_features(clip, ids, images, loras["text"], loras["vision"], 1 / math.sqrt(2))
    assert torch.allclose(out.text, text, atol=1e-5, rtol=1e-4)
    assert torch.allclose(out.image, image, atol=1e-5, rtol=1e-4)
    logits = clip.logit_scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
    ref_loss = F.cross_entropy(logits, labels)
    assert float(loss.detach()) == pytest.approx(float(ref_loss.detach()), rel=1e-5)
    ref_params = []
    for tower in learner.blocks:
        for i, block in learner.blocks[tower].items():
            for name in block.adapters:
                ref_params.extend(loras[tower][int(i)][letters[name]])
    ref = torch.autograd.grad(ref_loss, ref_params)
    assert len(ref) == len(ours) == 2 * 4 * (backbone.text_layers + backbone.vision_layers)
    for mine, theirs in zip(ours, ref):
        assert torch.allclose(mine, theirs, atol=1e-6, rtol=1e-4)


def test_presets_are_clip_loras_fixed_settings():
    from vlprompt.presets import resolve
    from vlprompt.task import parse_method

    comp = parse_method("lora")
    for protocol in ("fewshot", "b2n"):
        train = resolve(comp.configs(), protocol=protocol, dataset="dtd", shots=4).values["train"]
        assert train["optimizer"] == "adamw" and train["schedule"] == "step_cosine"
        assert (train["lr"], train["weight_decay"], train["min_lr"], train["batch_size"]) == (2e-4, 1e-2, 1e-6, 32)
        assert train["steps"] == 2000  # n_iters x shots
    assert resolve(comp.configs(), protocol="fewshot", shots=16).values["train"]["steps"] == 8000
    assert resolve(comp.configs(), protocol="fewshot", shots=1).values["lora"]["rank"] == 2
