"""Helpers shared by the benchmark scripts: the machine line, a seeded model saved as a weights file, the data.

Every script writes only under a temporary folder (runs, caches, generated images, weights) and prints markdown.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

os.environ.setdefault("TQDM_DISABLE", "1")  # before torch imports tqdm: the runs' progress bars are not the output
import torch

REPO = Path(__file__).resolve().parents[1]
DTD10 = REPO.parent / "shared" / "data" / "dtd10" / "images"
DTD_SPLIT = REPO.parent / "shared" / "data" / "coop_splits" / "split_zhou_DescribableTextures.json"

#: a width-64 CLIP for --quick (seconds on a laptop)
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 3},
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: CPU model and cores, torch version and threads, GPU if any."""
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (
        f"{cpu_model()} ({os.cpu_count()} cores), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads{gpu}, Python {platform.python_version()}"
    )


def threads_option(parser) -> None:
    """``--threads N``: torch threads (0: torch's default). One thread gives steadier ratios on a loaded machine,
    where a multi-threaded op waits for its slowest thread."""
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def apply_threads(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)


def quiet_logs() -> None:
    """No log lines from the runs a benchmark makes (their output is the table)."""
    logging.getLogger("vlprompt").setLevel(logging.ERROR)


def median_time(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def backbone_files(folder: Path, quick: bool, name: str = "ViT-B-16"):
    """``(--backbone, --pretrained)`` of a seeded random model written to ``folder``: the tiny CLIP for
    ``quick``, else open_clip's ``name`` architecture (ViT-B/16 size) as a safetensors file."""
    from safetensors.torch import save_file

    from vlprompt.backbones.loading import build_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if quick:
        config = folder / "tiny.json"
        config.write_text(json.dumps(TINY))
        model, backbone = build_model(TINY), str(config)
    else:
        import open_clip

        model, backbone = open_clip.create_model(name, pretrained=None), name
    weights = folder / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return backbone, str(weights)


def dataset_options(folder: Path, classes: int, shots: int, test_per_class: int = 0, size: int = 256) -> Dict:
    """Data options (``make_config`` keywords) for ``classes`` classes with ``shots`` train images each: real DTD
    images (``../shared/data/dtd10``) when there are enough classes there, else generated JPEGs (``size`` px).
    ``test_per_class`` caps the test images per class (0: the split's own test set; generated: 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    if classes <= 10 and DTD10.is_dir() and DTD_SPLIT.is_file():
        split = json.loads(DTD_SPLIT.read_text())
        kept = {}
        for name, rows in split.items():
            counts: Dict[int, int] = {}
            kept[name] = []
            for row in rows:
                label = row[1]
                if label < classes and not (
                    name == "test" and test_per_class and counts.get(label, 0) >= test_per_class
                ):
                    kept[name].append(row)
                    counts[label] = counts.get(label, 0) + 1
        path = folder / "dtd_subset.json"
        path.write_text(json.dumps(kept))
        options = {"dataset": "split", "split_file": str(path), "data_root": str(DTD10)}
    else:
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        root = folder / "images"
        for split, n in (("train", shots), ("test", test_per_class or 1)):
            for c in range(classes):
                d = root / split / f"texture_{c:03d}"
                d.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
                    Image.fromarray(base).resize((size, size), Image.BICUBIC).save(d / f"{i}.jpg", quality=90)
        options = {"dataset": "folder", "data_root": str(root)}
    return {**options, "shots": shots, "seed": 1}


def cli_flags(options: Dict) -> List[str]:
    """``--data-root X --shots 4 ...`` for data options (and ``backbone``/``pretrained``)."""
    flags = []
    for key, value in options.items():
        if value is not None:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def data_description(options: Dict) -> str:
    return "real DTD images (../shared/data/dtd10)" if options["dataset"] == "split" else "generated JPEGs"
