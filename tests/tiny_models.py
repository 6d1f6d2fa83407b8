"""Tiny random open_clip architectures for tests (no download), saved as config JSON + safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 3, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 3},
}
TINY_RN = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 32, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def save_tiny(tmp: Path, config: dict, name: str = "tiny", seed: int = 0):
    """Write ``<name>.json`` and ``<name>.safetensors`` for a random model; returns both paths."""
    from safetensors.torch import save_file

    from vlprompt.backbones.loading import build_model

    torch.manual_seed(seed)
    model = build_model(config)
    cfg_path = tmp / f"{name}.json"
    cfg_path.write_text(json.dumps(config))
    w_path = tmp / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(w_path))
    return cfg_path, w_path


def fit_on_random_features(task, embed_dim: int, labels) -> None:
    """A learner fitted before its epochs (Tip-Adapter-F's cache) fitted on random frozen features, as
    :mod:`vlprompt.engine.fitting` would fit it on the few-shot views; a no-op for every other learner."""
    from vlprompt.engine.fitting import FitData

    if not task.learner.fit_before_training:
        return
    feats = torch.randn(len(labels), embed_dim)
    data = FitData(
        lambda v, crop_scale=0.08: (feats, labels), lambda name: (feats, labels), len(labels), lambda line: None
    )
    with torch.no_grad():
        task.learner.fit_before_training(data)
