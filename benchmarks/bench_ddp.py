"""Multi-process training: ``vlprompt train --nproc 2`` vs one process, same global batch — correctness first.

Each pair runs the same command as a fresh process once with ``--nproc 2`` (DistributedDataParallel, gloo on CPU,
NCCL on GPUs) and once without, each with its own empty feature cache, and compares the final weights (largest
absolute difference over every trained tensor), the test accuracy, the whole command's wall time and the training
loop's (``train_time_s``). On a CPU the two processes share the cores (each gets half of the threads), so no
speed-up is expected there; on a machine with two GPUs pass ``--device cuda``.

Setting (the defaults): 2 epochs (no warm-up epoch, so both epochs move the weights), batch 8, learning rate
0.002, CoOp (16 context tokens) with and without the feature cache, and CoOp + DePT; 10 classes x 4 shots (real DTD
images from ../shared/data/dtd10 when present, else generated JPEGs); a ViT-B/16-sized model with seeded random
weights saved to a file (both runs load the same weights).

Usage::

    python benchmarks/bench_ddp.py [--device cuda] [--epochs 2]
    python benchmarks/bench_ddp.py --quick      # tiny model and data: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib

CASES = (("coop", []), ("coop", ["--no-feature-cache"]), ("coop+dept", []))


def train(args, out: Path, cache: Path, nproc: int) -> float:
    env = {**os.environ, "VLPROMPT_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "vlprompt", *args, "--out", str(out)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return time.perf_counter() - start


def compare(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny model and data: check that the script runs")
    opts = parser.parse_args()
    classes, shots = (4, 4) if opts.quick else (10, 4)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        backbone, weights = benchlib.backbone_files(tmp / "model", opts.quick)
        data = benchlib.dataset_options(tmp / "data", classes, shots, size=64 if opts.quick else 256)
        common = [*benchlib.cli_flags({**data, "backbone": backbone, "pretrained": weights}), "--device", opts.device]
        common += ["--epochs", str(opts.epochs), "--batch-size", "8", "--lr", "0.002"]
        common += ["--set", "train.warmup_epochs=0", "--set", "coop.n_ctx=16"]
        for i, (method, extra) in enumerate(CASES):
            args = ["train", "--method", method, *common, *extra]
            runs = {}
            for nproc in (1, opts.nproc):
                out = tmp / f"case{i}-{nproc}"
                wall = train(args, out, tmp / f"cache{i}-{nproc}", nproc)
                runs[nproc] = (out, wall, json.loads((out / "results.json").read_text()))
            (one, wall1, res1), (many, wall_n, res_n) = runs[1], runs[opts.nproc]
            rows.append(
                (
                    f"{method} {' '.join(extra)}".strip(),
                    compare(one, many),
                    res1["accuracy"] == res_n["accuracy"],
                    (wall1, wall_n),
                    (res1["train_time_s"], res_n["train_time_s"]),
                )
            )
    print(f"\n### {opts.nproc} processes vs 1, same global batch ({'tiny model' if opts.quick else 'ViT-B/16 size'})\n")
    print(f"Machine: {benchlib.machine()}")
    print(
        f"Setting: {classes} classes x {shots} shots ({benchlib.data_description(data)}), {opts.epochs} epochs, "
        f"batch 8 (= {opts.nproc} x {8 // opts.nproc}), device {opts.device}\n"
    )
    print(
        f"| run | max abs weight difference | same accuracy | command: 1 / {opts.nproc} processes | "
        f"training: 1 / {opts.nproc} processes |"
    )
    print("|---|---:|---|---:|---:|")
    for name, diff, same, (w1, wn), (t1, tn) in rows:
        print(
            f"| {name} | {diff:.2e} | {'yes' if same else 'NO'} | {w1:.1f} s / {wn:.1f} s | {t1:.1f} s / {tn:.1f} s |"
        )


if __name__ == "__main__":
    main()
