"""Tower adapters: the seam between a frozen tower's modules and prompt learning.

A *tower adapter* wraps one tower of a frozen CLIP-style model (never modifying its modules) and owns, for that
tower's type: the embedding, where prompt tokens go in and how they are stripped, how a block runs (the block
runner of :mod:`vlprompt.backbones.blocks`, or the tower's own block), pooling and projection, and the
:class:`~vlprompt.capabilities.Capability` set it offers. Two registries, :data:`TEXT_TOWERS` and
:data:`VISION_TOWERS`, map a tower module's exact type to its adapter class; ``PromptableCLIP`` asks them for its
two adapters, and a tower whose type is not registered is refused naming that type.

Adding a tower family = one module that subclasses :class:`TextTower` or :class:`VisionTower` and registers it
(``@VISION_TOWERS.register(MyTowerType)``); see CONTRIBUTING.md and ``tests/example_tower.py``.

**Layout.** The loops keep tokens sequence-first (``[L, N, D]``) wherever gradients pass through the blocks or a
block wrapper is set (:func:`runner_layout`), and batch-first (``[N, L, D]``, the blocks' own forward) otherwise;
hooks always see batch-first views.
"""

from __future__ import annotations

from typing import Callable, Dict, FrozenSet, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vlprompt.backbones.blocks import BlockWrapper, run_block
from vlprompt.backbones.options import EncodeOptions
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

BlockHook = Callable[[str, int, nn.Module, torch.Tensor, torch.Tensor, int], None]
#: per-block prompts: ``prompts[i]`` is None or a tensor ``[n, D]`` / ``[N, n, D]`` for block ``i``
DeepPrompts = Optional[Sequence[Optional[torch.Tensor]]]
#: block wrappers of one tower, by block index
Wrappers = Mapping[int, BlockWrapper]

DEFAULT_OPTIONS = EncodeOptions()


def expand_prompts(p: torch.Tensor, n: int, dtype: torch.dtype, fp16: bool = False) -> torch.Tensor:
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


def deep_prompt(deep_prompts: DeepPrompts, i: int) -> Optional[torch.Tensor]:
    """The prompts of block ``i`` (None when there are none)."""
    return deep_prompts[i] if deep_prompts is not None and i < len(deep_prompts) else None


def runner_layout(wrappers: Optional[Wrappers], blocker: Optional[str] = None) -> bool:
    """Whether a tower loop runs the block runner sequence-first: when gradients pass through the blocks or a
    wrapper is set, unless the tower's blocks are not the runner's (``blocker``, then the blocks' own forward)."""
    return blocker is None and (torch.is_grad_enabled() or bool(wrappers))


class Layout:
    """Token layout of one tower loop: sequence-first (block runner) or batch-first (the blocks' own forward)."""

    def __init__(self, sequence_first: bool):
        self.sequence_first = sequence_first
        self.dim = 0 if sequence_first else 1

    def enter(self, x: torch.Tensor) -> torch.Tensor:
        """Batch-first ``[N, L, D]`` -> this layout."""
        return x.transpose(0, 1) if self.sequence_first else x

    leave = enter  # this layout -> batch-first (a transpose is its own inverse)

    def prompts(self, p: torch.Tensor) -> torch.Tensor:
        """Expanded prompts ``[N, n, D]`` in this layout."""
        return p.transpose(0, 1) if self.sequence_first else p

    def tokens(self, x: torch.Tensor, start: int, stop: Optional[int] = None) -> torch.Tensor:
        """Positions ``start..stop-1`` along the sequence axis."""
        return x[start:stop] if self.sequence_first else x[:, start:stop]

    def length(self, x: torch.Tensor) -> int:
        return x.shape[self.dim]

    def block(
        self, block: nn.Module, x: torch.Tensor, mask: Optional[torch.Tensor], wrapper: Optional[BlockWrapper]
    ) -> torch.Tensor:
        if self.sequence_first:
            return run_block(block, x, mask, wrapper)
        return block(x, attn_mask=mask) if mask is not None else block(x)


def check_wrappers(tower: str, wrappers: Mapping[int, BlockWrapper], layers: int, blocker: Optional[str]) -> None:
    """Refuse, with one line, block wrappers a tower cannot honour."""
    if not wrappers:
        return
    if blocker:
        raise VLPromptError(f"block wrappers in the {tower} tower: its blocks cannot be wrapped ({blocker})")
    bad = sorted(i for i in wrappers if not (isinstance(i, int) and 0 <= i < layers))
    if bad:
        raise VLPromptError(f"block wrappers in the {tower} tower: no block {bad[0]} (it has blocks 0..{layers - 1})")
    wrong = [i for i, w in wrappers.items() if not isinstance(w, BlockWrapper)]
    if wrong:
        raise VLPromptError(f"block wrappers in the {tower} tower: block {wrong[0]}'s wrapper is not a BlockWrapper")


class Tower:
    """What both adapters share: the wrapped module, its capabilities and prompt stripping."""

    #: "text" or "vision" (the name hooks, wrappers and taps use)
    name: str = ""

    def __init__(self, module: nn.Module):
        self.module = module

    @property
    def capabilities(self) -> FrozenSet[Capability]:
        return frozenset()

    @property
    def layers(self) -> int:
        return 0

    @property
    def block_blocker(self) -> Optional[str]:
        """Why this tower's blocks cannot go through the block runner (None when they can)."""
        return "the tower has no transformer blocks"

    def strip_prompts(self, x: torch.Tensor, n_prompts: int) -> torch.Tensor:
        """The non-prompt tokens of a batch-first block input/output."""
        return x

    def run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run one frozen block on a batch-first token sequence (the tower's mask, sized to the sequence)."""
        raise VLPromptError(f"the {self.name} tower has no blocks to run")


class TextTower(Tower):
    """A text tower: token embeddings in, one feature per sequence out (see ``OpenCLIPText``)."""

    name = "text"


class VisionTower(Tower):
    """An image tower: images in, one feature per image out. The base class offers no prompts."""

    name = "vision"

    @property
    def width(self) -> int:
        raise VLPromptError(
            f"vision prompts need a ViT image tower; this backbone's image tower ({type(self.module).__name__}) "
            "takes no prompts"
        )

    @property
    def embed_dim(self) -> int:
        return int(self.module.output_dim)

    @property
    def image_size(self) -> int:
        size = getattr(self.module, "image_size", 224)
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def encode(
        self,
        images: torch.Tensor,
        prompts: Optional[torch.Tensor] = None,
        deep_prompts: DeepPrompts = None,
        hook: Optional[BlockHook] = None,
        options: EncodeOptions = DEFAULT_OPTIONS,
        wrappers: Optional[Wrappers] = None,
    ) -> torch.Tensor:
        raise NotImplementedError


class TowerRegistry:
    """Tower adapter classes by the exact type of the tower module they adapt."""

    def __init__(self, kind: str):
        self.kind = kind
        self._adapters: Dict[type, type] = {}

    def register(self, *types: type) -> Callable[[type], type]:
        """Class decorator: ``cls`` adapts towers of exactly these types."""

        def add(cls: type) -> type:
            for t in types:
                self._adapters[t] = cls
            return cls

        return add

    def adapter(self, module: nn.Module) -> Tower:
        """The adapter of ``module``, or a one-line refusal naming its type and the supported ones."""
        cls = self._adapters.get(type(module))
        if cls is None:
            known = ", ".join(sorted(f"{t.__module__}.{t.__qualname__}" for t in self._adapters))
            raise VLPromptError(
                f"unsupported {self.kind} tower {type(module).__module__}.{type(module).__qualname__}: no tower "
                f"adapter is registered for it (supported: {known}); see CONTRIBUTING.md 'Add a tower adapter'"
            )
        return cls(module)

    def types(self) -> Dict[type, type]:
        return dict(self._adapters)


TEXT_TOWERS = TowerRegistry("text")
VISION_TOWERS = TowerRegistry("image")
