"""``--precision fp16``: the references' ``convert_weights`` on open_clip models, fp32 LayerNorms, half trainable
tensors updated in place, and the per-method exceptions (VPT fp32, KgCoOp's half targets, PromptSRC's fp32
targets)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vlprompt import create_task
from vlprompt.backbones import load_backbone
from vlprompt.engine.precision import half_backbone
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.task import LabelSpace, StepInfo

SPACE = LabelSpace(
    ["red circle", "green_square", "blue star"],
    template="a photo of a {}.",
    kgcoop_template="a photo of a {}, a type of shape.",
)
HALF = torch.float16


def private(files):
    """A backbone of our own (the session fixtures must stay fp32)."""
    return load_backbone(*map(str, files), device="cpu")


def expected_half(clip: nn.Module):
    """Parameter names that CLIP's ``convert_weights`` casts to fp16: conv/linear weights and biases, the attention
    in-projections, ``text_projection`` and the image ``proj``."""
    names = set()
    for prefix, module in clip.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            names |= {f"{dot}{n}" for n, p in module.named_parameters(recurse=False) if p is not None}
        if isinstance(module, nn.MultiheadAttention):
            names |= {f"{dot}{n}" for n in ("in_proj_weight", "in_proj_bias") if getattr(module, n) is not None}
    return names | {n for n, _ in clip.named_parameters() if n.split(".")[-1] in ("text_projection", "proj")}


@pytest.mark.parametrize("model", ["vit", "rn"])
def test_half_backbone_casts_what_convert_weights_casts(model, tiny_vit_files, tiny_rn_files):
    from open_clip.transformer import LayerNormFp32

    backbone = private(tiny_vit_files if model == "vit" else tiny_rn_files)
    before = {n: p.detach().clone() for n, p in backbone.clip.named_parameters()}
    half_backbone(backbone)
    dtypes = {n: p.dtype for n, p in backbone.clip.named_parameters()}
    half = expected_half(backbone.clip)
    assert {n for n, d in dtypes.items() if d == HALF} == half
    assert all(d == torch.float32 for n, d in dtypes.items() if n not in half)
    assert all(torch.equal(p, before[n].to(p.dtype)) for n, p in backbone.clip.named_parameters())  # values kept
    fp32 = {"token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias", "logit_scale"}
    if model == "vit":
        fp32 |= {"visual.class_embedding", "visual.positional_embedding", "visual.ln_pre.weight"}
        assert {"visual.conv1.weight", "visual.proj", "transformer.resblocks.0.attn.out_proj.weight"} <= half
    else:
        fp32 |= {"visual.bn1.weight", "visual.attnpool.positional_embedding"}
        assert {"visual.conv1.weight", "visual.attnpool.q_proj.weight", "visual.attnpool.c_proj.bias"} <= half
        assert all(b.dtype == torch.float32 for b in backbone.clip.buffers() if b.is_floating_point())
    assert fp32 <= set(dtypes) and all(dtypes[n] == torch.float32 for n in fp32)
    assert {
        "text_projection",
        "transformer.resblocks.0.attn.in_proj_weight",
        "transformer.resblocks.0.mlp.c_fc.weight",
    } <= half
    norms = [m for m in backbone.clip.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(type(m) is LayerNormFp32 for m in norms)
    assert backbone.dtype == HALF
    size = backbone.image_size
    with torch.no_grad():
        image = backbone.encode_image(torch.randn(2, 3, size, size))
        text = hand_crafted_features(backbone, SPACE.classnames, ["a photo of a {}."])
    assert image.dtype == HALF and torch.isfinite(image).all() and torch.isfinite(text).all()


def test_layer_norms_compute_in_fp32_and_return_half(tiny_vit_files, tiny_vit):
    backbone = private(tiny_vit_files)
    half_backbone(backbone)
    with torch.no_grad():  # a whole half tower stays close to the fp32 one
        half_text = hand_crafted_features(backbone, SPACE.classnames, ["a photo of a {}."])
        full_text = hand_crafted_features(tiny_vit, SPACE.classnames, ["a photo of a {}."])
    assert torch.allclose(half_text, full_text, atol=1e-2)
    ln = backbone.clip.ln_final
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5), ln.bias.uniform_(-0.5, 0.5)
    torch.manual_seed(0)
    x = (torch.randn(4, 7, ln.weight.shape[0]) * 30 + 5).half()
    # by hand, in float64: (x − mean) / sqrt(var + eps) · w + b, then rounded once to fp16
    x64 = x.double()
    mean, var = x64.mean(-1, keepdim=True), x64.var(-1, unbiased=False, keepdim=True)
    exact = ((x64 - mean) / torch.sqrt(var + ln.eps) * ln.weight.double() + ln.bias.double()).half()
    out = ln(x)
    assert out.dtype == HALF and ln.weight.dtype == torch.float32
    assert torch.equal(out, F.layer_norm(x.float(), ln.normalized_shape, ln.weight, ln.bias, ln.eps).half())
    assert (out.float() - exact.float()).abs().max() <= 2 * (exact.float().abs().max() * 2**-11)


@pytest.mark.parametrize("method", ["coop+dept", "maple"])
def test_fp16_step_updates_half_parameters_in_place(method, tiny_vit_files):
    backbone = private(tiny_vit_files)
    task = create_task(method, backbone, SPACE, overrides=["train.precision=fp16"])
    frozen = {k: v.clone() for k, v in backbone.clip.state_dict().items()}
    params = dict(task.named_parameters())
    half = {n for n, p in params.items() if p.dtype == HALF}
    assert half and "learner.ctx" in half
    before = {n: (p, p.detach().clone()) for n, p in params.items()}
    opt = torch.optim.SGD(task.param_groups(0.01), lr=0.01, momentum=0.9, weight_decay=5e-4)
    result = task.training_step(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), StepInfo(num_epochs=2), features=False)
    opt.zero_grad()
    result.loss.backward()
    opt.step()
    after = dict(task.named_parameters())
    for name in half:
        p, old = before[name]
        assert after[name] is p and p.dtype == HALF  # the same fp16 tensor, updated by SGD, no master copy
        assert opt.state[p]["momentum_buffer"].dtype == HALF
    assert not torch.equal(before["learner.ctx"][0], before["learner.ctx"][1])
    assert all(torch.equal(frozen[k], v) for k, v in backbone.clip.state_dict().items())


def test_fp16_trains_on_cached_fp32_features(tiny_vit_files):
    backbone = private(tiny_vit_files)
    task = create_task("coop", backbone, SPACE, overrides=["train.precision=fp16", "coop.n_ctx=4"])
    with torch.no_grad():
        cached = backbone.encode_image(torch.randn(2, 3, 32, 32)).float()  # the feature cache stores fp32
    result = task.training_step(cached, torch.tensor([0, 1]), StepInfo(num_epochs=2), features=True)
    assert result.logits.dtype == HALF and torch.isfinite(result.loss)
    result.loss.backward()
    assert task.learner.ctx.grad.dtype == HALF


def test_vpt_stays_fp32_under_fp16(tiny_vit_files, caplog):
    backbone = private(tiny_vit_files)
    with caplog.at_level(logging.WARNING, logger="vlprompt"):
        task = create_task("vpt", backbone, SPACE, overrides=["train.precision=fp16"])
    assert "vpt: its reference trainer runs fp32" in caplog.text
    assert all(p.dtype == torch.float32 for p in backbone.clip.parameters())
    assert all(p.dtype == torch.float32 for p in task.parameters())
    assert task(images=torch.randn(2, 3, 32, 32)).logits.dtype == torch.float32


def test_kg_targets_come_from_the_half_text_tower(tiny_vit_files, tiny_vit):
    backbone = private(tiny_vit_files)
    task = create_task("kgcoop", backbone, SPACE, overrides=["train.precision=fp16"])
    template = [SPACE.kgcoop_template]
    assert torch.equal(task.addons["kg"].targets, hand_crafted_features(backbone, SPACE.classnames, template))
    assert not torch.equal(task.addons["kg"].targets, hand_crafted_features(tiny_vit, SPACE.classnames, template))


def test_promptsrc_text_targets_are_fp32_outside_autocast(tiny_vit_files, tiny_vit, monkeypatch):
    from vlprompt.addons.src import model as promptsrc

    templates = promptsrc.PROMPTSRC_TEMPLATES[:3]  # the precision, not the template count, is under test
    monkeypatch.setattr(promptsrc, "PROMPTSRC_TEMPLATES", templates)
    backbone = private(tiny_vit_files)
    with torch.no_grad():
        for p in backbone.clip.parameters():  # fp16-representable weights (as OpenAI's): the fp32 copy is exact
            p.copy_(p.half().float())
    expected = hand_crafted_features(backbone, SPACE.classnames, templates, normalize_each=False)
    task = create_task("promptsrc", backbone, SPACE, overrides=["train.precision=fp16"])
    task.training_step(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), StepInfo(num_epochs=2), features=False)
    targets = task.addons["src"].text_targets
    assert targets.dtype == torch.float32 and torch.allclose(targets, expected, atol=1e-6)
    assert backbone.dtype == HALF  # computed on an fp32 copy; the backbone stays half
    # under autocast (the default bf16 mode on CUDA; here on the CPU) the targets are still fp32 computations
    src = create_task("promptsrc", tiny_vit, SPACE).addons["src"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        targets = src.frozen_text_targets()  # what the first loss of a label space calls
    plain = hand_crafted_features(tiny_vit, SPACE.classnames, templates, normalize_each=False)
    assert torch.allclose(targets, plain, atol=1e-6)


def test_feature_cache_tells_a_half_backbone_from_its_fp32_original(tiny_vit_files):
    from vlprompt.engine.features import backbone_fingerprint

    backbone = private(tiny_vit_files)
    with torch.no_grad():
        for p in backbone.clip.parameters():
            p.copy_(p.half().float())
    before = backbone_fingerprint(backbone)
    half_backbone(backbone)
    assert backbone_fingerprint(backbone) != before
