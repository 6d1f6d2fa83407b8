"""``vlprompt convert`` end to end for every method a reference trainer saves: a task's tensors written under the
reference trainer's names (with class buffers, frozen CLIP tensors of whole-model trainers and unused tensors, as
the reference saves them) as a Dassl checkpoint, converted, then evaluated, give the task's own logits; bad
checkpoints and flags are one-line errors, and a malicious pickle is refused without being executed."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from safetensors.torch import load_file

from vlprompt.cli import main
from vlprompt.config import BackboneConfig, make_config
from vlprompt.convert import canonical_method, trainers
from vlprompt.engine.evaluation import evaluate
from vlprompt.engine.labels import label_space
from vlprompt.pipeline.build import build_task
from vlprompt.pipeline.loading import load_backbone, load_data
from vlprompt.registry import LEARNERS
from vlprompt.task import parse_method

#: trainers that register the prompt learner itself (names without ``prompt_learner.``); the others save the model
MODULE_ONLY = {"CoOp", "CoOpNemesis", "CoCoOp", "KgCoOp", "ProGrad", "TCP"}
#: vlprompt settings for each method's task (the converter reads n_ctx / depth / CSC from the shapes)
SETTINGS = {"coop+nemesis": ["coop.csc=true"], "maple+restore": ["restore.formulation=code"]}


def builtin(method: str) -> bool:
    """Whether ``method`` is vlprompt's own (not the example plugin of tests/example_learner)."""
    return LEARNERS.config(parse_method(method).base).__module__.startswith("vlprompt.")


#: the built-in Dassl trainers (Tip-Adapter's cache is no Dassl checkpoint: `--from tip-adapter`,
#: test_baselines_parity.py)
METHODS = sorted(m for m in trainers() if not m.startswith("tip_adapter") and builtin(m))


def _template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{i\}|\{w\})", template)
    groups = {"{i}": r"(?P<i>\d+)", "{w}": r"(?P<w>weight|bias)"}
    return re.compile("".join(groups.get(p, re.escape(p)) for p in parts))


def reference_state(method: str, tensors: dict, backbone, num_classes: int) -> dict:
    """``tensors`` (vlprompt names) under the names the reference trainer of ``method`` saves, plus what else it
    saves: class buffers, KgCoOp's unused tensors, the frozen CLIP of whole-model trainers."""
    trainer = trainers()[canonical_method(method)]
    whole = trainer.name not in MODULE_ONLY
    name = lambda ref: ref if whole or not ref.startswith("prompt_learner.") else ref[len("prompt_learner.") :]
    out = {}
    for rule in trainer.rules:
        if rule.kind == "stack" and rule.target in tensors:
            for j, layer in enumerate(tensors[rule.target].unbind(0)):
                out[name(rule.ref.replace("{i}", str(rule.first + j)))] = layer.clone()
        elif rule.kind == "tensor":
            pattern = _template_regex(rule.target)
            for key, value in tensors.items():
                match = pattern.fullmatch(key)
                if match:
                    out[name(rule.ref.format(**match.groupdict()))] = value.clone()
    width = backbone.text_width
    if name("prompt_learner.ctx") in out:
        out[name("prompt_learner.token_prefix")] = torch.randn(num_classes, 1, width)
        out[name("prompt_learner.token_suffix")] = torch.randn(num_classes, 60, width)
    if "kgcoop" in method:
        out[name("prompt_learner.bias_vectors")] = torch.randn(1, 512)
    if whole:
        for key, value in backbone.clip.state_dict().items():
            if key.startswith("visual."):
                out[f"image_encoder.{key[7:]}"] = value.clone()
                if trainer.name == "PromptSRC":  # its frozen zero-shot image encoder
                    out[f"prompt_learner.ZS_image_encoder.{key[7:]}"] = value.clone()
            elif key != "token_embedding.weight":  # the reference's text encoder has no token embedding
                out[key if key == "logit_scale" else f"text_encoder.{key}"] = value.clone()
    return out


def save_dassl(path, state: dict, epoch: int = 5):
    path.parent.mkdir(parents=True, exist_ok=True)
    optimizer = {"state": {}, "param_groups": [{"lr": 0.002, "momentum": 0.9, "params": [0]}]}
    torch.save({"state_dict": state, "epoch": epoch, "optimizer": optimizer, "scheduler": {}, "val_result": None}, path)
    return path


@pytest.fixture
def folder_args(tiny_folder, cli_env):
    return ["--dataset", "folder", "--data-root", str(tiny_folder), *cli_env]


def random_task(method, cli_env, tiny_folder):
    """A task of ``method`` on the tiny ViT with random values everywhere, its data and test logits."""
    cfg = make_config(
        method,
        "folder",
        data_root=str(tiny_folder),
        backbone=cli_env[1],
        pretrained=cli_env[3],
        precision="fp32",
        overrides=[*SETTINGS.get(method, []), "train.fp16_prompts=true"],
    )
    backbone = load_backbone(BackboneConfig(cli_env[1], cli_env[3], device="cpu"))
    data = load_data(cfg.data)
    torch.manual_seed(1)
    task = build_task(backbone, cfg, label_space(data))
    with torch.no_grad():
        for value in task.release_state_dict().values():
            if value.is_floating_point() and value.dim():
                value.add_(0.05 * torch.randn_like(value))
    return task, backbone, data, evaluate(task, data.test, backbone, cfg.train, progress=False).logits


@pytest.mark.parametrize("method", METHODS)
def test_converted_checkpoint_evaluates_like_the_task(tmp_path, cli_env, tiny_folder, folder_args, method):
    task, backbone, data, logits = random_task(method, cli_env, tiny_folder)
    state = reference_state(method, task.release_state_dict(), backbone, data.num_classes)
    module = "prompt_learner" if trainers()[canonical_method(method)].name in MODULE_ONLY else "MultiModalPromptLearner"
    save_dassl(tmp_path / "output" / module / "model.pth.tar-5", state)
    run, evaluated = tmp_path / "run", tmp_path / "eval"
    given = ["--method", method] if method in ("coop+nemesis", "coop+prograd") else []  # CoOp's names
    assert main(["convert", str(tmp_path / "output"), *given, *folder_args, "--out", str(run)]) == 0
    meta = json.loads((run / "weights.json").read_text())
    assert meta["method"] == method and meta["converted_from"]["epoch"] == 5
    assert meta["run_config"]["train"]["fp16_prompts"] is True
    ours = load_file(str(run / "weights.safetensors"))
    for key, value in task.release_state_dict().items():
        if not key.startswith("addons.restore.init_gram"):  # derived from the prompts at conversion
            assert torch.equal(ours[key], value), key
    assert main(["eval", "--run", str(run), *folder_args, "--out", str(evaluated), "--save-logits"]) == 0
    converted = load_file(str(evaluated / "logits.safetensors"))["logits"]
    assert (converted - logits).abs().max() < 1e-5


def test_dept_checkpoint_without_head_is_its_base_method(tmp_path, cli_env, tiny_folder, folder_args, capsys):
    task, backbone, data, _ = random_task("maple+dept", cli_env, tiny_folder)
    state = reference_state("maple+dept", task.release_state_dict(), backbone, data.num_classes)
    state = {k: v for k, v in state.items() if not k.startswith("linear_probe_proj.")}
    save_dassl(tmp_path / "MultiModalPromptLearner" / "model.pth.tar-2", state)
    run = tmp_path / "run"
    assert main(["convert", str(tmp_path / "MultiModalPromptLearner"), *folder_args, "--out", str(run)]) == 0
    assert "ignored addons.dept.film_t_bias" in capsys.readouterr().out
    meta = json.loads((run / "weights.json").read_text())
    assert meta["method"] == "maple" and not any(k.startswith("addons.") for k in meta["tensors"])
    task.set_label_space(label_space(data, seen=False))  # DePT's similarity logits
    expected = evaluate(task, data.test, backbone, make_config("maple").train, progress=False).logits
    assert main(["eval", "--run", str(run), *folder_args, "--out", str(tmp_path / "e"), "--save-logits"]) == 0
    assert (load_file(str(tmp_path / "e" / "logits.safetensors"))["logits"] - expected).abs().max() < 1e-5


# ---------------------------------------------------------------------------------------------- refusals
def coop_checkpoint(tmp_path, backbone_files, n_ctx=16, classes=4):
    from vlprompt.pipeline.loading import load_backbone as load

    backbone = load(BackboneConfig(str(backbone_files[0]), str(backbone_files[1]), device="cpu"))
    state = {"ctx": torch.randn(n_ctx, backbone.text_width) * 0.02}
    state.update(reference_state("coop", {}, backbone, classes))
    return save_dassl(tmp_path / "prompt_learner" / "model.pth.tar-3", state, epoch=3)


def test_malicious_checkpoint_is_refused_without_running_it(tmp_path, folder_args, capsys):
    class Payload:
        def __init__(self, fn, *args):
            self.fn, self.args = fn, args

        def __reduce__(self):
            return self.fn, self.args

    marker = tmp_path / "marker"
    path = tmp_path / "prompt_learner" / "model.pth.tar-1"
    path.parent.mkdir()
    torch.save(
        {"state_dict": {"ctx": torch.zeros(4, 64)}, "epoch": 1, "x": Payload(os.system, f"touch {marker}")}, path
    )
    assert main(["convert", str(path), *folder_args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "posix.system" in err and "nothing was executed" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_settings_come_from_the_shapes_and_contradictions_are_refused(tmp_path, tiny_vit_files, folder_args, capsys):
    checkpoint = coop_checkpoint(tmp_path, tiny_vit_files, n_ctx=16)
    out = tmp_path / "run"
    # the b2n preset's "a photo of a" (4 words) does not fit a 16-vector context: dropped, as it only initialises
    assert main(["convert", str(checkpoint), "--protocol", "b2n", *folder_args, "--out", str(out)]) == 0
    cfg = json.loads((out / "weights.json").read_text())["run_config"]
    assert (cfg["components"]["coop"]["n_ctx"], cfg["components"]["coop"]["ctx_init"]) == (16, "")
    assert cfg["sources"]["coop.n_ctx"].startswith("vlprompt convert")
    # a converted run is a warm start for training (one epoch at a vanishing learning rate moves nothing)
    still = ["--epochs", "1", "--set", "train.warmup_lr=1e-30", "--set", "train.weight_decay=0"]
    assert (
        main(["train", "--method", "coop", *folder_args, *still, "--init-from", str(out), "--out", str(tmp_path / "t")])
        == 0
    )
    ctx = torch.load(checkpoint, weights_only=False)["state_dict"]["ctx"]  # our own file
    assert torch.allclose(load_file(str(tmp_path / "t" / "weights.safetensors"))["learner.ctx"], ctx, atol=1e-12)
    capsys.readouterr()
    for flags, message in (
        (["--set", "coop.n_ctx=4"], "--set coop.n_ctx=4 contradicts the checkpoint, which holds coop.n_ctx=16"),
        (["--set", "coop.ctx_init=a photo of a"], "does not fit the checkpoint's context (16 vectors)"),
        (["--set", "coop.csc=true"], "contradicts the checkpoint, which holds coop.csc=False"),
        (["--method", "maple"], "maple: missing prompt_learner.proj.weight"),
    ):
        assert main(["convert", str(checkpoint), *flags, *folder_args, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_class_dependent_tensors_must_fit_the_label_space(tmp_path, tiny_vit_files, folder_args, capsys):
    checkpoint = coop_checkpoint(tmp_path, tiny_vit_files)
    state = torch.load(checkpoint, weights_only=False)["state_dict"]  # our own file
    state["ctx"] = torch.randn(5, 16, 64)  # class-specific context for 5 classes; the folder has 4
    save_dassl(checkpoint, state)
    assert main(["convert", str(checkpoint), *folder_args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "learner.ctx [5, 16, 64] (here [4, 16, 64])" in err and "the data flags give 4 classes" in err


def test_frozen_tensors_are_checked_against_the_backbone(tmp_path, cli_env, tiny_folder, folder_args, capsys):
    task, backbone, data, _ = random_task("maple", cli_env, tiny_folder)
    state = reference_state("maple", task.release_state_dict(), backbone, data.num_classes)
    fp16 = {k: v.half().float() if k.startswith(("image_encoder.", "text_encoder.")) else v for k, v in state.items()}
    save_dassl(tmp_path / "fp16" / "MultiModalPromptLearner" / "model.pth.tar-1", fp16)
    assert main(["convert", str(tmp_path / "fp16"), *folder_args, "--out", str(tmp_path / "a")]) == 0
    assert "frozen CLIP tensor(s) match the backbone" in capsys.readouterr().out  # fp16 copies of its weights
    state["image_encoder.proj"] = state["image_encoder.proj"] + 0.1
    save_dassl(tmp_path / "other" / "MultiModalPromptLearner" / "model.pth.tar-1", state)
    assert main(["convert", str(tmp_path / "other"), *folder_args, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "frozen tensor image_encoder.proj differs from the backbone's" in err and "--skip-frozen-check" in err
    assert not (tmp_path / "b").exists()
    flags = [*folder_args, "--out", str(tmp_path / "b"), "--skip-frozen-check"]
    assert main(["convert", str(tmp_path / "other"), *flags]) == 0
