"""Image-tower work of a base-to-new sweep of four methods without image prompts: one shared feature cache vs
four separate ones.

The four methods (``coop``, ``coop+nemesis``, ``kgcoop``, ``coop+dept``) train on the same base classes with the
same few-shot sample and seed, then are evaluated on the new classes — as a ``vlprompt sweep --protocol b2n``
does. Their image towers carry no prompts, so every train view and test image is a frozen feature: with one cache
they are encoded once for all four runs, with four caches once per run. Counted: images through the image tower
(``PromptableCLIP.encode_image``), and wall time; side by side in one process.

Setting (the defaults): b2n presets of each method (learning rate, batch size), every method trained for
``--epochs`` epochs (the presets' own epochs with ``--preset-epochs``), 16 shots, seed 1, 10 classes (5 base,
5 new; real DTD images from ../shared/data/dtd10 when present, else generated JPEGs), a ViT-B/16-sized model
with seeded random weights.

Usage::

    python benchmarks/bench_b2n.py [--epochs 10] [--shots 16] [--device cuda]
    python benchmarks/bench_b2n.py --quick      # tiny model and data: checks that it runs
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

METHODS = ("coop", "coop+nemesis", "kgcoop", "coop+dept")


class ImageCounter:
    """Counts the images that go through ``PromptableCLIP.encode_image`` while installed."""

    def __init__(self):
        from vlprompt.backbones.adapter import PromptableCLIP

        self.cls, self.original, self.images = PromptableCLIP, PromptableCLIP.encode_image, 0

        def counted(backbone, images, *args, **kwargs):
            self.images += int(images.shape[0])
            return self.original(backbone, images, *args, **kwargs)

        PromptableCLIP.encode_image = counted

    def close(self) -> None:
        self.cls.encode_image = self.original


def sweep(base: dict, args, root: Path, shared: bool) -> dict:
    """Train every method on the base classes and evaluate it on the new ones; returns images encoded and time."""
    import vlprompt

    counter = ImageCounter()
    start = time.perf_counter()
    try:
        for i, method in enumerate(METHODS):
            os.environ["VLPROMPT_CACHE"] = str(root / ("cache" if shared else f"cache{i}"))
            options = dict(base)
            if not args.preset_epochs:
                options["epochs"] = args.epochs
            cfg = vlprompt.make_config(
                method,
                options.pop("dataset"),
                protocol="b2n",
                subsample="base",
                out=str(root / method.replace("+", "_") / "train"),
                device=args.device,
                **options,
            )
            run = vlprompt.train(cfg, quiet=True)
            vlprompt.evaluate(run, subsample="new", out=root / method.replace("+", "_") / "new", quiet=True)
    finally:
        counter.close()
    return {"images": counter.images, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--preset-epochs", action="store_true", help="train each method for its preset's epochs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny model and data: check that the script runs")
    args = parser.parse_args()
    if args.quick:
        args.classes, args.shots, args.epochs = 4, 2, 2
    benchlib.quiet_logs()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        backbone, weights = benchlib.backbone_files(tmp / "model", args.quick)
        data = benchlib.dataset_options(tmp / "data", args.classes, args.shots, size=64 if args.quick else 256)
        base = {**data, "backbone": backbone, "pretrained": weights}
        separate = sweep(base, args, tmp / "separate", shared=False)
        shared = sweep(base, args, tmp / "shared", shared=True)
    epochs = "each preset's epochs" if args.preset_epochs else f"{args.epochs} epochs each"
    print(f"\n### Image-tower work of a b2n sweep of {', '.join(METHODS)}\n")
    print(f"Machine: {benchlib.machine()}")
    print(
        f"Setting: {args.classes} classes ({benchlib.data_description(data)}), base half trained, new half "
        f"evaluated, {args.shots} shots, seed 1, {epochs}, "
        f"{'tiny model' if args.quick else 'ViT-B/16 size, random weights'}\n"
    )
    print("| feature cache | images through the image tower | wall time |")
    print("|---|---:|---:|")
    print(f"| four separate caches (one per run) | {separate['images']} | {separate['seconds']:.1f} s |")
    print(f"| one shared cache | {shared['images']} | {shared['seconds']:.1f} s |")
    print(
        f"| **ratio** | **{separate['images'] / shared['images']:.2f}x less image work** | "
        f"{separate['seconds'] / shared['seconds']:.2f}x |"
    )


if __name__ == "__main__":
    main()
