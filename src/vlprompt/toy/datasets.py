"""The toy downstream datasets ``toy-b2n``, ``toy-shift`` and ``toy-xd``, registered by name.

=============  ========  ======================================  ===========================  =========
name           style     classes (label order)                   template                     images
=============  ========  ======================================  ===========================  =========
``toy-b2n``    photo     20 colour+shape names ("red circle")     ``a photo of a {}.``         32/8/40
``toy-shift``  sketch    the same 20 classes                      ``a drawing of a {}.``       32/8/40
``toy-xd``     photo     15 pattern+shape names ("striped heart") ``a picture of a {}.``       32/8/40
=============  ========  ======================================  ===========================  =========

(images = train / val / test per class.) ``toy-b2n`` crosses five colours with four shapes; its first
ten labels (the *base* half) and last ten (the *new* half) form a checkerboard over that grid, so
every colour and every shape occurs in both halves and new classes are unseen *combinations* of seen
words. Within a half, classes share colours and shapes, so a classifier must bind both. The
attributes a class name leaves out (pattern, size, placement, and for ``toy-xd`` the colour) vary
freely. See :mod:`vlprompt.toy.world` for the styles and the domain gap to pretraining.

Images are generated once (PNG, 64 px) into ``<root>/<name>-v<WORLD_VERSION>`` — ``root`` is
``$VLPROMPT_CACHE/toy`` (the registered readers refuse ``--data-root``; :func:`read_toy_dataset` takes a root) (``VLPROMPT_CACHE`` defaults to
``~/.cache/vlprompt``) — next to a CoOp-format split file ``split_<name>.json``, so the ``split``
reader can read them too. Generation writes into a temporary folder (named after the host and process) that is
renamed into place, so an interrupted run never leaves a half-written dataset behind; the temporary folder of a
generator that was killed is removed by the next one. Reading the split needs no image library.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from vlprompt.data.base import DATASETS, DatasetSplits, Datum
from vlprompt.errors import VLPromptError
from vlprompt.progress import progress
from vlprompt.toy import WORLD_VERSION

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("vlprompt")

IMAGE_SIZE = 64
SPLITS: Tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ToySpec:
    """How one toy dataset is generated: style, classes (attribute dicts, in label order), template."""

    name: str
    seed: int
    style: str
    classes: Tuple[Dict[str, str], ...]
    template: str
    per_class: Tuple[int, int, int] = (32, 8, 40)  # train, val, test

    @property
    def classnames(self) -> List[str]:
        return [" ".join(c[k] for k in ("pattern", "colour", "shape") if k in c) for c in self.classes]


def _b2n_classes() -> Tuple[Dict[str, str], ...]:
    """5 colours x 4 shapes; base = cells with even (colour + shape) index, new = the odd cells."""
    colours = ("red", "yellow", "green", "blue", "purple")
    shapes = ("circle", "square", "triangle", "star")
    cells = [(i, j) for i in range(len(colours)) for j in range(len(shapes))]
    ordered = [c for c in cells if sum(c) % 2 == 0] + [c for c in cells if sum(c) % 2 == 1]
    return tuple({"colour": colours[i], "shape": shapes[j]} for i, j in ordered)


def _xd_classes() -> Tuple[Dict[str, str], ...]:
    return tuple(
        {"pattern": p, "shape": s}
        for s in ("heart", "cross", "diamond", "moon", "arrow")
        for p in ("striped", "dotted", "checkered")
    )


SPECS: Dict[str, ToySpec] = {
    spec.name: spec
    for spec in (
        ToySpec("toy-b2n", 101, "photo", _b2n_classes(), "a photo of a {}."),
        ToySpec("toy-shift", 202, "sketch", _b2n_classes(), "a drawing of a {}."),
        ToySpec("toy-xd", 303, "photo", _xd_classes(), "a picture of a {}."),
    )
}


def toy_image(name: str, split: str, label: int, index: int) -> Image.Image:
    """Image ``index`` of class ``label`` in ``split`` of toy dataset ``name`` (a pure function of these)."""
    import numpy as np

    from vlprompt.toy.world import render, sample_scene

    spec = SPECS[name]
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), label, index])
    return render(sample_scene(rng, spec.style, **spec.classes[label]), IMAGE_SIZE)


def default_toy_root() -> Path:
    """``$VLPROMPT_CACHE/toy`` (``VLPROMPT_CACHE`` defaults to ``~/.cache/vlprompt``)."""
    return Path(os.environ.get("VLPROMPT_CACHE", Path.home() / ".cache" / "vlprompt")).expanduser() / "toy"


def toy_dataset_dir(name: str, data_root: Optional[Path] = None) -> Path:
    return Path(data_root if data_root is not None else default_toy_root()) / f"{name}-v{WORLD_VERSION}"


def _generate(spec: ToySpec, out: Path) -> None:
    split_file: Dict[str, list] = {}
    total = sum(spec.per_class) * len(spec.classes)
    with progress(total=total, desc=f"generating {spec.name}", unit="img") as bar:
        for split, count in zip(SPLITS, spec.per_class):
            rows = split_file.setdefault(split, [])
            for label, classname in enumerate(spec.classnames):
                folder = out / "images" / split / classname.replace(" ", "_")
                folder.mkdir(parents=True)
                for i in range(count):
                    relpath = f"{split}/{folder.name}/{i:03d}.png"
                    toy_image(spec.name, split, label, i).save(out / "images" / relpath)
                    rows.append([relpath, label, classname])
                    bar.update()
    (out / f"split_{spec.name}.json").write_text(json.dumps(split_file))
    meta = {
        "name": spec.name,
        "world_version": WORLD_VERSION,
        "seed": spec.seed,
        "style": spec.style,
        "image_size": IMAGE_SIZE,
        "template": spec.template,
        "classnames": spec.classnames,
    }
    (out / "toy.json").write_text(json.dumps(meta, indent=1))


def ensure_toy_dataset(name: str, data_root: Optional[Path] = None) -> Path:
    """The folder of toy dataset ``name``, generating it first (atomically) if it is not there yet."""
    final = toy_dataset_dir(name, data_root)
    if (final / f"split_{name}.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(final)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(final)}{socket.gethostname()}-{os.getpid()}-", dir=final.parent))
    try:
        _generate(SPECS[name], tmp)
        os.replace(tmp, final)
    except OSError:
        if not (final / f"split_{name}.json").is_file():  # not a concurrent generator winning the race
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _tmp_prefix(final: Path) -> str:
    return f".{final.name}.tmp-"


def _remove_abandoned(final: Path) -> None:
    """Remove the temporary folders that generators of ``final`` killed on this host left behind."""
    host = socket.gethostname()
    for tmp in final.parent.glob(_tmp_prefix(final) + "*"):
        owner_host, _, rest = tmp.name[len(_tmp_prefix(final)) :].rpartition("-")[0].rpartition("-")
        if owner_host == host and rest.isdigit() and not _alive(int(rest)):
            log.warning("removing %s, left by an interrupted toy-dataset generation", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def read_toy_dataset(name: str, data_root: Optional[Path] = None) -> DatasetSplits:
    """The full train/val/test splits of toy dataset ``name`` (generated on first use)."""
    spec = SPECS[name]
    folder = ensure_toy_dataset(name, data_root)
    image_dir = folder / "images"
    rows = json.loads((folder / f"split_{name}.json").read_text())
    items = {
        split: [
            Datum(impath=str(image_dir / rel), label=int(label), classname=cname, relpath=rel)
            for rel, label, cname in rows[split]
        ]
        for split in SPLITS
    }
    return DatasetSplits(
        name=name,
        image_dir=image_dir,
        classnames=spec.classnames,
        template=spec.template,
        extra={"toy_style": spec.style},
        **items,
    )


def _register(name: str) -> None:
    def reader(data_root: Optional[Path] = None, *, split_file: Optional[Path] = None, **options) -> DatasetSplits:
        for flag, value in (("--data-root", data_root), ("--split-file", split_file)):
            if value is not None:
                raise VLPromptError(
                    f"{flag} does not apply to --dataset {name} (generated under $VLPROMPT_CACHE/toy; set "
                    "VLPROMPT_CACHE to move it): drop it"
                )
        return read_toy_dataset(name)

    reader.__doc__ = f"Toy dataset {name!r} (generated offline under the cache; takes no data root or split file)."
    DATASETS.register(name)(reader)


for _name in SPECS:
    _register(_name)
