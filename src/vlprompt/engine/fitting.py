"""Fitted learners: training-free or closed-form methods through the same run directory as trained ones.

A learner with ``fitted = True`` (Tip-Adapter's cache, the linear probe) is not trained by epochs: ``vlprompt train``
gives it a :class:`FitData` — the frozen image features of the few-shot train items (any number of augmented
views, :mod:`vlprompt.engine.features`: cached and shared with every other run on the same items) and of a search
split — and calls ``learner.fit(data)``. A trained learner may define ``fit_before_training`` /
``fit_after_training`` with the same signature (Tip-Adapter-F builds its cache, trains its keys, then searches
α/β). The run directory is the normal one: ``config.yaml``, ``log.txt``, ``metrics.jsonl`` (one ``fit`` line per
stage), ``fit.json`` (every stage's full record: the search grid and its validation scores),
``weights.safetensors`` (the fitted tensors) and ``results.json`` (``fit``: the chosen settings), so ``eval``,
``predict``, ``sweep`` and ``table`` treat it as any trained run.

Search splits (``FitData.split(name)``), every image under the test transform:

* ``val`` — the label space's whole validation split (Tip-Adapter's dataset readers keep all of it);
* ``fewshot_val`` — the few-shot validation sample (CoOp's ``min(K, 4)`` per class), as the run's dataset holds it;
* ``test`` — the test split (Tip-Adapter's ImageNet script searches there; a parity option only);
* ``train`` — the few-shot train items themselves, under the test transform (lpclip's training features).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

import torch

from vlprompt import fileio
from vlprompt.engine import features as fc
from vlprompt.errors import VLPromptError

log = logging.getLogger(__name__)

FIT_FILE = "fit.json"
#: splits a fitted learner may ask for under the test transform (see the module doc)
SEARCH_SPLITS = ("val", "fewshot_val", "test", "train")

Features = Tuple[torch.Tensor, torch.Tensor]


@dataclass
class FitData:
    """What a learner is fitted from. ``train_view(v, crop_scale=0.08)``: ``(features [N, E], labels [N])`` of
    augmented view ``v`` of the few-shot train items (unnormalised fp32, in the items' order; random resized crops
    of at least ``crop_scale`` of the area, and flips; every view the same under the deterministic ``resize``
    transform); ``split(name)``: the same for a search split (:data:`SEARCH_SPLITS`);
    ``num_classes``: the label space's size; ``log``: one line to the run's log and console."""

    train_view: Callable[..., Features]
    split: Callable[[str], Features]
    num_classes: int
    log: Callable[[str], None]


def needs_fit(learner) -> bool:
    return bool(learner.fitted or learner.fit_before_training or learner.fit_after_training)


def _valid(entry: Dict[str, torch.Tensor]) -> Features:
    valid = entry["valid"].bool()
    return entry["features"][valid], entry["labels"][valid]


def fit_data(task, dataset, backbone, cfg, cache) -> FitData:
    """The :class:`FitData` of a run: features come from ``cache`` (a
    :class:`~vlprompt.engine.features.FeatureCache`) or, without one, are encoded on demand; each is computed
    once per run."""
    from vlprompt.data.transforms import CROP_SCALE, backbone_transform, view_kind

    data = cfg.data
    kind, items = data.train_transform, dataset.train
    test_tf = backbone_transform(backbone)
    bs, workers, skip = cfg.train.test_batch_size, data.num_workers, data.skip_corrupt
    memo: Dict[Any, Features] = {}

    def encode(loader, n, desc):
        return fc.encode_items(backbone.encode_image, loader, n, desc)

    def train_view(view: int, crop_scale: float = CROP_SCALE) -> Features:
        if kind == "resize":  # the deterministic transform: one view
            view, crop_scale = 0, CROP_SCALE
        key = ("train", view, crop_scale)
        if key not in memo:
            transform, name = backbone_transform(backbone, kind, crop_scale), view_kind(kind, crop_scale)

            def loader():
                ds = fc.ViewDataset(items, transform, data.seed, [view] * len(items), skip)
                return fc.image_loader(ds, batch_size=bs, num_workers=workers)

            if cache is not None:
                entry = cache.train_view(items, name, data.seed, view, loader, skip)
            else:
                entry = encode(loader(), len(items), f"encoding train view {view + 1}")
            memo[key] = _valid(entry)
        return memo[key]

    def split(name: str) -> Features:
        if name not in SEARCH_SPLITS:
            raise VLPromptError(f"unknown search split {name!r}; choose one of {', '.join(SEARCH_SPLITS)}")
        if name not in memo:
            split_items = search_items(dataset, data, name)

            def loader():
                return fc.image_loader(split_items, test_tf, bs, workers, skip)

            if cache is not None:
                entry = cache.test_features(split_items, loader, skip)
            else:
                entry = encode(loader(), len(split_items), f"encoding {name} images")
            memo[name] = _valid(entry)
        return memo[name]

    def say(line: str) -> None:
        log.info("%s: %s", task.method, line)

    return FitData(train_view=train_view, split=split, num_classes=len(task.space), log=say)


def search_items(dataset, data, name: str) -> List:
    """The items of search split ``name`` for a run on ``dataset`` (configured by ``data``)."""
    if name == "fewshot_val":
        items = dataset.val
    elif name in ("test", "train"):
        items = dataset.split(name)
    else:
        from vlprompt.data import build_dataset

        full = build_dataset(
            data.dataset, data.data_root, shots=0, seed=data.seed, subsample=data.subsample,
            split_file=data.split_file, template=data.template, templates_file=data.templates_file,
            classnames_file=data.classnames_file,
        )  # fmt: skip
        items = full.val
    if not items:
        raise VLPromptError(
            f"--dataset {data.dataset}: the {name} split is empty, so the fitted learner has nothing to search on; "
            "choose another search split (e.g. --set <method>.search_split=fewshot_val)"
        )
    return items


def run_stage(stage: str, fit: Callable[[FitData], Dict], data: FitData, run, main: bool) -> Dict:
    """Run one fit stage, record it (a ``metrics.jsonl`` line, ``fit.json``) and return its record."""
    start = time.time()
    record = dict(fit(data))
    record["fit_time_s"] = round(time.time() - start, 3)
    if main:
        stages = fileio.read_json(run.path / FIT_FILE) if (run.path / FIT_FILE).is_file() else {}
        fileio.write_json(run.path / FIT_FILE, {**stages, stage: record})
        run.append_metrics({"fit": stage, **summary(record)})
    return record


def summary(record: Dict) -> Dict:
    """The scalar entries of a fit record (what results.json and metrics.jsonl keep; fit.json has everything)."""
    return {k: v for k, v in record.items() if isinstance(v, (int, float, str, bool))}


def train_or_fit(task, dataset, backbone, cfg, run, cache, train: Callable[[], List[Dict]]) -> Dict:
    """Fit ``task``'s learner (``fitted``), or run ``train`` (the epochs, returning their records) between its
    optional fit stages. Returns the extra results.json fields: ``epochs`` (the epochs run, 0 for a fitted learner)
    and, when the learner is fitted, ``fit`` (the stages' scalar records)."""
    from vlprompt.engine import distributed

    learner, main = task.learner, distributed.is_main()
    if not needs_fit(learner):
        return {"epochs": len(train())}
    data = fit_data(task, dataset, backbone, cfg, cache)
    stages: Dict[str, Dict] = {}
    task.eval()
    with torch.no_grad():
        if learner.fitted:
            stages["fit"] = run_stage("fit", learner.fit, data, run, main)
        elif learner.fit_before_training:
            stages["before_training"] = run_stage("before_training", learner.fit_before_training, data, run, main)
    epochs = 0
    if not learner.fitted:
        epochs = len(train())
        task.eval()
        if learner.fit_after_training:
            with torch.no_grad():
                stages["after_training"] = run_stage("after_training", learner.fit_after_training, data, run, main)
    return {"epochs": epochs, "fit": {stage: summary(r) for stage, r in stages.items()}}
