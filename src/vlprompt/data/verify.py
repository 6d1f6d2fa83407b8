"""Dataset checks: ``vlprompt data verify`` (the layout, and that every split entry exists on disk), and
:func:`check_usable` — what a run checks before any work (and before anything is written)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

from vlprompt.data import read_dataset
from vlprompt.data.base import DatasetSplits
from vlprompt.data.benchmarks import SPLIT_BENCHMARKS
from vlprompt.data.published import SHA256, published, sha256
from vlprompt.data.splitfile import SPLITS, read_split_file
from vlprompt.errors import VLPromptError

#: how many missing files an error names
SHOW_MISSING = 3


def verify_dataset(
    name: str, data_root: Optional[Union[str, Path]], split_file: Optional[Union[str, Path]] = None
) -> List[str]:
    """Read ``name`` without regenerating anything and stat every split entry; returns the report lines
    (per-split image and class counts) or raises :class:`VLPromptError` with the fix."""
    dataset = read_dataset(name, data_root, split_file=split_file, regenerate=False)
    entries = {d.impath: d.relpath for s in SPLITS for d in dataset.split(s)}
    missing = [rel for path, rel in entries.items() if not os.path.isfile(path)]
    if missing:
        shown = ", ".join(missing[:SHOW_MISSING])
        raise VLPromptError(
            f"{len(missing)} split entries are missing under {dataset.image_dir} (e.g. {shown}); "
            f"point --data-root at the complete dataset or re-download the images"
        )
    return summary(dataset) + split_lines(name, data_root, split_file)


#: benchmarks whose regenerated split equals the published file exactly (tested in test_data_readers.py)
REGENERATION_EXACT = ("stanford_cars", "ucf101", "oxford_flowers")


def split_lines(
    name: str, data_root: Optional[Union[str, Path]], split_file: Optional[Union[str, Path]] = None
) -> List[str]:
    """Which split a benchmark uses, and how it relates to the published CoOp split (empty for datasets without
    a split file)."""
    spec = next((s for s in SPLIT_BENCHMARKS if s.name == name), None)
    if spec is None:
        return []
    path = Path(split_file) if split_file else Path(data_root).expanduser() / spec.folder / spec.split_name
    if spec.split_name not in SHA256:
        return [
            f"  split: {path}; CoOp's {spec.split_name} is not public, so a "
            f"regenerated one follows CoOp's procedure on sorted file lists and its train/val/test assignment "
            f"differs from CoOp's published file (same per-class sizes)"
        ]
    if not path.is_file():
        return [f"  split: {path} does not exist; the published CoOp {spec.split_name} shipped with vlprompt is used"]
    if sha256(path.read_bytes()) == SHA256[spec.split_name]:
        exact = " (vlprompt's regeneration reproduces it exactly)" if name in REGENERATION_EXACT else ""
        return [f"  split: {path} = the published CoOp {spec.split_name}{exact}"]
    have = published(spec.split_name)
    theirs = json.loads(have)
    ours = read_split_file(path)
    keys = {s: {tuple(r) for r in theirs[s]} for s in SPLITS}
    moved = sum(1 for s in SPLITS for r in ours[s] if tuple(r) not in keys[s])
    sizes = " / ".join(f"{len(ours[s])} vs {len(theirs[s])}" for s in SPLITS)
    return [
        f"  split: {path} differs from the published CoOp {spec.split_name}: train / val / "
        f"test {sizes} entries, {moved} entries not in the published split"
    ]


def check_usable(dataset: DatasetSplits, where: str, splits: Sequence[str], check_files: bool = True) -> None:
    """Refuse, with one line naming ``where`` (the flags that chose the data), a dataset a run cannot use: an empty
    split among ``splits``, fewer than two classes, a class without training images (when ``train`` is among
    ``splits``), or — with ``check_files`` — a listed image that is not on disk."""
    for split in splits:
        if not dataset.split(split):
            fix = "training needs train images" if split == "train" else "check the dataset folder or split file"
            raise VLPromptError(f"{where}: the {split} split is empty; {fix}")
    if dataset.num_classes < 2:
        raise VLPromptError(
            f"{where}: the label space has {dataset.num_classes} class(es) ({', '.join(dataset.classnames)}); "
            "a classifier needs at least 2 — use more classes or another --subsample"
        )
    if "train" in splits:
        without = sorted(set(range(dataset.num_classes)) - {d.label for d in dataset.train})
        if without:
            raise VLPromptError(
                f"{where}: class {dataset.classnames[without[0]]!r} has no training images "
                f"({len(without)} class(es) without); every class needs at least one to train on"
            )
    if check_files:
        missing = [d.impath for split in splits for d in dataset.split(split) if not os.path.isfile(d.impath)]
        if missing:
            raise VLPromptError(
                f"{where}: {len(missing)} listed images are missing (e.g. {missing[0]}); restore them, fix the "
                "split file, or pass --skip-corrupt to skip them"
            )


def summary(dataset: DatasetSplits) -> List[str]:
    lines = [f"{dataset.name}: {dataset.num_classes} classes, images in {dataset.image_dir}"]
    for split in SPLITS:
        items = dataset.split(split)
        lines.append(f"  {split:<5} {len(items):>7} images  {len({d.label for d in items}):>5} classes")
    return lines
