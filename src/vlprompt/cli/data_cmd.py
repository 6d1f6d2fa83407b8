"""``vlprompt data verify|fewshot``: check a dataset layout; export a sampled few-shot split."""

from __future__ import annotations

import argparse
from pathlib import Path

from vlprompt.cli.common import add_dataset_args
from vlprompt.errors import VLPromptError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="check dataset layouts and export few-shot splits",
        description="Dataset utilities (no image is decoded).",
    )
    sub = p.add_subparsers(dest="data_command", metavar="<data command>")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    verify = sub.add_parser(
        "verify",
        help="check a dataset's layout and files; print per-split counts",
        description="Checks the folder layout, the split file and that every split entry "
        "exists on disk; prints image and class counts per split, or one line "
        "that says what to fix (exit status 2).",
    )
    add_dataset_args(verify, shots=False, prompts=False)
    verify.set_defaults(func=run_verify)

    fewshot = sub.add_parser(
        "fewshot",
        help="write the sampled few-shot split as JSON",
        description="Samples K images per class from train (and min(K, 4) from val) "
        "exactly as CoOp does for --seed, applies --subsample (labels are "
        "renumbered for base/new), and writes "
        '{"train": [[relpath, label, classname], ...], "val": [...]} with '
        "relpaths as in the split file. Reads no image.",
    )
    add_dataset_args(fewshot, shots=True, prompts=False)
    fewshot.add_argument("--out", required=True, help="the JSON file to write")
    fewshot.set_defaults(func=run_fewshot)


def run_verify(args: argparse.Namespace) -> int:
    from vlprompt.data.verify import verify_dataset

    for line in verify_dataset(args.dataset, args.data_root, split_file=args.split_file):
        print(line)
    return 0


def run_fewshot(args: argparse.Namespace) -> int:
    from vlprompt.data import build_dataset, fewshot_json
    from vlprompt.fileio import check_output_file, json_where, write_text

    if args.shots < 1:
        raise VLPromptError(f"--shots must be >= 1 for `vlprompt data fewshot` (got {args.shots})")
    check_output_file(Path(args.out), "--out", "few-shot split", json_where(is_fewshot_json))
    dataset = build_dataset(
        args.dataset,
        args.data_root,
        shots=args.shots,
        seed=args.seed,
        subsample=args.subsample,
        split_file=args.split_file,
    )
    out = Path(args.out)
    write_text(out, fewshot_json(dataset))
    print(
        f"wrote {len(dataset.train)} train / {len(dataset.val)} val images of {dataset.num_classes} classes "
        f"({args.shots}-shot, seed {args.seed}, {args.subsample} classes) to {out}"
    )
    return 0


def is_fewshot_json(data) -> bool:
    """``{"train": [...], "val": [...]}``: a split this command wrote (and may overwrite)."""
    return isinstance(data, dict) and set(data) == {"train", "val"} and all(isinstance(v, list) for v in data.values())
