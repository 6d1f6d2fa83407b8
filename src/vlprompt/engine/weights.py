"""Release weights of a trained run: ``weights.safetensors`` (the task's published state: trainable tensors and
persistent non-class state, never class-name-dependent buffers) with the ``weights.json`` sidecar (composition,
configs, backbone, class names, versions). One place reads and writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import torch

from vlprompt import fileio
from vlprompt.engine.rundir import WEIGHTS, WEIGHTS_META
from vlprompt.errors import VLPromptError


def save_weights(run_dir: Path, task, meta: Dict) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in task.release_state_dict().items()}
    fileio.atomic_write(Path(run_dir) / WEIGHTS, lambda tmp: save_file(tensors, str(tmp)))
    fileio.write_json(Path(run_dir) / WEIGHTS_META, {**meta, "tensors": {k: list(v.shape) for k, v in tensors.items()}})


def load_weights(run_dir: Path) -> Tuple[Dict, Dict[str, torch.Tensor]]:
    """``(meta, tensors)`` of a trained run directory; one-line errors for a missing or unreadable file."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    for name in (WEIGHTS, WEIGHTS_META):
        if not (run_dir / name).is_file():
            raise VLPromptError(f"{run_dir / name} not found: --run must be a finished `vlprompt train` run directory")
    try:
        meta = json.loads((run_dir / WEIGHTS_META).read_text())
    except (OSError, ValueError) as exc:
        raise VLPromptError(f"cannot read {run_dir / WEIGHTS_META}: {exc}; the run directory is damaged") from None
    if not isinstance(meta, dict) or not {"method", "label_space", "configs", "backbone"} <= set(meta):
        raise VLPromptError(f"{run_dir / WEIGHTS_META} is not a vlprompt weights sidecar; the run directory is damaged")
    try:
        tensors = load_file(str(run_dir / WEIGHTS))
    except Exception as exc:  # safetensors raises several error types for damaged files
        raise VLPromptError(f"cannot read {run_dir / WEIGHTS}: {exc}; the run directory is damaged") from None
    require_finite(tensors, run_dir / WEIGHTS, "the run directory is damaged: train it again")
    return meta, tensors


def require_finite(tensors: Dict[str, torch.Tensor], source, fix: str) -> None:
    """A one-line error naming ``source`` and its first tensor that holds NaN or ±Inf (nothing evaluates, exports
    or corrupts non-finite weights)."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kinds = [k for k, bad in (("NaN", tensor.isnan()), ("Inf", tensor.isinf())) if bool(bad.any())]
            raise VLPromptError(f"{source}: tensor {name} holds {' and '.join(kinds)} values; {fix}")


def load_into(task, tensors: Dict[str, torch.Tensor], source: Path) -> None:
    """Load release tensors into ``task``; a missing, unexpected or mis-shaped tensor is a one-line error."""
    own = task.release_state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = [
            f"{label} {keys[:3]}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        ]
        raise VLPromptError(f"{source} does not match method {task.method}: {'; '.join(parts)}")
    task.load_state_dict(tensors, strict=False)
