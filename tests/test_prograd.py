"""ProGrad's ``prograd`` add-on: the projection (hand-computed), the distillation term, the teacher, the gradient
hook against an independent re-implementation of the reference's ``prograd_backward_and_update``, presets."""

from __future__ import annotations

import math

import pytest
import torch

from vlprompt.addons.kg.config import KgConfig
from vlprompt.addons.prograd.config import ProGradConfig
from vlprompt.addons.prograd.model import KL_TERM, prograd_losses, project
from vlprompt.engine.backward import GradientContext
from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.methods.zeroshot.config import ZeroShotConfig
from vlprompt.task import LabelSpace, PromptTask, StepInfo

SPACE = LabelSpace(["red circle", "green_square", "blue star"], template="a photo of a {}.")


def make_task(backbone, method="coop+prograd", **prograd):
    configs = {"coop": CoOpConfig(n_ctx=4, ctx_init="a photo of a"), "prograd": ProGradConfig(**prograd)}
    return PromptTask(backbone, method, configs, SPACE)


# ---------------------------------------------------------------------------------------------- projection
def test_conflicting_gradient_loses_its_component_along_the_general_direction():
    main, general = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # cosine -1/sqrt(2) < 0
    # unit = [-1, 1]/sqrt2, main·unit = -1/sqrt2 -> main + (1/sqrt2)·unit = [1, 0] + [-1/2, 1/2]
    assert project(main, general, 1.0).tolist() == pytest.approx([0.5, 0.5])
    assert project(main, general, 0.5).tolist() == pytest.approx([0.75, 0.25])
    # the full projection is orthogonal to the general direction
    assert float(torch.dot(project(main, general, 1.0), general)) == pytest.approx(0.0, abs=1e-7)


def test_non_conflicting_missing_or_zero_gradients_pass_unchanged():
    main = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    assert torch.equal(project(main, torch.tensor([[1.0, 0.0], [0.0, 0.0]]), 1.0), main)  # cosine > 0
    assert torch.equal(project(main, torch.tensor([[-2.0, 1.0], [0.0, 0.0]]), 1.0), main)  # orthogonal
    assert torch.equal(project(main, torch.zeros(2, 2), 1.0), main)  # zero norm: NaN cosine, kept as in the reference
    assert project(None, main, 1.0) is None
    assert project(main, None, 1.0) is main


def test_distillation_term_is_the_references_soft_cross_entropy():
    z, z0 = [[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]], [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]
    T = 2.0
    total = 0.0
    for row, row0 in zip(z, z0):
        lse = math.log(sum(math.exp(v / T) for v in row))
        lse0 = math.log(sum(math.exp(v / T) for v in row0))
        total += sum(-math.exp(v0 / T - lse0) * (v / T - lse) for v, v0 in zip(row, row0)) * T * T
    assert float(prograd_losses(torch.tensor(z), torch.tensor(z0), T)) == pytest.approx(total / 2, rel=1e-6)


# ---------------------------------------------------------------------------------------------- teacher
def test_teacher_is_zero_shot_clip_with_the_chosen_template(tiny_vit):
    task = make_task(tiny_vit, template="a blurry photo of a {}.")
    images = torch.randn(2, 3, 32, 32)
    space = LabelSpace(SPACE.classnames, template="a blurry photo of a {}.")
    zero_shot = PromptTask(tiny_vit, "zeroshot", {"zeroshot": ZeroShotConfig()}, space)
    out = task(images=images)
    with torch.no_grad():
        expected = zero_shot(images=images).logits
    assert torch.allclose(task.addons["prograd"].teacher_logits(out), expected.float(), atol=1e-4)
    # cached features: the teacher reads the frozen features themselves
    feats = tiny_vit.encode_image(images)
    cached = task(image_features=feats)
    assert torch.allclose(task.addons["prograd"].teacher_logits(cached), expected.float(), atol=1e-4)
    assert not any("teacher" in k for k in task.state_dict())  # class-dependent: never saved


def reference_update(task, losses, lam):
    """The reference's ``prograd_backward_and_update`` written out again: backward the KL, keep its gradients,
    backward CE into ``p.grad`` and overwrite each ``p.grad`` whose cosine with the KL gradient is negative."""
    params = [p for p in task.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    losses[KL_TERM].backward(retain_graph=True)
    b_grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    losses["ce"].backward(retain_graph=True)
    result = []
    for p, b_grad in zip(params, b_grads):
        b_grad_norm = b_grad / torch.linalg.norm(b_grad)
        a_grad = p.grad.clone()
        a_grad_norm = a_grad / torch.linalg.norm(a_grad)
        if torch.dot(a_grad_norm.flatten(), b_grad_norm.flatten()) < 0:
            a_grad = a_grad - lam * torch.dot(a_grad.flatten(), b_grad_norm.flatten()) * b_grad_norm
        result.append(a_grad)
        p.grad = None
    return result


@pytest.mark.parametrize("lam", [1.0, 0.8])
def test_hook_equals_the_reference_update(tiny_vit, lam):
    torch.manual_seed(0)
    task = make_task(tiny_vit, lam=lam)
    with torch.no_grad():
        task.learner.ctx.add_(torch.randn_like(task.learner.ctx))  # move off the zero-shot point
    step = task.training_step(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]), StepInfo(), features=False)
    assert set(step.losses) == {"ce", KL_TERM}
    grads = GradientContext(p for p in task.parameters() if p.requires_grad)
    task.gradient_hook(step.losses, grads)
    written = [p.grad.clone() for p in grads.params]
    expected = reference_update(task, step.losses, lam)
    ce_only = torch.autograd.grad(step.losses["ce"], grads.params, retain_graph=True)[0]
    kl_only = torch.autograd.grad(step.losses[KL_TERM], grads.params, retain_graph=True)[0]
    assert len(written) == len(expected) == 1
    assert torch.allclose(written[0], expected[0], rtol=1e-5, atol=1e-8)
    if float(torch.dot(ce_only.flatten(), kl_only.flatten())) < 0:  # the projection acted: no conflict remains
        left = float(torch.dot(written[0].flatten(), kl_only.flatten()))
        assert left == pytest.approx((1 - lam) * float(torch.dot(ce_only.flatten(), kl_only.flatten())), rel=1e-3)
    else:
        assert torch.equal(written[0], ce_only)


def test_other_terms_join_the_projected_gradient(tiny_vit):
    configs = {
        "coop": CoOpConfig(n_ctx=4, ctx_init="a photo of a"),
        "prograd": ProGradConfig(),
        "kg": KgConfig(weight=2.0),
    }
    task = PromptTask(tiny_vit, "coop+kg+prograd", configs, SPACE)
    with torch.no_grad():
        task.learner.ctx.add_(torch.randn_like(task.learner.ctx))
    step = task.training_step(torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2]), StepInfo(), features=False)
    grads = GradientContext(p for p in task.parameters() if p.requires_grad)
    task.gradient_hook(step.losses, grads)
    main = torch.autograd.grad(step.losses["ce"] + step.losses["kg"], grads.params, retain_graph=True)[0]
    general = torch.autograd.grad(step.losses[KL_TERM], grads.params, retain_graph=True)[0]
    assert torch.allclose(task.learner.ctx.grad, project(main, general, 1.0), rtol=1e-5, atol=1e-8)


def test_training_step_applies_the_projected_update(tiny_vit, tmp_path):
    """One SGD step of the trainer (cached features, no momentum/decay/warm-up) moves the context by exactly
    −lr · Eq. 7 of the gradients computed here, not by −lr · ∇(CE + KL)."""
    from vlprompt.config import TrainConfig
    from vlprompt.engine import trainer
    from vlprompt.engine.distributed import FollowerRun
    from vlprompt.engine.train_data import TrainData

    torch.manual_seed(0)
    task = make_task(tiny_vit)
    with torch.no_grad():
        task.learner.ctx.add_(torch.randn_like(task.learner.ctx))
    feats, labels = tiny_vit.encode_image(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 1])
    start = task.learner.ctx.detach().clone()
    step = task.training_step(feats, labels, StepInfo(), features=True)
    ce, kl = (torch.autograd.grad(step.losses[k], [task.learner.ctx], retain_graph=True)[0] for k in ("ce", KL_TERM))
    unit = kl / kl.norm()
    along = float((ce * unit).sum())
    expected = ce - along * unit if along < 0 else ce
    cfg = TrainConfig(epochs=1, batch_size=4, lr=0.1, momentum=0.0, weight_decay=0.0, warmup_epochs=0)
    data = TrainData(lambda e, g: [(feats, labels, torch.arange(4))], features=True, num_samples=4)
    trainer.train(task, data, cfg, FollowerRun(tmp_path), 1, torch.device("cpu"), progress=False)
    assert torch.allclose(task.learner.ctx.detach(), start - 0.1 * expected, atol=1e-6)
    assert not torch.allclose(task.learner.ctx.detach(), start - 0.1 * (ce + kl), atol=1e-6)


# ---------------------------------------------------------------------------------------------- config
def test_config_errors_name_the_setting():
    from vlprompt.config import make_config

    for bad in ("prograd.lam=-1", "prograd.temperature=0"):
        with pytest.raises(VLPromptError, match=bad.split("=")[0] + " must be"):
            make_config("coop+prograd", overrides=[bad])
    with pytest.raises(VLPromptError, match="prograd.template"):
        ProGradConfig(template="no placeholder")


def test_zero_padded_context_init_as_prograd(tiny_vit):
    cfg = CoOpConfig(n_ctx=6, ctx_init="a texture of", ctx_pad=True)
    task = PromptTask(tiny_vit, "coop", {"coop": cfg}, SPACE)
    ctx = task.learner.ctx
    words = tiny_vit.token_embed(tiny_vit.tokenize(["a texture of"]))[0, 1:4]
    assert torch.equal(ctx[:3], torch.zeros(3, tiny_vit.text_width))
    assert torch.equal(ctx[3:], words)
    assert task.learner.prefix_text == "X X X a texture of"
    with pytest.raises(VLPromptError, match="coop.n_ctx"):
        CoOpConfig(n_ctx=2, ctx_init="a texture of", ctx_pad=True)
    with pytest.raises(VLPromptError, match="coop.n_ctx"):
        CoOpConfig(n_ctx=6, ctx_init="a texture of")


def test_presets_follow_the_reference_scripts():
    from vlprompt.presets import resolve
    from vlprompt.task import parse_method

    comp = parse_method("coop+prograd")
    res = resolve(comp.configs(), protocol="fewshot", dataset="dtd", shots=1)
    values = res.values
    assert values["train"] == {"batch_size": 32, "lr": 0.002, "epochs": 50}
    assert values["coop"]["n_ctx"] == 16 and values["coop"]["ctx_init"] == "a texture of"
    assert values["coop"]["ctx_pad"] is True
    assert values["prograd"]["template"] == "a texture of {}." and values["prograd"]["lam"] == 1.0
    assert resolve(comp.configs(), protocol="fewshot", dataset="dtd", shots=16).values["train"]["epochs"] == 200
    b2n = resolve(comp.configs(), protocol="b2n", dataset="imagenet", shots=16).values
    assert b2n["train"]["epochs"] == 50 and b2n["coop"]["ctx_init"] == "a photo of a"


def test_teacher_ignores_the_learners_block_wrappers(tiny_vit):
    """``lora+prograd``: the teacher is zero-shot CLIP, not the LoRA-adapted towers."""
    from vlprompt.methods.lora.config import LoRAConfig

    configs = {"lora": LoRAConfig(dropout=0.0, template=""), "prograd": ProGradConfig()}
    task = PromptTask(tiny_vit, "lora+prograd", configs, SPACE)
    with torch.no_grad():
        for name, p in task.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.05)
    images = torch.randn(2, 3, 32, 32)
    zero_shot = PromptTask(tiny_vit, "zeroshot", {"zeroshot": ZeroShotConfig()}, SPACE)
    out = task(images=images)
    with torch.no_grad():
        expected = zero_shot(images=images).logits.float()
        assert torch.allclose(task.addons["prograd"].teacher_logits(out), expected, atol=1e-4)
        assert not torch.allclose(out.logits.float(), expected, atol=1e-3)
