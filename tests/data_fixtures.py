"""Helpers for the data tests: tiny image files, split files, and the shared real data (read-only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterable, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
COOP_SPLITS = SHARED_DATA / "coop_splits"
DTD10_IMAGES = SHARED_DATA / "dtd10" / "images"

#: benchmark name -> published split file name (the 7 in ../shared/data/coop_splits)
SHARED_SPLIT_FILES = {
    "caltech101": "split_zhou_Caltech101.json",
    "dtd": "split_zhou_DescribableTextures.json",
    "eurosat": "split_zhou_EuroSAT.json",
    "oxford_flowers": "split_zhou_OxfordFlowers.json",
    "oxford_pets": "split_zhou_OxfordPets.json",
    "stanford_cars": "split_zhou_StanfordCars.json",
    "ucf101": "split_zhou_UCF101.json",
}
#: benchmark name -> (dataset folder, image folder) under the data root
FOLDERS = {
    "caltech101": ("caltech-101", "101_ObjectCategories"),
    "dtd": ("dtd", "images"),
    "eurosat": ("eurosat", "2750"),
    "oxford_flowers": ("oxford_flowers", "jpg"),
    "oxford_pets": ("oxford_pets", "images"),
    "stanford_cars": ("stanford_cars", ""),
    "ucf101": ("ucf101", "UCF-101-midframes"),
}


def shared_file(path: Path) -> Path:
    """A file of ../shared/data, or skip the test when the shared data is not there."""
    if not path.exists():
        pytest.skip(f"shared reference data not available: {path}")
    return path


def published_split(name: str) -> Dict[str, List[list]]:
    with open(shared_file(COOP_SPLITS / SHARED_SPLIT_FILES[name]), encoding="utf-8") as f:
        return json.load(f)


def benchmark_layout(root: Path, name: str) -> Path:
    """``root/<folder>/`` holding a symlink to the published split file and an empty image folder."""
    folder, images = FOLDERS[name]
    dataset_dir = root / folder
    (dataset_dir / images).mkdir(parents=True, exist_ok=True)
    link = dataset_dir / SHARED_SPLIT_FILES[name]
    if not link.exists():
        link.symlink_to(shared_file(COOP_SPLITS / SHARED_SPLIT_FILES[name]))
    return dataset_dir


def make_image(path: Path, size=(12, 9), color=(200, 30, 60), mode: str = "RGB") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else 128).save(path)
    return path


def make_images(folder: Path, names: Iterable[str]) -> None:
    for name in names:
        make_image(folder / name)


def touch_all(folder: Path, names: Iterable[str]) -> None:
    """Empty files: enough for readers, which never decode images."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def relpaths(items) -> List[str]:
    return [d.relpath for d in items]
