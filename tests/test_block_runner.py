"""The block runner (sequence-first layout) equals open_clip's blocks, and block wrappers are honoured on every
text path (full, chunked, shared prefix) and in the image tower.

float64 models: the two layouts differ only by float rounding (~1e-15)."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
from torch import nn

from tiny_models import TINY_VIT
from vlprompt import create_task
from vlprompt.backbones import BlockWrapper, EncodeOptions, PromptableCLIP
from vlprompt.backbones.blocks import run_block
from vlprompt.backbones.loading import build_model
from vlprompt.backbones.towers import openclip_text, openclip_vit
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace, StepInfo

SPACE = LabelSpace(["red circle", "green square", "blue star shaped thing", "yellow moon"])
TOL = 1e-10


@contextlib.contextmanager
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _backbone(**text_cfg) -> PromptableCLIP:
    torch.manual_seed(0)
    clip = build_model({**TINY_VIT, "text_cfg": {**TINY_VIT["text_cfg"], **text_cfg}})
    with torch.no_grad():
        for name, p in clip.named_parameters():
            if name.endswith(("gamma", "head_scale")):
                p.copy_(torch.rand_like(p) + 0.5)
    return PromptableCLIP(clip)


@pytest.fixture(scope="module")
def models():
    with float64():
        yield {
            "plain": _backbone(),
            "custom": _backbone(ls_init_value=0.1, scale_attn=True, scale_heads=True, scale_attn_inner=True),
            "qknorm": _backbone(qk_norm=True),
        }


@pytest.fixture
def f64():
    with float64():
        yield


@pytest.mark.parametrize("name", ["plain", "custom", "qknorm"])
@pytest.mark.parametrize("masked", [True, False])
def test_run_block_equals_the_block_forward_and_its_gradients(models, f64, name, masked):
    backbone = models[name]
    block = backbone.text_tower.blocks[1]
    mask = backbone.text_tower.mask[:7, :7] if masked else None
    torch.manual_seed(2)
    x = torch.randn(3, 7, backbone.text_width, requires_grad=True)
    ref = block(x, attn_mask=mask)
    ref_grad = torch.autograd.grad((ref * torch.linspace(-1, 1, ref.numel()).view_as(ref)).sum(), x)[0]
    out = run_block(block, x.transpose(0, 1), mask).transpose(0, 1)
    grad = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), x)[0]
    assert (out - ref).abs().max() <= TOL and (grad - ref_grad).abs().max() <= TOL


def _task(method, backbone, sets=()):
    torch.manual_seed(0)
    return create_task(method, backbone, SPACE, overrides=list(sets))


def _batch_first(monkeypatch):
    """Today's layout: the towers run the blocks' own (batch-first) forward even under autograd."""
    for module in (openclip_text, openclip_vit):
        monkeypatch.setattr(module, "runner_layout", lambda wrappers, blocker=None: False)


def _step(task):
    torch.manual_seed(1)
    task.zero_grad(set_to_none=True)
    images = torch.randn(3, 3, 32, 32)
    out = task(images=images)
    weight = torch.linspace(-1, 1, out.text.numel()).view_as(out.text)
    loss = sum(task.loss_terms(out, torch.arange(3), StepInfo()).values()) + (out.text * weight).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in task.named_parameters() if p.grad is not None}
    return out.logits.detach(), grads


def _diff(a, b):
    (la, ga), (lb, gb) = a, b
    assert ga.keys() == gb.keys() and ga
    return max([(la - lb).abs().max().item()] + [(ga[n] - gb[n]).abs().max().item() for n in ga])


@pytest.mark.parametrize("method,sets", [("maple", []), ("ivlp", []), ("vpt", []), ("coop", ["coop.csc=true"])])
@pytest.mark.parametrize("name", ["plain", "custom"])
def test_sequence_first_towers_equal_todays_layout(models, f64, monkeypatch, method, sets, name):
    """Outputs and gradients of prompted towers (full and shared-prefix text paths, prompted ViT) in the fast
    layout equal the batch-first blocks'; and the blocks' own forward is not called under autograd."""
    task = _task(method, models[name], sets)
    calls = []
    original = nn.MultiheadAttention.forward
    monkeypatch.setattr(
        nn.MultiheadAttention, "forward", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    fast = _step(task)
    if name == "plain":
        assert not calls  # every block ran through the runner
    with monkeypatch.context() as m:
        _batch_first(m)
        today = _step(task)
    assert _diff(fast, today) <= TOL


def test_no_prompt_towers_equal_open_clip_with_and_without_grad(models, f64):
    backbone = models["plain"]
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    ids = backbone.tokenize(["a photo of a dog.", "x y z"])
    with torch.no_grad():
        ref_i, ref_t = backbone.clip.encode_image(images), backbone.clip.encode_text(ids)
        assert (backbone.encode_image(images) - ref_i).abs().max() <= TOL
    emb = backbone.token_embed(ids).requires_grad_()
    assert (backbone.encode_image(images.requires_grad_()) - ref_i).abs().max() <= TOL
    assert (backbone.encode_text(emb, ids) - ref_t).abs().max() <= TOL


# ---------------------------------------------------------------------------------------------- wrappers
class LoRA(BlockWrapper):
    """``W x + s·B(A(x))`` on q and v, and a per-token residual adapter on the block output."""

    def __init__(self, width: int, rank: int = 2, scale: float = 0.5, zero: bool = False):
        super().__init__()
        self.a = nn.Parameter(torch.randn(rank, width) * 0.1)
        self.b = nn.Parameter(torch.zeros(width, rank) if zero else torch.randn(width, rank) * 0.1)
        self.adapter = nn.Linear(width, width)
        if zero:
            nn.init.zeros_(self.adapter.weight)
            nn.init.zeros_(self.adapter.bias)
        self.scale = scale

    def projection_delta(self, name, x):
        if name in ("q", "v"):
            return self.scale * (x @ self.a.T) @ self.b.T
        return None

    def block_output(self, out, x):
        return out + self.adapter(out)


def _wrapped(task, towers, **kw):
    wrappers = {}
    for tower in towers:
        width = task.backbone.text_width if tower == "text" else task.backbone.vision_width
        torch.manual_seed(5)
        wrappers[tower] = {i: LoRA(width, **kw) for i in (0, 2)}
    task.backbone.set_block_wrappers(wrappers)
    return wrappers


@pytest.mark.parametrize("method,sets", [("coop", ["coop.n_ctx=4"]), ("maple", []), ("cocoop", [])])
def test_a_wrapper_changes_the_output_on_the_shared_prefix_and_the_full_path_alike(models, f64, method, sets):
    backbone = models["plain"]
    plain = _step(_task(method, backbone, sets))
    shared_task = _task(method, backbone, sets)
    full_task = _task(method, backbone, [*sets, "train.shared_prefix=false"])
    chunked_task = _task(method, backbone, [*sets, "train.text_chunk=2"])
    towers = ("text", "vision") if method == "maple" else ("text",)
    for task in (shared_task, full_task, chunked_task):
        _wrapped(task, towers)
    shared, full, chunked = _step(shared_task), _step(full_task), _step(chunked_task)
    assert (shared[0] - plain[0]).abs().max() > 1e-3  # the wrapper acts on the shared-prefix path ...
    assert _diff(shared, full) <= TOL and _diff(chunked, full) <= TOL  # ... exactly as on the full/chunked path
    assert backbone.block_wrappers == {}  # the shared backbone carries none


def test_the_identity_wrapper_equals_the_unwrapped_run(models, f64):
    backbone = models["plain"]
    for method in ("coop", "maple"):
        unwrapped = _step(_task(method, backbone))
        task = _task(method, backbone)
        task.backbone.set_block_wrappers(
            {"text": {i: BlockWrapper() for i in range(3)}, "vision": {i: BlockWrapper() for i in range(3)}}
        )
        assert _diff(_step(task), unwrapped) == 0
        zero = _task(method, backbone)
        _wrapped(zero, ("text", "vision"), zero=True)  # LoRA's initial B = 0: the unwrapped run
        logits, grads = _step(zero)
        assert (logits - unwrapped[0]).abs().max() <= TOL


def test_wrappers_are_honoured_without_grad(models, f64):
    task = create_task("coop", models["plain"], SPACE)
    assert task.image_features_cacheable
    with torch.no_grad():
        before = task.predict(images=torch.zeros(1, 3, 32, 32))
        _wrapped(task, ("vision",))
        after = task.predict(images=torch.zeros(1, 3, 32, 32))
    assert (before - after).abs().max() > 1e-3
    assert task.feature_cache_blocker == "coop wraps blocks of the image tower" and not task.image_features_cacheable


def test_wrappers_a_tower_cannot_honour_are_refused(models, tiny_rn):
    task = create_task("coop", models["plain"], SPACE)
    with pytest.raises(VLPromptError, match=r"no block 7 \(it has blocks 0..2\)"):
        task.backbone.set_block_wrappers({"text": {7: BlockWrapper()}})
    with pytest.raises(VLPromptError, match="not a BlockWrapper"):
        task.backbone.set_block_wrappers({"text": {0: nn.Linear(2, 2)}})
    rn = create_task("coop", tiny_rn, SPACE)
    with pytest.raises(VLPromptError, match="block wrappers in the vision tower: its blocks cannot be wrapped"):
        rn.backbone.set_block_wrappers({"vision": {0: BlockWrapper()}})


def test_a_learner_declares_its_wrappers(models, f64, monkeypatch):
    from vlprompt.methods.coop.model import CoOp

    width = models["plain"].text_width
    made = []

    def block_wrappers(self):
        if not hasattr(self, "lora"):
            torch.manual_seed(5)
            self.lora = nn.ModuleDict({"0": LoRA(width)})
        made.append(1)
        return {"text": {0: self.lora["0"]}}

    monkeypatch.setattr(CoOp, "block_wrappers", block_wrappers)
    task = create_task("coop", models["plain"], SPACE)
    assert made and set(task.backbone.block_wrappers["text"]) == {0}
    assert any(n.startswith("learner.lora.0.") for n in task.trainable_parameters())  # trained and saved
    _, grads = _step(task)
    assert "learner.lora.0.b" in grads


def test_options_dataclass_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EncodeOptions().text_chunk = 3
