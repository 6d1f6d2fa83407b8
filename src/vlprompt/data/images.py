"""A torch ``Dataset`` over labelled image files, with an explicit policy for unreadable images.

``ImageDataset(items, transform)[i]`` returns ``(image, label, i)``. By default an unreadable or corrupt
file raises :class:`VLPromptError` naming it. With ``skip_corrupt=True`` the item is logged once (naming
the file, in the log and on the console) and returned as ``None``; pass ``collate_fn=collate_skip_none`` to the ``DataLoader`` so such
items are dropped from their batch (a batch whose items were all dropped becomes ``None``; loops must
skip it). Everything here is picklable, so it works with DataLoader worker processes.
"""

from __future__ import annotations

import logging
import struct
from typing import Callable, List, Optional, Sequence

from PIL import Image
from torch.utils.data import Dataset, default_collate

from vlprompt.data.base import Datum
from vlprompt.data.pixels import to_viewer_rgb
from vlprompt.errors import VLPromptError

logger = logging.getLogger("vlprompt.data")

#: what PIL raises for missing, truncated, corrupt, non-image or oversized (decompression bomb) files
READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


def load_rgb(path: str) -> Image.Image:
    """Open and fully decode an image as the RGB image a viewer shows (:func:`~vlprompt.data.pixels.to_viewer_rgb`;
    errors surface here, not later in a transform)."""
    with Image.open(path) as image:
        image.load()
        return to_viewer_rgb(image)


def unreadable(path, exc: BaseException) -> str:
    """``cannot read image PATH (Error: reason)``."""
    return f"cannot read image {path} ({type(exc).__name__}: {exc})"


def read_image(path) -> Image.Image:
    """:func:`load_rgb`, with a one-line error naming the file (``predict`` and the API's image paths)."""
    try:
        return load_rgb(str(path))
    except READ_ERRORS as exc:
        raise VLPromptError(f"{unreadable(path, exc)}; replace the file or leave it out") from None


class ImageDataset(Dataset):
    def __init__(self, items: Sequence[Datum], transform: Optional[Callable] = None, skip_corrupt: bool = False):
        self.items: List[Datum] = list(items)
        self.transform = transform
        self.skip_corrupt = skip_corrupt
        self._reported = set()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        try:
            image = load_rgb(item.impath)
        except READ_ERRORS as exc:
            if not self.skip_corrupt:
                raise VLPromptError(
                    f"{unreadable(item.impath, exc)}; replace it with a readable copy and run the same command "
                    "again (removing it or passing --skip-corrupt changes the data: a new --out)"
                ) from None
            if item.impath not in self._reported:
                self._reported.add(item.impath)
                logger.warning("skipping unreadable image %s (%s: %s)", item.impath, type(exc).__name__, exc)
            return None
        if self.transform is not None:
            image = self.transform(image)
        return image, item.label, index


def collate_skip_none(batch):
    """``default_collate`` after dropping the ``None`` items of skipped images; ``None`` if none are left."""
    kept = [sample for sample in batch if sample is not None]
    return default_collate(kept) if kept else None
