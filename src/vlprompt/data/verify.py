"""Dataset checks: ``vlprompt data verify`` (the layout, and that every split entry exists on disk), and
:func:`check_usable` — what a run checks before any work (and before anything is written)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

from vlprompt.data import read_dataset
from vlprompt.data.base import DatasetSplits
from vlprompt.data.splitfile import SPLITS
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
    return summary(dataset)


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
