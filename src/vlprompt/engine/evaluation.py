"""Evaluation: a task's logits on a test split, the reference evaluator's metrics, and per-image predictions.

Metrics are those Dassl's evaluator prints: top-1 accuracy (micro, over all images, percent), error and macro-F1
(over the classes present). Image-conditioned text (CoCoOp) is evaluated in image chunks (``train.eval_chunk``)
to bound the B·K text sequences per pass. In a multi-process run each process evaluates a contiguous share of the
images and the logits are gathered in item order (:mod:`vlprompt.engine.distributed`).
"""

from __future__ import annotations

import csv
import io as textio
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from vlprompt import fileio
from vlprompt.engine import distributed
from vlprompt.errors import VLPromptError

TOPK = 5


def top_k(scores: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best ``(scores, class indices)`` of every row of ``scores`` ``[N, K]``, best first, in float32
    (all ``K`` when ``k > K``)."""
    return scores.float().topk(min(k, scores.shape[-1]), dim=-1)


def classification_metrics(preds: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """Top-1 accuracy (micro, percent), error and macro-F1 (percent, over the classes present in labels)."""
    preds, labels = preds.long().cpu(), labels.long().cpu()
    n = labels.numel()
    correct = int((preds == labels).sum())
    f1s = []
    for c in labels.unique().tolist():
        tp = int(((preds == c) & (labels == c)).sum())
        fp = int(((preds == c) & (labels != c)).sum())
        fn = int(((preds != c) & (labels == c)).sum())
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    accuracy = 100.0 * correct / max(n, 1)
    return {
        "accuracy": accuracy,
        "error": 100.0 - accuracy,
        "macro_f1": 100.0 * sum(f1s) / max(len(f1s), 1),
        "num_images": n,
    }


@dataclass
class Evaluation:
    """Logits of every evaluated image (``index`` = its position in the evaluated items; skipped images are
    absent) with the metrics derived from them."""

    index: torch.Tensor
    labels: torch.Tensor
    logits: torch.Tensor

    @property
    def preds(self) -> torch.Tensor:
        return self.logits.argmax(-1)

    @property
    def metrics(self) -> Dict[str, float]:
        return classification_metrics(self.preds, self.labels)

    def prediction_rows(self, items: Sequence, classnames: Sequence[str]) -> List[Dict]:
        """One row per image: its path relative to the dataset, true and predicted label, top-k with scores."""
        scores, top = top_k(self.logits, TOPK)
        k = top.shape[-1]
        rows = []
        for i, idx in enumerate(self.index.tolist()):
            label, pred = int(self.labels[i]), int(top[i, 0])
            row = {
                "image": items[idx].relpath,
                "label": label,
                "label_name": classnames[label],
                "prediction": pred,
                "prediction_name": classnames[pred],
            }
            for j in range(k):
                row[f"top{j + 1}"] = int(top[i, j])
                row[f"score{j + 1}"] = round(float(scores[i, j]), 6)
            rows.append(row)
        return rows


def write_predictions(path: Path, evaluation: Evaluation, items: Sequence, classnames: Sequence[str]) -> None:
    """``predictions.csv`` (atomic)."""
    rows = evaluation.prediction_rows(items, classnames)
    buf = textio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["image"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    fileio.write_text(Path(path), buf.getvalue())


def write_logits(path: Path, evaluation: Evaluation) -> None:
    """``logits.safetensors``: ``logits`` [N, K] (fp32), ``labels`` [N], ``index`` [N] (atomic)."""
    from safetensors.torch import save_file

    tensors = {
        "logits": evaluation.logits.float().contiguous(),
        "labels": evaluation.labels.contiguous(),
        "index": evaluation.index.contiguous(),
    }
    fileio.atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp)))


@torch.no_grad()
def evaluate(
    task,
    items,
    backbone,
    cfg,
    cache=None,
    num_workers: int = 0,
    skip_corrupt: bool = False,
    progress: bool = True,
) -> Evaluation:
    """Logits of ``task`` on ``items`` (batched; image-conditioned text in image chunks). ``cache``: a
    :class:`~vlprompt.engine.features.FeatureCache` used when the image tower carries no prompts."""
    from vlprompt.data.transforms import backbone_transform
    from vlprompt.engine import features as fc
    from vlprompt.progress import progress as progress_bar

    task.eval()
    device = backbone.device
    transform = backbone_transform(backbone)
    chunk = cfg.eval_chunk if task.per_instance_text else cfg.test_batch_size

    def loader():
        return fc.image_loader(items, transform, cfg.test_batch_size, num_workers, skip_corrupt)

    logits, labels, index = [], [], []
    if cache is not None and task.image_features_cacheable:
        stored = cache.test_features(items, loader, skip_corrupt)
        valid = stored["valid"].bool()
        mine = valid.nonzero().flatten()[distributed.local_rows(int(valid.sum()))]  # this process's share
        for f, y in fc.feature_batches(stored["features"][mine], stored["labels"][mine], chunk):
            logits.append(task.predict(image_features=f.to(device, backbone.dtype)).float().cpu())
            labels.append(y)
        index.append(mine)
    else:
        for batch in progress_bar(
            distributed.shard_loader(loader()), desc="evaluating", unit="batch", enabled=progress
        ):
            if batch is None:  # every image of the batch was skipped (--skip-corrupt)
                continue
            images, y, idx = batch
            for s in range(0, len(y), chunk):
                logits.append(task.predict(images=images[s : s + chunk].to(device)).float().cpu())
            labels.append(y)
            index.append(idx)
    index, labels, logits = distributed.gather_rows(index, labels, logits)
    if not len(labels):
        raise VLPromptError("the evaluation split is empty; check the dataset and --subsample")
    return Evaluation(index=index, labels=labels, logits=logits)
