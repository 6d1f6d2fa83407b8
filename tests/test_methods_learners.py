"""Prompt learners cocoop, ivlp, vpt, lpt and maple: what trains, per-layer prompt injection, partial init,
image-conditioned text, transfer to other class names, fp32 exceptions, and a CLI run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from vlprompt import create_task
from vlprompt.backbones.options import EncodeOptions
from vlprompt.cli import main
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace, StepInfo

SPACE = LabelSpace(["red circle", "green_square", "blue star"])
OTHER = LabelSpace(["sea turtle", "cat", "lighthouse", "bicycle", "oak tree"])
METHODS = ["cocoop", "ivlp", "vpt", "lpt", "maple"]
# the tiny ViT has 3 layers per tower: published depths (12, 9) are clamped to 3
EXPECTED = {
    "cocoop": {
        "ctx",
        "meta_net.linear1.weight",
        "meta_net.linear1.bias",
        "meta_net.linear2.weight",
        "meta_net.linear2.bias",
    },
    "ivlp": {"ctx", "text_deep", "vision_ctx", "vision_deep"},
    "vpt": {"vision_ctx", "vision_deep"},
    "lpt": {"ctx", "text_deep"},
    "maple": {
        "ctx",
        "text_deep",
        "proj.weight",
        "proj.bias",
        "couplings.0.weight",
        "couplings.0.bias",
        "couplings.1.weight",
        "couplings.1.bias",
    },
}


def make_task(backbone, method, *sets, space=SPACE):
    return create_task(method, backbone, space, overrides=list(sets))


def _snapshot(module: nn.Module):
    return {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}


@pytest.mark.parametrize("method", METHODS)
def test_two_sgd_steps_change_exactly_the_prompt_parameters(tiny_vit, method):
    torch.manual_seed(0)
    task = make_task(tiny_vit, method)
    assert set(task.trainable_parameters()) == {f"learner.{n}" for n in EXPECTED[method]}
    assert set(task.state_dict()) == set(task.trainable_parameters())  # class-name buffers are not saved
    backbone_before, task_before = _snapshot(tiny_vit), _snapshot(task)
    task_buffers = {k: v.clone() for k, v in task.named_buffers()}
    opt = torch.optim.SGD(task.param_groups(0.5), lr=0.5, momentum=0.9)  # no decay: a change means a gradient
    for step in range(2):
        out = task(images=torch.randn(4, 3, 32, 32))
        loss = sum(task.loss_terms(out, torch.tensor([0, 1, 2, 1]), StepInfo(step=step)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _snapshot(task)
    changed = {k for k in after if not torch.equal(after[k], task_before[k])}
    assert changed == set(task.trainable_parameters())
    assert all(torch.equal(v, task_buffers[k]) for k, v in task.named_buffers())
    assert all(torch.equal(v, backbone_before[k]) for k, v in _snapshot(tiny_vit).items())
    assert not any(p.requires_grad for p in tiny_vit.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_other_class_names_after_training(tiny_vit, method):
    task = make_task(tiny_vit, method)
    images = torch.randn(2, 3, 32, 32)
    assert task.predict(images=images).shape == (2, 3)
    task.set_label_space(OTHER)
    logits = task.predict(images=images)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    again = make_task(tiny_vit, method, space=OTHER)
    again.load_state_dict(task.state_dict())
    assert torch.allclose(again.predict(images=images), logits, atol=1e-5)


def test_image_tower_prompts_decide_the_feature_cache(tiny_vit):
    cacheable = {m: make_task(tiny_vit, m).image_features_cacheable for m in METHODS}
    assert cacheable == {"cocoop": True, "ivlp": False, "vpt": False, "lpt": True, "maple": False}
    assert make_task(tiny_vit, "ivlp", "ivlp.n_ctx_vision=0").image_features_cacheable


# ---------------------------------------------------------------------------------------------- per-layer prompts
def _taps(task, images):
    taps = {"text": [], "vision": []}

    def hook(tower, layer, block, x_in, x_out, n):
        taps[tower].append((layer, x_in.detach(), x_out.detach(), n))

    with torch.no_grad():
        task.learner.text_features(hook=hook)
        task.learner.image_features(images, hook=hook)
    return taps


def _check_tower(records, first, deep, n, tower):
    """Block 0 input = ``first``; block i in 1..J-1 input prompts = ``deep[i-1]``; later blocks propagate."""
    take = (lambda x: x[:, 1 : 1 + n]) if tower == "text" else (lambda x: x[:, -n:])
    assert [r[0] for r in records] == [0, 1, 2]
    for layer, x_in, _, n_prompts in records:
        # the text tower only learns n at the first deep block: its input-level context is ordinary tokens
        assert n_prompts == (0 if tower == "text" and layer == 0 else n)
        if layer == 0:
            expected = first
        elif layer <= len(deep):
            expected = deep[layer - 1]
        else:
            expected = take(records[layer - 1][2])  # propagated: the previous block's output tokens
        assert torch.allclose(take(x_in), expected.expand_as(take(x_in)), atol=1e-5), (tower, layer)


def test_maple_prompts_at_every_layer(tiny_vit):
    torch.manual_seed(1)
    task = make_task(tiny_vit, "maple", "maple.depth=2")  # blocks 0, 1 prompted; block 2 propagates
    lrn = task.learner
    with torch.no_grad():  # make every prompt distinguishable from its initial value
        lrn.text_deep.add_(torch.randn_like(lrn.text_deep))
    taps = _taps(task, torch.randn(2, 3, 32, 32))
    text_pos = tiny_vit.clip.positional_embedding[1:3]
    with torch.no_grad():
        pairs = lrn.deep_prompt_pairs()
        assert len(pairs) == 1
        p1, v1 = pairs[0]
        assert torch.allclose(v1, lrn.couplings[0](lrn.text_deep[0]))
        v0 = tiny_vit.clip.visual.ln_pre(lrn.proj(lrn.ctx))
    _check_tower(taps["text"], lrn.ctx + text_pos, [p1], 2, "text")
    _check_tower(taps["vision"], v0, [v1], 2, "vision")


def test_ivlp_prompts_at_every_layer(tiny_vit):
    torch.manual_seed(2)
    task = make_task(tiny_vit, "ivlp", "ivlp.depth_text=2", "ivlp.depth_vision=3", "ivlp.n_ctx_vision=3")
    lrn = task.learner
    assert lrn.text_deep.shape == (1, 2, tiny_vit.text_width)
    assert lrn.vision_deep.shape == (2, 3, tiny_vit.vision_width)
    taps = _taps(task, torch.randn(2, 3, 32, 32))
    with torch.no_grad():
        v0 = tiny_vit.clip.visual.ln_pre(lrn.vision_ctx)
    _check_tower(taps["text"], lrn.ctx + tiny_vit.clip.positional_embedding[1:3], list(lrn.text_deep), 2, "text")
    _check_tower(taps["vision"], v0, list(lrn.vision_deep), 3, "vision")
    pairs = lrn.deep_prompt_pairs()  # only block 1 has prompts in both towers
    assert len(pairs) == 1
    assert torch.equal(pairs[0][0], lrn.text_deep[0]) and torch.equal(pairs[0][1], lrn.vision_deep[0])


def test_maple_couplings_start_identical_and_follow_overrides(tiny_vit):
    lrn = make_task(tiny_vit, "maple").learner
    first = lrn.couplings[0]
    assert len(lrn.couplings) == 2
    for f in lrn.couplings[1:]:
        assert f is not first and torch.equal(f.weight, first.weight) and torch.equal(f.bias, first.bias)
    assert not torch.equal(lrn.proj.weight, first.weight)  # the shallow coupling is its own Linear
    zeros = torch.zeros_like(lrn.text_deep)
    with lrn.override({"text_deep": zeros}):
        assert all(torch.equal(v, first.bias.expand_as(v)) for _, v in lrn.deep_prompt_pairs())


def test_prompt_vectors_have_positions_on_axis_minus_two(tiny_vit):
    d, w = tiny_vit.text_width, tiny_vit.vision_width
    shapes = {
        m: {k: tuple(v.shape) for k, v in make_task(tiny_vit, m).learner.prompt_vectors().items()} for m in METHODS
    }
    assert shapes == {
        "cocoop": {"ctx": (4, d)},
        "ivlp": {"ctx": (2, d), "text_deep": (2, 2, d), "vision_ctx": (2, w), "vision_deep": (2, 2, w)},
        "vpt": {"vision_ctx": (8, w), "vision_deep": (2, 8, w)},
        "lpt": {"ctx": (4, d), "text_deep": (2, 4, d)},
        "maple": {"ctx": (2, d), "text_deep": (2, 2, d)},
    }


# ---------------------------------------------------------------------------------------------- text prompts
@pytest.mark.parametrize(
    "method,sets,n", [("maple", [], 2), ("ivlp", [], 2), ("lpt", [], 4), ("ivlp", ["ivlp.n_ctx_text=3"], 3)]
)
def test_partial_init_keeps_the_remaining_words_as_fixed_suffix(tiny_vit, method, sets, n):
    lrn = make_task(tiny_vit, method, *sets).learner
    ids = tiny_vit.tokenize([f"a photo of a {c.replace('_', ' ')}." for c in SPACE.classnames])
    ids = ids[:, : lrn.prompts.ids.shape[1]]
    assert torch.equal(lrn.prompts.ids, ids)  # the string is still "a photo of a {name}."
    emb = tiny_vit.token_embed(ids)
    assert torch.equal(lrn.ctx, emb[0, 1 : 1 + n])  # P_0 = the first n init tokens
    assembled = lrn.prompts.assemble(lrn.ctx)
    assert torch.equal(assembled, emb)
    assert torch.equal(lrn.prompts.suffix, emb[:, 1 + n :])  # "of a" (n = 2) are fixed suffix tokens
    if n == 2:
        of_a = tiny_vit.tokenize(["of a"])[0, 1:3]
        assert torch.equal(ids[:, 3:5], of_a.expand(len(SPACE), -1))


def test_more_context_than_init_words_is_random_behind_placeholders(tiny_vit):
    lrn = make_task(tiny_vit, "ivlp", "ivlp.n_ctx_text=6").learner
    ids = tiny_vit.tokenize(["X X X X X X red circle."])[0, : lrn.prompts.ids.shape[1]]
    assert torch.equal(lrn.prompts.ids[0], ids)
    assert lrn.ctx.shape == (6, tiny_vit.text_width) and float(lrn.ctx.detach().std()) < 0.05


def test_vpt_text_is_the_fixed_hand_crafted_classifier(tiny_vit):
    from vlprompt.methods.prompts import hand_crafted_features

    task = make_task(tiny_vit, "vpt")
    expected = hand_crafted_features(tiny_vit, SPACE.classnames, ["a photo of a {}."])
    assert torch.equal(task.learner.text_features(), expected)
    task.set_label_space(OTHER)
    assert task.learner.text_features().shape == (5, tiny_vit.embed_dim)


# ---------------------------------------------------------------------------------------------- CoCoOp
def test_cocoop_text_is_per_image_and_chunked(tiny_vit, monkeypatch):
    torch.manual_seed(3)
    task = make_task(tiny_vit, "cocoop")
    lrn = task.learner
    with torch.no_grad():
        lrn.meta_net.linear1.bias.fill_(1.0)  # the tiny meta-net has 2 hidden ReLUs: keep them active
        f = tiny_vit.encode_image(torch.randn(3, 3, 32, 32))
        f = torch.cat([f, f[:1]])  # image 3 repeats image 0
        text = lrn.text_features(image_features=f)
        assert text.shape == (4, len(SPACE), tiny_vit.embed_dim)
        assert not torch.allclose(text[0], text[1]) and torch.allclose(text[0], text[3], atol=1e-6)
        # c_m(x) = c_m + h(f̂): the same shift for every context token
        shift = lrn.conditioned_context(f) - lrn.ctx
        assert torch.allclose(shift[:, 0], shift[:, 3], atol=1e-6)
        assert torch.allclose(shift[:, 0], lrn.meta_net(f / f.norm(dim=-1, keepdim=True)), atol=1e-6)
        # at most 2 (image, class) pairs per text-tower pass
        monkeypatch.setattr(task.backbone, "options", EncodeOptions(text_chunk=2))
        assert torch.allclose(lrn.text_features(image_features=f), text, atol=1e-5)
        out = task(image_features=f)
    assert out.logits.shape == (4, len(SPACE))
    assert lrn.meta_net.linear1.in_features == tiny_vit.embed_dim
    assert lrn.meta_net.linear1.out_features == max(1, tiny_vit.embed_dim // 16)
    assert lrn.meta_net.linear2.out_features == tiny_vit.text_width


# ---------------------------------------------------------------------------------------------- precision, errors
@pytest.mark.parametrize(
    "method,kept",
    [
        ("maple", {"text_deep", "couplings.0.weight", "couplings.0.bias", "couplings.1.weight", "couplings.1.bias"}),
        ("ivlp", {"text_deep", "vision_ctx", "vision_deep"}),
        ("cocoop", set()),
    ],
)
def test_fp16_keeps_the_reference_fp32_exceptions_and_trains(tiny_vit_files, method, kept):
    from vlprompt.backbones import load_backbone

    backbone = load_backbone(*map(str, tiny_vit_files), device="cpu")  # a private copy: it becomes half
    task = create_task(method, backbone, SPACE, overrides=["train.precision=fp16"])
    fp32 = {n.removeprefix("learner.") for n, p in task.named_parameters() if p.dtype == torch.float32}
    assert fp32 == kept
    opt = torch.optim.SGD(task.param_groups(0.01), lr=0.01, momentum=0.9)
    out = task(images=torch.randn(2, 3, 32, 32))
    assert out.logits.dtype == torch.float16
    task.loss_terms(out, torch.tensor([0, 1]), StepInfo())["ce"].backward()
    opt.step()  # mixed fp16 / fp32 parameters update in place, each in its own dtype
    assert all(torch.isfinite(p).all() for p in task.parameters())


def test_configuration_errors_are_one_line(tiny_vit, tiny_rn):
    with pytest.raises(VLPromptError, match=r"^ivlp.n_ctx_text must be >= 1, got 0 \(e.g. --set ivlp.n_ctx_text=2\)$"):
        make_task(tiny_vit, "ivlp", "ivlp.n_ctx_text=0")
    with pytest.raises(
        VLPromptError, match=r"^vpt.depth_vision must be >= 1, got 0 \(e.g. --set vpt.depth_vision=12\)$"
    ):
        make_task(tiny_vit, "vpt", "vpt.depth_vision=0")
    for method in ("maple", "vpt", "ivlp"):
        with pytest.raises(VLPromptError, match="ViT"):
            make_task(tiny_rn, method)
    assert make_task(tiny_rn, "lpt").predict(images=torch.randn(1, 3, 64, 64)).shape == (1, 3)
    assert make_task(tiny_rn, "cocoop").predict(images=torch.randn(1, 3, 64, 64)).shape == (1, 3)


# ---------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("method,sets", [("maple", ["maple.depth=2"]), ("cocoop", [])])
def test_cli_train_and_eval_on_new_classes(tmp_path, cli_env, tiny_folder, method, sets):
    out = tmp_path / "run"
    args = [
        "train",
        "--method",
        method,
        "--dataset",
        "folder",
        "--data-root",
        str(tiny_folder),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "0.01",
        "--subsample",
        "base",
        *cli_env,
    ]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    weights = load_file(str(out / "weights.safetensors"))
    expected = EXPECTED[method] if method != "maple" else EXPECTED[method] - {"couplings.1.weight", "couplings.1.bias"}
    assert set(weights) == {f"learner.{n}" for n in expected}
    ev = tmp_path / "new"
    assert (
        main(
            [
                "eval",
                "--run",
                str(out),
                "--dataset",
                "folder",
                "--data-root",
                str(tiny_folder),
                "--subsample",
                "new",
                "--out",
                str(ev),
            ]
        )
        == 0
    )
    res = json.loads((ev / "results.json").read_text())
    assert res["num_classes"] == 2 and res["label_space"] == "unseen"
