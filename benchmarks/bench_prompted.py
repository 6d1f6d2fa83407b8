"""Prompted image towers: vlprompt's runs of maple, ivlp, vpt, promptsrc and maple+restore vs the floor.

The floor (:mod:`floor`) is a minimal loop over the same frozen open_clip blocks in the fast, sequence-first layout,
with the same prompt tokens and nothing of vlprompt around them. Each method's run and its floor are measured side by
side in one process, interleaved: after every epoch of the vlprompt run (``vlprompt.train``) one floor epoch runs
(same number of steps, batch and image size; the floor's images are ready tensors, so it pays no decoding or
augmentation), and its time is taken out of the run's wall time.

* *steady-state epoch*: median over epochs 2.. of (vlprompt's epoch / the floor epoch run right after it);
* *whole run*: ``vlprompt.train`` from the config to the written results (weights loading, the feature cache and
  frozen text targets where the method has them, training, test evaluation) vs the floor's whole run: loading the
  weights + its epochs + one no-grad pass over the test images.

Setting (issue 25): ViT-B/16-sized random OpenAI-format weights with QuickGELU, real DTD10 images (base half = 5
classes x 4 shots = 20 images) when ``../shared/data/dtd10`` exists else generated JPEGs, batch 4, fp32 on CPU;
``--device cuda`` measures bf16 autocast (``--precision auto``) and the references' fp16 mode instead.

Usage::

    python benchmarks/bench_prompted.py                 # ViT-B/16 size (about 6 minutes on 2 idle cores)
    python benchmarks/bench_prompted.py --quick         # tiny model, seconds: checks that it runs
    python benchmarks/bench_prompted.py --device cuda --methods maple promptsrc

Prints a markdown table ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from floor import METHOD_PROMPTS, FloorLoop

PRECISIONS = {"cpu": ("fp32",), "cuda": ("auto", "fp16")}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def floor_clip(backbone, precision: str):
    """The open_clip model the floor runs: the loaded one, or a half copy for the references' fp16 mode."""
    return copy.deepcopy(backbone.clip).half() if precision == "fp16" else backbone.clip


def autocast(device: str, precision: str):
    if device == "cuda" and precision == "auto":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def measure(method: str, precision: str, args, files, data, load_seconds: float) -> dict:
    """One vlprompt run of ``method`` with a floor epoch after each of its epochs; the timings."""
    import vlprompt
    from vlprompt.backbones import load_backbone
    from vlprompt.engine import trainer
    from vlprompt.engine.labels import label_space
    from vlprompt.pipeline.loading import load_data

    backbone_name, weights = files
    cfg = vlprompt.make_config(
        method, **data, subsample="base", epochs=args.epochs, batch_size=4, precision=precision,
        device=args.device, backbone=backbone_name, pretrained=weights,
        out=str(args.work / f"{method}-{precision}-{time.monotonic_ns()}"),
    )  # fmt: skip
    dataset = load_data(cfg.data, need_train=True)
    classnames = label_space(dataset).classnames
    backbone = load_backbone(backbone_name, weights, device=args.device)
    size, n_train, n_test = backbone.image_size, len(dataset.train), len(dataset.test)
    clip = floor_clip(backbone, precision)
    floor = FloorLoop(clip, backbone.tokenize, classnames, METHOD_PROMPTS[method])
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n_train, 3, size, size, generator=g).to(args.device)
    labels = torch.randint(len(classnames), (n_train,), generator=g).to(args.device)

    def floor_epoch() -> float:
        sync(args.device)
        start = time.perf_counter()
        with autocast(args.device, precision):
            for s in range(0, n_train - n_train % 4 if n_train >= 4 else n_train, 4):
                floor.step(images[s : s + 4], labels[s : s + 4])
        sync(args.device)
        return time.perf_counter() - start

    ours, floors = [], []
    real_epoch = trainer.run_epoch

    def timed_epoch(*a, **k):
        sync(args.device)
        start = time.perf_counter()
        record = real_epoch(*a, **k)
        sync(args.device)
        ours.append(time.perf_counter() - start)
        floors.append(floor_epoch())
        return record

    trainer.run_epoch = timed_epoch
    try:
        start = time.perf_counter()
        vlprompt.train(cfg, quiet=True)
        whole = time.perf_counter() - start - sum(floors)
    finally:
        trainer.run_epoch = real_epoch
    sync(args.device)
    start = time.perf_counter()
    test = torch.randn(min(n_test, 100), 3, size, size, generator=g).to(args.device)
    with autocast(args.device, precision):
        for s in range(0, n_test, 100):
            floor.predict(test[: min(100, n_test - s)])
    sync(args.device)
    floor_whole = load_seconds + sum(floors) + time.perf_counter() - start
    steady = [o / f for o, f in zip(ours[1:], floors[1:])] or [ours[0] / floors[0]]
    return {
        "method": method,
        "precision": precision,
        "epoch": statistics.median(ours[1:] or ours),
        "floor_epoch": statistics.median(floors[1:] or floors),
        "epoch_ratio": statistics.median(steady),
        "whole": whole,
        "floor_whole": floor_whole,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model (a smoke test, not a measurement)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--methods", nargs="+", default=list(METHOD_PROMPTS), choices=list(METHOD_PROMPTS))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the steady state: epochs 2..)")
    parser.add_argument("--test-per-class", type=int, default=4, help="test images per class (whole run)")
    benchlib.threads_option(parser)
    args = parser.parse_args(argv)
    benchlib.apply_threads(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    benchlib.quiet_logs()
    from vlprompt.backbones import load_backbone

    with tempfile.TemporaryDirectory() as tmp:
        args.work = Path(tmp)
        import os

        os.environ["VLPROMPT_CACHE"] = str(args.work / "cache")  # a cold feature cache for every run
        files = benchlib.backbone_files(args.work / "model", args.quick, name="ViT-B-16-quickgelu")
        data = benchlib.dataset_options(args.work / "data", 10, 4, test_per_class=args.test_per_class)
        start = time.perf_counter()
        load_backbone(*files, device=args.device)
        load_seconds = time.perf_counter() - start
        header(args, data)
        for precision in PRECISIONS[args.device]:
            for method in args.methods:  # each row as soon as it is measured
                print(row(measure(method, precision, args, files, data, load_seconds)), flush=True)


def header(args, data) -> None:
    size = "tiny model (--quick)" if args.quick else "ViT-B/16 size, random OpenAI-format weights, QuickGELU"
    print(f"\n#### Prompted image towers vs the minimal-loop floor ({args.device})\n")
    print(f"Machine: {benchlib.machine()}")
    print(
        f"Setting: {size}; {benchlib.data_description(data)}, base half (4 shots), at most {args.test_per_class} "
        f"test images per class; batch 4; {args.epochs} epochs; steady state = median over epochs 2..{args.epochs}\n"
    )
    print("| method | precision | epoch | floor epoch | epoch / floor | whole run | floor whole run | whole / floor |")
    print("|---|---|---:|---:|---:|---:|---:|---:|", flush=True)


def row(r: dict) -> str:
    return (
        f"| {r['method']} | {r['precision']} | {r['epoch']:.2f} s | {r['floor_epoch']:.2f} s "
        f"| {r['epoch_ratio']:.2f}x | {r['whole']:.1f} s | {r['floor_whole']:.1f} s "
        f"| {r['whole'] / r['floor_whole']:.2f}x |"
    )


if __name__ == "__main__":
    main()
