"""The shipped toy CLIP: a tiny open_clip ``CLIP`` pretrained on the toy world (see :mod:`.pretrain`).

``assets/toy_clip.json`` holds the open_clip model config (``open_clip_config``), the provenance of the
weights (``provenance``: script, seed, steps, data version, final loss, ...) and the zero-shot headroom
measured on ``toy-b2n`` (``headroom``). ``assets/toy_clip.safetensors`` holds the state dict in fp16;
:func:`load_toy_clip` casts it to fp32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import open_clip
import torch
from safetensors.torch import load_file, save_file

ASSETS = Path(__file__).resolve().parent / "assets"
TOY_CONFIG_PATH = ASSETS / "toy_clip.json"
TOY_WEIGHTS_PATH = ASSETS / "toy_clip.safetensors"


def toy_model_config(config_path: Optional[Path] = None) -> dict:
    """The open_clip config dict of the toy CLIP (``open_clip.model.CLIP(**config)`` builds it)."""
    return json.loads(Path(config_path or TOY_CONFIG_PATH).read_text())["open_clip_config"]


def load_toy_clip(weights_path: Optional[Path] = None) -> open_clip.model.CLIP:
    """The toy CLIP in fp32, eval mode, on CPU.

    ``weights_path`` defaults to the shipped weights; its config is read from the ``.json`` file of the
    same name next to it (as :mod:`.pretrain` writes them).
    """
    weights_path = Path(weights_path or TOY_WEIGHTS_PATH)
    model = open_clip.model.CLIP(**toy_model_config(weights_path.with_suffix(".json")))
    state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_toy_clip(model: torch.nn.Module, weights_path: Path) -> None:
    """Write ``model``'s state dict in fp16 (the format :func:`load_toy_clip` reads)."""
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(weights_path))
