"""The trainer's extension points: the optimizer choice, the per-step cosine and the step budget
(:mod:`vlprompt.engine.optim`) and the gradient hook (:mod:`vlprompt.engine.backward`), on a tiny stand-in task
whose updates are computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vlprompt.config import TrainConfig
from vlprompt.engine import trainer
from vlprompt.engine.distributed import FollowerRun
from vlprompt.engine.optim import LRPlan, build_optimizer, epochs_for_steps
from vlprompt.engine.train_data import TrainData
from vlprompt.errors import VLPromptError
from vlprompt.task.types import StepResult

X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
Y = torch.tensor([1, 0, 1, 0])
W0 = torch.tensor([0.5, -1.0], dtype=torch.float64)


class Tiny(nn.Module):
    """Loss terms ``a = mean((x·w − y)²)`` and ``b = ½ |w|²`` over two weights; two batches of two per epoch."""

    method = "tiny"
    gradient_hook = None

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(W0.clone())

    def param_groups(self, lr):
        return [{"params": [self.w], "lr": lr, "lr_scale": 1.0}]

    def training_step(self, x, y, info, features):
        pred = x @ self.w
        terms = {"a": (pred - y.double()).pow(2).mean(), "b": 0.5 * self.w.pow(2).sum()}
        return StepResult(losses=terms, logits=torch.stack([-pred, pred], -1).detach())

    def on_epoch_end(self, epoch, num_epochs):
        return {}


def _batches():
    return [(X[i : i + 2], Y[i : i + 2]) for i in (0, 2)]


def _hand_grads(w, x, y):
    """(d a / d w, d b / d w) at ``w``."""
    return 2 * ((x @ w - y.double())[:, None] * x).mean(0), w.clone()


def _train(task, tmp_path, **settings):
    cfg = TrainConfig(**{"epochs": 2, "batch_size": 2, "lr": 0.1, "warmup_epochs": 0, **settings})
    data = TrainData(lambda e, g: [(x, y, torch.arange(2)) for x, y in _batches()], features=True, num_samples=4)
    return trainer.train(task, data, cfg, FollowerRun(tmp_path), 1, torch.device("cpu"), progress=False)


def test_adamw_is_torchs_adamw_with_the_run_settings():
    cfg = TrainConfig(optimizer="adamw", lr=2e-4, weight_decay=1e-2, adam_eps=1e-4, adam_beta2=0.99)
    opt = build_optimizer([{"params": [nn.Parameter(torch.ones(2))], "lr_scale": 1.0}], cfg)
    assert isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["eps"], group["betas"]) == (2e-4, 1e-2, 1e-4, (0.9, 0.99))
    assert isinstance(build_optimizer([{"params": [nn.Parameter(torch.ones(2))]}], TrainConfig()), torch.optim.SGD)


def test_adamw_run_follows_adamw_written_by_hand(tmp_path):
    task = Tiny()
    history = _train(task, tmp_path, optimizer="adamw", weight_decay=0.01)
    w, m, v, t = W0.clone(), torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0
    for epoch in range(2):
        lr = 0.1 * 0.5 * (1 + math.cos(math.pi * epoch / 2))  # Dassl's cosine, no warm-up
        for x, y in _batches():
            t += 1
            g = sum(_hand_grads(w, x, y))
            w = w * (1 - lr * 0.01)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            w = w - lr * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
    assert torch.allclose(task.w.detach(), w, atol=1e-12)
    assert [r["lr"] for r in history] == pytest.approx([0.1, 0.05])


def test_step_cosine_equals_torchs_cosine_annealing_stepped_every_iteration():
    cfg = TrainConfig(epochs=3, lr=0.2, schedule="step_cosine", min_lr=1e-3)
    plan = LRPlan(cfg, [1.0, 2.0], batches=5)
    assert plan.total_steps == 15
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=15, eta_min=1e-3)
    for step in range(15):
        assert plan.group_lrs(0, step) == pytest.approx([opt.param_groups[0]["lr"], 2 * opt.param_groups[0]["lr"]])
        opt.step()
        sched.step()


def test_step_budget_replaces_epochs_and_cuts_the_last_epoch(tmp_path):
    assert epochs_for_steps(3, 2) == 2 and epochs_for_steps(4, 2) == 2 and epochs_for_steps(1, 5) == 1
    task = Tiny()
    history = _train(task, tmp_path, epochs=50, steps=3, schedule="step_cosine", momentum=0.0, weight_decay=0.0)
    assert [r["steps"] for r in history] == [2, 1]
    w = W0.clone()
    for step, (x, y) in enumerate((_batches() * 2)[:3]):
        w = w - 0.1 * 0.5 * (1 + math.cos(math.pi * step / 3)) * sum(_hand_grads(w, x, y))
    assert torch.allclose(task.w.detach(), w, atol=1e-12)


class Projected(Tiny):
    """A gradient hook that keeps only the gradient of term ``a`` projected off the direction of ``b``'s (the shape
    of ProGrad's update)."""

    def gradient_hook(self, losses, grads):
        (ga,), (gb,) = grads.of(losses["a"]), grads.of(losses["b"])
        ga = ga - (ga @ gb) / (gb @ gb) * gb
        grads.set([ga])


def test_gradient_hook_replaces_the_update(tmp_path):
    task = Projected()
    task.gradient_hook = task.gradient_hook  # as PromptTask exposes it: the bound hook
    _train(task, tmp_path, epochs=1, momentum=0.0, weight_decay=0.0)
    w = W0.clone()
    for x, y in _batches():
        ga, gb = _hand_grads(w, x, y)
        w = w - 0.1 * (ga - (ga @ gb) / (gb @ gb) * gb)
    assert torch.allclose(task.w.detach(), w, atol=1e-12)
    plain = Tiny()
    _train(plain, tmp_path / "plain", epochs=1, momentum=0.0, weight_decay=0.0)
    assert not torch.allclose(plain.w.detach(), w)


def test_train_settings_are_checked():
    for settings, message in [
        ({"optimizer": "lbfgs"}, "train.optimizer must be one of sgd, adamw, adam"),
        ({"schedule": "linear"}, "train.schedule must be one of epoch_cosine, step_cosine"),
        ({"min_lr": 1e-4}, "train.min_lr applies to train.schedule=step_cosine only"),
        ({"steps": -1}, "train.steps must be >= 0"),
        ({"adam_beta1": 1.0}, "train.adam_beta1 must be in [0, 1)"),
    ]:
        with pytest.raises(VLPromptError, match=message.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)")):
            TrainConfig(**settings)


def test_max_epochs_caps_a_step_budget_too(tmp_path):
    """A quick run of a step-counted preset (train.max_epochs) stops after max_epochs epochs of steps, and the
    per-step cosine runs over the capped budget."""
    task = Tiny()
    history = _train(task, tmp_path, steps=8000, max_epochs=1, schedule="step_cosine", momentum=0.0, weight_decay=0.0)
    assert [r["steps"] for r in history] == [2]
    w = W0.clone()
    for step, (x, y) in enumerate(_batches()):
        w = w - 0.1 * 0.5 * (1 + math.cos(math.pi * step / 2)) * sum(_hand_grads(w, x, y))
    assert torch.allclose(task.w.detach(), w, atol=1e-12)
