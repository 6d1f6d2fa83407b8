"""Custom datasets without code: an ImageFolder tree (``folder``) or a CoOp split file (``split``).

Both use the template ``a photo of a {}.`` and class names with ``_`` replaced by a space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from vlprompt.data.base import DATASETS, DatasetSplits
from vlprompt.data.layout import (
    IMAGE_EXTENSIONS,
    PHOTO,
    folder_items,
    list_folders,
    reject_split_file,
    require_dir,
    require_root,
)
from vlprompt.data.splitfile import (
    SPLITS,
    fewshot_dir_for,
    prompt_name,
    read_split_file,
    splits_from_rows,
    user_split_file,
)
from vlprompt.errors import VLPromptError

FOLDER_LAYOUT = "<data-root>/{train,val,test}/<class>/<image> (val and train optional, test required)"


@DATASETS.register("folder")
def read_folder(
    data_root: Optional[Path], *, split_file: Optional[Path] = None, strict: bool = True, regenerate: bool = True
) -> DatasetSplits:
    """An ImageFolder tree ``<data_root>/{train,val,test}/<class>/*``.

    The classes are the sorted union of the class folders of all present splits, so a class that only
    occurs in test still gets a label; label = index in that order. relpaths are relative to
    ``data_root`` (``train/cat/1.jpg``). ``val`` and ``train`` may be absent (empty; a test-only folder
    is enough for zero-shot evaluation), ``test`` is required. Few-shot splits are cached in
    ``<data_root>/split_fewshot/``.
    """
    reject_split_file("folder", split_file)
    root = require_dir(require_root(data_root, "folder"), "folder dataset root", FOLDER_LAYOUT)
    require_dir(root / "test", "test folder", FOLDER_LAYOUT)
    folders = {s: list_folders(root / s) if (root / s).is_dir() else [] for s in SPLITS}
    classes = sorted({c for names in folders.values() for c in names})
    if not classes:
        raise VLPromptError(f"{root / 'test'} has no class folders; expected layout: {FOLDER_LAYOUT}")
    label = {c: i for i, c in enumerate(classes)}
    items = {s: folder_items(root, s, [(c, label[c], c) for c in names]) for s, names in folders.items()}
    empty = sorted(set(classes) - {d.classname for split in items.values() for d in split})
    if empty:
        where = next(root / s / empty[0] for s in SPLITS if empty[0] in folders[s])
        raise VLPromptError(
            f"class folder {where} holds no images ({len(empty)} such class(es)); "
            f"add images ({', '.join(IMAGE_EXTENSIONS)}) or remove the folder"
        )
    return DatasetSplits(
        "folder",
        root,
        [prompt_name(c) for c in classes],
        **items,
        template=PHOTO,
        kgcoop_template=PHOTO,
        fewshot_dir=root / "split_fewshot",
    )


@DATASETS.register("split")
def read_split(
    data_root: Optional[Path], *, split_file: Optional[Path] = None, strict: bool = True, regenerate: bool = True
) -> DatasetSplits:
    """Images listed by a CoOp split file ``--split-file``, with paths relative to ``--data-root``
    (default: the split file's folder). Labels and class names come from the file; ``train`` and ``val``
    may be absent. Few-shot splits are cached in ``<split file folder>/split_fewshot/<split file stem>/``.
    """
    if not split_file:
        raise VLPromptError(
            "--dataset split needs --split-file FILE (a CoOp split JSON "
            '{"train"|"val"|"test": [[relpath, label, classname], ...]})'
        )
    split_path = user_split_file(split_file)
    image_dir = require_dir(
        Path(data_root) if data_root is not None else split_path.parent,
        "image folder (--data-root)",
        "the split file's relpaths are relative to --data-root",
    )
    return splits_from_rows(
        "split",
        image_dir,
        read_split_file(split_path, required=("test",)),
        split_path,
        template=PHOTO,
        kgcoop_template=PHOTO,
        fewshot_dir=fewshot_dir_for(split_path),
    )
