"""The block runner: open_clip's residual attention blocks computed from their own sub-modules.

Every tower loop that back-propagates through frozen blocks, the shared-prefix text path and every block wrapper
go through the functions here, so there is one implementation of a block's computation. The open_clip modules are
never modified: the runner calls their ``ln_1``, attention projections, ``ln_2``, ``mlp`` and layer scales in
open_clip's order (``ResidualAttentionBlock`` and ``CustomResidualAttentionBlock``; Vaswani et al., NeurIPS 2017,
Eq. 1)::

    h      = ln_1(x);   q, k, v = split(h W_inᵀ + b_in) per head  (+ a wrapper's deltas)
    a      = softmax(q kᵀ · s + M) · v                              (M: the additive mask, causal for text)
    x'     = x + ls_1(ln_attn(out_proj(a) (+ a wrapper's delta)))
    out    = x' + ls_2(mlp(ln_2(x')))                                (a wrapper may transform ``out``)

**Layout.** :func:`run_block` runs a block **sequence-first** (``[L, N, D]``, attention over ``[N, H, L, d]``),
the layout the reference trainers' OpenAI blocks use. open_clip builds its attention batch-first, and
``nn.MultiheadAttention`` then transposes inside, which makes the forward and backward through frozen blocks
about 1.5x slower on CPU (issue 25). The towers therefore run :func:`run_block` wherever gradients pass through the
blocks (or a block wrapper is set) and the block's own ``forward`` (batch-first, with PyTorch's fused inference
path) under ``no_grad``; both agree to float rounding (tests/test_block_runner.py).

**Shared prefix.** With a causal mask, the hidden states of the first ``P`` positions of a sequence do not depend
on what follows them. When ``K`` prompts share their first ``P`` token embeddings (SOS, the learned context,
fixed words), those positions are computed once per layer and only the class-specific *suffix* tokens of every
prompt go through each block (:func:`suffix_block`, ``[G, C, S, D]``: C suffixes per prefix group), attending to
the prefix keys/values (``[G, P, H, d]``, all visible) and causally to each other. The two score blocks share one
softmax, so the result equals attention over the concatenated sequence; the prefix keys/values are never copied
per suffix. Custom blocks add per-head ``ln_q``/``ln_k`` (qk-norm), per-head output scales and ``ln_inner``
(NormFormer) and ``ln_attn``.

**Block wrappers** (:class:`BlockWrapper`): a learner may put wrappers inside the frozen towers (LoRA,
Hu et al., ICLR 2022: ``W x + s·B(A(dropout(x)))`` on the attention projections; residual adapters on the block
output). Each projection's delta is computed from that projection's input; wrappers act per token, which is
what makes them valid on the shared-prefix path too.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

try:  # the block classes whose computation is re-expressed here (open_clip >= 3.3)
    from open_clip.transformer import Attention, CustomResidualAttentionBlock, ResidualAttentionBlock
except ImportError:  # pragma: no cover - other open_clip layouts use the plain path
    Attention = CustomResidualAttentionBlock = ResidualAttentionBlock = None

#: the attention projections a :class:`BlockWrapper` may add a delta to
PROJECTIONS = ("q", "k", "v", "out")


class BlockWrapper(nn.Module):
    """What a learner puts inside a frozen block (its parameters belong to the learner, not the backbone).

    ``projection_delta(name, x)``: a delta added to attention projection ``name`` (``"q"``, ``"k"``, ``"v"``:
    ``x`` is the normalised block input ``ln_1(x)``; ``"out"``: ``x`` is the attention result before
    ``out_proj``), or None. ``block_output(out, x)``: the block's output given its input ``x`` (default: ``out``).
    Both must act on each token alone (the shared-prefix path runs prefix and suffix tokens apart). The identity
    wrapper (this base class) leaves every block exactly as it was.
    """

    def projection_delta(self, name: str, x: torch.Tensor) -> Optional[torch.Tensor]:
        return None

    def block_output(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return out


def unsupported_block(block: nn.Module) -> Optional[str]:
    """Why the runner cannot reproduce ``block`` (None when it can). Exact types only: a subclass may change the
    computation."""
    if ResidualAttentionBlock is not None and type(block) is ResidualAttentionBlock:
        attn = block.attn
        if hasattr(block, "ln_1_kv") or not isinstance(attn, nn.MultiheadAttention):
            return "cross-attention block"
        if not attn._qkv_same_embed_dim or attn.bias_k is not None or attn.add_zero_attn or not attn.batch_first:
            return "nn.MultiheadAttention variant (separate k/v projections, bias_kv or zero attention)"
        return None
    if CustomResidualAttentionBlock is not None and type(block) is CustomResidualAttentionBlock:
        if type(block.attn) is not Attention:
            return f"attention type {type(block.attn).__name__}"
        # open_clip 3.3's own scaled-cosine branch fails on batched sequences: nothing to reproduce
        return "scaled cosine attention" if block.attn.logit_scale is not None else None
    return f"block type {type(block).__name__}"


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.unflatten(-1, (heads, x.shape[-1] // heads))


def _add(y: torch.Tensor, wrapper: Optional[BlockWrapper], name: str, x: torch.Tensor) -> torch.Tensor:
    delta = wrapper.projection_delta(name, x) if wrapper is not None else None
    return y if delta is None else y + delta


def queries_keys_values(
    block: nn.Module, h: torch.Tensor, wrapper: Optional[BlockWrapper] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """``q, k, v`` ``[..., L, H, d]`` of normalised tokens ``h`` ``[..., L, D]`` (any leading axes), and the
    logit scale ``s`` (1/√d) of the scores ``q·k · s``."""
    attn = block.attn
    q, k, v = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    if wrapper is not None:
        q, k, v = _add(q, wrapper, "q", h), _add(k, wrapper, "k", h), _add(v, wrapper, "v", h)
    heads = attn.num_heads
    q, k, v = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    if isinstance(attn, nn.MultiheadAttention):
        return q, k, v, attn.head_dim**-0.5
    return attn.ln_q(q), attn.ln_k(k), v, attn.scale  # qk-norm (Dehghani et al., ICML 2023) or identities


def _attention_output(block: nn.Module, a: torch.Tensor, wrapper: Optional[BlockWrapper]) -> torch.Tensor:
    """Per-head attention results ``[..., L, H, d]`` -> the attention branch output ``[..., L, D]``."""
    attn = block.attn
    if isinstance(attn, nn.MultiheadAttention):
        a = a.flatten(-2)
        return _add(attn.out_proj(a), wrapper, "out", a)
    if attn.head_scale is not None:
        a = a * attn.head_scale.view(-1, 1).to(a.dtype)
    a = attn.ln_inner(a.flatten(-2))
    return attn.out_drop(_add(attn.out_proj(a), wrapper, "out", a))


def _finish(block: nn.Module, x: torch.Tensor, a: torch.Tensor, wrapper: Optional[BlockWrapper]) -> torch.Tensor:
    """Residual attention branch, then the MLP branch, then the wrapper's output transform."""
    a = _attention_output(block, a, wrapper)
    ln_attn = getattr(block, "ln_attn", None)
    y = x + block.ls_1(ln_attn(a) if ln_attn is not None else a)
    y = y + block.ls_2(block.mlp(block.ln_2(y)))
    return wrapper.block_output(y, x) if wrapper is not None else y


def run_block(
    block: nn.Module,
    x: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    wrapper: Optional[BlockWrapper] = None,
    keys_values: Optional[List[torch.Tensor]] = None,
) -> torch.Tensor:
    """One block on a sequence-first token sequence ``x`` ``[L, N, D]`` under the additive ``mask`` ``[L, L]``
    (None: full attention); equals ``block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)`` up to float
    rounding for the identity wrapper. ``keys_values``: a list that receives this block's ``k, v``
    (``[N, L, H, d]``), as the shared prefix stream keeps them for its suffixes."""
    q, k, v, scale = queries_keys_values(block, block.ln_1(x), wrapper)
    if keys_values is not None:
        keys_values.extend((k.transpose(0, 1), v.transpose(0, 1)))
    q, k, v = (t.permute(1, 2, 0, 3) for t in (q, k, v))  # [N, H, L, d]
    mask = mask.to(q.dtype) if mask is not None else None
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return _finish(block, x, a.permute(2, 0, 1, 3), wrapper)


def suffix_block(
    block: nn.Module,
    x: torch.Tensor,
    k_p: torch.Tensor,
    v_p: torch.Tensor,
    mask: torch.Tensor,
    wrapper: Optional[BlockWrapper] = None,
) -> torch.Tensor:
    """One block on suffix tokens ``x`` ``[G, C, S, D]`` attending to prefix keys/values ``[G, P, H, d]``
    (all visible) and to the suffix under the additive causal ``mask`` ``[S, S]`` (see module doc)."""
    q, k, v, scale = queries_keys_values(block, block.ln_1(x), wrapper)
    q = q * scale
    n_p = k_p.shape[1]
    scores_p = torch.einsum("gcshd,gphd->gchsp", q, k_p)
    scores_s = torch.einsum("gcshd,gcthd->gchst", q, k) + mask.to(q.dtype)
    scores = torch.cat([scores_p, scores_s], dim=-1)  # one softmax over [prefix; suffix] (at least fp32)
    weights = scores.softmax(dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(q.dtype)
    a = torch.einsum("gchsp,gphd->gcshd", weights[..., :n_p], v_p)
    a = a + torch.einsum("gchst,gcthd->gcshd", weights[..., n_p:], v)
    return _finish(block, x, a, wrapper)
