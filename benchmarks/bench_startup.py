"""Start-up: from the command to the first training step, against loading the weights alone; and re-running a
finished run.

Every figure is the wall time from starting a fresh ``python`` process to a point in it (median of
``--repeats``), measured from this script:

* ``import torch``: the floor of any command;
* weights alone: ``load_backbone(--backbone, --pretrained)`` of a ViT-B/16-sized model saved as a safetensors file
  (imports included);
* command -> first training step: ``vlprompt train`` (CoOp, 16 context tokens, 10 classes x 4 shots: real DTD
  images from ../shared/data/dtd10 when present, else generated JPEGs), stopped when the first training step
  starts — with an empty feature cache (the first epoch's views are encoded first), with the cache filled by an
  earlier run, and with ``--no-feature-cache``;
* re-running a finished run: the same ``vlprompt train`` command again once its ``results.json`` exists.

Usage::

    python benchmarks/bench_startup.py [--repeats 3] [--device cuda]
    python benchmarks/bench_startup.py --quick            # tiny model: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib

#: a child that runs the vlprompt command line and prints the time at which the first training step starts
FIRST_STEP = """
import os, sys, time
from vlprompt.task import PromptTask
def first_step(*args, **kwargs):
    print(f"FIRST-STEP {time.time()!r}", flush=True)
    os._exit(0)
PromptTask.training_step = first_step
from vlprompt.cli import main
main(sys.argv[1:])
"""
WEIGHTS = """
import sys, time
from vlprompt.backbones import load_backbone
load_backbone(sys.argv[1], sys.argv[2], device=sys.argv[3])
print(f"LOADED {time.time()!r}", flush=True)
"""
IMPORT_TORCH = """
import time
import torch
print(f"IMPORTED {time.time()!r}", flush=True)
"""


def child_time(code: str, args, env) -> float:
    """Seconds from starting ``python -c code args`` to the time stamp it prints (its last line)."""
    start = time.time()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.split(" ")[0].isupper()]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return float(lines[-1].split(" ", 1)[1]) - start


def command_time(args, env) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vlprompt", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny model and data: check that the script runs")
    opts = parser.parse_args()
    if opts.quick:
        opts.repeats = 1
    median = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        backbone, weights = benchlib.backbone_files(tmp / "model", opts.quick)
        data = benchlib.dataset_options(tmp / "data", 4 if opts.quick else 10, 4, size=64 if opts.quick else 256)
        env = {**os.environ, "VLPROMPT_CACHE": str(tmp / "cache")}
        run = ["train", "--method", "coop", "--set", "coop.n_ctx=16", "--epochs", "1", "--batch-size", "8"]
        run += [*benchlib.cli_flags({**data, "backbone": backbone, "pretrained": weights}), "--device", opts.device]
        rows = []
        rows.append(("`import torch`", median(child_time(IMPORT_TORCH, [], env) for _ in range(opts.repeats))))
        load = median(child_time(WEIGHTS, [backbone, weights, opts.device], env) for _ in range(opts.repeats))
        rows.append(("weights alone (`load_backbone`)", load))
        cold = []
        for i in range(opts.repeats):
            fresh = {**env, "VLPROMPT_CACHE": str(tmp / f"cold{i}")}
            cold.append(child_time(FIRST_STEP, [*run, "--out", str(tmp / f"cold-run{i}")], fresh))
        rows.append(("command -> first step, empty feature cache", median(cold)))
        child_time(FIRST_STEP, [*run, "--out", str(tmp / "fill")], env)  # fills the cache
        warm = [child_time(FIRST_STEP, [*run, "--out", str(tmp / f"warm{i}")], env) for i in range(opts.repeats)]
        rows.append(("command -> first step, filled feature cache", median(warm)))
        plain = [
            child_time(FIRST_STEP, [*run, "--no-feature-cache", "--out", str(tmp / f"plain{i}")], env)
            for i in range(opts.repeats)
        ]
        rows.append(("command -> first step, `--no-feature-cache`", median(plain)))
        finished = [*run, "--out", str(tmp / "finished")]
        command_time(finished, env)  # the whole run, once
        rows.append(("re-running a finished run", median(command_time(finished, env) for _ in range(opts.repeats))))
    print(f"\n### Start-up ({'tiny model' if opts.quick else 'ViT-B/16 size, weights from a safetensors file'})\n")
    print(f"Machine: {benchlib.machine()}")
    print(
        f"Setting: coop, 16 context tokens, {benchlib.data_description(data)}, device {opts.device}, "
        f"median of {opts.repeats}, each from starting a fresh Python process\n"
    )
    print("| from the command to | seconds | / weights alone |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / load:.2f}x |")


if __name__ == "__main__":
    main()
