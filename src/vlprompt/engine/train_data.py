"""The training stream: the batches the loop iterates in each epoch.

* **Order** (``data.train_order``): ``random`` — a fresh permutation of the few-shot train items every epoch (the
  references' ``RandomSampler``); ``sequential`` — the stored few-shot order (parity checks). The last partial
  batch is dropped only when the split holds at least one full batch (Dassl's ``drop_last`` rule).
* **Images** (``data.train_transform``): ``augment`` — random resized crop (at least the learner's ``crop_scale``
  of the area: Dassl's 0.08, Tip-Adapter-F's 0.5) + flip, a fresh view of every image in
  every epoch (epoch ``e`` = view ``e``, :mod:`vlprompt.engine.features`); ``resize`` — the references'
  deterministic path (parity checks). ``train.feature_pool`` N > 0 is a speed option: each epoch draws, per image,
  one of N cached views instead of a fresh one (the demo's choice; its effect is measured in BENCHMARKS.md).
* **Features**: when the image tower carries no prompts and the feature cache is on, batches are the cached frozen
  features of those views (computed once, shared by runs); otherwise they are the transformed images.
* **Frozen teacher**: when the image tower carries prompts but the task compares with the prompt-free features of
  the same views (:attr:`~vlprompt.task.PromptTask.wants_frozen_image`: PromptSRC's image teacher) and the cache
  is on, every image batch carries a fourth entry, those views' cached frozen features — the same entries a
  frozen-feature run of the same items and seed uses — so no step runs the image tower a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List

import torch

from vlprompt.engine import features as fc


@dataclass
class TrainData:
    """The training stream: ``make_loader(epoch, generator)`` gives an epoch's batches ``(x, y, index)``; ``x``
    are image features when ``features`` else images (then ``(x, y, index, frozen features)`` when the stream
    carries the frozen teacher, see the module doc)."""

    make_loader: Callable[[int, torch.Generator], Iterable]
    features: bool
    num_samples: int

    def batches_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps of an epoch (:func:`epoch_batches`' rule; images skipped by --skip-corrupt aside)."""
        n = self.num_samples
        return n // batch_size if n >= batch_size else 1


def epoch_batches(indices: torch.Tensor, batch_size: int, order: str, generator: torch.Generator) -> List[torch.Tensor]:
    """The epoch's batches of ``indices`` in ``order`` (random: a permutation drawn from ``generator``)."""
    if order == "random":
        indices = indices[torch.randperm(len(indices), generator=generator)]
    drop_last = len(indices) >= batch_size
    stop = len(indices) - len(indices) % batch_size if drop_last else len(indices)
    return [indices[s : s + batch_size] for s in range(0, stop, batch_size)]


def epoch_views(n: int, epoch: int, kind: str, pool: int, generator: torch.Generator) -> torch.Tensor:
    """Which view of each of ``n`` images an epoch uses: its own (``e``), one of ``pool``, or 0 (``resize``)."""
    if kind == "resize":
        return torch.zeros(n, dtype=torch.long)
    if pool > 0:
        return torch.randint(pool, (n,), generator=generator)
    return torch.full((n,), epoch, dtype=torch.long)


def train_stream(task, items, backbone, train_cfg, data_cfg, cache) -> TrainData:
    """Batches of the few-shot ``items`` for ``task`` (see the module doc)."""
    from vlprompt.data.transforms import backbone_transform, view_kind

    kind, order, seed = data_cfg.train_transform, data_cfg.train_order, data_cfg.seed
    crop_scale = task.learner.crop_scale
    transform, cache_kind = backbone_transform(backbone, kind, crop_scale), view_kind(kind, crop_scale)
    bs, pool, n = train_cfg.batch_size, train_cfg.feature_pool, len(items)

    def view_loader(views, batch_sampler=None):
        dataset = fc.ViewDataset(items, transform, seed, views, data_cfg.skip_corrupt)
        return fc.image_loader(
            dataset, batch_size=train_cfg.test_batch_size, num_workers=data_cfg.num_workers,
            batch_sampler=batch_sampler,
        )  # fmt: skip

    loaded: Dict[int, dict] = {}

    def view(v: int) -> dict:
        if v not in loaded:
            loaded[v] = cache.train_view(
                items, cache_kind, seed, v, lambda: view_loader(torch.full((n,), v)), data_cfg.skip_corrupt
            )
        return loaded[v]

    def cached_views(views: torch.Tensor) -> tuple:
        """``(features [n, E], labels, valid)`` of the epoch's ``views``, item ``i`` in view ``views[i]``."""
        needed = sorted(set(views.tolist()))
        for v in [v for v in loaded if v not in needed]:
            del loaded[v]  # a fresh view per epoch: keep only this epoch's in memory
        entries = {v: view(v) for v in needed}
        first = entries[needed[0]]
        feats = torch.empty_like(first["features"])
        for v, entry in entries.items():
            mask = views == v
            feats[mask] = entry["features"][mask]
        return feats, first["labels"], first["valid"].bool()

    if cache is None or not task.image_features_cacheable:
        teacher = cache is not None and task.wants_frozen_image

        def images(epoch: int, generator: torch.Generator):
            views = epoch_views(n, epoch, kind, pool, generator)
            batches = epoch_batches(torch.arange(n), bs, order, generator)
            loader = view_loader(views, [b.tolist() for b in batches])
            if not teacher:
                return loader
            with torch.random.fork_rng(devices=[]):  # encoding a view leaves the run's random stream as it was
                frozen = cached_views(views)[0]
            return with_frozen(loader, frozen)

        return TrainData(images, features=False, num_samples=n)

    def features(epoch: int, generator: torch.Generator):
        views = epoch_views(n, epoch, kind, pool, generator)
        feats, labels, valid = cached_views(views)
        batches = epoch_batches(valid.nonzero().flatten(), bs, order, generator)
        return [(feats[b], labels[b], b) for b in batches]

    return TrainData(features, features=True, num_samples=n)


def with_frozen(loader: Iterable, frozen: torch.Tensor) -> Iterator:
    """``loader``'s batches ``(images, labels, index)`` with the frozen features ``frozen[index]`` of the same items
    and views appended (a batch left empty by ``--skip-corrupt`` stays None)."""
    for batch in loader:
        yield None if batch is None else (*batch, frozen[batch[2]])
