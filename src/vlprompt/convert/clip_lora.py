"""CLIP-LoRA's saved LoRA weights as a vlprompt run directory (``vlprompt convert --from clip-lora``).

CLIP-LoRA's ``save_lora`` (loralib/utils.py) writes ``<save_path>/<backbone>/<dataset>/<shots>shots/seed<seed>/
lora_weights.pt`` with ``torch.save``::

    {"weights": {"layer_<i>": {"q_proj" | "k_proj" | "v_proj" | "proj": {"w_lora_A": [r, d], "w_lora_B": [d, r]}}},
     "metadata": {"r", "alpha", "encoder", "params", "position"}}

where ``layer_<i>`` counts the adapted attention modules in ``apply_lora``'s order: the text blocks of the
position's indices, then the vision blocks (:meth:`vlprompt.methods.lora.LoRA.lora_modules`). The file is read
with the restricted unpickler (nothing is executed); the metadata become the run's ``lora.*`` settings (a
``--set`` that contradicts them is refused) and every tensor is checked against the module it lands in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from vlprompt.errors import VLPromptError

TRAINER = "CLIP-LoRA"
#: CLIP-LoRA's saved projection names -> the learner's
PROJECTIONS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "proj": "out"}


def read_clip_lora(path, trust_pickle: bool = False) -> Dict[str, Any]:
    """``{"weights", "metadata"}`` of a ``lora_weights.pt``, checked for CLIP-LoRA's layout."""
    from vlprompt.convert.unpickler import load_checkpoint

    path = Path(path)
    data = load_checkpoint(path, trust_pickle=trust_pickle)
    meta, weights = data.get("metadata"), data.get("weights")
    keys = ("r", "alpha", "encoder", "params", "position")
    if not isinstance(meta, dict) or not isinstance(weights, dict) or any(k not in meta for k in keys):
        raise VLPromptError(
            f"{path}: not a CLIP-LoRA lora_weights.pt (expected 'weights' and 'metadata' with {', '.join(keys)}); "
            "check the file or use --from dassl"
        )
    return data


def lora_settings(meta: Dict[str, Any]) -> Dict[str, Any]:
    """The ``lora.*`` settings CLIP-LoRA's metadata fix."""
    return {
        "rank": int(meta["r"]),
        "alpha": float(meta["alpha"]),
        "encoder": str(meta["encoder"]),
        "params": ",".join(str(p) for p in meta["params"]),
        "position": str(meta["position"]),
    }


def lora_tensors(learner, weights: Dict[str, Any], source: Path) -> Dict[str, torch.Tensor]:
    """Task state-dict names -> tensors: ``layer_<i>`` onto the learner's i-th adapted attention module."""
    names = {id(m): n for n, m in learner.named_modules()}
    modules = learner.lora_modules()
    per_block = len(learner.config.projections)
    if len(weights) * per_block != len(modules):
        raise VLPromptError(
            f"{source}: {len(weights)} adapted attention modules, but the settings and this backbone give "
            f"{len(modules) // per_block}; pass the --backbone the weights were trained with"
        )
    tensors: Dict[str, torch.Tensor] = {}
    blocks = [modules[i : i + per_block] for i in range(0, len(modules), per_block)]
    for index, block in enumerate(blocks):
        saved = weights.get(f"layer_{index}")
        if not isinstance(saved, dict):
            raise VLPromptError(f"{source}: no 'layer_{index}' entry; the file is incomplete")
        by_name = {names[id(m)].rsplit(".", 1)[-1]: m for m in block}
        for key, pair in saved.items():
            if key not in PROJECTIONS or PROJECTIONS[key] not in by_name:
                raise VLPromptError(f"{source}: layer_{index} holds {key!r}, which these lora.params do not adapt")
            prefix = f"learner.{names[id(by_name[PROJECTIONS[key]])]}"
            tensors[f"{prefix}.lora_A"] = pair["w_lora_A"]
            tensors[f"{prefix}.lora_B"] = pair["w_lora_B"]
    return tensors


def convert_clip_lora(
    checkpoint,
    out,
    dataset: str = "toy-b2n",
    *,
    protocol: Optional[str] = None,
    preset: Optional[str] = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
    **options: Any,
):
    """Convert CLIP-LoRA's ``lora_weights.pt`` ``checkpoint`` into the run directory ``out`` (a ``lora`` run that
    ``eval``, ``predict``, ``export`` and ``train --init-from`` accept). The data and backbone ``options`` are those
    of ``vlprompt train``."""
    from vlprompt.config import make_config
    from vlprompt.convert.runs import (
        Conversion,
        _check_contradictions,
        _load_checked,
        _user_settings,
        check_finite,
        write_converted_run,
    )
    from vlprompt.engine.labels import label_space
    from vlprompt.pipeline.build import build_task
    from vlprompt.pipeline.loading import load_backbone, load_data

    source = Path(checkpoint)
    data = read_clip_lora(source, trust_pickle=bool(options.get("trust_pickle")))
    settings = lora_settings(data["metadata"])
    fixed = {("lora", k): v for k, v in settings.items()}
    _check_contradictions(fixed, _user_settings(overrides), "lora")
    extra = [f"lora.{k}={v}" for k, v in settings.items()]
    cfg = make_config("lora", dataset, protocol=protocol, preset=preset, overrides=[*overrides, *extra],
                      out=str(out), **options)  # fmt: skip
    for key in settings:
        cfg.sources[f"lora.{key}"] = f"vlprompt convert ({TRAINER} metadata)"
    space = label_space(load_data(cfg.data))
    backbone = load_backbone(cfg.backbone, quiet=quiet)
    task = build_task(backbone, cfg, space)
    tensors = lora_tensors(task.learner, data["weights"], source)
    check_finite(tensors, source)
    _load_checked(task, tensors, source, len(space))
    result = Conversion(
        path=Path(out),
        method="lora",
        trainer=TRAINER,
        source=source,
        epoch=None,
        tensors={k: list(v.shape) for k, v in tensors.items()},
        settings={f"lora.{k}": v for k, v in settings.items()},
    )
    provenance = {"settings_from_checkpoint": result.settings}
    write_converted_run(Path(out), cfg, task, backbone, space, source, TRAINER, provenance, result.describe())
    if not quiet:
        print("\n".join(result.describe()))
    return result
