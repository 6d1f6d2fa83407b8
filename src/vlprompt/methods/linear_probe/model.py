"""Linear probe (Radford et al., ICML 2021, Sec. 3.2; the CoOp repository's ``lpclip``) — a fitted learner
(:mod:`vlprompt.engine.fitting`).

Features: the frozen, unnormalised image features of the few-shot train items under the test transform (lpclip's
``feat_extractor.py`` runs ``clip_model.visual`` with the non-random transform). Fit: L2-regularised multinomial
logistic regression with its C searched on the few-shot validation images (:mod:`vlprompt.methods.linear_probe.logistic`).
Logits = ``W f + b``. The weights exist for the trained classes only: another label space is refused.
"""

from __future__ import annotations

from typing import Dict

import torch

from vlprompt.errors import VLPromptError
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.linear_probe.config import LinearProbeConfig
from vlprompt.methods.linear_probe.logistic import TorchLBFGS, fit_sklearn, search_c


class LinearProbe(PromptLearner):
    """lpclip's linear probe (config :class:`~vlprompt.methods.linear_probe.config.LinearProbeConfig`)."""

    fitted = True

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset()

    def __init__(self, backbone, config: LinearProbeConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        device = backbone.device
        self.trained_classnames = list(space.classnames)
        self.register_buffer("weight", torch.zeros(len(space), backbone.embed_dim, device=device))
        self.register_buffer("bias", torch.zeros(len(space), device=device))
        self.register_buffer("c", torch.tensor(0.0, device=device))
        self.set_classnames(space)

    def set_classnames(self, space: LabelSpace) -> None:
        if list(space.classnames) != self.trained_classnames:
            raise VLPromptError(
                f"linear_probe has weights for its {len(self.trained_classnames)} trained classes only and cannot "
                f"score these {len(space)}; evaluate it on the classes it was fitted on"
            )
        self.classnames = list(space.classnames)

    def text_features(self, image_features=None, hook=None):
        return self.weight

    def logits(self, image_features, text_features):
        return image_features.float() @ self.weight.t() + self.bias

    def fit(self, data) -> Dict[str, object]:
        config = self.config
        x, y = data.split("train")
        x_val, y_val = data.split(config.search_split)
        k = data.num_classes
        if config.solver == "sklearn":
            fit = lambda c: fit_sklearn(x, y, c, k, config.max_iter)
        else:
            solver = TorchLBFGS(config.max_iter)
            fit = lambda c: solver(x, y, c, k)
        (weight, bias), record = search_c(fit, x_val, y_val.long(), config.c_grid, config.steps)
        self.weight.copy_(weight)
        self.bias.copy_(bias)
        self.c.fill_(record["c"])
        data.log(f"C = {record['c']:.4g} ({config.solver}; {config.search_split} accuracy per fit in fit.json)")
        return {"solver": config.solver, "search_split": config.search_split, **record}
