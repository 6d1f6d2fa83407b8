"""ProGrad under DDP: ``coop+prograd`` on two processes (gloo) ends where one process ends with the same global
batch — the gradient hook projects the global-batch gradients, identically on every rank."""

from __future__ import annotations

from test_distributed import _args, _same_runs, _spawn
from vlprompt.cli import main


def test_prograd_on_two_processes_equals_one(tmp_path, cli_env, tiny_folder):
    single, multi = tmp_path / "single", tmp_path / "multi"
    steps = ("--set", "train.log_steps=true")
    assert main(_args(single, tiny_folder, "coop+prograd", cli_env, *steps)) == 0
    command = ["-m", "vlprompt", *_args(multi, tiny_folder, "coop+prograd", cli_env, *steps), "--nproc", "2"]
    _spawn(command, tmp_path / "c2")
    _same_runs(single, multi)
