"""The CoOp benchmark datasets that come with a split file, plus FGVC-Aircraft (official lists).

Each split-file benchmark is one row of :data:`SPLIT_BENCHMARKS` (folder, image folder, split file, class
count, CoOp template, how to regenerate a missing split). Reading follows the CoOp readers: the split
file is ``<data_root>/<folder>/split_zhou_<Name>.json`` with paths relative to the image folder; if it
is missing, the checked copy of the published file that ``vlprompt data prepare`` fetched is used
(:mod:`vlprompt.data.published`; seven of the nine are public), and otherwise it is regenerated (:mod:`vlprompt.data.regenerate`), written next to the data atomically
(kept in memory only if that folder is read-only; regeneration is deterministic) and announced with one log line. Few-shot splits are cached in ``<data_root>/<folder>/split_fewshot/``.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from vlprompt.data import sources
from vlprompt.data.base import DATASETS, DatasetSplits
from vlprompt.data.layout import LAYOUT_DOC, PHOTO, check_class_count, locate, read_lines, reject_split_file
from vlprompt.data.published import SHA256
from vlprompt.data.published import published as published_file
from vlprompt.data.regenerate import REGEN_SEED, split_groups, split_trainval
from vlprompt.data.splitfile import (
    Row,
    check_split,
    dump_split_json,
    fewshot_dir_for,
    items_from_rows,
    prompt_name,
    read_split_file,
    splits_from_rows,
    user_split_file,
)
from vlprompt.errors import VLPromptError
from vlprompt.fileio import write_text

logger = logging.getLogger("vlprompt.data")

#: regenerate(dataset_dir, image_dir, rng) -> {"train"|"val"|"test": rows}
Regenerator = Callable[[Path, Path, random.Random], Dict[str, List[Row]]]


def _from_groups(read_groups: Callable[[Path, Path], list]) -> Regenerator:
    return lambda dataset_dir, image_dir, rng: split_groups(read_groups(dataset_dir, image_dir), rng)


def _from_lists(read_lists: Callable[[Path], Tuple[List[Row], List[Row]]]) -> Regenerator:
    def regenerate(dataset_dir: Path, image_dir: Path, rng: random.Random) -> Dict[str, List[Row]]:
        trainval, test = read_lists(dataset_dir)
        train, val = split_trainval(trainval, rng)
        return {"train": train, "val": val, "test": test}

    return regenerate


def _class_folders(**rules) -> Regenerator:
    return _from_groups(lambda dataset_dir, image_dir: sources.folder_groups(image_dir, **rules))


@dataclass(frozen=True)
class SplitBenchmark:
    """A CoOp benchmark read from ``split_zhou_*.json`` (regenerated from official files if missing)."""

    name: str
    folder: str
    image_subdir: str
    split_name: str
    num_classes: int
    template: str
    regenerator: Regenerator
    #: files (relative to the dataset folder) that regeneration reads, besides the image folder
    regen_sources: Tuple[str, ...] = ()
    kgcoop_template: Optional[str] = None

    def layout(self) -> str:
        return (
            f"<data-root>/{self.folder}/{self.image_subdir or '<images>'}/... and "
            f"<data-root>/{self.folder}/{self.split_name} (see {LAYOUT_DOC})"
        )

    def __call__(
        self,
        data_root: Optional[Path],
        *,
        split_file: Optional[Path] = None,
        strict: bool = True,
        regenerate: bool = True,
        published: bool = True,
    ) -> DatasetSplits:
        """``published=False``: regenerate a missing split file even where the published one ships with vlprompt
        (:mod:`vlprompt.data.published`)."""
        dataset_dir, image_dir = locate(data_root, self.name, self.folder, self.image_subdir, self.layout())
        split_path = user_split_file(split_file) if split_file else dataset_dir / self.split_name
        shipped = published and not split_path.is_file() and self.split_name in SHA256
        if split_path.is_file():
            rows = read_split_file(split_path)
        elif shipped:
            rows = check_split(json.loads(published_file(self.split_name)), Path(self.split_name))
            logger.info("%s: %s not found; using the published CoOp split shipped with vlprompt", self.name, split_path)
        else:
            rows = self._regenerate(dataset_dir, image_dir, split_path, allowed=regenerate)
        dataset = splits_from_rows(
            self.name,
            image_dir,
            rows,
            split_path,
            template=self.template,
            kgcoop_template=self.kgcoop_template or self.template,
            fewshot_dir=fewshot_dir_for(split_path) if split_file else dataset_dir / "split_fewshot",
        )
        check_class_count(self.name, dataset.num_classes, self.num_classes, split_path, strict)
        return dataset

    def _regenerate(self, dataset_dir: Path, image_dir: Path, split_path: Path, allowed: bool) -> Dict[str, List[Row]]:
        fix = f"download {self.split_name} (see {LAYOUT_DOC}) into {dataset_dir}"
        missing = [s for s in self.regen_sources if not (dataset_dir / s).exists()]
        if missing:
            raise VLPromptError(
                f"split file {split_path} not found and it cannot be regenerated because "
                f"{dataset_dir / missing[0]} is missing; {fix}"
            )
        inputs = ", ".join(self.regen_sources) or f"the class folders of {image_dir.name}/"
        if not allowed:
            raise VLPromptError(
                f"split file {split_path} not found; first use will regenerate it from {inputs} "
                f"as CoOp does, which can differ from the published split: {fix}"
            )
        try:
            rows = self.regenerator(dataset_dir, image_dir, random.Random(REGEN_SEED))
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise VLPromptError(f"cannot regenerate {split_path} from {inputs}: {exc!r}; {fix}") from None
        try:
            write_text(split_path, dump_split_json(rows))
            saved = "saved it"
        except OSError as exc:
            saved = f"could not save it ({exc.strerror or exc}), using it from memory"
        logger.warning(
            "%s: split file %s was missing; regenerated it from %s (seed %d) as CoOp does and %s",
            self.name,
            split_path,
            inputs,
            REGEN_SEED,
            saved,
        )
        return rows


EUROSAT_NAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}
CALTECH_IGNORED = ("BACKGROUND_Google", "Faces_easy")
CALTECH_NAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}

SPLIT_BENCHMARKS = [
    SplitBenchmark(
        "caltech101",
        "caltech-101",
        "101_ObjectCategories",
        "split_zhou_Caltech101.json",
        100,
        PHOTO,
        _class_folders(ignored=CALTECH_IGNORED, renames=CALTECH_NAMES),
    ),
    SplitBenchmark(
        "oxford_pets",
        "oxford_pets",
        "images",
        "split_zhou_OxfordPets.json",
        37,
        "a photo of a {}, a type of pet.",
        _from_lists(sources.pets_lists),
        ("annotations/trainval.txt", "annotations/test.txt"),
    ),
    SplitBenchmark(
        "stanford_cars",
        "stanford_cars",
        "",
        "split_zhou_StanfordCars.json",
        196,
        PHOTO,
        _from_lists(sources.cars_lists),
        ("devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat", "devkit/cars_meta.mat"),
    ),
    SplitBenchmark(
        "oxford_flowers",
        "oxford_flowers",
        "jpg",
        "split_zhou_OxfordFlowers.json",
        102,
        "a photo of a {}, a type of flower.",
        _from_groups(lambda dataset_dir, image_dir: sources.flowers_groups(dataset_dir)),
        ("imagelabels.mat", "cat_to_name.json"),
    ),
    SplitBenchmark(
        "food101",
        "food-101",
        "images",
        "split_zhou_Food101.json",
        101,
        "a photo of {}, a type of food.",
        _class_folders(),
    ),
    SplitBenchmark(
        "sun397",
        "sun397",
        "SUN397",
        "split_zhou_SUN397.json",
        397,
        PHOTO,
        _from_lists(sources.sun397_lists),
        ("ClassName.txt", "Training_01.txt", "Testing_01.txt"),
    ),
    SplitBenchmark(
        "dtd",
        "dtd",
        "images",
        "split_zhou_DescribableTextures.json",
        47,
        "{} texture.",
        _class_folders(),
        kgcoop_template="a photo of a {}, a type of texture.",
    ),
    SplitBenchmark(
        "eurosat",
        "eurosat",
        "2750",
        "split_zhou_EuroSAT.json",
        10,
        "a centered satellite photo of {}.",
        _class_folders(renames=EUROSAT_NAMES),
    ),
    SplitBenchmark(
        "ucf101",
        "ucf101",
        "UCF-101-midframes",
        "split_zhou_UCF101.json",
        101,
        "a photo of a person doing {}.",
        _from_lists(sources.ucf101_lists),
        tuple(f"ucfTrainTestlist/{f}" for f in ("classInd.txt", "trainlist01.txt", "testlist01.txt")),
    ),
]
for _spec in SPLIT_BENCHMARKS:
    DATASETS.register(_spec.name)(_spec)

AIRCRAFT_LAYOUT = (
    f"<data-root>/fgvc_aircraft/ = the data/ folder of fgvc-aircraft-2013b: images/, variants.txt, "
    f"images_variant_{{train,val,test}}.txt (see {LAYOUT_DOC})"
)


@DATASETS.register("fgvc_aircraft")
def read_fgvc_aircraft(
    data_root: Optional[Path], *, split_file: Optional[Path] = None, strict: bool = True, regenerate: bool = True
) -> DatasetSplits:
    """FGVC-Aircraft from its official lists: labels = line order of ``variants.txt``; each
    ``images_variant_<split>.txt`` line is ``<image id> <variant words>``."""
    reject_split_file("fgvc_aircraft", split_file)
    dataset_dir, image_dir = locate(data_root, "fgvc_aircraft", "fgvc_aircraft", "images", AIRCRAFT_LAYOUT)
    variants_file = dataset_dir / "variants.txt"
    variants = read_lines(variants_file, f"expected layout: {AIRCRAFT_LAYOUT}")
    labels = {name: i for i, name in enumerate(variants)}
    splits = {}
    for split in ("train", "val", "test"):
        path = dataset_dir / f"images_variant_{split}.txt"
        rows = []
        for line in read_lines(path, f"expected layout: {AIRCRAFT_LAYOUT}"):
            image_id, _, variant = line.partition(" ")
            if variant not in labels:
                raise VLPromptError(f"{path}: variant {variant!r} of image {image_id} is not in {variants_file}")
            rows.append((image_id + ".jpg", labels[variant], variant))
        splits[split] = items_from_rows(rows, image_dir)
    check_class_count("fgvc_aircraft", len(variants), 100, variants_file, strict)
    return DatasetSplits(
        "fgvc_aircraft",
        image_dir,
        [prompt_name(v) for v in variants],
        **splits,
        template="a photo of a {}, a type of aircraft.",
        kgcoop_template="a photo of a {}, a type of aircraft.",
        fewshot_dir=dataset_dir / "split_fewshot",
    )
