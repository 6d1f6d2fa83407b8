"""The ``tcp`` learner (TCP, Yao et al., CVPR 2024): the textual knowledge embedding and its injection checked by
hand, the trainable set, the implied KgCoOp loss, two training steps, settings and presets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlprompt.addons.kg.config import KgConfig
from vlprompt.addons.kg.model import kg_loss
from vlprompt.errors import VLPromptError
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.methods.tcp.config import TCPConfig
from vlprompt.task import LabelSpace, PromptTask, StepInfo, parse_method

SPACE = LabelSpace(
    ["banded", "blotchy", "braided"],
    template="{} texture.",
    kgcoop_template="a photo of a {}, a type of texture.",
)


def tcp_task(backbone, **cfg):
    configs = {"tcp": TCPConfig(**{"layer": 1, "template": "X X X X {} texture.", **cfg}), "kg": KgConfig()}
    return PromptTask(backbone, "tcp", configs, SPACE)


def test_tcp_is_the_learner_plus_kgcoops_loss():
    assert parse_method("tcp").components == ("tcp", "kg")
    assert parse_method("tcp+nemesis").components == ("tcp", "kg", "nemesis")


def test_knowledge_embedding_by_hand(tiny_vit):
    task = tcp_task(tiny_vit)
    learner = task.learner
    knowledge = hand_crafted_features(tiny_vit, SPACE.classnames, [SPACE.kgcoop_template])
    assert torch.allclose(learner.knowledge, knowledge)
    assert torch.allclose(learner.knowledge.norm(dim=-1), torch.ones(3))
    net = learner.meta_net
    E, D = tiny_vit.embed_dim, tiny_vit.text_width
    assert net.linear1.weight.shape == (E // 4, E) and net.linear2.weight.shape == (4 * D, E // 4)
    h = knowledge @ net.linear1.weight.t() + net.linear1.bias
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU
    expected = (h @ net.linear2.weight.t() + net.linear2.bias).view(3, 4, D)
    assert torch.allclose(learner.class_prompts(), expected, atol=1e-6)
    assert not any("knowledge" in k for k in task.state_dict())  # class-dependent: never saved
    assert sorted(task.trainable_parameters()) == [
        "learner.ctx",
        "learner.meta_net.linear1.bias",
        "learner.meta_net.linear1.weight",
        "learner.meta_net.linear2.bias",
        "learner.meta_net.linear2.weight",
    ]
    assert task.learner.ctx.shape == (4, D)
    # the targets of the implied KgCoOp loss are the same hand-crafted features
    assert torch.allclose(task.addons["kg"].targets, knowledge)


def test_injection_replaces_the_context_positions_at_the_chosen_block(tiny_vit):
    """Text features equal open_clip's own blocks run by hand: [SOS][ctx]["banded texture ."] embedded, and at the
    input of block ``layer`` positions 1..4 replaced by the class's four TKE tokens."""
    torch.manual_seed(0)
    task = tcp_task(tiny_vit, layer=2)
    learner, clip = task.learner, tiny_vit.clip
    with torch.no_grad():
        ours = learner.text_features()
        ids = tiny_vit.tokenize([f"X X X X {c} texture." for c in SPACE.classnames])
        x = clip.token_embedding(ids)
        x[:, 1:5] = learner.ctx
        x = x + clip.positional_embedding
        tokens = learner.class_prompts()
        for i, block in enumerate(clip.transformer.resblocks):
            if i == 2:
                x = torch.cat([x[:, :1], tokens, x[:, 5:]], dim=1)
            x = block(x, attn_mask=clip.attn_mask)
        x = clip.ln_final(x)
        expected = x[torch.arange(3), ids.argmax(-1)] @ clip.text_projection
    assert torch.allclose(ours, expected, atol=1e-5)
    # the class-aware tokens matter: a different TKE output changes every class
    with torch.no_grad():
        learner.meta_net.linear2.bias.add_(torch.randn_like(learner.meta_net.linear2.bias))
        assert not torch.allclose(learner.text_features(), ours, atol=1e-3)


def test_two_training_steps_move_context_and_tke(tiny_vit, tmp_path):
    from vlprompt.config import TrainConfig
    from vlprompt.engine import trainer
    from vlprompt.engine.distributed import FollowerRun
    from vlprompt.engine.train_data import TrainData

    torch.manual_seed(0)
    task = tcp_task(tiny_vit)
    assert task.feature_cache_blocker is None  # no image prompts: cached image features
    feats, labels = tiny_vit.encode_image(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 1])
    step = task.training_step(feats, labels, StepInfo(), features=True)
    assert set(step.losses) == {"ce", "kg"}
    out = task(image_features=feats)
    expected = F.cross_entropy(out.logits, labels) + 8.0 * kg_loss(out.text, task.learner.knowledge)
    assert float(step.loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    before = {k: v.detach().clone() for k, v in task.trainable_parameters().items()}
    cfg = TrainConfig(epochs=2, batch_size=2, lr=0.01, optimizer="adam", adam_eps=1e-3, warmup_epochs=0)
    data = TrainData(lambda e, g: [(feats[:2], labels[:2], torch.arange(2))], features=True, num_samples=2)
    history = trainer.train(task, data, cfg, FollowerRun(tmp_path), 1, torch.device("cpu"), progress=False)
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in history)
    for name, value in task.trainable_parameters().items():
        assert not torch.allclose(value.detach(), before[name]), name


def test_settings_are_checked(tiny_vit):
    with pytest.raises(VLPromptError, match="tcp.layer=3"):
        tcp_task(tiny_vit, layer=3)  # the tiny text tower has 3 blocks
    with pytest.raises(VLPromptError, match="tcp.n_ctx=4 tokens"):
        tcp_task(tiny_vit, template="X X {} texture.")
    with pytest.raises(VLPromptError, match="tcp.knowledge_template"):
        TCPConfig(knowledge_template="no slot")
    from vlprompt.config import make_config

    for bad in ("tcp.layer=-1", "tcp.n_ctx=0", "tcp.init_std=0"):
        with pytest.raises(VLPromptError, match=bad.split("=")[0] + " must be"):
            make_config("tcp", overrides=[bad])


def test_presets_follow_the_reference():
    from vlprompt.presets import resolve

    comp = parse_method("tcp")
    values = resolve(comp.configs(), protocol="b2n", dataset="fgvc_aircraft", shots=16).values
    assert values["train"] == {
        "batch_size": 32,
        "lr": 0.002,
        "epochs": 50,
        "optimizer": "adam",
        "adam_eps": 1e-3,
        "weight_decay": 5e-4,
    }
    assert values["tcp"]["template"] == "X X X X {}, a type of aircraft."
    assert values["tcp"]["knowledge_template"] == values["kg"]["template"] == "a photo of an aircraft {}."
    assert values["kg"]["weight"] == 8.0 and "layer" not in values["tcp"]
    from vlprompt.methods.tcp.config import tcp_layer

    assert tcp_layer(0, 12) == 8 and tcp_layer(0, 3) == 2 and tcp_layer(5, 12) == 5
    assert resolve(comp.configs(), protocol="b2n", dataset="imagenet_r").values["tcp"]["template"] == "a photo of a {}."
