"""Datasets: the 11 CoOp benchmarks, the 4 ImageNet variants, custom ``folder``/``split`` datasets, few-shot
sampling, base/new subsampling, transforms, image loading and prompt templates.

``build_dataset(name, data_root, shots=K, seed=S, subsample=...)`` is what a run uses: it reads the full
split (``DATASETS[name]``), samples K shots per class exactly as CoOp does (cached as JSON), then keeps the
base or new half of the classes. Importing this package registers every reader.
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from pathlib import Path
from typing import Optional, Union

from vlprompt.data import benchmarks, custom, imagenet  # noqa: F401  (register the readers)
from vlprompt.data.base import DATASETS, DatasetSplits, Datum
from vlprompt.data.fewshot import fewshot_cache_path, fewshot_json, load_fewshot, sample_fewshot
from vlprompt.data.overrides import apply_overrides
from vlprompt.data.subsample import subsample_classes
from vlprompt.data.templates import (
    IMAGENET_TEMPLATES,
    IMAGENET_TEMPLATES_SELECT,
    PROMPTSRC_TEMPLATES,
    ensemble_templates,
)
from vlprompt.errors import VLPromptError

__all__ = [
    "DATASETS",
    "DatasetSplits",
    "Datum",
    "build_dataset",
    "read_dataset",
    "load_fewshot",
    "sample_fewshot",
    "fewshot_cache_path",
    "fewshot_json",
    "subsample_classes",
    "ImageDataset",
    "collate_skip_none",
    "build_transform",
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_TEMPLATES",
    "IMAGENET_TEMPLATES_SELECT",
    "PROMPTSRC_TEMPLATES",
    "ensemble_templates",
]

PathLike = Union[str, Path]
logger = logging.getLogger("vlprompt.data")

#: names that need torch/torchvision, imported on first use so that reading splits stays fast
_LAZY = {
    "ImageDataset": "images",
    "collate_skip_none": "images",
    "build_transform": "transforms",
    "CLIP_MEAN": "transforms",
    "CLIP_STD": "transforms",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"vlprompt.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'vlprompt.data' has no attribute {name!r}")


def read_dataset(
    name: str, data_root: Optional[PathLike], *, split_file: Optional[PathLike] = None, **options
) -> DatasetSplits:
    """The full split of dataset ``name`` (no sampling): ``DATASETS[name](data_root, **options)``.

    ``options`` are passed on to the reader (the built-in ones take ``strict=False`` to skip the class-count
    check, and ``regenerate=False`` to refuse regenerating a missing split file; the split-file benchmarks also
    take ``published=False`` to regenerate a missing split file instead of reading the checked copy of the
    published one that ``vlprompt data prepare`` fetched).
    """
    reader = DATASETS.get(name)
    root = Path(data_root).expanduser().absolute() if data_root is not None else None
    if split_file is not None:
        options["split_file"] = Path(split_file).expanduser().absolute()
    return reader(root, **options)


def build_dataset(
    name: str,
    data_root: Optional[PathLike],
    *,
    shots: int = 0,
    seed: int = 1,
    subsample: str = "all",
    split_file: Optional[PathLike] = None,
    template: Optional[str] = None,
    templates_file: Optional[PathLike] = None,
    classnames_file: Optional[PathLike] = None,
    **options,
) -> DatasetSplits:
    """Read ``name``, sample ``shots`` per class with ``seed`` (0 = all images), then keep ``subsample``
    (``all``, ``base`` or ``new``) classes: CoOp's order of operations. ``template``, ``templates_file`` and
    ``classnames_file`` replace the dataset's prompts and class names (:mod:`vlprompt.data.overrides`)."""
    if shots < 0:
        raise VLPromptError(f"--shots must be >= 0 (0 = all images), got {shots}")
    dataset = read_dataset(name, data_root, split_file=split_file, **options)
    dataset = apply_overrides(dataset, template, templates_file, classnames_file)
    if shots and dataset.train:
        counts = Counter(d.label for d in dataset.train)
        most = max(counts.values())
        if shots > most:
            raise VLPromptError(
                f"--shots {shots}: --dataset {name} has at most {most} train images per class; "
                f"use --shots {most} or fewer (0 = all images)"
            )
        fewer = sorted(label for label, n in counts.items() if n < shots)
        if fewer:
            logger.warning(
                "--shots %d: %d class(es) of %s have fewer train images (e.g. %r: %d) and use all they have",
                shots, len(fewer), name, dataset.classnames[fewer[0]], counts[fewer[0]],
            )  # fmt: skip
    return subsample_classes(load_fewshot(dataset, shots, seed), subsample)


from vlprompt.toy import datasets as _toy_datasets  # noqa: E402,F401  (registers toy-b2n, toy-shift, toy-xd)
