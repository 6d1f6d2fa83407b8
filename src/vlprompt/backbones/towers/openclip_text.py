"""open_clip's native text transformer (``CLIP``'s inline text tower, or ``TextTransformer`` of a
``CustomTextCLIP``) as a prompt-ready :class:`~vlprompt.backbones.towers.base.TextTower`.

The adapter calls the same embedding, block, norm and projection modules in the same order as
``CLIP.encode_text`` and inserts prompt tokens between them (the placement of CoOp, Zhou et al., IJCV 2022, and
MaPLe, Khattak et al., CVPR 2023):

* input: token *embeddings* ``[N, L, D]`` in which the caller has already put its shallow prompt vectors
  (CoOp-style: ``[SOS][ctx_1..ctx_n][name .][EOT]``), plus the token ids used for EOT pooling;
* positional embedding added to all positions;
* deep prompts, "replace" semantics: at block ``i >= 1`` with prompts ``P_i`` (``n`` vectors), positions
  ``1..n`` (right after SOS) are replaced by ``P_i`` before the block runs;
* ``ln_final`` and pooling at the EOT position (``argmax`` of the token ids, or the model's own text pool type),
  then ``text_projection``;
* **causal truncation**: with a causal mask, position ``t`` only sees positions ``<= t``, so the pooled EOT state
  is unchanged when the sequence is cut right after the batch's last EOT. We run only ``max(eot) + 1`` positions
  (77 -> ~20 for typical prompts); exact up to float rounding.

Shared-prefix text encoding (:meth:`OpenCLIPText.encode_shared`): for the same reason, the first ``P`` positions
of prompts that share them (SOS, a generic learned context, fixed words such as MaPLe's "of a") have the same
hidden states in every prompt. They are computed once per layer (once per image for CoCoOp), and only the
class-specific suffixes run through the blocks, attending to the cached prefix keys/values
(:func:`~vlprompt.backbones.blocks.suffix_block`). Deep text prompts replace positions ``1..n`` inside the
prefix, so they act on the shared prefix stream. Exact up to float rounding; :meth:`OpenCLIPText.prefix_sharable`
says when it applies.

Bounded memory: both text paths send at most ``text_chunk`` sequences (suffixes) through the tower at once (0: an
automatic activation budget, :data:`AUTO_CHUNK_BUDGET`); when there is more than one chunk and autograd is on,
each chunk runs under activation checkpointing (Chen et al., 2016), so a 1,000-class step keeps the activations of
one chunk instead of all classes. Block wrappers are honoured on every path (full, chunked, shared prefix).
"""

from __future__ import annotations

import logging
import weakref
from typing import FrozenSet, List, Optional

import torch
from torch import nn

from vlprompt.backbones.blocks import queries_keys_values, run_block, suffix_block, unsupported_block
from vlprompt.backbones.options import EncodeOptions
from vlprompt.backbones.towers.base import (
    DEFAULT_OPTIONS,
    TEXT_TOWERS,
    BlockHook,
    DeepPrompts,
    Layout,
    TextTower,
    Wrappers,
    deep_prompt,
    expand_prompts,
    maybe_checkpoint,
    runner_layout,
)
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

log = logging.getLogger(__name__)
#: bidirectional text towers already reported in the log (once per loaded model, not per view)
_REPORTED = weakref.WeakSet()
BIDIRECTIONAL_NOTE = (
    "the text tower attends bidirectionally (no causal mask, e.g. SigLIP): causal truncation and the shared-prefix "
    "text path are off (both are exact only under a causal mask); every prompt runs as a full sequence"
)

try:
    from open_clip.model import CLIP
    from open_clip.transformer import TextTransformer
except ImportError:  # pragma: no cover
    CLIP = TextTransformer = None

#: automatic text chunk: at most this many token x width x layer units per pass (~2,700 tokens of a
#: ViT-B/16-sized text tower, about 0.8 GB of fp32 activations kept for the backward pass at the measured
#: ~0.3 MB per token): up to ~680 CoOp class suffixes run in one pass, so 100-class label spaces are never
#: chunked and a 1,000-class CoOp step at batch 32 peaks below 4 GB (BENCHMARKS.md)
AUTO_CHUNK_BUDGET = 2**24


@TEXT_TOWERS.register(*(t for t in (CLIP, TextTransformer) if t is not None))
class OpenCLIPText(TextTower):
    """open_clip's text transformer: causal, batch-first residual attention blocks, EOT (argmax) pooling; or, for
    SigLIP / SigLIP 2, bidirectional (no mask) and pooling the last position.

    ``prompt_start``: the position where prompt vectors go, i.e. the number of special tokens the tokenizer puts
    before the text (1 for CLIP's SOS; 0 for SigLIP's SentencePiece tokenizers, whose sequences start with the
    text). Deep prompts replace positions ``prompt_start .. prompt_start + n - 1``. The backbone sets it from its
    tokenizer (:func:`vlprompt.backbones.tokenizers.prompt_start`).
    """

    prompt_start: int = 1

    def __init__(self, module: nn.Module):
        super().__init__(module)
        if getattr(module, "cls_emb", None) is not None or getattr(module, "use_pad_mask", False):
            raise VLPromptError(
                "text towers with an appended CLS token or padding masks (CoCa-style) are not supported"
            )
        if not getattr(module.transformer, "batch_first", False):
            raise VLPromptError("unsupported open_clip version: expected batch-first transformers (open_clip>=3.3)")
        self.pool_type = getattr(module, "text_pool_type", getattr(module, "pool_type", "argmax"))
        self.eos_id = getattr(module, "text_eos_id", getattr(module, "eos_id", None))
        self.blocks = module.transformer.resblocks
        self._block_blocker = next(
            (f"unsupported text block: {r}" for r in map(unsupported_block, self.blocks) if r), None
        )
        self.prefix_blocker = self._prefix_blocker()
        if self.mask is None and module not in _REPORTED:
            _REPORTED.add(module)
            log.info(BIDIRECTIONAL_NOTE)

    # ------------------------------------------------------------------ facts
    @property
    def capabilities(self) -> FrozenSet[Capability]:
        caps = {Capability.LAYER_TAPS}
        if self.mask is not None:
            caps.add(Capability.CAUSAL_TEXT)
        if self.prefix_blocker is None:
            caps.add(Capability.SHARED_PREFIX)
        if self._block_blocker is None:
            caps.add(Capability.BLOCK_WRAPPERS)
        return frozenset(caps)

    @property
    def block_blocker(self) -> Optional[str]:
        return self._block_blocker

    @property
    def mask(self) -> Optional[torch.Tensor]:
        return getattr(self.module, "attn_mask", None)

    @property
    def dtype(self) -> torch.dtype:
        return self.module.transformer.get_cast_dtype()

    @property
    def device(self) -> torch.device:
        return self.module.token_embedding.weight.device

    @property
    def width(self) -> int:
        """``ctx_dim``: width of ``ln_final`` (512 for ViT-B/16 and RN50)."""
        return self.module.ln_final.weight.shape[0]

    @property
    def layers(self) -> int:
        return len(self.blocks)

    @property
    def context_length(self) -> int:
        return self.module.positional_embedding.shape[0]

    def _prefix_blocker(self) -> Optional[str]:
        """Why this text tower cannot share prefixes at all (None when it can)."""
        mask = self.mask
        if mask is None:
            return "the text tower attends bidirectionally (no causal mask)"
        if not torch.equal(mask, torch.full_like(mask, float("-inf")).triu(1)):
            return "the text attention mask is not the causal mask"
        if self.pool_type not in ("argmax", "eos"):
            return f"text pool type {self.pool_type!r} (only argmax/eos pool after the prefix)"
        return self._block_blocker

    # ------------------------------------------------------------------ tokens
    def token_embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Frozen token embeddings ``[N, L, D]`` of token ids ``[N, L]``."""
        return self.module.token_embedding(token_ids.to(self.device)).to(self.dtype)

    def pool_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of the pooled position per sequence: EOT = argmax of the ids (EOT has the largest id)."""
        n, length = token_ids.shape
        if self.pool_type == "argmax":
            return token_ids.argmax(dim=-1)
        if self.pool_type == "eos":
            return (token_ids == self.eos_id).int().argmax(dim=-1)
        if self.pool_type == "first":
            return torch.zeros(n, dtype=torch.long, device=token_ids.device)
        if self.pool_type == "last":
            return torch.full((n,), length - 1, dtype=torch.long, device=token_ids.device)
        raise VLPromptError(f"text pool type {self.pool_type!r} is not supported for prompt learning")

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        proj = self.module.text_projection
        if proj is None:
            return pooled
        return proj(pooled) if isinstance(proj, nn.Linear) else pooled @ proj

    def strip_prompts(self, x: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """Drop the deep prompt positions ``1..n``."""
        s = self.prompt_start
        return x if n_prompts == 0 else torch.cat([x[:, :s], x[:, s + n_prompts :]], dim=1)

    def run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        mask = self.mask
        mask = mask[: x.shape[1], : x.shape[1]] if mask is not None else None
        layout = Layout(runner_layout(None, self._block_blocker))
        return layout.leave(layout.block(block, layout.enter(x), mask, None))

    # ------------------------------------------------------------------ full sequences
    def chunk_size(self, tokens: int, chunk: Optional[int] = None, options: EncodeOptions = DEFAULT_OPTIONS) -> int:
        """Sequences per text-tower pass for sequences of ``tokens`` tokens: ``chunk`` (default: the
        ``text_chunk`` option), or for 0 as many as fit :data:`AUTO_CHUNK_BUDGET`."""
        chunk = options.text_chunk if chunk is None else chunk
        if not isinstance(chunk, int) or chunk < 0:
            raise VLPromptError(
                f"text_chunk={chunk!r}: use a positive number of sequences per text-tower pass, or 0 for automatic"
            )
        if chunk:
            return chunk
        return max(1, AUTO_CHUNK_BUDGET // (max(1, tokens) * self.width * self.layers))

    def encode(
        self,
        embeddings: torch.Tensor,
        token_ids: torch.Tensor,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        truncate: Optional[bool] = None,
        chunk: Optional[int] = None,
        options: EncodeOptions = DEFAULT_OPTIONS,
        wrappers: Optional[Wrappers] = None,
    ) -> torch.Tensor:
        """Text features ``[N, E]`` (unnormalised) from prompt embeddings ``[N, L, D]``.

        ``deep_prompts[i]`` (i >= 1) replaces positions ``1..n`` at the input of text block ``i``. Without a
        hook, at most :meth:`chunk_size` sequences run at once (``chunk`` overrides the option); with a hook, all
        sequences run in one pass so that every block is tapped exactly once. ``truncate`` (default: the
        ``causal_truncation`` option) cuts the sequences after the last EOT.
        """
        truncate = options.causal_truncation if truncate is None else truncate
        n = embeddings.shape[0]
        size = n if hook is not None else self.chunk_size(embeddings.shape[1], chunk, options)
        once = (truncate, options.fp16_prompts, wrappers)
        if size >= n:
            return self._encode_once(embeddings, token_ids, deep_prompts, hook, *once)
        parts = []
        for s in range(0, n, size):
            rows = slice(s, s + size)
            deep = None
            if deep_prompts is not None:
                deep = [p[rows] if p is not None and p.dim() == 3 else p for p in deep_prompts]
            part = maybe_checkpoint(
                self._encode_once,
                embeddings[rows],
                token_ids[rows],
                deep,
                None,
                *once,
                checkpointed=torch.is_grad_enabled(),
            )
            parts.append(part)
        return torch.cat(parts)

    def _encode_once(self, embeddings, token_ids, deep_prompts, hook, truncate, fp16, wrappers) -> torch.Tensor:
        text = self.module
        token_ids = token_ids.to(embeddings.device)
        n, length, _ = embeddings.shape
        pool = self.pool_index(token_ids)
        mask = self.mask
        x = embeddings.to(self.dtype) + text.positional_embedding[:length].to(self.dtype)
        if truncate and mask is not None and self.pool_type != "last":
            x = x[:, : int(pool.max()) + 1]
        if mask is not None:
            mask = mask[: x.shape[1], : x.shape[1]]
        layout = Layout(runner_layout(wrappers, self._block_blocker))
        x = layout.enter(x)
        wrappers = wrappers or {}
        n_prompts = 0
        for i, block in enumerate(self.blocks):
            p = deep_prompt(deep_prompts, i)
            if i > 0 and p is not None:
                n_prompts = p.shape[-2]
                inserted = layout.prompts(expand_prompts(p, n, x.dtype, fp16))
                s = self.prompt_start
                x = torch.cat([layout.tokens(x, 0, s), inserted, layout.tokens(x, s + n_prompts)], dim=layout.dim)
            x_in = x
            x = layout.block(block, x, mask, wrappers.get(i))
            if hook is not None:
                hook("text", i, block, layout.leave(x_in), layout.leave(x), n_prompts)
        x = text.ln_final(layout.leave(x))
        return self.project(x[torch.arange(n, device=x.device), pool])

    # ------------------------------------------------------------------ shared prefix
    def prefix_problem(
        self, prefix_len: int, deep_prompts: DeepPrompts, groups: int, options: EncodeOptions = DEFAULT_OPTIONS
    ) -> Optional[str]:
        """Why prompts sharing their first ``prefix_len`` positions cannot take :meth:`encode_shared`."""
        if self.prefix_blocker:
            return self.prefix_blocker
        for p in list(deep_prompts or [])[1:]:
            if p is None:
                continue
            if self.prompt_start + p.shape[-2] > prefix_len:
                return f"{p.shape[-2]} deep prompts reach past the {prefix_len}-token shared prefix"
            if p.dim() == 3 and p.shape[0] != groups:
                return "deep prompts differ per sequence"
            if options.fp16_prompts:
                return "fp16 prompt rounding is per sequence"
        return None

    def prefix_sharable(
        self,
        prefix_len: int,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        groups: int = 1,
        options: EncodeOptions = DEFAULT_OPTIONS,
    ) -> bool:
        """Whether prompts sharing their first ``prefix_len`` positions go through :meth:`encode_shared`: the
        ``shared_prefix`` and ``causal_truncation`` options are on, the tower is supported (causal mask, argmax/eos
        pooling, open_clip residual attention blocks), no per-block hook wants full-sequence taps, and every deep
        prompt lies inside the prefix. The single rule every prompt learner follows (via ``ClassPrompts``)."""
        return (
            options.shared_prefix
            and options.causal_truncation
            and hook is None
            and self.prefix_problem(prefix_len, deep_prompts, groups, options) is None
        )

    def encode_shared(
        self,
        prefix: torch.Tensor,
        suffix: torch.Tensor,
        pool: torch.Tensor,
        deep_prompts: DeepPrompts = None,
        chunk: Optional[int] = None,
        options: EncodeOptions = DEFAULT_OPTIONS,
        wrappers: Optional[Wrappers] = None,
    ) -> torch.Tensor:
        """Text features of prompts ``[prefix; suffix_k]`` that share their first ``P`` positions.

        ``prefix``: ``[P, D]`` embeddings of positions ``0..P-1``, common to every class -> features
        ``[K, E]``; or ``[G, P, D]``, one prefix per group (CoCoOp: per image) -> ``[G, K, E]``, each group
        paired with every suffix. ``suffix``: ``[K, S, D]`` embeddings of positions ``P..P+S-1``. ``pool``:
        ``[K]`` pooled (EOT) position of each prompt in the full sequence (``>= P``; see :meth:`pool_index`).
        ``deep_prompts`` as in :meth:`encode` (``[n, D]``, or ``[G, n, D]`` per group), within the prefix.
        Equals :meth:`encode` on the concatenated sequences up to float rounding.
        """
        text = self.module
        grouped = prefix.dim() == 3
        prefix = (prefix if grouped else prefix.unsqueeze(0)).to(self.dtype)
        groups, n_p, _ = prefix.shape
        problem = self.prefix_problem(n_p, deep_prompts, groups, options)
        rel = [int(i) - n_p for i in pool.tolist()]
        if problem is None and min(rel) < 0:
            problem = "a pooled position lies inside the shared prefix"
        if problem:
            raise ValueError(f"encode_text_shared: {problem}; use encode_text")
        wrappers = wrappers or {}
        # the prefix stream: causal self-attention over P positions, once per group; keep each block's keys/values
        layout = Layout(runner_layout(wrappers))
        x = layout.enter(prefix + text.positional_embedding[:n_p].to(self.dtype))
        mask = self.mask[:n_p, :n_p]
        kv: List[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            p = deep_prompt(deep_prompts, i)
            if i > 0 and p is not None:
                inserted = layout.prompts(expand_prompts(p, groups, x.dtype))
                s = self.prompt_start
                x = torch.cat([layout.tokens(x, 0, s), inserted, layout.tokens(x, s + p.shape[-2])], dim=layout.dim)
            last = i + 1 == len(self.blocks)
            if layout.sequence_first and not last:  # one pass gives the block's output and its keys/values
                x = run_block(block, x, mask, wrappers.get(i), keys_values=kv)
                continue
            kv.extend(queries_keys_values(block, block.ln_1(layout.leave(x)), wrappers.get(i))[1:3])
            if not last:
                x = layout.block(block, x, mask, wrappers.get(i))
        # the suffixes, in chunks of at most `size` (group, class) pairs; several class chunks take the classes
        # in order of length, so that each chunk, cut after its own longest EOT, carries little padding
        k = suffix.shape[0]
        size = self.chunk_size(suffix.shape[1], chunk, options)
        per_group = min(k, size)
        group_step = max(1, size // per_group)
        checkpointed = torch.is_grad_enabled() and (per_group < k or group_step < groups)
        order = sorted(range(k), key=rel.__getitem__) if per_group < k else list(range(k))
        chunks = []  # (suffix embeddings, pooled index within the suffix), shared by every group
        for c in range(0, k, per_group):
            idx = order[c : c + per_group]
            part = suffix if per_group == k else suffix[torch.tensor(idx, device=suffix.device)]
            r = [rel[i] for i in idx]
            chunks.append((part[:, : max(r) + 1], torch.tensor(r, device=prefix.device)))
        rows = []
        for g in range(0, groups, group_step):
            kv_g = [t[g : g + group_step] for t in kv]
            parts = [
                maybe_checkpoint(self._suffix_features, n_p, wrappers, part, ids, *kv_g, checkpointed=checkpointed)
                for part, ids in chunks
            ]
            rows.append(torch.cat(parts, dim=1))
        out = torch.cat(rows)
        if per_group < k:  # back to class order
            out = out[:, torch.tensor(order, device=out.device).argsort()]
        return out if grouped else out[0]

    def _suffix_features(self, n_p: int, wrappers: Wrappers, suffix: torch.Tensor, pool: torch.Tensor, *kv):
        """Features ``[G, C, E]`` of ``C`` suffixes ``[C, S, D]`` after every group's prefix keys/values
        ``kv`` (``k_0, v_0, k_1, v_1, ...``, each ``[G, P, H, d]``); ``pool`` indexes the suffix."""
        text = self.module
        s = suffix.shape[1]
        x = suffix.to(self.dtype) + text.positional_embedding[n_p : n_p + s].to(self.dtype)
        x = x.unsqueeze(0).expand(kv[0].shape[0], -1, -1, -1)
        mask = self.mask[:s, :s]
        for i, block in enumerate(self.blocks):
            x = suffix_block(block, x, kv[2 * i], kv[2 * i + 1], mask, wrappers.get(i))
        pooled = x[:, torch.arange(x.shape[1], device=x.device), pool]
        return self.project(text.ln_final(pooled))
