"""Building blocks of deep (per-layer) prompting, shared by ``lpt``, ``ivlp``, ``vpt`` and ``maple``.

A prompt *depth* J means prompts in blocks 0..J−1 of a tower: block 0's prompts are the input-level ones, and at
every block i = 1..J−1 a fresh set *replaces* the previous prompt tokens (text: positions 1..n right after SOS;
vision: the last n tokens). Blocks ≥ J carry the last prompts forward unchanged. A depth larger than the tower's
layer count is clamped to it (logged). This is the deep prompting of VPT-deep (Jia et al., ECCV 2022) as used by
IVLP and MaPLe (Khattak et al., CVPR 2023, Sec. 3.3-3.4).
"""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import torch
from torch import nn

from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.methods.prompts import init_context_from_words, placeholder_prefix

log = logging.getLogger(__name__)


def clamp_depth(depth: int, layers: int, setting: str = "depth") -> int:
    """Prompt depth J (prompts in blocks 0..J−1), clamped to the tower's layer count."""
    if depth > layers:
        log.info("%s=%d exceeds the backbone's %d layers; using %d", setting, depth, layers, layers)
        return layers
    return depth


def check_prompts(n_ctx: int, depth: int, n_setting: str, depth_setting: str) -> None:
    if n_ctx < 1 or depth < 1:
        raise VLPromptError(
            f"{n_setting}={n_ctx} and {depth_setting}={depth}: both must be >= 1 for a prompted tower "
            f"(e.g. --set {n_setting}=2 --set {depth_setting}=9)"
        )


def text_context(backbone, ctx_init: str, n_ctx: int, std: float) -> Tuple[torch.Tensor, str]:
    """P_0 ``[n_ctx, D]`` and the prompt prefix string.

    With init words and ``n_ctx`` ≤ their token count, P_0 = the token embeddings of the first ``n_ctx`` tokens
    and the prompt *string* keeps the whole phrase: for MaPLe's 2 vectors from "a photo of a", the input is
    ``[SOS][P_0] of a {name}. [EOT]`` — "of a" are fixed tokens, as in the reference. Otherwise P_0 ~ N(0, std²)
    behind ``X`` placeholders.
    """
    words = ctx_init.replace("_", " ").strip()
    if words:
        n_words = int(backbone.pool_index(backbone.tokenize([words]))[0]) - 1
        if n_ctx <= n_words:
            return init_context_from_words(backbone, words, n_ctx), words
        log.info("%d context vectors exceed the %d tokens of %r: random init", n_ctx, n_words, words)
    ctx = torch.empty(n_ctx, backbone.text_width, device=backbone.device).normal_(0, std)
    return ctx, placeholder_prefix(n_ctx)


def deep_parameter(layers: int, n: int, width: int, std: float, device) -> Optional[nn.Parameter]:
    """Per-layer prompts ``[J−1, n, width]`` ~ N(0, std²) for blocks 1..J−1 (None when J = 1)."""
    if layers <= 1:
        return None
    return nn.Parameter(torch.empty(layers - 1, n, width, device=device).normal_(0, std))


def per_block(deep: Optional[torch.Tensor]) -> Optional[List[Optional[torch.Tensor]]]:
    """The adapter's ``deep_prompts`` list: nothing at block 0 (input level), ``deep[i−1]`` at block i."""
    return None if deep is None else [None, *deep.unbind(0)]


def vision_prompts(backbone, n: int, depth: int, std: float, settings: Tuple[str, str]):
    """Q_0 ``[n, W]`` ~ N(0, std²), appended after the positional embedding (through ``ln_pre``, no positional
    embedding), and Q_1..Q_{J−1} ``[J−1, n, W]`` replacing the last n tokens at blocks 1..J−1."""
    check_prompts(n, depth, *settings)
    width = backbone.vision_width  # raises for a CNN image tower
    ctx = nn.Parameter(torch.empty(n, width, device=backbone.device).normal_(0, std))
    depth = clamp_depth(depth, backbone.vision_layers, settings[1])
    return ctx, deep_parameter(depth, n, width, std, backbone.device)


def vision_depth(backbone, depth: int) -> int:
    """The effective vision prompt depth on ``backbone`` (0 for a CNN image tower)."""
    return min(depth, backbone.vision_layers) if Capability.VISION_PROMPTS in backbone.capabilities("vision") else 0
