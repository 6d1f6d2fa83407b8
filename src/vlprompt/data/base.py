"""Dataset records shared by every reader, sampler and loader.

A reader turns a dataset folder into a :class:`DatasetSplits` holding *all* train/val/test items in the
order of the split file (or of the reference reader). Few-shot sampling and base/new subsampling are
applied afterwards (see ``vlprompt.data.build_dataset``) and return a new ``DatasetSplits``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

from vlprompt.registry import Registry


@dataclass(frozen=True)
class Datum:
    """One labelled image.

    ``relpath`` is the path relative to the dataset's image folder exactly as written in the split file;
    ``impath`` is the absolute path used to open the image. ``classname`` is the raw name as stored in the
    split file (e.g. ``Apply_Eye_Makeup``); the prompt-ready names are ``DatasetSplits.classnames``.
    """

    impath: str
    label: int
    classname: str
    relpath: str


@dataclass
class DatasetSplits:
    """A dataset: its label space and its train / val / test items.

    ``classnames[i]`` is the human-readable name of label ``i`` (dataset renaming rules applied, ``_``
    replaced by a space). ``template`` is the dataset's hand-crafted CoOp prompt (``CUSTOM_TEMPLATES``);
    ``kgcoop_template`` is KgCoOp's (it differs only for DTD); ``templates`` is a user's template ensemble
    (``--templates FILE``; None: CoOp's). ``extra`` carries reader-specific facts,
    e.g. ``imagenet_rows``: for ImageNet-A/-R, the row of each label in ImageNet's 1000 classes.
    ``fewshot_dir`` is where sampled few-shot splits are cached (``None``: never cached).
    """

    name: str
    image_dir: Path
    classnames: List[str]
    train: List[Datum]
    val: List[Datum]
    test: List[Datum]
    template: str = "a photo of a {}."
    kgcoop_template: Optional[str] = None
    templates: Optional[List[str]] = None
    extra: Dict[str, object] = field(default_factory=dict)
    fewshot_dir: Optional[Path] = None

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def with_items(self, **changes) -> "DatasetSplits":
        return replace(self, **changes)

    def split(self, name: str) -> List[Datum]:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


#: name -> reader. A reader is ``reader(data_root: Optional[Path], **options) -> DatasetSplits``.
#: ``vlprompt.data.build_dataset`` forwards only the options its caller gives; the built-in readers take
#: ``split_file`` (``--split-file``), ``strict`` (check the published class count) and ``regenerate``
#: (allow regenerating a missing split file, as the reference does) and ignore those that do not apply.
DATASETS: Registry = Registry("dataset", "--dataset", builtins=("vlprompt.data",))
