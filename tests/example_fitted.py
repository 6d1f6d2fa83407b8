"""A stand-in fitted learner (the extension point of :mod:`vlprompt.engine.fitting`): class-mean prototypes of the
few-shot features added to zero-shot logits with a weight searched on a validation split. conftest.py registers
it, so the composition matrix and the run-directory tests pick it up.

Fit: ``p_k`` = the L2-normalised mean of the normalised features of class ``k`` over views 0 and 1; logits =
zero-shot logits + ``w · cos(f, p_k)``; ``w`` is the first of ``weights`` with the best accuracy on
``search_split``.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vlprompt.capabilities import Capability
from vlprompt.config import setting
from vlprompt.methods.base import LearnerConfig, PromptLearner
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.registry import LEARNERS


@dataclass
class PrototypesConfig(LearnerConfig):
    weights: str = setting("0,1,10", "comma-separated grid of the prototype weight w")
    search_split: str = setting("fewshot_val", "split the weight is searched on")


@LEARNERS.register("prototypes", PrototypesConfig)
class Prototypes(PromptLearner):
    fitted = True

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({Capability.SHARED_TEXT})

    def __init__(self, backbone, config, space):
        super().__init__(backbone, config, space)
        self.trained_classnames = list(space.classnames)
        self.register_buffer("prototypes", torch.zeros(len(space), backbone.embed_dim, device=backbone.device))
        self.register_buffer("weight", torch.zeros((), device=backbone.device))
        self.set_classnames(space)

    def set_classnames(self, space):
        self.classnames = list(space.classnames)
        classifier = hand_crafted_features(self.backbone, space.classnames, [space.template])
        self.register_buffer("classifier", classifier, persistent=False)

    def text_features(self, image_features=None, hook=None):
        return self.classifier

    def cache_logits(self, image_features, prototypes, weight):
        return weight * F.normalize(image_features.float(), dim=-1) @ prototypes.t()

    def logits(self, image_features, text_features):
        logits = self.backbone.logits(image_features, text_features)
        if self.classnames == self.trained_classnames:
            logits = logits + self.cache_logits(image_features, self.prototypes, self.weight)
        return logits

    def fit(self, data):
        feats = [F.normalize(data.train_view(v)[0], dim=-1) for v in (0, 1)]
        labels = data.train_view(0)[1]
        mean = torch.stack(feats).mean(0)
        protos = torch.stack([mean[labels == k].mean(0) for k in range(data.num_classes)])
        self.prototypes.copy_(F.normalize(protos, dim=-1))
        f, y = data.split(self.config.search_split)
        zero_shot = self.backbone.logits(f.to(self.backbone.dtype), self.classifier).float()
        scores = []
        for w in [float(x) for x in self.config.weights.split(",")]:
            acc = 100.0 * float(((zero_shot + self.cache_logits(f, self.prototypes, w)).argmax(-1) == y).float().mean())
            scores.append((w, acc))
        best = max(scores, key=lambda s: s[1])  # the first of the best
        self.weight.fill_(best[0])
        data.log(f"weight {best[0]} (val accuracy {best[1]:.2f}%)")
        return {"weight": best[0], "val_accuracy": best[1], "grid": scores}
