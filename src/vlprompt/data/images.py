"""A torch ``Dataset`` over labelled image files, with an explicit policy for unreadable images.

``ImageDataset(items, transform)[i]`` returns ``(image, label, i)``. By default an unreadable or corrupt
file raises :class:`VLPromptError` naming it. With ``skip_corrupt=True`` the item is logged once (naming
the file, in the log and on the console) and returned as ``None``; pass ``collate_fn=collate_skip_none`` to the ``DataLoader`` so such
items are dropped from their batch (a batch whose items were all dropped becomes ``None``; loops must
skip it). Everything here is picklable, so it works with DataLoader worker processes.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, List, Optional, Sequence

from PIL import Image
from torch.utils.data import Dataset, default_collate

from vlprompt.data.base import Datum
from vlprompt.errors import VLPromptError

logger = logging.getLogger("vlprompt.data")

#: what PIL raises for missing, truncated, corrupt or oversized files
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def load_rgb(path: str) -> Image.Image:
    """Open and fully decode an image as RGB (errors surface here, not later in a transform)."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


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
        except _READ_ERRORS as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if not self.skip_corrupt:
                raise VLPromptError(
                    f"cannot read image {item.impath} ({reason}); replace it with a readable copy and run the same "
                    "command again (removing it or passing --skip-corrupt changes the data: a new --out)"
                ) from None
            if item.impath not in self._reported:
                self._reported.add(item.impath)
                logger.warning("skipping unreadable image %s (%s)", item.impath, reason)
                print(f"warning: skipping unreadable image {item.impath} ({reason})", file=sys.stderr)
            return None
        if self.transform is not None:
            image = self.transform(image)
        return image, item.label, index


def collate_skip_none(batch):
    """``default_collate`` after dropping the ``None`` items of skipped images; ``None`` if none are left."""
    kept = [sample for sample in batch if sample is not None]
    return default_collate(kept) if kept else None
