"""Training on several processes (torchrun; gloo on CPU) computes what one process computes with the same global
batch: final weights within 1e-5, the same accuracy and predictions, the same per-epoch records; only rank 0
writes; an interrupted single-process run resumes on two processes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vlprompt
from vlprompt.cli import main
from vlprompt.cli.train_cmd import without_nproc
from vlprompt.engine import distributed, trainer

SRC = str(Path(vlprompt.__file__).resolve().parents[1])


def _args(out, folder, method, cli_env, *extra):
    return [
        "train", "--method", method, "--dataset", "folder", "--data-root", str(folder), "--out", str(out),
        "--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--set", "train.warmup_epochs=0",
        "--set", "coop.n_ctx=4", *cli_env, *extra,
    ]  # fmt: skip


def _spawn(args, cache: Path):
    """Run a command line in a fresh process group of its own (2 CPU processes); returns its output."""
    env = {
        **os.environ,
        "VLPROMPT_CACHE": str(cache),
        "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("WORLD_SIZE", None)
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _same_runs(single: Path, multi: Path):
    a, b = load_file(str(single / "weights.safetensors")), load_file(str(multi / "weights.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] - b[name]).abs().max() <= 1e-5, name
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (single, multi))
    assert ra["accuracy"] == rb["accuracy"] and ra["macro_f1"] == rb["macro_f1"]
    rows = [list(csv.DictReader((d / "predictions.csv").open())) for d in (single, multi)]
    assert [(r["image"], r["prediction"], r["top2"]) for r in rows[0]] == [
        (r["image"], r["prediction"], r["top2"]) for r in rows[1]
    ]
    assert max(abs(float(x["score1"]) - float(y["score1"])) for x, y in zip(*rows)) <= 1e-4
    ma, mb = ([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (single, multi))
    assert [list(m) for m in ma] == [list(m) for m in mb]  # the same records, keys in the same order
    for x, y in zip(ma, mb):
        for key, value in x.items():
            assert y[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    if (single / "steps.jsonl").exists():  # train.log_steps: the global batch's values on every line
        sa, sb = ([json.loads(line) for line in (d / "steps.jsonl").read_text().splitlines()] for d in (single, multi))
        assert len(sa) == len(sb) > 0 and [list(m) for m in sa] == [list(m) for m in sb]
        for x, y in zip(sa, sb):
            assert y == pytest.approx(x, rel=1e-5, abs=1e-6)


def test_two_processes_equal_one(tmp_path, cli_env, tiny_folder):
    """``vlprompt train --nproc 2``: CoOp on cached features (sharded encoding, rank 0 writes the cache), with
    per-step lines (``train.log_steps``)."""
    single, multi = tmp_path / "single", tmp_path / "multi"
    steps = ("--set", "train.log_steps=true")
    assert main(_args(single, tiny_folder, "coop", cli_env, *steps)) == 0
    _spawn(["-m", "vlprompt", *_args(multi, tiny_folder, "coop", cli_env, *steps), "--nproc", "2"], tmp_path / "c2")
    _same_runs(single, multi)
    assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())


def test_interrupted_run_resumes_on_two_processes(tmp_path, cli_env, tiny_folder, monkeypatch):
    """coop+dept (a head with its own parameters and learning rate) + Nemesis PAN (pre-inference counts over the
    global batch), images through the image tower every step: one process runs epoch 1 and is killed, torchrun
    with two processes resumes from its checkpoint; the result equals an uninterrupted single-process run."""
    method = "coop+dept+nemesis"
    extra = [
        "--no-feature-cache",
        "--set",
        "nemesis.beta=0",
        "--set",
        "nemesis.num_positions=2",
        "--set",
        "nemesis.corruption_weight=0.5",
    ]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert main(_args(full, tiny_folder, method, cli_env, *extra)) == 0
    real_epoch, calls = trainer.run_epoch, []

    def dying_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dying_epoch)
    assert main(_args(resumed, tiny_folder, method, cli_env, *extra)) == 130
    assert (resumed / trainer.RESUME_FILE).exists() and not (resumed / "results.json").exists()
    command = [
        "-m",
        "torch.distributed.run",
        *distributed.torchrun_args(2, _args(resumed, tiny_folder, method, cli_env, *extra)),
    ]
    _spawn(command, tmp_path / "cache")
    _same_runs(full, resumed)


def test_nproc_flag_is_removed_from_the_relaunched_command():
    assert without_nproc(["train", "--nproc", "2", "--epochs", "3"]) == ["train", "--epochs", "3"]
    assert without_nproc(["train", "--nproc=4", "--out", "x"]) == ["train", "--out", "x"]


def test_single_process_helpers_are_identities():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.local_rows(5) == slice(0, 5)
    assert distributed.all_reduce_sum({"b": 1.0, "a": 2}) == {"b": 1.0, "a": 2}
    assert distributed.sum_across(3) == 3
    rows = distributed.gather_rows([torch.ones(2), torch.zeros(1)], [])
    assert torch.equal(rows[0], torch.tensor([1.0, 1.0, 0.0])) and rows[1].numel() == 0


def test_bad_nproc_and_nested_launch_are_refused(tmp_path, cli_env, tiny_folder, capsys, monkeypatch):
    assert main([*_args(tmp_path / "r", tiny_folder, "coop", cli_env), "--nproc", "0"]) == 2
    assert "--nproc must be >= 1" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main([*_args(tmp_path / "r", tiny_folder, "coop", cli_env), "--nproc", "2"]) == 2
    assert "inside a torchrun process group" in capsys.readouterr().err
