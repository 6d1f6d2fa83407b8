"""Speed benchmarks, measured side by side in one run on a ViT-B/16-sized random model (CPU).

1. Text tower fwd+bwd for a CoOp step (100 classes, 16 context tokens): full 77-token sequences vs causal
   truncation (run only up to the longest EOT).
2. One CoOp training epoch on a small image dataset: images through the frozen image tower every step
   (the references' behaviour, `--no-feature-cache`) vs the frozen-feature cache (pool built once).

Usage: python benchmarks/bench_speed.py [--classes 100] [--epoch-classes 10] [--images-per-class 4] [--repeats 3]
Prints the timings and the ratios; record them in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_text(backbone, classes: int, repeats: int) -> None:
    from vlprompt.methods.prompts import placeholder_prefix

    names = [f"class number {i} thing" for i in range(classes)]
    ids = backbone.tokenize([f"{placeholder_prefix(16)} {n}." for n in names])
    with torch.no_grad():
        emb = backbone.token_embed(ids)
    ctx = torch.nn.Parameter(torch.randn(16, backbone.text_width) * 0.02)

    def step(truncate: bool):
        def run():
            x = torch.cat([emb[:, :1], ctx.unsqueeze(0).expand(classes, -1, -1), emb[:, 17:]], dim=1)
            backbone.encode_text(x, ids, truncate=truncate).sum().backward()
            ctx.grad = None

        return run

    full = timeit(step(False), repeats)
    cut = timeit(step(True), repeats)
    keep = int(ids.argmax(-1).max()) + 1
    print(
        f"text tower fwd+bwd, {classes} classes x 16 ctx: full 77 tokens {full:.3f}s, "
        f"truncated to {keep} tokens {cut:.3f}s -> {full / cut:.2f}x faster"
    )


def bench_epoch(backbone, per_class: int, classes: int, repeats: int) -> None:
    from vlprompt.config import TrainConfig
    from vlprompt.data import build_dataset
    from vlprompt.engine import features as fc
    from vlprompt.engine.runner import build_task, label_space, train_stream
    from vlprompt.engine.trainer import _run_epoch
    from vlprompt.methods.configs import CoOpConfig

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        rng = np.random.default_rng(0)
        for split, n in (("train", per_class), ("test", 1)):
            for c in range(classes):
                d = root / split / f"class_{c}"
                d.mkdir(parents=True)
                for i in range(n):
                    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
        ds = build_dataset("folder", root)
        cfg = TrainConfig(epochs=10, batch_size=8, lr=0.002, feature_pool=10)
        task = build_task(backbone, "coop", {"train": cfg, "coop": CoOpConfig(n_ctx=16)}, label_space(ds), "fp32")
        device = torch.device("cpu")
        cache = fc.FeatureCache(backbone, root=Path(tmp) / "cache")
        plain = train_stream(task, ds.train, backbone, cfg, 1, None, 0, False)
        start = time.perf_counter()
        cached = train_stream(task, ds.train, backbone, cfg, 1, cache, 0, False)
        pool_time = time.perf_counter() - start
        epoch = lambda data: (
            lambda: _run_epoch(task, data, torch.optim.SGD(task.parameters(), lr=0.0), cfg, 1, 1, device, False)
        )
        t_plain = timeit(epoch(plain), repeats)
        t_cached = timeit(epoch(cached), repeats)
    n = classes * per_class
    print(
        f"CoOp epoch, {n} train images, {classes} classes, batch 8: no cache {t_plain:.2f}s, "
        f"feature cache {t_cached:.3f}s -> {t_plain / t_cached:.1f}x faster "
        f"(one-off pool of {cfg.feature_pool} views: {pool_time:.1f}s = {pool_time / t_plain:.1f} uncached epochs)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--epoch-classes", type=int, default=10)
    p.add_argument("--images-per-class", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    from vlprompt.backbones import load_backbone

    backbone = load_backbone("ViT-B-16", "none", device="cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ViT-B-16 (random weights)")
    bench_text(backbone, args.classes, args.repeats)
    bench_epoch(backbone, args.images_per_class, args.epoch_classes, args.repeats)


if __name__ == "__main__":
    main()
