"""Whole CoOp runs, side by side in one process: the references' way vs vlprompt's default vs its fastest option.

Setting (the defaults): CoOp, 16 context tokens, 3 epochs, batch 8, 4 shots per class, seed 1, a ViT-B/16-sized
model with seeded random weights (speed does not depend on the values), on 10 classes (40 train images; real DTD
images from ../shared/data/dtd10 when present, else generated JPEGs) and on 100 classes (generated JPEGs, 400
train images). Each variant is a complete ``vlprompt.train`` call — data, backbone, training, test evaluation — with
a fresh, empty feature cache and run directory:

* ``reference-style``: ``--no-feature-cache`` (images through the image tower every step),
  ``train.causal_truncation=false`` and ``train.shared_prefix=false`` (all 77 text positions for every class);
* ``default``: the out-of-the-box run (a fresh augmented view of every image in every epoch, as the references;
  features of each view computed once in no-grad batches; shared-prefix, truncated text);
* ``fastest``: the default plus ``--feature-pool N`` (each epoch draws one of N cached views; default N = 1).

"whole run" is the wall time of the call; "training" is the run's own ``train_time_s`` (the epochs only).

Usage::

    python benchmarks/bench_run.py                        # 10 and 100 classes, ViT-B/16 size (long on a CPU)
    python benchmarks/bench_run.py --classes 10 --device cuda
    python benchmarks/bench_run.py --quick                # tiny model, tiny data: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib

VARIANTS = ("reference-style", "default", "fastest")


def variant_config(name: str, base: dict, args, out: Path):
    from vlprompt import make_config

    sets = [f"coop.n_ctx={args.n_ctx}"]
    options = dict(base)
    if name == "reference-style":
        options["feature_cache"] = False
        sets += ["train.causal_truncation=false", "train.shared_prefix=false"]
    elif name == "fastest":
        options["feature_pool"] = args.pool
    return make_config(
        "coop",
        options.pop("dataset"),
        overrides=sets,
        out=str(out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        device=args.device,
        **options,
    )


def run_variant(name: str, base: dict, args, tmp: Path) -> dict:
    import vlprompt

    os.environ["VLPROMPT_CACHE"] = str(tmp / f"cache-{name}")  # every variant starts from an empty cache
    cfg = variant_config(name, base, args, tmp / f"run-{name}")
    start = time.perf_counter()
    run = vlprompt.train(cfg, quiet=True)
    whole = time.perf_counter() - start
    return {"whole": whole, "training": run.results["train_time_s"], "accuracy": run.results["accuracy"]}


def warm_page_cache(paths) -> None:
    """Read every input file once so that no variant pays the first disk read."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="10,100", help="comma-separated class counts")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--pool", type=int, default=1, help="--feature-pool of the fastest variant")
    parser.add_argument("--test-per-class", type=int, default=0, help="cap the test images per class (0: all)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny model and data: check that the script runs")
    args = parser.parse_args()
    if args.quick:
        args.classes, args.shots, args.epochs, args.test_per_class = "4,12", 2, 2, 2
    benchlib.quiet_logs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        backbone, weights = benchlib.backbone_files(tmp / "model", args.quick)
        for k in [int(c) for c in args.classes.split(",") if c]:
            data = benchlib.dataset_options(
                tmp / f"data{k}", k, args.shots, args.test_per_class, size=64 if args.quick else 256
            )
            base = {**data, "backbone": backbone, "pretrained": weights}
            images = [*Path(data["data_root"]).rglob("*.jpg"), Path(weights)]
            warm_page_cache(images)
            results = {name: run_variant(name, base, args, tmp / f"k{k}") for name in VARIANTS}
            rows.append((k, data, results))
    print(f"\n### Whole CoOp runs ({'tiny model' if args.quick else 'ViT-B/16 size, random weights'})\n")
    print(f"Machine: {benchlib.machine()}")
    print(
        f"Setting: coop, {args.n_ctx} context tokens, {args.epochs} epochs, batch {args.batch_size}, "
        f"{args.shots} shots, seed 1, precision {args.precision}, fastest = --feature-pool {args.pool}\n"
    )
    print(
        "| classes | train images | data | variant | whole run | training | whole: speed-up | "
        "training: speed-up | accuracy |"
    )
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for k, data, results in rows:
        ref = results["reference-style"]
        for name, r in results.items():
            print(
                f"| {k} | {k * args.shots} | {benchlib.data_description(data)} | {name} | {r['whole']:.2f} s | "
                f"{r['training']:.2f} s | {ref['whole'] / r['whole']:.2f}x | {ref['training'] / r['training']:.2f}x "
                f"| {r['accuracy']:.2f} |"
            )


if __name__ == "__main__":
    main()
