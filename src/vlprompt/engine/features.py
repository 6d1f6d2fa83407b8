"""Image loading, seeded augmented views, and the frozen-feature cache.

**Augmented views.** The references draw a fresh random crop / flip of every training image in every epoch. Here
the augmentation of image ``i`` in *view* ``v`` is drawn from a generator seeded with ``(run seed, v, i)``
(:class:`ViewDataset`), and epoch ``e`` uses view ``e`` — so every epoch sees a fresh, independent augmentation of
every image, exactly as in the references (statistically: the random numbers differ), and the same images, seed
and epoch always give the same pixels, whatever the batch, the worker processes or the method being trained.

**Frozen-feature cache.** When the image tower carries no prompts (``coop``, ``cocoop``, ``kgcoop`` and their
add-ons) an image feature is a pure function of (backbone, image file, transform, view). So

* test features are computed once per (backbone, items, transform) and every later run on the same data reuses
  them;
* the features of train view ``v`` are computed once, in large no-grad batches, when an epoch first needs them,
  and shared on disk by every run with the same backbone, few-shot items and seed — a sweep over coop,
  coop+nemesis, kgcoop and coop+dept encodes each view once for all four methods.

Entries live under ``$VLPROMPT_CACHE/features`` (default ``~/.cache/vlprompt``) as safetensors, keyed by the
backbone's weights fingerprint (activation and preprocessing included), every item's path, label, file size and
modification time (a replaced or repaired image changes the key and is re-encoded), the transform, and the
unreadable-image policy (``--skip-corrupt``): a strict run never reuses an entry that skipped images. Skipped
images are listed on the console. ``--no-feature-cache`` runs the image tower on the images instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from vlprompt import fileio
from vlprompt.progress import progress

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("VLPROMPT_CACHE", Path.home() / ".cache" / "vlprompt")).expanduser()


def backbone_fingerprint(backbone) -> str:
    """A short hash of the backbone's weights (a strided sample of every tensor, and its dtype: a half backbone
    gives other features), activation and preprocessing."""
    h = hashlib.sha1()
    for name, tensor in backbone.clip.state_dict().items():
        flat = tensor.detach().flatten()
        step = max(1, flat.numel() // 1024)
        h.update(f"{name}:{tensor.dtype}".encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
    # same weights under GELU and QuickGELU give different features
    quick_gelu = getattr(backbone.spec, "quick_gelu", None)
    h.update(json.dumps([backbone.image_size, backbone.image_mean, backbone.image_std, quick_gelu]).encode())
    return h.hexdigest()[:16]


def items_fingerprint(items) -> str:
    """A hash of every item's path, label, file size and modification time (``missing`` when it cannot be read)."""
    h = hashlib.sha1()
    for d in items:
        try:
            st = os.stat(d.impath)
            identity = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            identity = "missing"
        h.update(f"{d.impath}\t{d.label}\t{identity}\n".encode())
    return h.hexdigest()[:16]


def view_seed(seed: int, view: int, index: int) -> int:
    """The seed of the augmentation of item ``index`` in view ``view`` of a run seeded with ``seed``."""
    return (seed * 1_000_003 + view * 7_919 + index * 104_729) % (2**63)


class ViewDataset(Dataset):
    """``(image, label, index)`` of ``items``, item ``i`` transformed in view ``views[i]`` with the torch random
    state seeded from ``(seed, views[i], i)`` (the global state outside is left as it was)."""

    def __init__(self, items, transform, seed: int, views: Sequence[int], skip_corrupt: bool = False):
        from vlprompt.data.images import ImageDataset

        self.images = ImageDataset(items, None, skip_corrupt=skip_corrupt)
        self.transform = transform
        self.seed = seed
        self.views = [int(v) for v in views]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        sample = self.images[i]
        if sample is None:
            return None
        image, label, index = sample
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(view_seed(self.seed, self.views[i], i))
            return self.transform(image), label, index


def image_loader(
    dataset_or_items,
    transform=None,
    batch_size: int = 64,
    num_workers: int = 0,
    skip_corrupt: bool = False,
    batch_sampler=None,
) -> DataLoader:
    """Batches ``(images, labels, indices)`` of items (or of a ready dataset) in order, or in ``batch_sampler``'s
    batches; unreadable images are dropped from their batch with ``skip_corrupt`` (a batch left empty is None)."""
    from vlprompt.data.images import ImageDataset, collate_skip_none

    dataset = dataset_or_items
    if not isinstance(dataset, Dataset):
        dataset = ImageDataset(dataset_or_items, transform, skip_corrupt=skip_corrupt)
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers, collate_fn=collate_skip_none)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_skip_none)


@torch.no_grad()
def encode_items(encode: Callable[[torch.Tensor], torch.Tensor], loader, n: int, desc: str) -> Dict[str, torch.Tensor]:
    """Run ``encode`` over an image loader of ``n`` items: ``{"features": [N, E], "labels": [N], "valid": [N]}`` in
    item order (``valid`` is False for images skipped as unreadable)."""
    feats, labels, index = [], [], []
    with progress(total=n, desc=desc, unit="img") as bar:
        for batch in loader:
            if batch is None:  # every image of the batch was skipped (--skip-corrupt)
                continue
            images, y, idx = batch
            feats.append(encode(images).float().cpu())
            labels.append(y)
            index.append(idx)
            bar.update(len(y))
    if not feats:
        raise_all_unreadable(n)
    f, y, i = torch.cat(feats), torch.cat(labels), torch.cat(index)
    out = torch.zeros(n, f.shape[1])
    lab = torch.full((n,), -1, dtype=torch.long)
    out[i], lab[i] = f, y.long()
    return {"features": out, "labels": lab, "valid": lab >= 0}


def raise_all_unreadable(n: int) -> None:
    from vlprompt.errors import VLPromptError

    raise VLPromptError(f"none of the {n} images could be read (--skip-corrupt skipped them all); check the data")


def announce_skipped(items, valid: torch.Tensor) -> None:
    """List the images a cached entry skipped as unreadable on the console (and in the run's log)."""
    skipped = [items[i].impath for i in (~valid.bool()).nonzero().flatten().tolist()]
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        message = f"skipped {len(skipped)} unreadable image(s) (--skip-corrupt): {shown}"
        log.warning(message)
        print(f"warning: {message}", file=sys.stderr)


class FeatureCache:
    """Frozen image features stored as safetensors (see the module doc for the key)."""

    def __init__(self, backbone, root: Optional[Path] = None):
        self.backbone = backbone
        self.root = Path(root or cache_root()) / "features"
        self._fingerprint = backbone_fingerprint(backbone)

    def _path(self, *parts) -> Path:
        key = hashlib.sha1(json.dumps([self._fingerprint, *parts]).encode()).hexdigest()[:24]
        return self.root / f"{key}.safetensors"

    def _load_or_compute(self, path: Path, items, compute: Callable[[], dict]) -> dict:
        from safetensors.torch import load_file, save_file

        if path.exists():
            try:
                entry = load_file(str(path))
                announce_skipped(items, entry["valid"])
                return entry
            except Exception:  # a damaged cache entry is recomputed, never trusted
                log.warning("feature cache entry %s is unreadable; recomputing", path)
        entry = {k: v.contiguous() for k, v in compute().items()}
        try:
            fileio.atomic_write(path, lambda tmp: save_file(entry, str(tmp)))
        except OSError as exc:
            log.warning("cannot write feature cache %s (%s); continuing without caching", path, exc)
        return entry

    def test_features(self, items, loader: Callable[[], DataLoader], skip_corrupt: bool) -> dict:
        """Features of ``items`` under the test transform."""
        path = self._path("test", items_fingerprint(items), skip_corrupt)
        return self._load_or_compute(
            path, items, lambda: encode_items(self.backbone.encode_image, loader(), len(items), "encoding test images")
        )

    def train_view(self, items, kind: str, seed: int, view: int, loader: Callable[[], DataLoader], skip_corrupt: bool):
        """Features of view ``view`` of the train ``items`` under train transform ``kind`` and run ``seed``."""
        path = self._path("train-view", items_fingerprint(items), kind, seed, view, skip_corrupt)
        desc = f"encoding train view {view + 1}"
        return self._load_or_compute(
            path, items, lambda: encode_items(self.backbone.encode_image, loader(), len(items), desc)
        )


def feature_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int) -> List[tuple]:
    return [(features[s : s + batch_size], labels[s : s + batch_size]) for s in range(0, len(labels), batch_size)]
