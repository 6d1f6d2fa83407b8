"""Parsers for the official annotation files that a missing split file is regenerated from.

Each function mirrors the ``read_data`` of the matching CoOp reader and returns rows
``(relpath, label, raw classname)`` with relpaths relative to the dataset's image folder:

* ``*_groups`` feed :func:`vlprompt.data.regenerate.split_groups` (DTD-style, Flowers);
* ``*_lists`` return ``(trainval, test)`` for :func:`vlprompt.data.regenerate.split_trainval`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from vlprompt.data.layout import list_folders, list_images, read_lines
from vlprompt.data.regenerate import Group
from vlprompt.data.splitfile import Row
from vlprompt.errors import VLPromptError

Lists = Tuple[List[Row], List[Row]]


def _lines(path: Path) -> List[str]:
    return read_lines(path, "it is needed to regenerate the split file")


def _loadmat(path: Path):
    try:
        from scipy.io import loadmat
    except ImportError:
        raise VLPromptError(
            f"reading {path} needs scipy (pip install scipy), or put the published split file next to it instead"
        ) from None
    return loadmat(str(path))


def folder_groups(
    image_dir: Path, ignored: Sequence[str] = (), renames: Optional[Mapping[str, str]] = None
) -> List[Group]:
    """One group per class folder (sorted; ``ignored`` dropped; names renamed), files sorted.

    The reference lists files in ``os.listdir`` order; sorting makes regeneration deterministic.
    """
    renames = renames or {}
    classes = [c for c in list_folders(image_dir) if c not in ignored]
    return [
        (label, renames.get(c, c), [f"{c}/{name}" for name in list_images(image_dir / c)])
        for label, c in enumerate(classes)
    ]


def flowers_groups(dataset_dir: Path) -> List[Group]:
    """Oxford Flowers: ``imagelabels.mat`` gives the 1-based label of ``image_{i:05d}.jpg``; groups in order
    of first appearance, named by ``cat_to_name.json``."""
    labels = _loadmat(dataset_dir / "imagelabels.mat")["labels"][0]
    with open(dataset_dir / "cat_to_name.json", "r", encoding="utf-8") as f:
        names: Dict[str, str] = json.load(f)
    groups: Dict[int, List[str]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), []).append(f"image_{i + 1:05d}.jpg")
    return [(label - 1, names[str(label)], paths) for label, paths in groups.items()]


def pets_lists(dataset_dir: Path) -> Lists:
    """Oxford Pets: ``annotations/{trainval,test}.txt`` lines ``<image> <class id> <species> <breed id>``;
    the breed is the image-name prefix, lower-cased."""

    def read(name: str) -> List[Row]:
        rows = []
        for line in _lines(dataset_dir / "annotations" / name):
            imname, label = line.split(" ")[:2]
            rows.append((imname + ".jpg", int(label) - 1, "_".join(imname.split("_")[:-1]).lower()))
        return rows

    return read("trainval.txt"), read("test.txt")


def cars_lists(dataset_dir: Path) -> Lists:
    """Stanford Cars: annotation ``.mat`` files; the class name's trailing year moves to the front."""
    meta = _loadmat(dataset_dir / "devkit" / "cars_meta.mat")["class_names"][0]

    def read(folder: str, anno: Path) -> List[Row]:
        rows = []
        for record in _loadmat(anno)["annotations"][0]:
            label = int(record["class"][0, 0]) - 1
            *words, year = str(meta[label][0]).split(" ")
            rows.append((f"{folder}/{record['fname'][0]}", label, " ".join([year, *words])))
        return rows

    return (
        read("cars_train", dataset_dir / "devkit" / "cars_train_annos.mat"),
        read("cars_test", dataset_dir / "cars_test_annos_withlabels.mat"),
    )


def sun397_lists(dataset_dir: Path) -> Lists:
    """SUN397: ``ClassName.txt`` (``/a/abbey``) and ``{Training,Testing}_01.txt`` image lists; the name drops the
    letter folder and reverses the rest (``/b/bakery/shop`` -> ``shop bakery``)."""
    labels = {line[1:]: i for i, line in enumerate(_lines(dataset_dir / "ClassName.txt"))}

    def read(name: str) -> List[Row]:
        rows = []
        for line in _lines(dataset_dir / name):
            relpath = line[1:]
            folder = relpath.rsplit("/", 1)[0]
            rows.append((relpath, labels[folder], " ".join(folder.split("/")[1:][::-1])))
        return rows

    return read("Training_01.txt"), read("Testing_01.txt")


def ucf101_folder(action: str) -> str:
    """The mid-frame folder (and raw class name) of a CamelCase UCF101 action: ``ApplyEyeMakeup`` ->
    ``Apply_Eye_Makeup``."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


def ucf101_lists(dataset_dir: Path) -> Lists:
    """UCF101: ``ucfTrainTestlist/`` lists of ``Action/v_Action_gXX_cYY.avi``; the CamelCase action is split on
    capitals and joined with ``_`` for both the class name and the mid-frame folder."""
    lists = dataset_dir / "ucfTrainTestlist"
    labels = {}
    for line in _lines(lists / "classInd.txt"):
        index, action = line.split(" ")
        labels[action] = int(index) - 1

    def read(name: str) -> List[Row]:
        rows = []
        for line in _lines(lists / name):
            action, filename = line.split(" ")[0].split("/")
            renamed = ucf101_folder(action)
            rows.append((f"{renamed}/{filename.replace('.avi', '.jpg')}", labels[action], renamed))
        return rows

    return read("trainlist01.txt"), read("testlist01.txt")
