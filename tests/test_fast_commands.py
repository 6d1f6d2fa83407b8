"""Commands that need no model import no model library: ``list``, ``--help``, ``presets``, ``data verify``, argument
and configuration errors, errors found in the data, and re-running a finished run. Checked by what a fresh
interpreter has imported after the command (never by timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vlprompt
from cli_runs import train_argv

HEAVY = ("torch", "torchvision", "open_clip", "safetensors")

PROBE = """
import json, sys
from vlprompt.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def python(*args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter that imports this same vlprompt (whatever the working directory)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(vlprompt.__file__).parents[1]), *sys.path])}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done


def imports_of(argv) -> dict:
    """Exit status and the heavy modules imported by ``vlprompt <argv>`` in a fresh interpreter."""
    done = python("-c", PROBE, json.dumps([str(a) for a in argv]))
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv, code",
    [
        (["list"], 0),
        (["list", "backbones"], 0),
        (["--help"], 0),
        (["train", "--help"], 0),
        (["presets", "maple+dept+restore", "--dataset", "dtd"], 0),
        (["data", "prepare", "all", "--data-root", "data", "--dry-run"], 0),
        (["train", "--method", "coop"], 2),
        (["train", "--method", "nosuch", "--dataset", "toy-b2n", "--out", "x"], 2),
        (["train", "--method", "coop", "--dataset", "toy-b2n", "--out", "x", "--set", "coop.n_ctx=0"], 2),
        (["train", "--method", "coop+nemesis", "--dataset", "folder", "--data-root", "/nowhere", "--out", "x"], 2),
    ],
)
def test_commands_before_model_work_import_no_model_library(argv, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert imports_of(argv) == {"code": code, "heavy": []}
    assert not (tmp_path / "x").exists()


def test_data_verify_imports_no_model_library(tiny_folder):
    assert imports_of(["data", "verify", "--dataset", "folder", "--data-root", tiny_folder]) == {"code": 0, "heavy": []}


def test_rerunning_a_finished_run_imports_no_model_library(trained_run, tiny_folder, tiny_vit_files):
    bb = ["--backbone", str(tiny_vit_files[0]), "--pretrained", str(tiny_vit_files[1])]
    stamp = (trained_run / "results.json").stat().st_mtime_ns
    assert imports_of(train_argv(trained_run, tiny_folder, bb)) == {"code": 0, "heavy": []}
    assert (trained_run / "results.json").stat().st_mtime_ns == stamp


def test_declarations_import_no_model_library():
    """Every built-in learner and add-on resolves its configuration from its declaration alone."""
    code = (
        "import sys; from vlprompt.registry import ADDONS, LEARNERS; "
        "[LEARNERS.config(n) for n in LEARNERS.names()]; [ADDONS.config(n) for n in ADDONS.names()]; "
        "from vlprompt.config import make_config; make_config('maple+dept+restore', 'dtd'); "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert python("-c", code).stdout.strip() == "[]"
