"""Gaussian prompt aggregation, the ``gpa`` add-on (Khattak et al., "Self-regulating Prompts", ICCV 2023, Sec. 3.3,
Eq. 6); implied by ``src`` (PromptSRC) and usable with any learner (``maple+gpa``).

Weights g_e = N(e; μ, σ²) for e = 1..E, normalised to sum 1 (:func:`gpa_weights`). After epoch e the add-on
accumulates Σ g_e · θ_e over the task's *trainable* tensors (learner prompts and any other add-on's parameters),
and at the end of epoch E it loads the aggregate into those parameters — the model that is saved and tested. The
reference weights the whole ``state_dict``, frozen fp16 CLIP weights included, which re-rounds the frozen
weights in half precision (Σ g_e · W ≠ W in fp16) and so drifts the backbone; frozen tensors do not change, so
aggregating only the trainable ones is the exact intent. The running aggregate is kept in fp32 in buffers
``aggregate_<parameter name with '.' → '__'>`` — training state: they are in the resume checkpoint (a resumed run
continues the sum) but not in the published weights.
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch

from vlprompt.addons.base import AddOn

PREFIX = "aggregate_"


def gpa_weights(num_epochs: int, mean: float, std: float) -> List[float]:
    """g_e = N(e; μ, σ²) / Σ_e' N(e'; μ, σ²), e = 1..E (computed as a softmax of the log-density, so a peak far
    outside 1..E does not underflow to 0/0)."""
    logs = [-0.5 * ((e - mean) / std) ** 2 for e in range(1, num_epochs + 1)]
    top = max(logs)
    dens = [math.exp(x - top) for x in logs]
    total = sum(dens)
    return [d / total for d in dens]


class GPA(AddOn):
    training_buffers = (PREFIX,)

    @classmethod
    def check_config(cls, config, provides) -> Optional[str]:
        if config.enabled and not config.std > 0:
            return f"gpa.std must be > 0 (got {config.std}); e.g. --set gpa.std=1, or gpa.enabled=false"
        return None

    @staticmethod
    def _key(param_name: str) -> str:
        return PREFIX + param_name.replace(".", "__")

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        if not self.config.enabled:
            return
        g = gpa_weights(num_epochs, self.config.mean, self.config.std)[epoch]
        params = self.task.trainable_parameters()
        with torch.no_grad():
            for name, p in params.items():
                key = self._key(name)
                if key not in self._buffers:
                    self.register_buffer(key, torch.zeros_like(p, dtype=torch.float32))
                self._buffers[key].add_(p.detach().float(), alpha=g)
            if epoch + 1 == num_epochs:
                for name, p in params.items():
                    p.copy_(self._buffers[self._key(name)])

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # a mid-training checkpoint holds the running aggregate: create its buffers before loading them
        for key, value in state_dict.items():
            local = key[len(prefix) :]
            if key.startswith(prefix + PREFIX) and "." not in local and local not in self._buffers:
                self.register_buffer(local, torch.zeros(value.shape, dtype=torch.float32, device=self.backbone.device))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
