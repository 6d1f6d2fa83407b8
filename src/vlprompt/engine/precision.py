"""Numeric precision of a run: ``auto`` (fp32 on CPU, bf16 autocast on CUDA), ``fp32``, ``bf16``/``amp``
(autocast), or ``fp16`` — the references' pure half mode, for parity runs.

**fp16** reproduces what the reference trainers run by default (``PREC = "fp16"``): OpenAI CLIP's ``build_model``
calls ``convert_weights``, and :func:`half_backbone` does the same to the open_clip model (with open_clip's
``convert_weights_to_lp``, its port of that function):

* fp16: Conv1d/Conv2d/Linear weights and biases (patch embedding, MLPs, attention ``out_proj``, the RN attention
  pool), attention ``in_proj_weight`` / ``in_proj_bias``, ``text_projection`` and the image tower's ``proj``;
* fp32, cast to fp16 where used: the token, positional and class embeddings (the towers compute in the
  weights' dtype, CLIP's ``dtype``);
* fp32: LayerNorm weights and biases, computed in fp32 and cast back to the input dtype (CLIP's ``LayerNorm``
  subclass; open_clip's ``LayerNormFp32`` replaces open_clip's ``LayerNorm``, which would normalise the fp16
  input with the fp32 weights directly); BatchNorm parameters and statistics (RN); ``logit_scale``.

The task's trainable tensors become fp16 and are updated directly by SGD (no fp32 master copy), except those each
component keeps in fp32 (``fp32_params``: MaPLe's deep text prompts and couplings, IVLP's per-layer prompts,
DePT's FiLM), which are cast to half where used. Class-dependent buffers are then rebuilt with the half backbone,
so KgCoOp's hand-crafted targets come from the fp16 text tower, as from the reference's second, half CLIP.
PromptSRC computes its frozen text targets in fp32 in every mode (:mod:`vlprompt.addons.src.model`). A learner
whose reference trainer runs fp32 even in its fp16 mode (VPT: its ``load_clip_to_cpu`` returns
``model.float()``) declares ``half_precision = False`` and the run stays fp32.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import torch
from torch import nn

from vlprompt.config import PRECISIONS, RESOLVED_PRECISIONS
from vlprompt.errors import VLPromptError

log = logging.getLogger(__name__)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "amp" if device.type == "cuda" else "fp32"
    if precision not in RESOLVED_PRECISIONS:
        choices = f"{', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}"
        raise VLPromptError(f"unknown --precision {precision!r}: use {choices}")
    return precision


def autocast_context(precision: str, device: torch.device):
    if precision in ("amp", "bf16") and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def half_backbone(backbone) -> None:
    """CLIP's ``convert_weights`` on the frozen open_clip model, in place (see the module doc)."""
    from open_clip import convert_weights_to_lp
    from open_clip.transformer import LayerNorm, LayerNormFp32

    convert_weights_to_lp(backbone.clip, torch.float16)
    for module in backbone.clip.modules():
        if type(module) in (nn.LayerNorm, LayerNorm):
            module.__class__ = LayerNormFp32  # same parameters; computes in fp32 like CLIP's LayerNorm


def apply_fp16(backbone, task) -> None:
    """The references' pure half mode for ``task`` on ``backbone`` (see the module doc)."""
    learner = task.learner
    if not learner.half_precision:
        log.warning(
            "%s: its reference trainer runs fp32 even in its fp16 mode (model.float()); --precision fp16 runs fp32",
            learner.name,
        )
        return
    half_backbone(backbone)
    keep = set(task.fp32_parameter_names())
    for name, p in task.named_parameters():
        if name not in keep:
            p.data = p.data.half()
    task.set_label_space(task.space)
