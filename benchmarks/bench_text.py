"""Text-tower benchmark: full 77 tokens vs causal truncation vs shared prefix, and chunked memory.

1. CoOp text tower forward + backward (16 context tokens, generic context) for 100 and 1,000 classes, three
   ways side by side in one process (median of ``--repeats`` after a warm-up):
   * full:      all 77 positions of every prompt (the reference implementations);
   * truncated: every prompt cut after the longest EOT (``shared_prefix`` off);
   * shared:    SOS + context encoded once, only the class suffixes per class (``shared_prefix`` on);
   * floor:     the truncated prompts through a minimal loop over the same frozen blocks in the fast,
                sequence-first layout, nothing of vlprompt around them (:mod:`floor`, issue 25).
2. Peak memory of one 1,000-class CoOp training step at batch 32 (cached image features), one fresh
   process per configuration: shared prefix / truncated, each in one pass and chunked (``text_chunk``,
   0 = automatic) under activation checkpointing. CPU: peak RSS (``resource.getrusage``) and its growth
   during the step; CUDA: ``torch.cuda.max_memory_allocated``.

Usage::

    python benchmarks/bench_text.py                      # ViT-B/16-sized random model (--pretrained none)
    python benchmarks/bench_text.py --quick              # tiny model, seconds: checks that it runs
    python benchmarks/bench_text.py --classes 100 --repeats 5 --device cuda

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from vlprompt.backbones.options import EncodeOptions

ADJECTIVES = ["red", "small", "wooden", "striped", "old", "giant", "spotted", "electric", "wild", "golden"]
NOUNS = [
    "dog",
    "cat",
    "car",
    "boat",
    "bird",
    "house",
    "tree",
    "chair",
    "lamp",
    "guitar",
    "snake",
    "spider",
    "truck",
    "bottle",
    "flower",
    "fish",
    "horse",
    "kettle",
    "mushroom",
    "bridge",
    "tower",
    "robin",
    "shark",
    "beetle",
    "violin",
    "train",
    "crane",
    "teapot",
    "lizard",
    "jacket",
]
MODES = ("shared", "shared chunked", "truncated", "truncated chunked")
NO_CHUNK = 1 << 40


def class_names(k: int):
    """``k`` distinct ImageNet-like names of 2 to 5 words."""
    extras = ["", "terrier", "of the north", "with long tail"]
    names = []
    for i in range(k):
        words = [ADJECTIVES[i % 10], NOUNS[i // 10 % 30], extras[i // 300 % 4], str(i) if i >= 1200 else ""]
        names.append(" ".join(w for w in words if w))
    return names


def load(args):
    from vlprompt.backbones import load_backbone

    logging.getLogger("vlprompt.backbones.loading").setLevel(logging.ERROR)  # "random weights" is intended
    if args.quick:
        path = Path(tempfile.mkdtemp()) / "tiny.json"
        path.write_text(json.dumps(benchlib.TINY))
        return load_backbone(str(path), "none", device=args.device)
    return load_backbone(args.backbone, args.pretrained, device=args.device)


def coop(backbone, k: int, n_ctx: int):
    """A CoOp task for ``k`` classes, on its own view of ``backbone`` (run-default encoder options)."""
    from vlprompt import create_task
    from vlprompt.task import LabelSpace

    return create_task("coop", backbone, LabelSpace(class_names(k)), overrides=[f"coop.n_ctx={n_ctx}"])


def sync(backbone):
    if backbone.device.type == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeats: int, backbone) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(backbone)
        start = time.perf_counter()
        fn()
        sync(backbone)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------- 1. speed
def time_paths(backbone, k: int, args, floor_model):
    """``(tokens, full, truncated, shared, floor)``: median seconds of one text-tower forward + backward."""
    learner = coop(backbone, k, args.n_ctx).learner
    view = learner.backbone  # the task's own view: its options are set here, the loaded backbone is left alone
    view.options = EncodeOptions(text_chunk=NO_CHUNK)  # timing compares the paths, each in one pass
    prompts = learner.prompts
    ids_full = backbone.tokenize([f"{learner.prefix_text} {n}." for n in prompts.classnames])
    with torch.no_grad():
        emb_full = backbone.token_embed(ids_full)

    def full():
        ctx = learner.ctx.unsqueeze(0).expand(k, -1, -1)
        x = torch.cat([emb_full[:, :1], ctx, emb_full[:, 1 + args.n_ctx :]], dim=1)
        view.encode_text(x, ids_full, truncate=False).square().mean().backward()
        learner.ctx.grad = None

    def path(shared: bool):
        def run():
            view.options = EncodeOptions(text_chunk=NO_CHUNK, shared_prefix=shared)
            learner.text_features().square().mean().backward()
            learner.ctx.grad = None

        return run

    length = prompts.ids.shape[1]
    ids_cut = ids_full[:, :length]
    eot, cut = ids_cut.argmax(dim=-1), emb_full[:, :length]
    mask = torch.full((length, length), float("-inf"), device=backbone.device).triu(1)

    def floor():
        floor_model.encode_text(cut, eot, mask, learner.ctx, []).square().mean().backward()
        learner.ctx.grad = None

    times = [median_time(fn, args.repeats, backbone) for fn in (full, path(False), path(True), floor)]
    tokens = f"77 / {length} / {length - prompts.shared_len}"
    return (tokens, *times)


def bench_speed(backbone, args) -> None:
    from floor import FloorModel

    floor_model = FloorModel(backbone.clip, vision=False)
    rows = [(k, *time_paths(backbone, k, args, floor_model)) for k in args.classes]
    print(f"\n### Text tower forward + backward, {args.n_ctx} context tokens ({device_name(backbone)})\n")
    print(f"Machine: {benchlib.machine()}\n")
    print(
        "| classes | tokens per class: full / truncated / suffix | full 77 | truncated | shared prefix | floor "
        "| full / truncated | truncated / shared | full / shared | truncated / floor | shared / floor |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, tokens, a, b, c, f in rows:
        print(
            f"| {k} | {tokens} | {a:.3f} s | {b:.3f} s | {c:.3f} s | {f:.3f} s | {a / b:.2f}x | {b / c:.2f}x "
            f"| {a / c:.2f}x | {b / f:.2f}x | {c / f:.2f}x |"
        )


# ---------------------------------------------------------------------------------------------- 2. memory
def _proc_status_kib(field: str):
    """``field`` (``VmHWM``, ``VmRSS``) of /proc/self/status in KiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB. Linux: ``VmHWM`` (this program's own; ``ru_maxrss`` would carry over the
    peak of the process that started it, as Linux keeps it across exec)."""
    peak = _proc_status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> int:
    """Reset the peak RSS to the current RSS where Linux allows it (``/proc/self/clear_refs``); returns the
    current peak, so that the peak after a step minus this value is what the step added."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak_rss_kib()


def memory_child(args) -> None:
    """One CoOp training step in this (fresh) process; prints its peak memory as JSON."""
    backbone = load(args)
    task = coop(backbone, args.memory_classes, args.n_ctx)
    task.backbone.options = EncodeOptions(
        shared_prefix=args.child.startswith("shared"),
        text_chunk=args.chunk if args.child.endswith("chunked") else NO_CHUNK,
    )
    torch.manual_seed(0)
    features = torch.randn(args.batch, backbone.embed_dim, device=backbone.device)
    labels = torch.randint(0, args.memory_classes, (args.batch,), device=backbone.device)
    cuda = backbone.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    rss_before = reset_peak_rss()
    start = time.perf_counter()
    out = task(image_features=features)
    torch.nn.functional.cross_entropy(out.logits.float(), labels).backward()
    sync(backbone)
    seconds = time.perf_counter() - start
    rss_after = peak_rss_kib()
    prompts = task.learner.prompts
    view = task.backbone
    tokens = prompts.ids.shape[1] - (prompts.shared_len if view.options.shared_prefix else 0)
    result = {
        "seconds": seconds,
        "chunk": view.text_chunk_size(tokens) if view.options.text_chunk != NO_CHUNK else None,
        "rss_mb": rss_after / 1024,
        "rss_step_mb": (rss_after - rss_before) / 1024,
        "cuda_mb": (torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "cuda_step_mb": ((torch.cuda.max_memory_allocated() - base_cuda) / 2**20) if cuda else None,
    }
    print(json.dumps(result))


def bench_memory(backbone, args, argv) -> None:
    results = {}
    for mode in MODES:
        cmd = [sys.executable, os.path.abspath(__file__), *argv, "--child", mode]
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if done.returncode != 0:
            print(f"{mode}: child failed\n{done.stderr[-2000:]}")
            continue
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    k, b = args.memory_classes, args.batch
    print(f"\n### One CoOp training step, {k} classes, batch {b}, cached image features ({device_name(backbone)})\n")
    print(f"Machine: {benchlib.machine()}\n")
    print(
        "| text path | sequences per pass | step time (cold) | peak RSS | RSS growth in step | CUDA peak | CUDA growth |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, r in results.items():
        cuda = "n/a" if r["cuda_mb"] is None else f"{r['cuda_mb']:.0f} MB"
        cuda_step = "n/a" if r["cuda_step_mb"] is None else f"{r['cuda_step_mb']:.0f} MB"
        chunk = "all" if r["chunk"] is None else str(r["chunk"])
        print(
            f"| {mode} | {chunk} | {r['seconds']:.3f} s | {r['rss_mb']:.0f} MB | {r['rss_step_mb']:.0f} MB "
            f"| {cuda} | {cuda_step} |"
        )


def device_name(backbone) -> str:
    if backbone.device.type == "cuda":
        return torch.cuda.get_device_name(backbone.device)
    return f"CPU, {torch.get_num_threads()} threads"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="ViT-B-16")
    parser.add_argument("--pretrained", default="none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--classes", default="100,1000", help="comma-separated class counts for the timing table")
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-classes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=0, help="text_chunk of the chunked runs (0 = automatic)")
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes: check that the script runs")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    benchlib.threads_option(parser)
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.quick and args.child is None:
        raw += ["--classes", "20,50", "--repeats", "1", "--memory-classes", "50", "--batch", "4", "--chunk", "8"]
        args = parser.parse_args(raw)
    benchlib.apply_threads(args)
    args.classes = [int(c) for c in str(args.classes).split(",") if c]
    if args.child:
        memory_child(args)
        return
    backbone = load(args)
    if args.classes:  # --classes "" measures the memory table only
        bench_speed(backbone, args)
    bench_memory(backbone, args, raw)


if __name__ == "__main__":
    main()
