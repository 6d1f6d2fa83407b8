"""Training engine: LR schedule, save/load, resume, non-finite loss, base -> new evaluation."""

import json

import pytest
import torch
from safetensors.torch import load_file

from vlprompt.cli import main
from vlprompt.engine import trainer
from vlprompt.engine.schedule import group_lrs, lr_sequence


def test_lr_sequence_matches_reference():
    expected = [1e-5, 0.0035, 0.003166, 0.002291, 0.001209]
    assert lr_sequence(5, 0.0035) == pytest.approx(expected, abs=1e-6)


#: DePT, E = 3, η0 = 0.01: the warm-up LR for both groups, then (η, 6.5 η) with η = η0, ½(1 + cos(π/3)) η0
DEPT_GROUP_LRS = [[1e-5, 1e-5], [0.01, 0.065], [0.0075, 0.04875]]


def _same_lrs(actual, expected=DEPT_GROUP_LRS) -> bool:
    return len(actual) == len(expected) and all(a == pytest.approx(e, abs=1e-12) for a, e in zip(actual, expected))


def test_warm_up_sets_one_lr_for_every_group_then_multipliers_apply():
    assert _same_lrs([group_lrs(e, 3, 0.01, [1.0, 6.5]) for e in range(3)])
    assert group_lrs(1, 3, 0.01, [1.0, 6.5], warmup_epochs=2, warmup_lr=1e-4) == [1e-4, 1e-4]


def test_dept_groups_train_at_the_warm_up_lr_then_at_their_multiplier(tmp_path, cli_env, tiny_folder, monkeypatch):
    seen = []
    real_epoch = trainer.run_epoch

    def recording_epoch(task, data, optimizer, *args):
        seen.append([group["lr"] for group in optimizer.param_groups])
        return real_epoch(task, data, optimizer, *args)

    monkeypatch.setattr(trainer, "run_epoch", recording_epoch)
    out = tmp_path / "run"
    assert _train(out, cli_env, tiny_folder, "--method", "coop+dept", "--shots", "1") == 0
    assert _same_lrs(seen)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in lines if "epoch" in r]
    assert _same_lrs([r["lr_groups"] for r in records])
    assert [r["lr"] for r in records] == pytest.approx([1e-5, 0.01, 0.0075], abs=1e-12)


def _train(out, cli_env, folder, *extra):
    args = [
        "train",
        "--method",
        "coop",
        "--dataset",
        "folder",
        "--data-root",
        str(folder),
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
        *cli_env,
        *extra,
    ]
    return main(args)


def test_train_writes_run_directory_and_round_trips(tmp_path, cli_env, tiny_folder):
    out = tmp_path / "run"
    assert _train(out, cli_env, tiny_folder) == 0
    for name in ("config.yaml", "metrics.jsonl", "results.json", "weights.safetensors", "weights.json", "log.txt"):
        assert (out / name).exists(), name
    weights = load_file(str(out / "weights.safetensors"))
    assert set(weights) == {"learner.ctx"}  # only trainable tensors, no class-name buffers
    results = json.loads((out / "results.json").read_text())
    assert results["num_classes"] == 4 and results["num_images"] == 16 and results["method"] == "coop"
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines if "epoch" in line] == [1, 2, 3]
    # save -> load gives identical logits: evaluating the saved run reproduces the accuracy exactly
    ev = tmp_path / "eval"
    assert (
        main(["eval", "--run", str(out), "--dataset", "folder", "--data-root", str(tiny_folder), "--out", str(ev)]) == 0
    )
    again = json.loads((ev / "results.json").read_text())
    assert again["accuracy"] == results["accuracy"] and again["label_space"] == "seen"


def test_saved_weights_give_identical_logits(tmp_path, cli_env, tiny_folder, tiny_vit):
    from vlprompt import create_task
    from vlprompt.engine.weights import load_weights
    from vlprompt.task import LabelSpace

    out = tmp_path / "run"
    _train(out, cli_env, tiny_folder)
    meta, tensors = load_weights(out)
    space = LabelSpace(**meta["label_space"])

    def build():
        return create_task("coop", tiny_vit, space, overrides=["coop.n_ctx=4"])

    a, b = build(), build()
    a.load_state_dict(tensors)
    b.load_state_dict(load_file(str(out / "weights.safetensors")))
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(a.predict(images=images), b.predict(images=images))
    assert not torch.equal(a.predict(images=images), build().predict(images=images))


@pytest.mark.parametrize("cache", [True, False])
def test_kill_and_resume_gives_identical_weights(tmp_path, cli_env, tiny_folder, monkeypatch, cache):
    extra = [] if cache else ["--no-feature-cache"]
    full = tmp_path / "full"
    assert _train(full, cli_env, tiny_folder, *extra) == 0

    killed = tmp_path / "killed"
    real_epoch = trainer.run_epoch
    calls = {"n": 0}

    def dying_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during the third epoch
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dying_epoch)
    assert _train(killed, cli_env, tiny_folder, *extra) == 130
    assert not (killed / "results.json").exists()
    monkeypatch.setattr(trainer, "run_epoch", real_epoch)
    assert _train(killed, cli_env, tiny_folder, *extra) == 0
    a = load_file(str(full / "weights.safetensors"))
    b = load_file(str(killed / "weights.safetensors"))
    assert torch.equal(a["learner.ctx"], b["learner.ctx"])


def test_non_finite_loss_stops_with_location(tmp_path, cli_env, tiny_folder, monkeypatch, capsys):
    from vlprompt.task import PromptTask

    real = PromptTask.loss_terms

    def poisoned(self, out, labels, step):
        terms = real(self, out, labels, step)
        if step.epoch == 1 and step.step == 2:
            terms["ce"] = terms["ce"] * float("nan")
        return terms

    monkeypatch.setattr(PromptTask, "loss_terms", poisoned)
    out = tmp_path / "nan"
    assert _train(out, cli_env, tiny_folder) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "non-finite loss at epoch 2, step 3: term 'ce'" in err
    assert not (out / "results.json").exists() and (out / "checkpoints" / "last.pt").exists()


def test_base_run_evaluates_on_new_classes(tmp_path, cli_env, tiny_folder):
    out = tmp_path / "base"
    assert _train(out, cli_env, tiny_folder, "--subsample", "base") == 0
    assert json.loads((out / "results.json").read_text())["num_classes"] == 2
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
    assert res["num_classes"] == 2 and res["label_space"] == "unseen" and res["subsample"] == "new"


def test_class_specific_context_refuses_other_classes(tmp_path, cli_env, tiny_folder, capsys):
    out = tmp_path / "csc"
    assert _train(out, cli_env, tiny_folder, "--subsample", "base", "--set", "coop.csc=true") == 0
    code = main(
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
            str(tmp_path / "e"),
        ]
    )
    assert code == 2 and "class-specific (CSC) context was trained for 2 other classes" in capsys.readouterr().err


def test_other_run_in_out_dir_is_not_overwritten(tmp_path, cli_env, tiny_folder, capsys):
    out = tmp_path / "run"
    assert _train(out, cli_env, tiny_folder) == 0
    before = (out / "weights.safetensors").read_bytes()
    assert _train(out, cli_env, tiny_folder, "--lr", "0.02") == 2
    assert "already holds a different run" in capsys.readouterr().err
    assert (out / "weights.safetensors").read_bytes() == before
