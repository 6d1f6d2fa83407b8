"""A trained run as a fixed classifier for plain open_clip: ``vlprompt export``.

When the image tower carries no prompts and the text does not depend on the image (CoOp, KgCoOp, and DePT on
them — not CoCoOp, whose meta-net conditions the context on each image, nor IVLP/VPT/MaPLe/PromptSRC/RESTORE), the
learned prompts only produce one text feature per class. The classifier then reduces to

    z = s · f̂ · T̂ᵀ                                        (CoOp, Zhou et al., IJCV 2022, Eq. 2)

with f = open_clip's ``encode_image`` of the image, T̂ the normalised class embeddings and s CLIP's logit scale; with
DePT on the trained classes its fused head is added (Zhang et al., CVPR 2024, test-time fusion)

    z = (1 − λ) · s · f̂ · T̂ᵀ + λ · (W · (γ ⊙ f + β) + b)     (f unnormalised; λ = 1 without test-time fusion)

The file (safetensors, fp32) holds ``class_embeddings`` [K, E], ``logit_scale`` [], and for DePT ``dept_weight``
[] (λ), ``dept_film_scale`` / ``dept_film_bias`` [E], ``dept_head_weight`` [K, E], ``dept_head_bias`` [K]; its
metadata holds ``classnames`` (JSON), the backbone (``backbone``, ``pretrained``, ``quick_gelu``,
``open_clip_config``), ``method``, ``template`` and ``source_run``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from vlprompt import fileio
from vlprompt.addons.base import AddOn
from vlprompt.errors import VLPromptError

#: the ``format`` entry of an exported classifier's safetensors metadata
FORMAT = "vlprompt-classifier-1"

PathLike = Union[str, Path]
USE_PREDICT = "use `vlprompt predict` (or vlprompt.load_run(...).predict) instead"


def check_exportable(task) -> None:
    """Refuse, in one line, a task whose logits are not a fixed classifier over open_clip's image features."""
    method = task.method
    if task.per_instance_text:
        raise VLPromptError(
            f"export: {method}'s class text depends on each image (CoCoOp's meta-net), so there is no fixed "
            f"classifier; {USE_PREDICT}"
        )
    if not task.image_features_cacheable:
        raise VLPromptError(
            f"export: {method} changes the image tower (image prompts or feature taps), so open_clip's image "
            f"features would not match; {USE_PREDICT}"
        )
    for name, addon in task.addons.items():
        kind = type(addon)
        if kind.adapt is not AddOn.adapt or (
            kind.eval_logits is not AddOn.eval_logits and kind.exported_tensors is AddOn.exported_tensors
        ):
            raise VLPromptError(f"export: add-on {name} transforms features or logits at test time; {USE_PREDICT}")


@torch.no_grad()
def classifier_head(model, classnames: Optional[Sequence[str]] = None, template: Optional[str] = None):
    """``(tensors, metadata)`` of the fixed classifier of ``model`` (a :class:`~vlprompt.pipeline.trained.LoadedRun`) over
    ``classnames`` (default: the trained classes; DePT's head applies only to those)."""
    task = model.task_for(classnames, template)
    check_exportable(task)
    text = task.learner.text_features()
    tensors: Dict[str, torch.Tensor] = {
        "class_embeddings": F.normalize(text.float(), dim=-1),
        "logit_scale": task.backbone.logit_scale.float().reshape(()),
    }
    for addon in task.addons.values():  # an add-on's test-time logits as tensors (DePT's fused head)
        tensors.update(addon.exported_tensors(task.space) or {})
    spec = model.backbone.spec
    metadata = {
        "format": FORMAT,
        "classnames": json.dumps(list(task.space.classnames)),
        "method": task.method,
        "template": task.space.template,
        "backbone": spec.backbone,
        "pretrained": spec.pretrained,
        "quick_gelu": json.dumps(bool(spec.quick_gelu)),
        "open_clip_config": json.dumps(spec.config),
        "source_run": str(model.path),
    }
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata


def export_classifier(
    run: PathLike, out: PathLike, classnames: Optional[Sequence[str]] = None, template: Optional[str] = None, **load
) -> Tuple[Path, Dict[str, str]]:
    """Write the fixed classifier of trained run ``run`` to ``out`` (safetensors, atomic); returns ``(out,
    metadata)``. ``load`` goes to :func:`vlprompt.pipeline.trained.load_run` (``backbone``, ``pretrained``,
    ``trust_pickle``, ``device``)."""
    from safetensors.torch import save_file

    from vlprompt.pipeline.trained import load_run

    out = Path(out)
    fileio.check_output_file(out, "--out", "classifier", is_classifier)
    tensors, metadata = classifier_head(load_run(run, **load), classnames, template)
    fileio.atomic_write(out, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return out, metadata


def is_classifier(path: PathLike) -> bool:
    """Whether ``path`` is a classifier this module wrote (its safetensors header names the format)."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size)) if 0 < size < 100_000_000 else {}
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and (header.get("__metadata__") or {}).get("format") == FORMAT
