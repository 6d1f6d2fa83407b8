"""The options behind the reference comparisons, on the tiny test models: fp16 prompt rounding
(``train.fp16_prompts``), per-step losses (``train.log_steps``), warm starts (``train --init-from``) and the
logits of a training run's final evaluation (``train --save-logits``)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vlprompt import create_task
from vlprompt.backbones.options import EncodeOptions
from vlprompt.cli import main
from vlprompt.convert import load_initial_values
from vlprompt.engine import trainer
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace

SPACE = LabelSpace(["red circle", "green square", "blue star"])


# ---------------------------------------------------------------------------------------------- fp16 prompts
def test_fp16_prompts_round_inserted_prompts_per_sequence(tiny_vit):
    images = torch.randn(2, 3, 32, 32)
    v0, deep = torch.randn(2, 64) * 0.3, [None, torch.randn(2, 64) * 0.3, torch.randn(2, 64) * 0.3]
    deep16 = [None if d is None else d.half().float() for d in deep]
    per_image = v0.half().float().expand(2, -1, -1).clone().requires_grad_()  # one copy per image, fp16 values
    plain = tiny_vit.encode_image(images, prompts=per_image, deep_prompts=deep16)
    plain.sum().backward()
    fp16 = tiny_vit.with_options(EncodeOptions(fp16_prompts=True))
    p = v0.clone().requires_grad_()
    rounded = fp16.encode_image(images, prompts=p, deep_prompts=deep)
    rounded.sum().backward()
    assert not fp16.text_prefix_sharable(4, [None, torch.randn(2, 64)])  # deep text prompts: full sequences
    assert fp16.text_prefix_sharable(4, None)  # nothing inserted: the shared prefix still applies
    assert torch.equal(rounded, plain)  # the tower sees the fp16 values
    # and each image's gradient is rounded to fp16 before they are summed, as the reference's .expand().half()
    assert torch.equal(p.grad, per_image.grad.half().float().sum(0))
    assert not torch.equal(tiny_vit.encode_image(images, prompts=v0, deep_prompts=deep), plain)  # off by default


def test_fp16_prompts_leave_the_text_input_context_alone(tiny_vit):
    task = create_task("maple", tiny_vit, SPACE)
    with torch.no_grad():
        task.learner.ctx.add_(torch.randn_like(task.learner.ctx) * 0.01)
        task.learner.text_deep.mul_(0)  # fp16-exact deep prompt: only the context could differ
        plain = task.learner.text_features()
        task.backbone.options = EncodeOptions(fp16_prompts=True)  # the task's own view of the backbone
        assert torch.allclose(task.learner.text_features(), plain, atol=1e-6)


# ---------------------------------------------------------------------------------------------- runs
def train(out, cli_env, folder, *extra, epochs=2):
    args = ["train", "--method", "coop", "--dataset", "folder", "--data-root", str(folder), "--out", str(out)]
    args += ["--epochs", str(epochs), "--batch-size", "4", "--lr", "0.01", "--set", "coop.n_ctx=4", *cli_env, *extra]
    return main(args)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_log_steps_writes_one_line_per_step_and_survives_a_resume(tmp_path, cli_env, tiny_folder, monkeypatch):
    full = tmp_path / "full"
    assert train(full, cli_env, tiny_folder, "--set", "train.log_steps=true") == 0
    steps = read_jsonl(full / "steps.jsonl")
    assert [(s["epoch"], s["batch"]) for s in steps] == [(e, b) for e in (1, 2) for b in range(1, 7)]  # 24 / 4
    assert set(steps[0]) == {"epoch", "batch", "lr", "loss", "ce", "acc"}
    assert [s["lr"] for s in steps[::6]] == pytest.approx([1e-5, 0.01])
    for record in [r for r in read_jsonl(full / "metrics.jsonl") if "epoch" in r]:
        losses = [s["loss"] for s in steps if s["epoch"] == record["epoch"]]
        assert record["loss"] == pytest.approx(sum(losses) / len(losses))
        accs = [s["acc"] for s in steps if s["epoch"] == record["epoch"]]
        assert record["train_acc"] == pytest.approx(sum(accs) / len(accs))  # equal batches of 4
    real_epoch, calls = trainer.run_epoch, {"n": 0}

    def dying_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed in the second epoch
        return real_epoch(*args, **kwargs)

    killed = tmp_path / "killed"
    monkeypatch.setattr(trainer, "run_epoch", dying_epoch)
    assert train(killed, cli_env, tiny_folder, "--set", "train.log_steps=true") == 130
    assert len(read_jsonl(killed / "steps.jsonl")) == 6
    monkeypatch.setattr(trainer, "run_epoch", real_epoch)
    assert train(killed, cli_env, tiny_folder, "--set", "train.log_steps=true") == 0
    assert read_jsonl(killed / "steps.jsonl") == steps


def test_train_save_logits(tmp_path, cli_env, tiny_folder):
    out = tmp_path / "run"
    assert train(out, cli_env, tiny_folder, "--save-logits", epochs=1) == 0
    logits = load_file(str(out / "logits.safetensors"))
    rows = (out / "predictions.csv").read_text().splitlines()[1:]
    assert logits["logits"].shape == (16, 4) and len(rows) == 16
    assert [int(r.split(",")[3]) for r in rows] == logits["logits"].argmax(-1).tolist()
    assert not (out / "steps.jsonl").exists()  # train.log_steps is off by default


def test_init_from_sets_the_starting_values(tmp_path, cli_env, tiny_folder, capsys):
    ctx = torch.randn(4, 64) * 0.1
    save_file({"ctx": ctx}, str(tmp_path / "init.safetensors"))  # the reference's names
    frozen_lr = ["--set", "train.warmup_lr=1e-30", "--set", "train.weight_decay=0"]  # one epoch that moves nothing
    out = tmp_path / "run"
    assert (
        train(out, cli_env, tiny_folder, "--init-from", str(tmp_path / "init.safetensors"), *frozen_lr, epochs=1) == 0
    )
    assert "initial values from" in capsys.readouterr().out
    assert torch.allclose(load_file(str(out / "weights.safetensors"))["learner.ctx"], ctx, atol=1e-12)
    again = tmp_path / "again"  # from a run directory
    assert train(again, cli_env, tiny_folder, "--init-from", str(out), *frozen_lr, epochs=1) == 0
    assert torch.allclose(load_file(str(again / "weights.safetensors"))["learner.ctx"], ctx, atol=1e-12)
    save_file({"learner.ctx": torch.zeros(16, 64)}, str(tmp_path / "wrong.safetensors"))  # vlprompt's names
    capsys.readouterr()
    assert train(tmp_path / "x", cli_env, tiny_folder, "--init-from", str(tmp_path / "wrong.safetensors")) == 2
    err = capsys.readouterr().err
    assert "shapes differ (learner.ctx [16, 64] there, [4, 64] here)" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_init_from_names_unknown_tensors_and_reports_kept_ones(tmp_path, tiny_vit):
    task = create_task("maple+restore", tiny_vit, SPACE, overrides=["restore.formulation=code"])
    source = create_task("maple", tiny_vit, SPACE)
    with torch.no_grad():
        source.learner.text_deep.mul_(3)
    save_file({k: v.contiguous() for k, v in source.release_state_dict().items()}, str(tmp_path / "maple.safetensors"))
    loaded = load_initial_values(task, tmp_path / "maple.safetensors")
    assert loaded.loaded == sorted(source.release_state_dict())
    assert "addons.restore.calibrator_t.fc1.weight" in loaded.kept
    assert torch.equal(task.learner.text_deep, source.learner.text_deep)
    # RESTORE's initial Gram norms are those of the loaded prompts
    expected = [float(p.detach().t().matmul(p.detach()).norm()) for p in task.learner.text_deep]
    assert task.addons["restore"].init_gram_t.tolist() == pytest.approx(expected, rel=1e-5)
    save_file({"learner.ctx": torch.zeros(2, 64), "learner.bogus": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(
        VLPromptError, match="1 tensor\\(s\\) that method maple\\+restore does not have \\(learner.bogus\\)"
    ):
        load_initial_values(task, tmp_path / "bad.safetensors")
    with pytest.raises(VLPromptError, match="no such file or folder"):
        load_initial_values(task, tmp_path / "missing.safetensors")
