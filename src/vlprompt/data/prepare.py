"""``vlprompt data prepare``: download (or read ``--from``) a benchmark's archives and write the CoOp layout.

Per dataset (:data:`vlprompt.data.recipes.RECIPES`), atomically:

1. each archive is downloaded into ``<data-root>/.vlprompt-prepare/downloads/`` (resumable, MD5-checked;
   :mod:`vlprompt.data.download`) or taken from ``--from`` (checked the same way, never modified);
2. archives are extracted into ``<data-root>/.vlprompt-prepare/<folder>/`` and arranged into the dataset folder;
   the published split file (fetched from a pinned public copy or taken from ``--from``, checked by its SHA-256;
   :mod:`vlprompt.data.published`) is written next to the images (or, for the datasets whose published split is
   not public, or where it cannot be had offline, the split is regenerated as CoOp does);
3. the result is verified as ``vlprompt data verify`` does, marked as prepared, and renamed to
   ``<data-root>/<folder>`` in one step; downloaded archives are then deleted (``--from`` inputs are only read;
   an extracted folder given with ``--from`` is hard-linked, or copied across file systems).

An interrupted prepare leaves only the staging folder (partial downloads resume, the extraction is redone); a
prepared dataset is a no-op; a ``<data-root>/<folder>`` that vlprompt did not write is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from vlprompt.data import published
from vlprompt.data.archives import extract, is_archive
from vlprompt.data.download import check_md5, download
from vlprompt.data.recipes import RECIPES, Recipe, Resource
from vlprompt.errors import VLPromptError
from vlprompt.progress import CONSOLE

logger = logging.getLogger("vlprompt.data")

#: the staging folder under the data root (partial downloads, extraction in progress)
STAGING = ".vlprompt-prepare"
#: the file that marks a dataset folder written by ``vlprompt data prepare``
MARKER = ".vlprompt-prepared.json"


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    #: images per split (train, val, test) as read back from the data root
    counts: Tuple[int, int, int]


def prepare(
    name: str, data_root: Path, *, download_files: bool, from_path: Optional[Path], workers: int = 4
) -> Outcome:
    """Prepare dataset ``name`` under ``data_root`` (see the module doc); returns what was done."""
    recipe = RECIPES[name]
    target = data_root / recipe.folder
    if (target / MARKER).is_file():
        return Outcome(name, "already prepared", split_counts(name, data_root))
    if target.exists() or target.is_symlink():
        raise VLPromptError(
            f"{target} already exists and was not written by `vlprompt data prepare`; nothing was changed: check "
            f"it with `vlprompt data verify --dataset {name} --data-root {data_root}`, or move it away to prepare "
            f"{name} anew"
        )
    if not download_files and from_path is None:
        raise VLPromptError(f"vlprompt data prepare {name}: pass --download, or --from PATH (the archives you have)")
    work = data_root / STAGING / recipe.folder
    shutil.rmtree(work, ignore_errors=True)  # an interrupted extraction is redone; downloads are kept
    src, out = work / "extracted", work / recipe.folder
    try:
        src.mkdir(parents=True)
        downloaded = []
        for resource in recipe.resources:
            path = _obtain(recipe, resource, data_root, download_files, from_path)
            if path.is_dir():
                _link_tree(path, src / path.name)
            elif is_archive(path):
                logger.info("%s: extracting %s", name, path.name, extra=CONSOLE)
                extract(path, src)
            else:
                shutil.copy2(path, src / resource.filename)
            if path.parent == data_root / STAGING / "downloads":
                downloaded.append(path)
        out.mkdir()
        recipe.arrange(src, out, workers)
        split = _install_published(recipe, out)
        from vlprompt.data.verify import verify_dataset

        verify_dataset(name, work) if split else _regenerate(recipe, work)
        (out / MARKER).write_text(json.dumps({"dataset": name, "files": [r.filename for r in recipe.resources]}))
        os.replace(out, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _remove_if_empty(data_root / STAGING / "downloads")
        _remove_if_empty(data_root / STAGING)
        raise
    shutil.rmtree(work, ignore_errors=True)
    for path in downloaded:
        path.unlink()
    _remove_if_empty(data_root / STAGING / "downloads")
    _remove_if_empty(data_root / STAGING)
    return Outcome(name, "prepared", split_counts(name, data_root))


def _obtain(recipe: Recipe, resource: Resource, data_root: Path, download_files: bool, from_path: Optional[Path]):
    """The local file (or extracted folder) of ``resource``: from ``--from``, else downloaded."""
    if from_path is not None:
        if from_path.is_file():
            if from_path.name == resource.filename or len(recipe.resources) == 1:
                check_md5(from_path, resource.md5, f"--from {from_path}")
                return from_path
        elif (from_path / resource.filename).is_file():
            check_md5(from_path / resource.filename, resource.md5, f"--from {from_path / resource.filename}")
            return from_path / resource.filename
        elif resource.extracted and (from_path / resource.extracted).is_dir():
            return from_path / resource.extracted
        if not download_files:
            names = ", ".join(r.filename for r in recipe.resources)
            raise VLPromptError(
                f"--from {from_path}: {resource.filename} not found there; {recipe.name} needs {names} "
                f"(a folder holding them, or one of them as a file)"
            )
    if resource.url is None:
        raise VLPromptError(f"{resource.filename} cannot be downloaded; {recipe.manual}")
    downloads = data_root / STAGING / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    manual = f"if the host is gone, {recipe.manual}" if recipe.manual.startswith("download") else recipe.manual
    return download(resource.url, downloads / resource.filename, resource.md5, manual)


def _link_tree(src: Path, dest: Path) -> None:
    """Hard-link (copy across file systems) a user's extracted folder into the staging area: the user's files
    are never moved or changed."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link)


def _install_published(recipe: Recipe, out: Path) -> bool:
    """Write the published files the readers need (Oxford Flowers' ``cat_to_name.json``) and the published split
    file next to the images, from the checked copies shipped in the package (:mod:`vlprompt.data.published`).
    False when CoOp's split for ``recipe`` is not public (it is then regenerated as CoOp does)."""
    for name in recipe.published_files:
        (out / name).write_bytes(published.published(name))
    if not recipe.split_file or recipe.split_file not in published.SHA256:
        return False
    (out / recipe.split_file).write_bytes(published.published(recipe.split_file))
    return True


def _regenerate(recipe: Recipe, work: Path) -> None:
    """Read the new dataset once (a split benchmark without its published split regenerates and writes its split file as
    CoOp does, with a log line), then verify it."""
    from vlprompt.data import read_dataset
    from vlprompt.data.verify import verify_dataset

    read_dataset(recipe.name, work, **({"published": False} if recipe.split_file else {}))
    verify_dataset(recipe.name, work)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def split_counts(name: str, data_root: Path) -> Tuple[int, int, int]:
    from vlprompt.data import read_dataset

    dataset = read_dataset(name, data_root, regenerate=False)
    return len(dataset.train), len(dataset.val), len(dataset.test)


def plan(names: Sequence[str], data_root: Path, from_path: Optional[Path]) -> List[str]:
    """``--dry-run``: what prepare would fetch for each dataset (file, size, source, checksum); writes nothing."""
    lines = []
    for name in names:
        recipe = RECIPES[name]
        target = data_root / recipe.folder
        state = (
            "already prepared (nothing to do)"
            if (target / MARKER).is_file()
            else "exists, not written by vlprompt (left alone)"
            if target.exists()
            else "to prepare"
        )
        lines.append(f"{name} -> {target}: {state}")
        for r in recipe.resources:
            local = from_path is not None and (
                (from_path / r.filename).is_file() or (from_path.is_file() and from_path.name == r.filename)
            )
            where = f"from {from_path}" if local else r.url or f"not downloadable ({recipe.manual})"
            check = f"md5 {r.md5}" if r.md5 else "no published checksum"
            lines.append(f"  {r.filename:<42} ~{r.size:>7}  {where}  ({check})")
        lines.extend(f"  {line}" for line in _published_plan(recipe))
    return lines


def _published_plan(recipe: Recipe) -> List[str]:
    if not recipe.split_file or recipe.split_file not in published.SHA256:
        return ["split: regenerated as CoOp does (CoOp's split file is not public)"]
    lines = []
    for name in (recipe.split_file, *recipe.published_files):
        lines.append(f"published {name}: shipped with vlprompt  (sha256 {published.SHA256[name][:12]}…)")
    return lines


def summary_table(outcomes: Sequence[Outcome]) -> List[str]:
    """Images per split per dataset next to the published counts (``!`` marks a difference)."""
    head = f"{'dataset':<16} {'train':>9} {'val':>7} {'test':>7}   {'published train/val/test':<26} status"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        published = RECIPES[o.name].counts
        mark = "" if o.counts == published else " !"
        ref = "/".join(str(n) for n in published)
        lines.append(f"{o.name:<16} {o.counts[0]:>9} {o.counts[1]:>7} {o.counts[2]:>7}   {ref:<26} {o.status}{mark}")
    return lines
