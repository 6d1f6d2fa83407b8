"""CoOp split files: reading, serialising, and turning rows into labelled items.

A split file is JSON ``{"train"|"val"|"test": [[relpath, label, classname], ...]}`` with paths relative
to the dataset's image folder (CoOp ``OxfordPets.read_split`` / ``save_split``). The same format, with
only ``train`` and ``val``, stores sampled few-shot splits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from vlprompt.data.base import DatasetSplits, Datum
from vlprompt.errors import VLPromptError

SPLITS = ("train", "val", "test")
#: one split-file entry: (path relative to the image folder, label, raw class name)
Row = Tuple[str, int, str]


def read_split_file(path: Path, required: Sequence[str] = SPLITS) -> Dict[str, List[Row]]:
    """Read and validate a split file; splits not in ``required`` may be absent (they read as empty)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise VLPromptError(f"split file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise VLPromptError(f"cannot read split file {path}: {exc}; fix or re-download it") from None
    return check_split(data, path, required)


def check_split(data, path: Path, required: Sequence[str] = SPLITS) -> Dict[str, List[Row]]:
    """Validate a loaded split file (``path`` names it in errors)."""
    if not isinstance(data, dict):
        raise VLPromptError(f"split file {path} must hold a JSON object with keys {', '.join(SPLITS)}")
    missing = [s for s in required if s not in data]
    if missing:
        raise VLPromptError(
            f"split file {path} has no {' / '.join(missing)} list; "
            f'expected {{"train"|"val"|"test": [[relpath, label, classname], ...]}}'
        )
    return {s: [_check_row(row, path, s, i) for i, row in enumerate(data.get(s, []))] for s in SPLITS}


def _check_row(row, path: Path, split: str, index: int) -> Row:
    ok = (
        isinstance(row, (list, tuple))
        and len(row) == 3
        and isinstance(row[0], str)
        and isinstance(row[1], int)
        and not isinstance(row[1], bool)
        and row[1] >= 0
        and isinstance(row[2], str)
    )
    if not ok:
        raise VLPromptError(
            f"split file {path}: {split}[{index}] = {row!r} is not [relpath, label >= 0, classname]; fix the entry"
        )
    return row[0], row[1], row[2]


def dump_split_json(splits: Dict[str, Iterable[Row]]) -> str:
    """Serialise splits with one row per line, so split files stay readable and diff well."""
    parts = []
    for name, rows in splits.items():
        body = ",\n".join("  " + json.dumps(list(row)) for row in rows)
        parts.append(f"{json.dumps(name)}: [\n{body}\n]" if body else f"{json.dumps(name)}: []")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def rows_of(items: Iterable[Datum]) -> List[Row]:
    return [(d.relpath, d.label, d.classname) for d in items]


def items_from_rows(rows: Iterable[Row], image_dir: Path) -> List[Datum]:
    root = str(image_dir)
    return [Datum(os.path.join(root, rel), label, name, rel) for rel, label, name in rows]


def prompt_name(raw: str) -> str:
    """The class name used in prompts: the raw name with ``_`` replaced by a space (CoOp rule)."""
    return raw.replace("_", " ")


def classnames_from_items(items: Iterable[Datum], source: Path) -> List[str]:
    """Label -> prompt name over all items; labels must be 0..n-1 with one name each."""
    names: Dict[int, str] = {}
    for d in items:
        if names.setdefault(d.label, d.classname) != d.classname:
            raise VLPromptError(
                f"{source}: label {d.label} is named both {names[d.label]!r} and "
                f"{d.classname!r}; give each label one class name"
            )
    if not names:
        raise VLPromptError(f"{source} lists no images")
    gaps = sorted(set(range(max(names) + 1)) - set(names))
    if gaps:
        raise VLPromptError(
            f"{source}: labels must be 0..{max(names)} without gaps but label {gaps[0]} "
            f"has no image ({len(gaps)} missing); relabel the classes contiguously"
        )
    return [prompt_name(names[i]) for i in range(len(names))]


def user_split_file(split_file: Path) -> Path:
    """``--split-file`` as a path, which must exist (user-chosen split files are never regenerated)."""
    path = Path(split_file)
    if not path.is_file():
        raise VLPromptError(f"--split-file {path} not found; pass an existing CoOp split JSON")
    return path


def fewshot_dir_for(split_path: Path) -> Path:
    """Few-shot cache folder for a user-chosen split file: next to it, keyed by its name."""
    return split_path.parent / "split_fewshot" / split_path.stem


def splits_from_rows(name: str, image_dir: Path, rows: Dict[str, List[Row]], source: Path, **fields) -> DatasetSplits:
    """Build a :class:`DatasetSplits` whose class names come from the rows' labels and names."""
    items = {s: items_from_rows(rows[s], image_dir) for s in SPLITS}
    classnames = classnames_from_items([d for s in SPLITS for d in items[s]], source)
    return DatasetSplits(name=name, image_dir=image_dir, classnames=classnames, **items, **fields)
