"""Shared-prefix text encoding and chunked text towers equal the plain full-sequence path: features and the
gradients of every trainable prompt tensor, for each learner, block variant and fallback case.

Exactness is checked in float64 (models and prompts: differences ~1e-15); in float32 the two paths round
differently, by ~1e-6 relative to each tensor's size.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

from tiny_models import TINY_RN, TINY_VIT
from vlprompt import create_task
from vlprompt.backbones.adapter import PromptableCLIP
from vlprompt.backbones.loading import build_model
from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.towers.openclip_text import OpenCLIPText
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace, StepInfo

SPACE = LabelSpace(["red circle", "green_square", "blue star shaped thing", "yellow moon"])
#: 37 classes of 1 to 5 words, for chunking by 8
MANY = LabelSpace([" ".join(["dotted", "striped", "small", "round", "blue"][: 1 + i % 5]) + f" {i}" for i in range(37)])
TOL = 1e-10  # float64


@contextlib.contextmanager
def default_dtype(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _model(config=TINY_VIT, quick_gelu=False, **text_cfg) -> PromptableCLIP:
    torch.manual_seed(0)
    clip = build_model({**config, "quick_gelu": quick_gelu, "text_cfg": {**config["text_cfg"], **text_cfg}})
    with torch.no_grad():  # move LayerScale / head scales away from their constant initial values
        for name, p in clip.transformer.named_parameters():
            if name.endswith(("gamma", "head_scale")):
                p.copy_(torch.rand_like(p) + 0.5)
    return PromptableCLIP(clip)


@pytest.fixture(scope="module")
def models64():
    """float64 tiny models: the conftest ViT and RN50-style configs, QuickGELU, and open_clip's custom block
    (LayerScale, ln_attn, per-head scales, ln_inner, MLP norm; and qk-norm)."""
    with default_dtype(torch.float64):
        return {
            "tiny_vit": _model(TINY_VIT),
            "tiny_rn": _model(TINY_RN),
            "quickgelu": _model(quick_gelu=True),
            "custom": _model(
                ls_init_value=0.1, scale_attn=True, scale_heads=True, scale_attn_inner=True, scale_fc=True
            ),
            "qknorm": _model(qk_norm=True),
        }


@pytest.fixture
def float64():
    with default_dtype(torch.float64):
        yield


def _task(backbone, method, sets, space=SPACE):
    torch.manual_seed(0)
    task = create_task(method, backbone, space, overrides=list(sets))
    for p in task.parameters():  # CoCoOp's zero-initialised meta-net bias would leave ReLUs dead
        if p.requires_grad:
            p.data.add_(torch.randn_like(p) * 0.05)
    return task


def _step(task, backbone):
    """Text features, and gradients of every trainable tensor, of one loss on fixed inputs."""
    torch.manual_seed(1)
    images = torch.randn(3, 3, backbone.image_size, backbone.image_size)
    task.zero_grad(set_to_none=True)
    if task.learner.image_prompts:
        out = task(images=images)
    else:
        out = task(image_features=backbone.encode_image(images))
    labels = torch.arange(3) % len(task.space)
    weight = torch.linspace(-1, 1, out.text.numel()).view_as(out.text)
    loss = sum(task.loss_terms(out, labels, StepInfo()).values()) + (out.text * weight).mean()
    loss.backward()
    return out.text.detach(), {n: p.grad.clone() for n, p in task.named_parameters() if p.grad is not None}


def _set_options(monkeypatch, task, **options):
    """Change the encoder options of ``task``'s view of the backbone (for this test only)."""
    monkeypatch.setattr(task.backbone, "options", dataclasses.replace(task.backbone.options, **options))


def _count_calls(monkeypatch, name, owner=PromptableCLIP):
    calls = []
    original = getattr(owner, name)

    def counted(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def _max_diff(a, b, relative=False):
    """Largest difference over the text features and every gradient (relative: per tensor, over max(1, |a|))."""
    (text_a, grads_a), (text_b, grads_b) = a, b
    assert grads_a.keys() == grads_b.keys() and grads_a
    pairs = [(text_a, text_b)] + [(grads_a[n], grads_b[n]) for n in grads_a]
    scale = [max(1.0, x.abs().max().item()) if relative else 1.0 for x, _ in pairs]
    return max((x - y).abs().max().item() / s for (x, y), s in zip(pairs, scale))


LEARNER_CASES = [
    ("coop", ["coop.n_ctx=4"]),  # generic random init behind X placeholders
    ("coop", ["coop.ctx_init=a photo of a", "coop.n_ctx=4"]),
    ("kgcoop", []),
    ("cocoop", []),  # one prefix per image
    ("lpt", ["lpt.n_ctx_text=4"]),  # deep text prompts
    ("ivlp", []),  # n = 2 of "a photo of a": "of a" sits in the shared prefix
    ("maple", []),
    ("promptsrc", []),
]
CASES = [("tiny_vit", m, s) for m, s in LEARNER_CASES] + [
    ("tiny_rn", "coop", ["coop.n_ctx=16"]),
    ("tiny_rn", "cocoop", []),
    ("tiny_rn", "lpt", ["lpt.n_ctx_text=2"]),
    ("quickgelu", "coop", ["coop.n_ctx=4"]),
    ("quickgelu", "maple", []),
    ("custom", "ivlp", []),
    ("custom", "cocoop", []),
    ("qknorm", "maple", []),
]


def _shared_and_plain(backbone, task, monkeypatch):
    calls = _count_calls(monkeypatch, "encode_text_shared")
    shared = _step(task, backbone)
    assert calls  # the fast path ran
    with monkeypatch.context() as m:
        m.setattr(task.backbone, "options", dataclasses.replace(task.backbone.options, shared_prefix=False))
        plain = _step(task, backbone)
    assert len(calls) == 1
    return shared, plain


@pytest.mark.parametrize("name,method,sets", CASES)
def test_shared_prefix_equals_full_sequences(name, method, sets, models64, float64, monkeypatch):
    backbone = models64[name]
    assert backbone.text_tower.prefix_blocker is None
    shared, plain = _shared_and_plain(backbone, _task(backbone, method, sets), monkeypatch)
    assert _max_diff(shared, plain) <= TOL


@pytest.mark.parametrize("method,sets", LEARNER_CASES)
def test_shared_prefix_in_float32(tiny_vit, method, sets, monkeypatch):
    shared, plain = _shared_and_plain(tiny_vit, _task(tiny_vit, method, sets), monkeypatch)
    assert _max_diff(shared, plain, relative=True) <= 1e-5


def test_common_tokens_after_the_context_join_the_prefix(tiny_vit):
    maple = _task(tiny_vit, "maple", []).learner.prompts
    assert (maple.n_ctx, maple.n_common, maple.shared_len) == (2, 2, 5)  # [SOS][P_0] of a
    coop = _task(tiny_vit, "coop", ["coop.n_ctx=3"], LabelSpace(["red circle", "red square"])).learner.prompts
    assert coop.n_common == 1  # both names start with "red"
    single = _task(tiny_vit, "coop", ["coop.n_ctx=3"], LabelSpace(["red circle"])).learner.prompts
    assert single.shared_len == int(single.pool[0])  # everything but the EOT: at least one suffix token


# ---------------------------------------------------------------------------------------------- fallbacks
@pytest.mark.parametrize(
    "method,sets",
    [
        ("coop", ["coop.csc=true"]),
        ("coop", ["coop.class_token_position=middle"]),
        ("coop", ["coop.class_token_position=front"]),
        ("cocoop", ["cocoop.csc=true", "cocoop.ctx_init="]),
    ],
)
def test_unsupported_prompts_fall_back_to_the_plain_path(tiny_vit, method, sets, monkeypatch):
    task = _task(tiny_vit, method, sets)
    calls = _count_calls(monkeypatch, "encode_text_shared")
    on = _step(task, tiny_vit)
    _set_options(monkeypatch, task, shared_prefix=False)
    off = _step(task, tiny_vit)
    assert not calls and _max_diff(on, off) == 0


def test_a_block_hook_sees_full_sequences(tiny_vit, monkeypatch):
    """Per-block taps (RESTORE's paper formulation) need every position: the plain path, every block once."""
    learner = _task(tiny_vit, "ivlp", []).learner
    calls = _count_calls(monkeypatch, "encode_text_shared")
    seen = []
    with torch.no_grad():
        tapped = learner.text_features(hook=lambda tower, i, block, x_in, x_out, n: seen.append((i, x_in.shape)))
        shared = learner.text_features()
    assert len(calls) == 1  # only the call without a hook
    assert [i for i, _ in seen] == [0, 1, 2] and seen[0][1][:2] == learner.prompts.ids.shape
    assert (tapped - shared).abs().max() <= 1e-5


def test_towers_that_cannot_share_are_named():
    assert "causal" in _model(no_causal_mask=True).text_tower.prefix_blocker
    cosine = _model(scaled_cosine_attn=True)
    assert "scaled cosine" in cosine.text_tower.prefix_blocker
    assert not cosine.text_prefix_sharable(5)
    with pytest.raises(ValueError, match="use encode_text"):
        cosine.encode_text_shared(torch.zeros(5, 64), torch.zeros(2, 3, 64), torch.tensor([6, 7]))


def test_deep_prompts_must_lie_inside_the_prefix(tiny_vit):
    width = tiny_vit.text_width
    deep = [None, torch.zeros(4, width), None]
    assert tiny_vit.text_prefix_sharable(5, deep) and not tiny_vit.text_prefix_sharable(4, deep)
    assert not tiny_vit.text_prefix_sharable(5, [None, torch.zeros(3, 4, width)])  # per-sequence prompts
    assert not tiny_vit.text_prefix_sharable(5, hook=lambda *a: None)
    with pytest.raises(ValueError, match="reach past"):
        tiny_vit.encode_text_shared(torch.zeros(4, width), torch.zeros(2, 3, width), torch.tensor([5, 6]), deep)
    with pytest.raises(ValueError, match="inside the shared prefix"):
        tiny_vit.encode_text_shared(torch.zeros(4, width), torch.zeros(2, 3, width), torch.tensor([3, 6]))


# ---------------------------------------------------------------------------------------------- chunking
@pytest.mark.parametrize(
    "method,sets,chunks",
    [
        ("coop", ["coop.n_ctx=4"], 5),  # 37 suffixes in chunks of 8
        ("maple", [], 5),
        ("coop", ["coop.csc=true"], 5),  # plain path: 37 full sequences in chunks of 8
        ("cocoop", [], 15),  # 3 images x 37 classes: (image, 8 classes) chunks
    ],
)
def test_chunked_checkpointed_text_tower_equals_one_pass(models64, float64, method, sets, chunks, monkeypatch):
    tiny_vit = models64["tiny_vit"]
    task = _task(tiny_vit, method, sets, space=MANY)
    whole = _step(task, tiny_vit)
    runs = _count_calls(
        monkeypatch, "_encode_once" if "coop.csc=true" in sets else "_suffix_features", owner=OpenCLIPText
    )
    _set_options(monkeypatch, task, text_chunk=8)
    chunked = _step(task, tiny_vit)
    assert len(runs) == 2 * chunks  # every chunk ran again in the backward pass (activation checkpointing)
    assert _max_diff(whole, chunked) <= TOL
    if "coop.csc=true" not in sets:  # suffix chunks take the classes by length, each cut after its longest EOT
        lengths = [args[2].shape[1] for args in runs[: chunks // (3 if method == "cocoop" else 1)]]
        assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    runs.clear()
    with torch.no_grad():
        task.learner.text_features(image_features=torch.randn(3, tiny_vit.embed_dim))
    assert len(runs) == chunks  # no recomputation without autograd


def test_text_chunk_setting(tiny_vit, monkeypatch):
    assert tiny_vit.options.text_chunk == 0 and tiny_vit.text_chunk_size(20, 8) == 8
    assert tiny_vit.text_chunk_size(77) < tiny_vit.text_chunk_size(20)  # automatic: a token budget
    with pytest.raises(VLPromptError, match="text_chunk=-1"):
        tiny_vit.with_options(EncodeOptions(text_chunk=-1)).text_chunk_size(20)


# ---------------------------------------------------------------------------------------------- truncation off
@pytest.mark.parametrize("method,sets", [("coop", ["coop.n_ctx=4"]), ("cocoop", []), ("maple", [])])
def test_causal_truncation_off_runs_all_positions_with_the_same_result(models64, float64, method, sets):
    """``train.causal_truncation=false`` (the references' 77-token pass, for speed comparisons): every prompt keeps
    all positions, no shared prefix, and the same features and gradients."""
    tiny_vit = models64["tiny_vit"]
    fast = _task(tiny_vit, method, [*sets, "train.causal_truncation=true"])
    fast_out = _step(fast, tiny_vit)
    full = _task(tiny_vit, method, [*sets, "train.causal_truncation=false"])
    assert full.learner.prompts.ids.shape[1] == tiny_vit.context_length > fast.learner.prompts.ids.shape[1]
    assert not full.backbone.text_prefix_sharable(1) and tiny_vit.text_prefix_sharable(1)
    assert _max_diff(fast_out, _step(full, tiny_vit)) <= TOL
    assert tiny_vit.options == EncodeOptions()  # the shared backbone is left as it was
