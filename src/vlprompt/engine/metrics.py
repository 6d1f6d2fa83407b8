"""Classification metrics as the reference evaluator reports them (METHODS §1.4)."""

from __future__ import annotations

from typing import Dict

import torch


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


def harmonic_mean(base: float, new: float) -> float:
    """H = 2BN / (B + N), the base-to-new summary number."""
    return 0.0 if base + new == 0 else 2 * base * new / (base + new)
