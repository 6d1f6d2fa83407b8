"""Backbones: open_clip models behind a prompt-ready adapter (a text and a vision tower adapter, :mod:`.towers`).

``load_backbone(backbone, pretrained)`` returns a frozen :class:`PromptableCLIP`; see
:mod:`vlprompt.backbones.loading` for what ``--backbone`` and ``--pretrained`` accept and how the MLP
activation (QuickGELU for OpenAI weights, GELU otherwise) is decided.
"""

from __future__ import annotations

from typing import Optional

import torch

from vlprompt.backbones.adapter import CLIP_MEAN, CLIP_STD, PromptableCLIP
from vlprompt.backbones.blocks import BlockWrapper
from vlprompt.backbones.loading import BackboneSpec, load_clip
from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.tokenizers import make_tokenizer

__all__ = [
    "PromptableCLIP",
    "BackboneSpec",
    "BlockWrapper",
    "EncodeOptions",
    "load_backbone",
    "resolve_device",
    "CLIP_MEAN",
    "CLIP_STD",
]


def resolve_device(device: str = "auto") -> torch.device:
    from vlprompt.errors import VLPromptError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise VLPromptError(f"--device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VLPromptError(f"--device {device} requested but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None:
        check_gpu_ids([dev.index], f"--device {device}")
    return dev


def check_gpu_ids(ids, flag: str) -> None:
    """Refuse GPU indices this machine does not have (``--device cuda:N``, ``sweep --devices``)."""
    count = torch.cuda.device_count()
    missing = [i for i in ids if not (isinstance(i, int) and 0 <= i < count)]
    if missing:
        from vlprompt.errors import VLPromptError

        have = f"GPUs 0..{count - 1}" if count > 1 else "GPU 0" if count == 1 else "no CUDA GPU"
        raise VLPromptError(f"{flag}: this machine has {have} (no GPU {missing[0]}); name GPUs it has")


def load_backbone(
    backbone: str = "toy",
    pretrained: Optional[str] = None,
    trust_pickle: bool = False,
    device: str = "auto",
    quick_gelu: Optional[bool] = None,
    quick_gelu_reason: Optional[str] = None,
) -> PromptableCLIP:
    """Load ``--backbone``/``--pretrained`` as a frozen, eval-mode, fp32 :class:`PromptableCLIP`.

    ``quick_gelu`` forces QuickGELU (True) or GELU (False); None decides from the weights
    (:func:`vlprompt.backbones.loading.resolve_activation`). ``spec.quick_gelu`` / ``spec.activation_reason``
    record the outcome."""
    model, spec = load_clip(
        backbone, pretrained, trust_pickle=trust_pickle, quick_gelu=quick_gelu, quick_gelu_reason=quick_gelu_reason
    )
    tokenizer = make_tokenizer(backbone, spec.config, spec.weights_path)
    name = backbone.replace("/", "-")
    import open_clip

    if tokenizer is None and name in open_clip.list_models():
        tokenizer = open_clip.get_tokenizer(name)
    return PromptableCLIP(model, spec, tokenizer).to(resolve_device(device))
