"""Helpers every reader shares: locating folders, listing images, reading text lists, checking counts.

Error messages name the expected layout; the dataset layouts are those of CoOp's DATASETS.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from vlprompt.data.base import Datum
from vlprompt.errors import VLPromptError

#: where users find the expected folder layout of every benchmark
LAYOUT_DOC = "CoOp's DATASETS.md"
#: the CoOp template of most datasets
PHOTO = "a photo of a {}."
#: file endings treated as images when a reader lists a folder (case-insensitive)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def require_root(data_root: Optional[Path], name: str) -> Path:
    if data_root is None:
        raise VLPromptError(f"--dataset {name} needs --data-root (the folder that holds the dataset folders)")
    return Path(data_root)


def locate(data_root: Optional[Path], name: str, folder: str, image_subdir: str, layout: str) -> Tuple[Path, Path]:
    """``(dataset folder, image folder)`` of dataset ``name`` under ``--data-root``; a missing one is an error
    that names the path and the expected ``layout``."""
    dataset_dir = require_dir(require_root(data_root, name) / folder, f"{name} dataset folder", layout)
    return dataset_dir, require_dir(dataset_dir / image_subdir, f"{name} image folder", layout)


def reject_split_file(name: str, split_file: Optional[Path]) -> None:
    if split_file:
        raise VLPromptError(f"--split-file does not apply to --dataset {name} (it has no split file); drop it")


def list_images(folder: Path) -> List[str]:
    """Sorted names of the image files directly in ``folder`` (hidden files skipped)."""
    return sorted(
        e.name
        for e in _entries(folder)
        if not e.name.startswith(".") and e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
    )


def list_folders(folder: Path) -> List[str]:
    """Sorted names of the sub-folders of ``folder`` (hidden ones skipped)."""
    return sorted(e.name for e in _entries(folder) if not e.name.startswith(".") and e.is_dir())


def _entries(folder: Path) -> List[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as exc:
        raise VLPromptError(f"cannot read folder {folder}: {exc.strerror or exc}; check that it is readable") from None


def folder_items(image_dir: Path, subdir: str, classes: Iterable[Tuple[str, int, str]]) -> List[Datum]:
    """Items of ``image_dir/subdir/<folder>/*`` for each ``(folder, label, raw class name)``, class by class,
    files sorted; relpaths are relative to ``image_dir``."""
    root = str(image_dir)
    items = []
    for folder, label, raw_name in classes:
        prefix = f"{subdir}/{folder}" if subdir else folder
        for fname in list_images(image_dir / prefix):
            rel = f"{prefix}/{fname}"
            items.append(Datum(os.path.join(root, rel), label, raw_name, rel))
    return items


def read_lines(path: Path, hint: str) -> List[str]:
    """The non-blank, stripped lines of a text file; a missing file is an error that ends with ``hint``."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        raise VLPromptError(f"{path} not found; {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VLPromptError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}; {hint}") from None


def require_dir(path: Path, what: str, layout: str) -> Path:
    if not path.is_dir():
        raise VLPromptError(f"{what} {path} not found; expected layout: {layout}")
    return path


def check_class_count(name: str, found: int, expected: Optional[int], where: Path, strict: bool) -> None:
    if strict and expected is not None and found != expected:
        raise VLPromptError(
            f"{name}: found {found} classes in {where}, expected {expected}; the download is "
            f"incomplete or a wrong file is in place; use --dataset split or folder for a class "
            f"subset"
        )
