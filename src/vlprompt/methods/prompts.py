"""Class-prompt assembly shared by every learned-context text prompt (CoOp, Zhou et al., IJCV 2022, Sec. 3.2).

For each class ``k`` the prompt *string* is ``prefix + " " + name_k + ending`` where ``prefix`` is either the
init words (``a photo of a``) or ``n_ctx`` copies of the placeholder ``X`` (one BPE token each), so the
tokenized prompt reserves exactly ``n_ctx`` positions after SOS, and ``ending`` is ``"."`` — or, with
``ctx_init="template"`` (:func:`prompt_text`), the text after ``{}`` in the run's template. The frozen token embeddings of these
strings give two class-dependent *buffers* that are rebuilt from the class names and never saved:

* ``prefix``: position 0 (SOS), ``[K, 1, D]`` — the positions before ``backbone.prompt_start`` (none for SigLIP's
  tokenizers, whose sequences start with the text: ``[ctx][name][.][EOS][pad]``);
* ``suffix``: positions ``prompt_start + n_ctx ...`` (class tokens, ".", EOT, padding).

At forward time the learner concatenates ``[prefix, ctx, suffix]``. ``ids`` keep the token ids for EOT
pooling (argmax); sequences are stored truncated right after the longest EOT (causal truncation; all
``context_length`` positions when the backbone's ``causal_truncation`` option is off or its text tower attends
bidirectionally, where every position reaches the pooled one).

:meth:`ClassPrompts.encode` / :meth:`ClassPrompts.encode_per_image` turn a context into text features. With a
generic context and the class token at the end, every prompt shares its first ``1 + n_ctx + n_common``
positions (SOS, the context, and the leading suffix tokens common to all classes, e.g. "of a" after a
partial init); those are encoded once (``PromptableCLIP.encode_text_shared``) whenever the backbone's
``text_prefix_sharable`` rule allows it, and the full sequences otherwise.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from vlprompt.backbones.towers.base import maybe_checkpoint
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import TEMPLATE_INIT

PLACEHOLDER = "X"


def clean_classname(name: str) -> str:
    return name.replace("_", " ")


def placeholder_prefix(n_ctx: int) -> str:
    return " ".join([PLACEHOLDER] * n_ctx)


def prompt_text(ctx_init: str, template: str) -> Tuple[str, str]:
    """``(init words, ending)`` of a learned prompt: ``ctx_init`` (``_`` read as a space) and ``"."`` as in the
    references, or for ``ctx_init="template"`` the label space's template split at ``{}``: ``"a photo of a {}, a
    type of flower."`` -> ``("a photo of a", ", a type of flower.")`` (words before ``{}`` may be none)."""
    if ctx_init.strip() == TEMPLATE_INIT:
        before, after = template.split("{}", 1)
        return before.strip(), after
    return ctx_init.replace("_", " ").strip(), "."


class ClassPrompts(nn.Module):
    """Tokenized class prompts and their frozen prefix/suffix embedding buffers."""

    def __init__(self, backbone, classnames: Sequence[str], prefix: str, n_ctx: int, ending: str = "."):
        super().__init__()
        object.__setattr__(self, "backbone", backbone)  # shared and frozen: not a sub-module
        self.n_ctx = n_ctx
        names = [clean_classname(c) for c in classnames]
        self.classnames: List[str] = names
        texts = [f"{prefix} {name}{ending}" if prefix else f"{name}{ending}" for name in names]
        ids = backbone.tokenize(texts)
        if bool(ids[:, -1].ne(0).any()):
            raise VLPromptError(
                f"a prompt is too long for the text context length ({ids.shape[1]} tokens): shorten the class "
                "names or use fewer context tokens"
            )
        pool = backbone.pool_index(ids)
        if backbone.options.causal_truncation and Capability.CAUSAL_TEXT in backbone.capabilities("text"):
            ids = ids[:, : int(pool.max()) + 1]
        #: pooled (EOT) position per class, kept on the CPU (chunk sizes are planned from it)
        self.pool = pool
        # suffix tokens that every class has in common right after the context, before any class's EOT
        #: where the context goes: after the tokenizer's start token (CLIP's SOS), at 0 for SigLIP's tokenizers
        self.start = start = backbone.prompt_start
        tail = ids[:, start + n_ctx : int(pool.min())]
        same = (tail == tail[:1]).all(dim=0).tolist()
        self.n_common = same.index(False) if False in same else len(same)
        with torch.no_grad():
            emb = backbone.token_embed(ids)
        self.register_buffer("ids", ids.to(backbone.device), persistent=False)
        self.register_buffer("prefix", emb[:, :start].clone(), persistent=False)
        self.register_buffer("suffix", emb[:, start + n_ctx :].clone(), persistent=False)
        tok = backbone.tokenizer
        encode = getattr(tok, "encode", None)
        if encode is None and hasattr(tok, "tokenizer"):
            encode = tok.tokenizer.encode
        self.name_lens = [len(encode(name)) for name in names] if encode else None

    def __len__(self) -> int:
        return len(self.classnames)

    def assemble(self, ctx: torch.Tensor, position: str = "end") -> torch.Tensor:
        """Prompt embeddings ``[K, L, D]`` for context ``ctx`` (``[M, D]`` shared or ``[K, M, D]``).

        ``end``:    [SOS][c_1..c_M][name][.][EOT]
        ``middle``: [SOS][c_1..c_M/2][name][c_M/2+1..c_M][.][EOT]
        ``front``:  [SOS][name][c_1..c_M][.][EOT]
        """
        k = len(self)
        ctx = ctx.to(self.prefix.dtype)
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(k, -1, -1)
        if position == "end":
            return torch.cat([self.prefix, ctx, self.suffix], dim=1)
        if self.name_lens is None:
            raise VLPromptError(f"class token position {position!r} needs a BPE tokenizer with encode()")
        half = ctx.shape[1] // 2
        rows = []
        for i, n in enumerate(self.name_lens):
            name, rest = self.suffix[i : i + 1, :n], self.suffix[i : i + 1, n:]
            c = ctx[i : i + 1]
            if position == "middle":
                rows.append(torch.cat([self.prefix[i : i + 1], c[:, :half], name, c[:, half:], rest], dim=1))
            elif position == "front":
                rows.append(torch.cat([self.prefix[i : i + 1], name, c, rest], dim=1))
            else:
                raise VLPromptError(f"unknown class token position {position!r}: use end, middle or front")
        return torch.cat(rows, dim=0)

    # ------------------------------------------------------------------ text features
    @property
    def shared_len(self) -> int:
        """Positions that every class prompt shares: SOS, the ``n_ctx`` context vectors, ``n_common`` tokens."""
        return self.start + self.n_ctx + self.n_common

    def _shares_prefix(self, generic: bool, position: str, deep_prompts, hook, groups: int = 1) -> bool:
        """The one rule for the shared-prefix path: a generic (not class-specific) context, the class token
        at the end, and the backbone's :meth:`~vlprompt.backbones.PromptableCLIP.text_prefix_sharable`."""
        return (
            generic
            and position == "end"
            and self.backbone.text_prefix_sharable(self.shared_len, deep_prompts, hook, groups)
        )

    def _shared_prefix(self, ctx: torch.Tensor) -> torch.Tensor:
        """``[SOS][ctx][common tokens]``: ``[P, D]`` for a context ``[M, D]``, ``[B, P, D]`` for ``[B, M, D]``."""
        sos, common = self.prefix[0], self.suffix[0, : self.n_common]
        ctx = ctx.to(sos.dtype)
        if ctx.dim() == 3:
            sos, common = sos.expand(ctx.shape[0], -1, -1), common.expand(ctx.shape[0], -1, -1)
        return torch.cat([sos, ctx, common], dim=-2)

    def encode(self, ctx: torch.Tensor, position: str = "end", deep_prompts=None, hook=None) -> torch.Tensor:
        """Text features ``[K, E]`` (unnormalised) for a context ``[M, D]`` (generic) or ``[K, M, D]`` (CSC);
        ``deep_prompts`` and ``hook`` as in ``PromptableCLIP.encode_text``."""
        if self._shares_prefix(ctx.dim() == 2, position, deep_prompts, hook):
            tail = self.suffix[:, self.n_common :]
            return self.backbone.encode_text_shared(self._shared_prefix(ctx), tail, self.pool, deep_prompts)
        return self.backbone.encode_text(self.assemble(ctx, position), self.ids, deep_prompts=deep_prompts, hook=hook)

    def encode_per_image(self, contexts: torch.Tensor, position: str = "end", hook=None) -> torch.Tensor:
        """Text features ``[B, K, E]`` for one context per image: ``[B, M, D]`` (generic) or ``[B, K, M, D]``.

        The shared-prefix path encodes B prefixes and pairs each with the K class suffixes, in chunks of the
        backbone's ``text_chunk`` (image, class) pairs; otherwise whole images are chunked, each chunk
        assembling and encoding its B_c·K full sequences (under activation checkpointing when training).
        """
        b, k = contexts.shape[0], len(self)
        if self._shares_prefix(contexts.dim() == 3, position, None, hook, groups=b):
            tail = self.suffix[:, self.n_common :]
            return self.backbone.encode_text_shared(self._shared_prefix(contexts), tail, self.pool)
        step = max(1, self.backbone.text_chunk_size(self.ids.shape[1]) // k)
        checkpointed = hook is None and step < b and torch.is_grad_enabled()
        parts = [
            maybe_checkpoint(self._encode_images, contexts[s : s + step], position, hook, checkpointed=checkpointed)
            for s in range(0, b, step)
        ]
        return torch.cat(parts)

    def _encode_images(self, contexts: torch.Tensor, position: str, hook) -> torch.Tensor:
        emb = torch.cat([self.assemble(c, position) for c in contexts])
        ids = self.ids.repeat(contexts.shape[0], 1)
        return self.backbone.encode_text(emb, ids, hook=hook).view(contexts.shape[0], len(self), -1)


def init_context_from_words(backbone, words: str, n_ctx: int) -> torch.Tensor:
    """Token embeddings of positions ``1..n_ctx`` of the tokenized init phrase (CoOp's word init; a partial init keeps the phrase's remaining words as fixed tokens)."""
    ids = backbone.tokenize([words])
    with torch.no_grad():
        emb = backbone.token_embed(ids)
    start = backbone.prompt_start
    return emb[0, start : start + n_ctx].clone()


def hand_crafted_features(
    backbone, classnames: Sequence[str], templates: Sequence[str], chunk: int = 256, normalize_each: bool = True
):
    """Zero-shot text classifier ``[K, E]``: per class, the features of each template, averaged over
    templates and L2-normalised. ``normalize_each`` normalises every template's feature before averaging
    (CoOp's ZeroshotCLIP2); PromptSRC's targets average the *unnormalised* features."""
    names = [clean_classname(c) for c in classnames]
    total = None
    with torch.no_grad():
        for template in templates:
            ids = backbone.tokenize([template.format(n) for n in names])
            parts = []
            for s in range(0, len(names), chunk):
                part = ids[s : s + chunk]
                parts.append(backbone.encode_text(backbone.token_embed(part), part).float())
            feats = torch.cat(parts)
            if normalize_each:
                feats = feats / feats.norm(dim=-1, keepdim=True)
            total = feats if total is None else total + feats
    total = total / len(templates)
    return total / total.norm(dim=-1, keepdim=True)
