"""Image loading and the frozen-feature cache.

When the image tower carries no prompts (``coop``, ``cocoop``, ``kgcoop`` and their add-ons), an image
feature is a pure function of (backbone weights, image, augmentation). We therefore

* compute **test features** once per (backbone fingerprint, dataset items, test transform) and store them
  under ``$VLPROMPT_CACHE/features`` (default ``~/.cache/vlprompt``) as safetensors — every later run
  on the same data reuses them;
* compute a bounded **pool of augmented train views**: ``P = min(feature_pool, epochs)`` passes of the
  training transform (RandomResizedCrop + flip) over the few-shot train images, seeded by the run seed.
  Each epoch, every sample draws one of its P views at random.

Difference from the references: they draw a *fresh* augmentation of every image in every epoch, so over
E epochs an image is seen in E distinct views; with the pool it is seen in at most P distinct views (each
view is still a full random crop/flip). ``--no-feature-cache`` restores the exact per-epoch augmentation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, List, Optional

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from vlprompt import fileio
from vlprompt.engine import distributed

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("VLPROMPT_CACHE", Path.home() / ".cache" / "vlprompt")).expanduser()


def backbone_fingerprint(backbone) -> str:
    """A short hash of the backbone's weights (a strided sample of every tensor), activation and preprocessing."""
    h = hashlib.sha1()
    for name, tensor in backbone.clip.state_dict().items():
        flat = tensor.detach().flatten()
        step = max(1, flat.numel() // 1024)
        h.update(name.encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
    # same weights under GELU and QuickGELU give different features
    quick_gelu = getattr(backbone.spec, "quick_gelu", None)
    h.update(json.dumps([backbone.image_size, backbone.image_mean, backbone.image_std, quick_gelu]).encode())
    return h.hexdigest()[:16]


def items_fingerprint(items) -> str:
    h = hashlib.sha1()
    for d in items:
        h.update(f"{d.impath}\t{d.label}\n".encode())
    return h.hexdigest()[:16]


def image_loader(
    items,
    transform,
    batch_size: int,
    num_workers: int = 0,
    skip_corrupt: bool = False,
    shuffle: bool = False,
    generator: Optional[torch.Generator] = None,
    drop_last: bool = False,
):
    from vlprompt.data.images import ImageDataset, collate_skip_none

    return DataLoader(
        ImageDataset(items, transform, skip_corrupt=skip_corrupt),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=collate_skip_none,
    )


@torch.no_grad()
def encode_items(encode: Callable[[torch.Tensor], torch.Tensor], loader, desc: str, total: int) -> tuple:
    """Run ``encode`` over an image loader; returns ``(features [N, E], labels [N], indices [N])``. Several processes
    each encode a share of the items and gather the rows."""
    feats, labels, index = [], [], []
    with tqdm(total=total, desc=desc, unit="img", leave=False, disable=not distributed.is_main()) as bar:
        for batch in distributed.shard_loader(loader):
            if batch is None:  # every image of the batch was skipped (--skip-corrupt)
                continue
            images, y, idx = batch
            feats.append(encode(images).float().cpu())
            labels.append(y)
            index.append(idx)
            bar.update(len(y) * distributed.world_size())
    return tuple(distributed.gather_rows(feats, labels, index))


class FeatureCache:
    """Frozen image features stored as safetensors, keyed by backbone, items, transform and purpose."""

    def __init__(self, backbone, root: Optional[Path] = None):
        self.backbone = backbone
        self.root = Path(root or cache_root()) / "features"
        self._fingerprint = backbone_fingerprint(backbone)

    def _path(self, *parts) -> Path:
        key = hashlib.sha1(json.dumps([self._fingerprint, *parts]).encode()).hexdigest()[:24]
        return self.root / f"{key}.safetensors"

    def _load_or_compute(self, path: Path, compute: Callable[[], dict]) -> dict:
        from safetensors.torch import load_file, save_file

        if path.exists():
            try:
                return load_file(str(path))
            except Exception:  # a damaged cache entry is recomputed, never trusted
                log.warning("feature cache entry %s is unreadable; recomputing", path)
        tensors = {k: v.contiguous() for k, v in compute().items()}
        try:
            if distributed.is_main():
                fileio.atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
        except OSError as exc:
            log.warning("cannot write feature cache %s (%s); continuing without caching", path, exc)
        return tensors

    def test_features(self, items, transform_tag: str, loader_fn: Callable[[], DataLoader]) -> dict:
        def compute():
            f, y, i = encode_items(self.backbone.encode_image, loader_fn(), "encoding test images", len(items))
            return _in_item_order(f, y, i, len(items))

        return self._load_or_compute(self._path("test", items_fingerprint(items), transform_tag), compute)

    def train_pool(self, items, transform_tag: str, views: int, seed: int, loader_fn: Callable[[], DataLoader]) -> dict:
        """``{"features": [P, N, E], "labels": [N], "valid": [N]}`` for P augmented views."""

        def compute():
            pool, labels, valid = [], None, None
            for v in range(views):
                torch.manual_seed(_view_seed(seed, v))
                f, y, i = encode_items(
                    self.backbone.encode_image, loader_fn(), f"augmented train view {v + 1}/{views}", len(items)
                )
                out = _in_item_order(f, y, i, len(items))
                pool.append(out["features"])
                labels, valid = out["labels"], out["valid"] if valid is None else valid & out["valid"]
            return {"features": torch.stack(pool), "labels": labels, "valid": valid}

        path = self._path("train", items_fingerprint(items), transform_tag, views, seed)
        return self._load_or_compute(path, compute)


def _view_seed(seed: int, view: int) -> int:
    return (seed * 1_000_003 + view * 7919) % (2**31)


def _in_item_order(feats, labels, index, n: int) -> dict:
    """Scatter features into item order; ``valid`` marks items that loaded (``--skip-corrupt``)."""
    out = torch.zeros(n, feats.shape[1])
    lab = torch.full((n,), -1, dtype=torch.long)
    out[index] = feats
    lab[index] = labels.long()
    return {"features": out, "labels": lab, "valid": lab >= 0}


class PooledFeatures(Dataset):
    """Train samples from a view pool: item ``i`` yields one of its P cached views, drawn per epoch."""

    def __init__(self, pool: dict):
        valid = pool["valid"].bool()
        self.features = pool["features"][:, valid]
        self.labels = pool["labels"][valid]
        self.views: Optional[torch.Tensor] = None

    def new_epoch(self, generator: torch.Generator) -> None:
        self.views = torch.randint(self.features.shape[0], (len(self.labels),), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        view = int(self.views[i]) if self.views is not None else 0
        return self.features[view, i], self.labels[i], i


def feature_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int) -> List[tuple]:
    return [(features[s : s + batch_size], labels[s : s + batch_size]) for s in range(0, len(labels), batch_size)]
