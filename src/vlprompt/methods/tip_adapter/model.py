"""Tip-Adapter (Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification", ECCV 2022;
gaopengcuhk/Tip-Adapter ``main.py`` / ``utils.py``) — a fitted learner (:mod:`vlprompt.engine.fitting`).

**Cache** (Sec. 3.1, ``build_cache_model``): the few-shot images pass ``augment_views`` times through the frozen
image tower (random resized crops of at least ``crop_scale`` of the area, flips); the *unnormalised* features of
the views are averaged, then L2-normalised: the keys ``F_trainᵀ`` ``[E, N]`` (the reference's layout). The values ``L_train`` ``[N, K]`` are the
one-hot labels. A cache given with ``--init-from`` (a converted Tip-Adapter cache, ``vlprompt convert --from
tip-adapter``) is kept and only searched.

**Logits** (Eq. 6): ``100 · f Wᵀ + α · exp(−β (1 − f F_trainᵀ)) L_train`` with ``f`` the normalised test feature and
``W`` the normalised hand-crafted text classifier; the constant 100 is the reference's (not CLIP's logit scale).
On other classes than the cached ones the cache does not apply: the logits are zero-shot CLIP's.

**Search** (``search_hp``): ``β_i = i (s_β − 0.1) / n_β + 0.1`` (i < n_β), ``α_j = j (s_α − 0.1) / n_α + 0.1``
(j < n_α), β-major; the first pair with a strictly higher accuracy on the search split wins (starting from
accuracy 0 and β = α = 0, as the reference does). ``search=false`` keeps ``init_beta`` / ``init_alpha``.
"""

from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F

from vlprompt.capabilities import Capability
from vlprompt.methods.base import LabelSpace, PromptLearner
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.methods.tip_adapter.config import TipAdapterConfig, TipAdapterFConfig

#: the reference's fixed logit scale of the zero-shot term
CLIP_SCALE = 100.0


def grid(scale: float, steps: int) -> List[float]:
    """The reference's search grid ``i · (scale − 0.1) / steps + 0.1`` for ``i < steps``."""
    return [i * (scale - 0.1) / steps + 0.1 for i in range(steps)]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent (the reference's ``cls_acc``)."""
    return 100.0 * float((logits.topk(1, dim=1)[1].flatten() == labels).sum()) / labels.shape[0]


def cache_logits(affinity: torch.Tensor, values: torch.Tensor, beta: float) -> torch.Tensor:
    """``exp(−β (1 − A)) V`` written as the reference computes it, ``exp(−(β − β A)) V``."""
    return (-(beta - beta * affinity)).exp() @ values


class TipAdapter(PromptLearner):
    """Tip-Adapter's training-free learner (config :class:`~vlprompt.methods.tip_adapter.config.TipAdapterConfig`)."""

    fitted = True
    fitted_buffers = ("cache_keys", "cache_values")
    fitted_settings = ("beta", "alpha")

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({Capability.SHARED_TEXT, Capability.CLASS_TOKEN_END})

    def __init__(self, backbone, config: TipAdapterConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        device, width = backbone.device, backbone.embed_dim
        self.trained_classnames = list(space.classnames)
        self.register_buffer("cache_keys", torch.zeros(width, 0, device=device))
        self.register_buffer("cache_values", torch.zeros(0, len(space), device=device))
        self.register_buffer("beta", torch.tensor(float(config.init_beta), device=device))
        self.register_buffer("alpha", torch.tensor(float(config.init_alpha), device=device))
        self.set_classnames(space)

    @property
    def crop_scale(self) -> float:
        return self.config.crop_scale

    def set_classnames(self, space: LabelSpace) -> None:
        templates = [space.template]
        if self.config.templates == "ensemble":
            templates = list(space.ensemble_templates or [space.template])
        self.classnames = list(space.classnames)
        classifier = hand_crafted_features(self.backbone, space.classnames, templates)
        self.register_buffer("classifier", classifier.float(), persistent=False)

    def text_features(self, image_features=None, hook=None):
        return self.classifier

    @property
    def cache_applies(self) -> bool:
        """The cache holds the current classes (and is not empty)."""
        return self.classnames == self.trained_classnames and self.cache_keys.shape[1] > 0

    def tip_logits(self, features: torch.Tensor, beta: float, alpha: float, keys=None) -> torch.Tensor:
        """Eq. 6 on normalised ``features``; ``keys`` default to the cache's."""
        keys = self.cache_keys if keys is None else keys
        zero_shot = CLIP_SCALE * features @ self.classifier.t()
        return zero_shot + cache_logits(features @ keys, self.cache_values, beta) * alpha

    def logits(self, image_features, text_features):
        f = F.normalize(image_features.float(), dim=-1)
        if not self.cache_applies:
            return CLIP_SCALE * f @ text_features.float().t()
        return self.tip_logits(f, float(self.beta), float(self.alpha))

    # ---------------------------------------------------------------- fitting
    def build_cache(self, data) -> None:
        """Keys: the normalised mean of the views' unnormalised features; values: one-hot labels."""
        views = [data.train_view(v, crop_scale=self.config.crop_scale) for v in range(self.config.augment_views)]
        keys = torch.stack([f for f, _ in views]).mean(dim=0)
        keys = keys / keys.norm(dim=-1, keepdim=True)
        keys = keys.t().contiguous()
        values = F.one_hot(views[0][1].long(), data.num_classes).float()
        self.register_buffer("cache_keys", keys.to(self.cache_keys.device))
        self.register_buffer("cache_values", values.to(self.cache_values.device))

    def search(self, data, keys=None) -> Dict[str, object]:
        """The reference's β/α grid search on ``search_split`` (module doc); sets β and α and returns the record."""
        config = self.config
        features, labels = data.split(config.search_split)
        f = F.normalize(features.float(), dim=-1).to(self.cache_keys.device)
        labels = labels.to(f.device)
        zero_shot = accuracy(CLIP_SCALE * f @ self.classifier.t(), labels)
        init = accuracy(self.tip_logits(f, config.init_beta, config.init_alpha, keys), labels)
        record: Dict[str, object] = {"search_split": config.search_split, "val_acc_zero_shot": zero_shot}
        record["val_acc_init"] = init
        best = (config.init_beta, config.init_alpha, init)
        if config.search:
            betas, alphas = grid(config.beta_scale, config.beta_steps), grid(config.alpha_scale, config.alpha_steps)
            clip = CLIP_SCALE * f @ self.classifier.t()
            affinity = f @ (self.cache_keys if keys is None else keys)
            scores, best = [], (0.0, 0.0, 0.0)
            for beta in betas:
                cached = cache_logits(affinity, self.cache_values, beta)
                for alpha in alphas:
                    acc = accuracy(clip + cached * alpha, labels)
                    scores.append(acc)
                    if acc > best[2]:
                        best = (beta, alpha, acc)
            record.update({"beta_list": betas, "alpha_list": alphas, "val_acc_grid_beta_major": scores})
        self.beta.fill_(best[0])
        self.alpha.fill_(best[1])
        record.update({"beta": best[0], "alpha": best[1], "val_acc": best[2]})
        data.log(
            f"{config.search_split} accuracy: zero-shot {zero_shot:.2f}%, init (β {config.init_beta}, α "
            f"{config.init_alpha}) {init:.2f}%, chosen β {best[0]:.4g}, α {best[1]:.4g}: {best[2]:.2f}%"
        )
        return record

    def fit_cache(self, data) -> Dict[str, object]:
        """Build the cache unless ``--init-from`` gave one."""
        given = self.cache_keys.shape[1] > 0
        if given:
            data.log(f"cache of {self.cache_keys.shape[1]} items from --init-from kept")
        else:
            self.build_cache(data)
        return {"cache_size": self.cache_keys.shape[1], "cache_from_init": given}

    def fit(self, data) -> Dict[str, object]:
        return {**self.fit_cache(data), **self.search(data)}


class TipAdapterF(TipAdapter):
    """Tip-Adapter-F (Sec. 3.2 of the paper; main.py ``run_tip_adapter_F``; config
    :class:`~vlprompt.methods.tip_adapter.config.TipAdapterFConfig`): the cache is built as Tip-Adapter's before training
    (``fit_before_training``); its keys — the only parameters — are then trained with cross-entropy on Eq. 6's
    logits at ``init_beta`` / ``init_alpha`` (the fewshot preset: AdamW with eps 1e-4, cosine per step, batch 256,
    20 epochs, views cropped at scale 0.5–1 as the reference's), and β/α are searched with the trained keys after
    the last epoch (``fit_after_training``). The reference keeps the epoch with the best *test* accuracy; the last
    epoch is kept here (README, "Differences from the reference code")."""

    fitted = False

    def __init__(self, backbone, config: TipAdapterFConfig, space: LabelSpace):
        super().__init__(backbone, config, space)
        self.cache_keys = torch.nn.Parameter(self._buffers.pop("cache_keys"))

    def build_cache(self, data) -> None:
        del self.cache_keys
        self.register_buffer("cache_keys", torch.zeros(0, device=self.cache_values.device))
        super().build_cache(data)
        self.cache_keys = torch.nn.Parameter(self._buffers.pop("cache_keys"))

    def logits(self, image_features, text_features):
        if self.training and self.cache_applies:  # training: Eq. 6 at the initial beta and alpha
            f = F.normalize(image_features.float(), dim=-1)
            return self.tip_logits(f, self.config.init_beta, self.config.init_alpha)
        return super().logits(image_features, text_features)

    def fit_before_training(self, data) -> Dict[str, object]:
        return self.fit_cache(data)

    def fit_after_training(self, data) -> Dict[str, object]:
        return self.search(data)
