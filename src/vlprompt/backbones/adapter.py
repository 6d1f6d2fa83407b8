"""A frozen open_clip CLIP whose layer loops we own, so prompts can be injected from outside.

The adapter never modifies open_clip modules: it calls the same embedding, block, norm and projection
modules in the same order as ``CLIP.encode_text`` / ``VisionTransformer.forward``, and inserts prompt
tokens between them (the prompt placement of CoOp, VPT and MaPLe):

Text tower (``encode_text``)
  * input: token *embeddings* ``[N, L, D]`` in which the caller has already put its shallow prompt vectors
    (CoOp-style: ``[SOS][ctx_1..ctx_n][name .][EOT]``), plus the token ids used for EOT pooling;
  * positional embedding added to all positions;
  * deep prompts, "replace" semantics: at block ``i >= 1`` with prompts ``P_i`` (``n`` vectors), positions
    ``1..n`` (right after SOS) are replaced by ``P_i`` before the block runs;
  * ``ln_final`` and pooling at the EOT position (``argmax`` of the token ids, or the model's own text
    pool type), then ``text_projection``;
  * **causal truncation**: with a causal mask, position ``t`` only sees positions ``<= t``, so the pooled
    EOT state is unchanged when the sequence is cut right after the batch's last EOT. We run only
    ``max(eot) + 1`` positions (77 -> ~20 for typical prompts); exact up to float rounding.

Shared-prefix text encoding (``encode_text_shared``)
  * for the same reason, the first ``P`` positions of prompts that share them (SOS, a generic learned
    context, fixed words such as MaPLe's "of a") have the same hidden states in every prompt. They are
    computed once per layer (once per image for CoCoOp), and only the class-specific suffixes run through the
    blocks, attending to the cached prefix keys/values (:mod:`vlprompt.backbones.blocks`). Deep text prompts
    replace positions ``1..n`` inside the prefix, so they act on the shared prefix stream. Exact up to float
    rounding; :meth:`PromptableCLIP.text_prefix_sharable` says when it applies.

Bounded memory
  * both text paths send at most ``text_chunk`` sequences (suffixes) through the tower at once (0: an
    automatic activation budget, :data:`AUTO_CHUNK_BUDGET`); when there is more than one chunk and autograd
    is on, each chunk runs under activation checkpointing (Chen et al., 2016), so a 1,000-class step keeps
    the activations of one chunk instead of all classes.

Vision tower (``encode_image``, ViT only)
  * patch embedding, class token, positional embedding (prompts get none);
  * shallow prompt tokens appended at the end of the sequence, then ``ln_pre`` on all tokens;
  * deep prompts, "replace" semantics: at block ``i >= 1`` the last ``n`` tokens are replaced by ``P_i``;
  * prompt tokens are dropped before pooling (``ln_post`` on the class token, then ``proj``).

Both loops call an optional ``hook(tower, layer, block, x_in, x_out, n_prompts)`` after every block — the
per-layer taps of block inputs and outputs that RESTORE's feature-shift needs.
"""

from __future__ import annotations

import copy
from typing import Callable, List, Optional, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vlprompt.backbones.blocks import queries_keys_values, suffix_block, unsupported_block
from vlprompt.data.transforms import CLIP_MEAN, CLIP_STD
from vlprompt.errors import VLPromptError

BlockHook = Callable[[str, int, nn.Module, torch.Tensor, torch.Tensor, int], None]
#: per-block prompts: ``prompts[i]`` is None or a tensor ``[n, D]`` / ``[N, n, D]`` for block ``i``
DeepPrompts = Optional[Sequence[Optional[torch.Tensor]]]


#: automatic text chunk: at most this many token x width x layer units per pass (~2,700 tokens of a
#: ViT-B/16-sized text tower, about 0.8 GB of fp32 activations kept for the backward pass at the measured
#: ~0.3 MB per token): up to ~680 CoOp class suffixes run in one pass, so 100-class label spaces are never
#: chunked and a 1,000-class CoOp step at batch 32 peaks below 4 GB (BENCHMARKS.md)
AUTO_CHUNK_BUDGET = 2**24


def _expand(p: torch.Tensor, n: int, dtype: torch.dtype, fp16: bool = False) -> torch.Tensor:
    """Prompts ``[m, D]`` for ``n`` sequences (``[n, m, D]``, a view) or ``[n, m, D]`` as given, in ``dtype``.
    ``fp16``: first rounded to half per sequence, as the reference's ``.expand(...).half()`` (which also rounds
    each sequence's gradient)."""
    if fp16:
        p = (p.unsqueeze(0).expand(n, -1, -1) if p.dim() == 2 else p).half()
    p = p.to(dtype)
    return p.unsqueeze(0).expand(n, -1, -1) if p.dim() == 2 else p


def maybe_checkpoint(fn: Callable, *args, checkpointed: bool):
    """``fn(*args)``, under non-reentrant activation checkpointing when asked (the frozen tower is
    deterministic in eval mode, so no RNG state needs restoring)."""
    if checkpointed:
        return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)
    return fn(*args)


class PromptableCLIP(nn.Module):
    """Wrap a frozen open_clip ``CLIP``/``CustomTextCLIP`` and expose prompt-injection forwards.

    Text-tower settings (plain attributes, changeable at any time):

    * ``shared_prefix`` (default True): class prompts use :meth:`encode_text_shared` where it applies;
      False always runs full sequences (for debugging; results agree up to float rounding);
    * ``text_chunk`` (default 0): most sequences (suffixes) per text-tower pass, 0 = automatic;
    * ``causal_truncation`` (default True): full-sequence passes stop after the batch's last EOT; False runs all
      ``context_length`` positions and no shared prefix — the references' text pass, for speed comparisons.

    Prompt setting: ``fp16_prompts`` (default False) rounds every prompt token inserted into a tower (appended
    vision prompts, deep text and vision prompts; not the text input context) to fp16 per sequence, as the
    reference code's ``.half()`` at insertion does even in its fp32 and amp modes (MaPLe repository
    ``clip/model.py``; parity checks). Deep text prompts then take the full-sequence path.
    """

    def __init__(
        self,
        clip: nn.Module,
        spec=None,
        tokenizer=None,
        shared_prefix: bool = True,
        text_chunk: int = 0,
        causal_truncation: bool = True,
    ):
        super().__init__()
        self.clip = clip
        self.spec = spec
        self.tokenizer = tokenizer
        self.shared_prefix = shared_prefix
        self.text_chunk = text_chunk
        self.causal_truncation = causal_truncation
        self.fp16_prompts = False
        text = clip.text if hasattr(clip, "text") else clip
        if not hasattr(text, "token_embedding") or not hasattr(text, "transformer"):
            raise VLPromptError(
                "this backbone's text tower is not open_clip's native text transformer (e.g. an HF text model); "
                "prompt learning needs token embeddings and transformer blocks"
            )
        if getattr(text, "cls_emb", None) is not None or getattr(text, "use_pad_mask", False):
            raise VLPromptError(
                "text towers with an appended CLS token or padding masks (CoCa-style) are not supported"
            )
        self._text = text
        self.text_pool_type = getattr(text, "text_pool_type", getattr(text, "pool_type", "argmax"))
        self.text_eos_id = getattr(text, "text_eos_id", getattr(text, "eos_id", None))
        self.is_vit = hasattr(clip.visual, "conv1") and hasattr(clip.visual, "class_embedding")
        towers = [text.transformer] + ([clip.visual.transformer] if self.is_vit else [])
        if not all(getattr(t, "batch_first", False) for t in towers):
            raise VLPromptError("unsupported open_clip version: expected batch-first transformers (open_clip>=3.3)")
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.clip.eval()
        self._prefix_blocker = self._text_prefix_blocker()

    # ------------------------------------------------------------------------------ properties
    def train(self, mode: bool = True):
        """The frozen backbone always stays in eval mode (matters for RN50 BatchNorm)."""
        super().train(mode)
        self.clip.eval()
        return self

    @property
    def dtype(self) -> torch.dtype:
        """The dtype both towers compute in: their weights' (as open_clip's ``get_cast_dtype`` and CLIP's
        ``dtype``); fp16 under ``--precision fp16``, whose embeddings stay fp32 and are cast at use."""
        return self._text.transformer.get_cast_dtype()

    @property
    def device(self) -> torch.device:
        return self._text.token_embedding.weight.device

    @property
    def text_width(self) -> int:
        """``ctx_dim``: width of ``ln_final`` (512 for ViT-B/16 and RN50)."""
        return self._text.ln_final.weight.shape[0]

    @property
    def vision_width(self) -> int:
        if not self.is_vit:
            raise VLPromptError("vision prompts need a ViT image tower; this backbone's image tower is a CNN")
        return self.clip.visual.conv1.out_channels

    @property
    def embed_dim(self) -> int:
        v = self.clip.visual
        return int(getattr(v, "output_dim", None) or v.proj.shape[1])

    @property
    def text_layers(self) -> int:
        return len(self._text.transformer.resblocks)

    @property
    def vision_layers(self) -> int:
        return len(self.clip.visual.transformer.resblocks) if self.is_vit else 0

    @property
    def context_length(self) -> int:
        return self._text.positional_embedding.shape[0]

    @property
    def logit_scale(self) -> torch.Tensor:
        """exp(logit_scale), CLIP's frozen learned temperature (100 for released checkpoints)."""
        return self.clip.logit_scale.detach().exp()

    @property
    def image_size(self) -> int:
        size = getattr(self.clip.visual, "image_size", 224)
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def image_mean(self):
        cfg = getattr(self.clip.visual, "preprocess_cfg", None) or {}
        return tuple(cfg.get("mean", CLIP_MEAN))

    @property
    def image_std(self):
        cfg = getattr(self.clip.visual, "preprocess_cfg", None) or {}
        return tuple(cfg.get("std", CLIP_STD))

    def float_copy(self) -> "PromptableCLIP":
        """This backbone in fp32: itself when it computes in fp32, else an fp32 copy of the frozen model (a
        half backbone's weights convert exactly). PromptSRC's frozen text targets come from such a separate
        fp32 CLIP in the reference."""
        if self.dtype == torch.float32:
            return self
        clip = copy.deepcopy(self.clip).float()
        return PromptableCLIP(clip, self.spec, self.tokenizer, self.shared_prefix, self.text_chunk)

    # ------------------------------------------------------------------------------ text
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids ``[N, context_length]``: ``[SOS] BPE(text) [EOT]`` zero-padded (CLIP's tokenizer)."""
        if self.tokenizer is None:
            from open_clip.tokenizer import SimpleTokenizer

            self.tokenizer = SimpleTokenizer(context_length=self.context_length)
        return self.tokenizer(list(texts))

    def token_embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Frozen token embeddings ``[N, L, D]`` of token ids ``[N, L]``."""
        return self._text.token_embedding(token_ids.to(self.device)).to(self.dtype)

    def pool_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of the pooled position per sequence: EOT = argmax of the ids (EOT has the largest id)."""
        n, length = token_ids.shape
        if self.text_pool_type == "argmax":
            return token_ids.argmax(dim=-1)
        if self.text_pool_type == "eos":
            return (token_ids == self.text_eos_id).int().argmax(dim=-1)
        if self.text_pool_type == "first":
            return torch.zeros(n, dtype=torch.long, device=token_ids.device)
        if self.text_pool_type == "last":
            return torch.full((n,), length - 1, dtype=torch.long, device=token_ids.device)
        raise VLPromptError(f"text pool type {self.text_pool_type!r} is not supported for prompt learning")

    def encode_text(
        self,
        embeddings: torch.Tensor,
        token_ids: torch.Tensor,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        truncate: Optional[bool] = None,
        chunk: Optional[int] = None,
    ) -> torch.Tensor:
        """Text features ``[N, E]`` (unnormalised) from prompt embeddings ``[N, L, D]``.

        ``deep_prompts[i]`` (i >= 1) replaces positions ``1..n`` at the input of text block ``i``. Without a
        hook, at most :meth:`text_chunk_size` sequences run at once (``chunk`` overrides the setting); with a
        hook, all sequences run in one pass so that every block is tapped exactly once. ``truncate`` (default:
        the ``causal_truncation`` setting) cuts the sequences after the last EOT.
        """
        truncate = self.causal_truncation if truncate is None else truncate
        n = embeddings.shape[0]
        size = n if hook is not None else self.text_chunk_size(embeddings.shape[1], chunk)
        if size >= n:
            return self._encode_text_once(embeddings, token_ids, deep_prompts, hook, truncate)
        parts = []
        for s in range(0, n, size):
            rows = slice(s, s + size)
            deep = None
            if deep_prompts is not None:
                deep = [p[rows] if p is not None and p.dim() == 3 else p for p in deep_prompts]
            part = maybe_checkpoint(
                self._encode_text_once,
                embeddings[rows],
                token_ids[rows],
                deep,
                None,
                truncate,
                checkpointed=torch.is_grad_enabled(),
            )
            parts.append(part)
        return torch.cat(parts)

    def _encode_text_once(self, embeddings, token_ids, deep_prompts, hook, truncate) -> torch.Tensor:
        text = self._text
        token_ids = token_ids.to(embeddings.device)
        n, length, _ = embeddings.shape
        pool = self.pool_index(token_ids)
        mask = getattr(text, "attn_mask", None)
        x = embeddings.to(self.dtype) + text.positional_embedding[:length].to(self.dtype)
        if truncate and mask is not None and self.text_pool_type != "last":
            keep = int(pool.max()) + 1
            x = x[:, :keep]
        if mask is not None:
            mask = mask[: x.shape[1], : x.shape[1]]
        n_prompts = 0
        for i, block in enumerate(text.transformer.resblocks):
            p = deep_prompts[i] if deep_prompts is not None and i < len(deep_prompts) else None
            if i > 0 and p is not None:
                n_prompts = p.shape[-2]
                x = torch.cat([x[:, :1], _expand(p, n, x.dtype, self.fp16_prompts), x[:, 1 + n_prompts :]], dim=1)
            x_in = x
            x = block(x, attn_mask=mask)
            if hook is not None:
                hook("text", i, block, x_in, x, n_prompts)
        x = text.ln_final(x)
        return self._project_text(x[torch.arange(n, device=x.device), pool])

    def _project_text(self, pooled: torch.Tensor) -> torch.Tensor:
        proj = self._text.text_projection
        if proj is None:
            return pooled
        return proj(pooled) if isinstance(proj, nn.Linear) else pooled @ proj

    # ------------------------------------------------------------------------------ text: prefix, chunks
    def text_chunk_size(self, tokens: int, chunk: Optional[int] = None) -> int:
        """Sequences per text-tower pass for sequences of ``tokens`` tokens: ``chunk`` (default: the
        ``text_chunk`` setting), or for 0 as many as fit :data:`AUTO_CHUNK_BUDGET`."""
        chunk = self.text_chunk if chunk is None else chunk
        if not isinstance(chunk, int) or chunk < 0:
            raise VLPromptError(
                f"text_chunk={chunk!r}: use a positive number of sequences per text-tower pass, or 0 for automatic"
            )
        if chunk:
            return chunk
        return max(1, AUTO_CHUNK_BUDGET // (max(1, tokens) * self.text_width * self.text_layers))

    def _text_prefix_blocker(self) -> Optional[str]:
        """Why this text tower cannot share prefixes at all (None when it can)."""
        text = self._text
        mask = getattr(text, "attn_mask", None)
        if mask is None:
            return "the text tower attends bidirectionally (no causal mask)"
        if not torch.equal(mask, torch.full_like(mask, float("-inf")).triu(1)):
            return "the text attention mask is not the causal mask"
        if self.text_pool_type not in ("argmax", "eos"):
            return f"text pool type {self.text_pool_type!r} (only argmax/eos pool after the prefix)"
        for block in text.transformer.resblocks:
            reason = unsupported_block(block)
            if reason:
                return f"unsupported text block: {reason}"
        return None

    def _prefix_problem(self, prefix_len: int, deep_prompts: DeepPrompts, groups: int) -> Optional[str]:
        if self._prefix_blocker:
            return self._prefix_blocker
        for p in list(deep_prompts or [])[1:]:
            if p is None:
                continue
            if 1 + p.shape[-2] > prefix_len:
                return f"{p.shape[-2]} deep prompts reach past the {prefix_len}-token shared prefix"
            if p.dim() == 3 and p.shape[0] != groups:
                return "deep prompts differ per sequence"
            if self.fp16_prompts:
                return "fp16 prompt rounding is per sequence"
        return None

    def text_prefix_sharable(
        self, prefix_len: int, deep_prompts: DeepPrompts = None, hook: Optional[BlockHook] = None, groups: int = 1
    ) -> bool:
        """Whether prompts sharing their first ``prefix_len`` positions go through :meth:`encode_text_shared`:
        the ``shared_prefix`` setting is on, the tower is supported (causal mask, argmax/eos pooling, open_clip
        residual attention blocks), no per-block hook wants full-sequence taps, and every deep prompt lies
        inside the prefix (and ``causal_truncation`` is on). The single rule every prompt learner follows (via
        ``ClassPrompts``)."""
        return (
            self.shared_prefix
            and self.causal_truncation
            and hook is None
            and self._prefix_problem(prefix_len, deep_prompts, groups) is None
        )

    def encode_text_shared(
        self,
        prefix: torch.Tensor,
        suffix: torch.Tensor,
        pool: torch.Tensor,
        deep_prompts: DeepPrompts = None,
        chunk: Optional[int] = None,
    ) -> torch.Tensor:
        """Text features of prompts ``[prefix; suffix_k]`` that share their first ``P`` positions.

        ``prefix``: ``[P, D]`` embeddings of positions ``0..P-1``, common to every class -> features
        ``[K, E]``; or ``[G, P, D]``, one prefix per group (CoCoOp: per image) -> ``[G, K, E]``, each group
        paired with every suffix. ``suffix``: ``[K, S, D]`` embeddings of positions ``P..P+S-1``. ``pool``:
        ``[K]`` pooled (EOT) position of each prompt in the full sequence (``>= P``; see :meth:`pool_index`).
        ``deep_prompts`` as in :meth:`encode_text` (``[n, D]``, or ``[G, n, D]`` per group), within the prefix.
        Equals :meth:`encode_text` on the concatenated sequences up to float rounding.
        """
        text = self._text
        grouped = prefix.dim() == 3
        prefix = (prefix if grouped else prefix.unsqueeze(0)).to(self.dtype)
        groups, n_p, _ = prefix.shape
        problem = self._prefix_problem(n_p, deep_prompts, groups)
        rel = [int(i) - n_p for i in pool.tolist()]
        if problem is None and min(rel) < 0:
            problem = "a pooled position lies inside the shared prefix"
        if problem:
            raise ValueError(f"encode_text_shared: {problem}; use encode_text")
        # the prefix stream: causal self-attention over P positions, once per group; keep each block's keys/values
        x = prefix + text.positional_embedding[:n_p].to(self.dtype)
        blocks = text.transformer.resblocks
        kv: List[torch.Tensor] = []
        for i, block in enumerate(blocks):
            p = deep_prompts[i] if deep_prompts is not None and i < len(deep_prompts) else None
            if i > 0 and p is not None:
                x = torch.cat(
                    [x[:, :1], _expand(p, groups, x.dtype, self.fp16_prompts), x[:, 1 + p.shape[-2] :]], dim=1
                )
            kv.extend(queries_keys_values(block, block.ln_1(x))[1:])
            if i + 1 < len(blocks):
                x = block(x, attn_mask=text.attn_mask[:n_p, :n_p])
        # the suffixes, in chunks of at most `size` (group, class) pairs; several class chunks take the classes
        # in order of length, so that each chunk, cut after its own longest EOT, carries little padding
        k = suffix.shape[0]
        size = self.text_chunk_size(suffix.shape[1], chunk)
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
                maybe_checkpoint(self._suffix_features, n_p, part, ids, *kv_g, checkpointed=checkpointed)
                for part, ids in chunks
            ]
            rows.append(torch.cat(parts, dim=1))
        out = torch.cat(rows)
        if per_group < k:  # back to class order
            out = out[:, torch.tensor(order, device=out.device).argsort()]
        return out if grouped else out[0]

    def _suffix_features(self, n_p: int, suffix: torch.Tensor, pool: torch.Tensor, *kv: torch.Tensor):
        """Features ``[G, C, E]`` of ``C`` suffixes ``[C, S, D]`` after every group's prefix keys/values
        ``kv`` (``k_0, v_0, k_1, v_1, ...``, each ``[G, P, H, d]``); ``pool`` indexes the suffix."""
        text = self._text
        s = suffix.shape[1]
        x = suffix.to(self.dtype) + text.positional_embedding[n_p : n_p + s].to(self.dtype)
        x = x.unsqueeze(0).expand(kv[0].shape[0], -1, -1, -1)
        mask = text.attn_mask[:s, :s]
        for i, block in enumerate(text.transformer.resblocks):
            x = suffix_block(block, x, kv[2 * i], kv[2 * i + 1], mask)
        pooled = x[:, torch.arange(x.shape[1], device=x.device), pool]
        return self._project_text(text.ln_final(pooled))

    # ------------------------------------------------------------------------------ vision
    def encode_image(
        self,
        images: torch.Tensor,
        prompts: Optional[torch.Tensor] = None,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
    ) -> torch.Tensor:
        """Image features ``[B, E]`` (unnormalised); ``prompts`` ``[n, W]`` or ``[B, n, W]`` are appended."""
        v = self.clip.visual
        images = images.to(device=self.device, dtype=self.dtype)
        if not self.is_vit:
            if prompts is not None or (deep_prompts is not None and any(p is not None for p in deep_prompts)):
                raise VLPromptError(
                    "vision prompts need a ViT image tower; this backbone's image tower is a CNN "
                    "(use a text-side method such as coop/cocoop/kgcoop, or a ViT backbone)"
                )
            if hook is not None:
                raise VLPromptError("per-layer vision taps need a ViT image tower; this backbone's is a CNN")
            return v(images)
        b = images.shape[0]
        x = v.conv1(images)
        x = x.reshape(b, x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.patch_dropout(x)
        n_prompts = 0
        if prompts is not None:
            n_prompts = prompts.shape[-2]
            x = torch.cat([x, _expand(prompts, b, x.dtype, self.fp16_prompts)], dim=1)
        x = v.ln_pre(x)
        for i, block in enumerate(v.transformer.resblocks):
            p = deep_prompts[i] if deep_prompts is not None and i < len(deep_prompts) else None
            if i > 0 and p is not None:
                kept = x[:, : x.shape[1] - n_prompts]
                n_prompts = p.shape[-2]
                x = torch.cat([kept, _expand(p, b, x.dtype, self.fp16_prompts)], dim=1)
            x_in = x
            x = block(x)
            if hook is not None:
                hook("vision", i, block, x_in, x, n_prompts)
        x = x[:, : x.shape[1] - n_prompts]
        pooled, _ = v._pool(x)
        return pooled @ v.proj if v.proj is not None else pooled

    def strip_prompts(self, tower: str, x: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """The non-prompt tokens of a block input/output (text: drop 1..n; vision: drop the last n)."""
        if n_prompts == 0:
            return x
        if tower == "text":
            return torch.cat([x[:, :1], x[:, 1 + n_prompts :]], dim=1)
        return x[:, : x.shape[1] - n_prompts]

    def run_block(self, tower: str, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run one frozen block on a token sequence (causal mask for text, sized to the sequence)."""
        if tower == "text":
            mask = getattr(self._text, "attn_mask", None)
            mask = mask[: x.shape[1], : x.shape[1]] if mask is not None else None
            return block(x, attn_mask=mask)
        return block(x)
