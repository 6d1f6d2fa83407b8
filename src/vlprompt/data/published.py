"""The published CoOp split files, Oxford Flowers' ``cat_to_name.json`` and ImageNet's class-name file, shipped
inside the package and checked by content hash.

* The split files (``split_zhou_<Dataset>.json``; Zhou et al., "Learning to Prompt for Vision-Language Models",
  IJCV 2022, MIT licence) for the seven datasets where they are public, and ``cat_to_name.json``, ship
  xz-compressed in ``shipped/coop_splits/`` (taken from the public copy :data:`SOURCE`, byte for byte as CoOp
  distributes them; see ``shipped/NOTICE.md``). :func:`published` decompresses one and checks it against the
  SHA-256 of the published file (:data:`SHA256`), so a damaged installation is refused instead of silently used;
  ``vlprompt data prepare`` writes it next to the images and the readers use it when a data root has none.
  Food101's and SUN397's CoOp split files are not public: those splits are regenerated as CoOp does.
* ``imagenet_classnames.txt`` ships in ``shipped/`` (CLIP's class names in sorted-wnid order, the names CoOp's
  ``classnames.txt`` uses), checked by its hash the same way.
"""

from __future__ import annotations

import hashlib
import lzma
from importlib import resources

from vlprompt.errors import VLPromptError

#: the public, commit-pinned copy of CoOp's published split files that the shipped ones were taken from
SOURCE = "https://github.com/linzhiqiu/cross_modal_adaptation/tree/ac9077ee4e422f768c9b9109551468605e33ec9a/splits"
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


def _read_shipped(relative: str, digest: str, compressed: bool = False) -> bytes:
    """The (decompressed) content of ``vlprompt/data/shipped/<relative>``, checked against ``digest``."""
    where = f"vlprompt/data/shipped/{relative}"
    try:
        data = resources.files("vlprompt.data").joinpath("shipped", *relative.split("/")).read_bytes()
        data = lzma.decompress(data) if compressed else data
    except (OSError, lzma.LZMAError) as exc:
        raise VLPromptError(f"the shipped file {where} cannot be read ({exc}); reinstall vlprompt") from None
    if sha256(data) != digest:
        raise VLPromptError(
            f"the shipped file {where} fails its SHA-256 check ({sha256(data)[:12]}… != {digest[:12]}…); "
            "reinstall vlprompt"
        )
    return data


def shipped(name: str) -> bytes:
    """The content of a file shipped inside the package (:data:`SHIPPED_SHA256`), checked by its hash."""
    return _read_shipped(name, SHIPPED_SHA256[name])


def published(name: str) -> bytes:
    """The published CoOp file ``name`` (a key of :data:`SHA256`), decompressed from the package and checked."""
    return _read_shipped(f"coop_splits/{name}.xz", SHA256[name], compressed=True)
