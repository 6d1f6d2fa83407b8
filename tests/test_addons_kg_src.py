"""KgCoOp's ``kg`` and PromptSRC's ``src`` add-ons: loss values on hand-computed inputs, GPA, training, resume."""

from __future__ import annotations

import math

import pytest
import torch

from vlprompt.addons.gpa.config import GPAConfig
from vlprompt.addons.gpa.model import gpa_weights
from vlprompt.addons.kg.config import KgConfig
from vlprompt.addons.kg.model import kg_loss
from vlprompt.addons.src.config import SrcConfig
from vlprompt.addons.src.model import src_losses
from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.task import LabelSpace, PromptTask, StepInfo

SPACE = LabelSpace(
    ["red circle", "green_square", "blue star"],
    template="a photo of a {}.",
    kgcoop_template="a photo of a {}, a type of shape.",
)


def make_task(backbone, addon, **cfg):
    """coop+kg or coop+src (which implies gpa); ``cfg`` sets fields of the add-on's config, ``gpa_*`` of GPA's."""
    configs = {"coop": CoOpConfig(n_ctx=4, ctx_init="a photo of a"), "kg": KgConfig(), "src": SrcConfig()}
    configs["gpa"] = GPAConfig(**{k[len("gpa_") :]: v for k, v in cfg.items() if k.startswith("gpa_")})
    for key, value in cfg.items():
        if not key.startswith("gpa_"):
            setattr(configs[addon], key, value)
    return PromptTask(backbone, f"coop+{addon}", configs, SPACE)


# ---------------------------------------------------------------------------------------------- KgCoOp
def test_kg_loss_matches_hand_computed_value():
    text = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    targets = torch.tensor([[5.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    # cosines 1 and 1/sqrt(2), averaged over both classes
    assert float(kg_loss(text, targets)) == pytest.approx(1 - (1 + 1 / math.sqrt(2)) / 2, abs=1e-6)
    assert float(kg_loss(targets, targets)) == pytest.approx(0.0, abs=1e-6)


def test_kg_addon_targets_follow_the_label_space_and_weight(tiny_vit):
    task = make_task(tiny_vit, "kg", weight=8.0)
    kg = task.addons["kg"]
    assert kg.targets.shape == (3, tiny_vit.embed_dim)
    assert not any("targets" in k for k in task.state_dict())  # class-dependent: never saved
    with torch.no_grad():
        out = task(images=torch.randn(2, 3, 32, 32))
        value = task.loss_terms(out, torch.tensor([0, 1]), StepInfo())["kg"]
    assert float(value) == pytest.approx(8.0 * float(kg_loss(out.text, kg.targets)), rel=1e-6)
    task.set_label_space(LabelSpace(["a", "b"], template="{}."))
    assert kg.targets.shape == (2, tiny_vit.embed_dim)


# ---------------------------------------------------------------------------------------------- PromptSRC
def _kl_by_hand(z, z0):
    total = 0.0
    for row, row0 in zip(z, z0):
        lse = math.log(sum(math.exp(v) for v in row))
        lse0 = math.log(sum(math.exp(v) for v in row0))
        for v, v0 in zip(row, row0):
            p0 = math.exp(v0 - lse0)
            total += p0 * ((v0 - lse0) - (v - lse))
    return total / (len(z) * len(z[0]))  # divided by B*K, not by B


def test_src_losses_match_hand_computed_values():
    f = torch.tensor([[3.0, 0.0], [0.0, 2.0]])  # normalised: [1,0], [0,1]
    f0 = torch.tensor([[1.0, 0.0], [3.0, 4.0]])  # normalised: [1,0], [.6,.8]
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [6.0, 8.0]])
    t0 = torch.tensor([[0.0, 1.0], [0.0, 5.0], [0.6, 0.8]])
    terms = src_losses(f, f0, t, t0, 2.0, (25.0, 10.0, 0.5))
    # |t̂ - t̂0| = [1,1], [0,0], [0,0] -> mean 2/6;  |f̂ - f̂0| = [0,0], [.6,.2] -> mean .8/4
    assert float(terms["src_text"]) == pytest.approx(25.0 * 2 / 6, rel=1e-6)
    assert float(terms["src_image"]) == pytest.approx(10.0 * 0.2, rel=1e-6)
    z = [[2.0, 0.0, 1.2], [0.0, 2.0, 1.6]]  # 2 · f̂ t̂ᵀ
    z0 = [[0.0, 0.0, 1.2], [1.6, 1.6, 2.0]]  # 2 · f̂0 t̂0ᵀ
    assert float(terms["src_kl"]) == pytest.approx(0.5 * _kl_by_hand(z, z0), rel=1e-5)
    same = src_losses(f, f, t, t, 2.0, (25.0, 10.0, 1.0))
    assert all(float(v) == pytest.approx(0.0, abs=1e-6) for v in same.values())


def test_gpa_weights_b2n():
    g = gpa_weights(20, 15.0, 1.0)
    assert len(g) == 20 and sum(g) == pytest.approx(1.0, abs=1e-12)
    assert max(range(20), key=lambda i: g[i]) + 1 == 15
    pdf = [math.exp(-0.5 * (e - 15) ** 2) / math.sqrt(2 * math.pi) for e in range(1, 21)]
    assert g == pytest.approx([p / sum(pdf) for p in pdf], rel=1e-9)
    assert sum(gpa_weights(2, 15.0, 1.0)) == pytest.approx(1.0)  # peak far beyond E: no 0/0


def _run_epochs(task, thetas, start, num_epochs):
    ctx = task.learner.ctx
    for epoch in range(start, start + len(thetas)):
        with torch.no_grad():
            ctx.copy_(thetas[epoch - start])
        task.on_epoch_end(epoch, num_epochs)


def test_gpa_aggregate_and_resume_round_trip(tiny_vit):
    torch.manual_seed(0)
    num_epochs = 4
    full = make_task(tiny_vit, "src", gpa_mean=2.0, gpa_std=1.0)
    thetas = [torch.randn_like(full.learner.ctx) for _ in range(num_epochs)]
    expected = sum(w * th for w, th in zip(gpa_weights(num_epochs, 2.0, 1.0), thetas))
    _run_epochs(full, thetas, 0, num_epochs)
    assert torch.allclose(full.learner.ctx, expected, atol=1e-6)

    first = make_task(tiny_vit, "src", gpa_mean=2.0, gpa_std=1.0)
    _run_epochs(first, thetas[:2], 0, num_epochs)
    state = {k: v.clone() for k, v in first.state_dict().items()}
    assert "addons.gpa.aggregate_learner__ctx" in state
    assert "addons.gpa.aggregate_learner__ctx" not in first.release_state_dict()  # training state only
    resumed = make_task(tiny_vit, "src", gpa_mean=2.0, gpa_std=1.0)
    resumed.load_state_dict(state)  # strict: the aggregate buffers are created on load
    _run_epochs(resumed, thetas[2:], 2, num_epochs)
    assert torch.equal(resumed.learner.ctx, full.learner.ctx)


def test_gpa_off_leaves_the_last_epoch(tiny_vit):
    task = make_task(tiny_vit, "src", gpa_enabled=False)
    thetas = [torch.randn_like(task.learner.ctx) for _ in range(2)]
    _run_epochs(task, thetas, 0, 2)
    assert torch.equal(task.learner.ctx, thetas[1])
    assert not any("aggregate" in k for k in task.state_dict())


def test_src_text_targets_average_unnormalised_features_over_60_templates(tiny_vit):
    from vlprompt.data.templates import PROMPTSRC_TEMPLATES

    assert len(PROMPTSRC_TEMPLATES) == 60
    task = make_task(tiny_vit, "src")
    task.loss_terms(task(images=torch.randn(1, 3, 32, 32)), torch.tensor([0]), StepInfo())
    src = task.addons["src"]
    feats = []
    for template in PROMPTSRC_TEMPLATES:
        ids = tiny_vit.tokenize([template.format(c.replace("_", " ")) for c in SPACE.classnames])
        with torch.no_grad():
            feats.append(tiny_vit.encode_text(tiny_vit.token_embed(ids), ids))
    mean = torch.stack(feats).mean(0)
    assert torch.allclose(src.text_targets, mean / mean.norm(dim=-1, keepdim=True), atol=1e-5)
    task.set_label_space(LabelSpace(["a", "b"]))
    assert src.text_targets is None  # rebuilt for the new classes at the next loss


def test_src_image_teacher_is_the_frozen_tower(tiny_vit):
    task = make_task(tiny_vit, "src")
    images = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([0, 2])
    # coop has no image prompts: the teacher equals the student, from images or from cached features
    with torch.no_grad():
        from_images = task.loss_terms(task(images=images), labels, StepInfo())
        cached = task.loss_terms(task(image_features=tiny_vit.encode_image(images)), labels, StepInfo())
    assert float(from_images["src_image"]) == pytest.approx(0.0, abs=1e-6)
    for name in ("src_text", "src_image", "src_kl"):
        assert float(cached[name]) == pytest.approx(float(from_images[name]), abs=1e-5)
    assert set(from_images) == {"ce", "src_text", "src_image", "src_kl"}


# ---------------------------------------------------------------------------------------------- training
def _train_two_steps(task, backbone):
    frozen = {k: v.clone() for k, v in backbone.clip.state_dict().items()}
    before = {k: v.detach().clone() for k, v in task.trainable_parameters().items()}
    assert before and all(k.startswith("learner.") for k in before)
    optimizer = torch.optim.SGD([g["params"] for g in task.param_groups(0.01)][0], lr=0.01, momentum=0.9)
    torch.manual_seed(1)
    for step in range(2):
        out = task(images=torch.randn(2, 3, backbone.image_size, backbone.image_size))
        terms = task.loss_terms(out, torch.tensor([0, 1]), StepInfo(step=step))
        optimizer.zero_grad()
        sum(terms.values()).backward()
        optimizer.step()
    assert all(not torch.equal(before[k], p) for k, p in task.trainable_parameters().items())
    assert all(torch.equal(frozen[k], v) for k, v in backbone.clip.state_dict().items())
    return {k: v.detach() for k, v in terms.items()}


@pytest.mark.parametrize("addon", ["kg", "src"])
def test_coop_with_addon_trains_only_the_prompts(tiny_vit, addon):
    terms = _train_two_steps(make_task(tiny_vit, addon), tiny_vit)
    assert (addon == "kg") == ("kg" in terms)
    assert all(torch.isfinite(v) for v in terms.values())


def test_promptsrc_trains(tiny_vit):
    from vlprompt import create_task, make_config

    assert make_config("promptsrc", "dtd").components["gpa"] == GPAConfig(mean=15.0, std=1.0)
    task = create_task("promptsrc", tiny_vit, SPACE)
    terms = _train_two_steps(task, tiny_vit)
    assert set(terms) == {"ce", "src_text", "src_image", "src_kl"}
    assert float(terms["src_image"]) > 0  # image prompts move the student away from the frozen tower
    task.on_epoch_end(0, 2)
    task.on_epoch_end(1, 2)
    gpa = {k for k in task.state_dict() if k.startswith("addons.gpa.aggregate_")}
    assert gpa == {"addons.gpa.aggregate_" + n.replace(".", "__") for n in task.trainable_parameters()}
    assert len(gpa) > 1  # every trainable tensor of the learner (text and vision prompts)


def test_cli_promptsrc_gpa_survives_kill_and_resume_and_evaluates(tmp_path, cli_env, tiny_folder, monkeypatch):
    from safetensors.torch import load_file

    from vlprompt.cli import main
    from vlprompt.engine import trainer

    def train(out):
        return main(
            [
                "train",
                "--method",
                "coop+src",
                "--dataset",
                "folder",
                "--data-root",
                str(tiny_folder),
                "--out",
                str(out),
                "--epochs",
                "3",
                "--batch-size",
                "4",
                "--lr",
                "0.01",
                "--set",
                "coop.n_ctx=4",
                "--set",
                "gpa.mean=2",
                *cli_env,
            ]
        )

    assert train(tmp_path / "full") == 0
    real_epoch, calls = trainer.run_epoch, {"n": 0}

    def dying_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during the last epoch, after two GPA accumulations
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dying_epoch)
    assert train(tmp_path / "killed") == 130
    monkeypatch.setattr(trainer, "run_epoch", real_epoch)
    assert train(tmp_path / "killed") == 0
    a = load_file(str(tmp_path / "full" / "weights.safetensors"))
    b = load_file(str(tmp_path / "killed" / "weights.safetensors"))
    assert set(a) == {"learner.ctx"}  # the running aggregate is training state: in the checkpoint only
    assert torch.equal(a["learner.ctx"], b["learner.ctx"])
    state = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)["task"]
    assert torch.allclose(a["learner.ctx"], state["addons.gpa.aggregate_learner__ctx"])  # the aggregate is the model
    assert (
        main(
            [
                "eval",
                "--run",
                str(tmp_path / "full"),
                "--dataset",
                "folder",
                "--data-root",
                str(tiny_folder),
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "method, overrides, refused",
    [
        ("vpt+kg", [], True),  # image prompts only: the text features never change
        ("clip_adapter+kg", [], True),  # the released image adapter
        ("clip_adapter+kg", ["clip_adapter.towers=both"], False),
        ("lora+kg", ["lora.encoder=vision"], True),
        ("lora+kg", [], False),
    ],
)
def test_kg_needs_text_features_that_train(tiny_vit, method, overrides, refused):
    """KgCoOp's consistency ‖t − t_clip‖² is a constant where no trained parameter reaches the text features: such a
    composition is refused with one line instead of training a loss of zero."""
    from vlprompt import create_task

    if not refused:
        assert create_task(method, tiny_vit, SPACE, overrides=overrides).addons["kg"]
        return
    with pytest.raises(VLPromptError, match=r"add-on 'kg' needs trained_text, which '\w+' does not provide"):
        create_task(method, tiny_vit, SPACE, overrides=overrides)
