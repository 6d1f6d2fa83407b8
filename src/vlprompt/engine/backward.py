"""The gradient hook: a component that replaces or combines gradients between the loss and the optimizer step.

A learner or add-on that defines ``gradient_hook(losses, grads)`` takes over the backward pass of every training
step (ProGrad projects the cross-entropy gradient against the gradient of its KL term). It receives the step's
named, already weighted loss terms and a :class:`GradientContext`, and must leave the final gradients in the
parameters' ``.grad`` through :meth:`GradientContext.set`; the trainer then steps the optimizer.

On several processes the trainer runs such a step's forward under DistributedDataParallel's ``no_sync`` and
:meth:`GradientContext.of` all-reduces explicitly, so the hook always sees the gradients of the *global* batch —
the ones a single process would compute — and combines them identically on every rank.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from vlprompt.engine import distributed


class GradientContext:
    """Gradients of the global batch for a gradient hook. ``scale``: the factor the normal path multiplies the
    loss by before ``backward()`` (a rank's share of the batch times the number of processes)."""

    def __init__(self, params: Sequence[torch.nn.Parameter], scale: float = 1.0):
        self.params: List[torch.nn.Parameter] = list(params)
        self.scale = scale

    def of(self, loss: torch.Tensor) -> List[Optional[torch.Tensor]]:
        """d ``loss`` / d params for the global batch; ``None`` for a parameter the loss does not reach (on one
        process; with several, such gradients are zeros). The graph is kept for further calls."""
        grads = torch.autograd.grad(loss * self.scale, self.params, retain_graph=True, allow_unused=True)
        if not distributed.active():
            return list(grads)
        return distributed.average_tensors(
            [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)]
        )

    def set(self, grads: Sequence[Optional[torch.Tensor]]) -> None:
        """Write the final gradients (``None`` leaves a parameter without a gradient: the step skips it)."""
        if len(grads) != len(self.params):
            raise ValueError(f"gradient hook returned {len(grads)} gradients for {len(self.params)} parameters")
        for p, g in zip(self.params, grads):
            p.grad = None if g is None else g.detach().to(p.dtype)
