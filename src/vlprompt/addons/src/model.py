"""PromptSRC's self-regulating constraints (Khattak et al., "Self-regulating Prompts: Foundational Model Adaptation
without Forgetting", ICCV 2023, Sec. 3.2, Eqs. 2-5), the ``src`` add-on; ``promptsrc`` = ``ivlp+src`` (``src``
implies the ``gpa`` add-on, the paper's Gaussian prompt aggregation, Sec. 3.3).

**Frozen teachers** — without a second copy of CLIP:

* image teacher f⁰ = the prompt-free image tower on the batch's images. It is a pure function of the augmented
  view, so with the feature cache on it is taken from the cache entry of that exact view
  (``out.frozen_image``, carried by the training stream, :mod:`vlprompt.engine.train_data`): each step runs the
  image tower once, for the prompted features, instead of twice as in the reference (same values up to float
  rounding; under bf16 autocast the cached teacher is the fp32 feature, the cache being computed outside
  autocast). Without the cache (``--no-feature-cache``, or a task used in a custom loop) it is
  ``backbone.encode_image(images)`` under ``no_grad`` in the run's precision, as in the reference; when the
  learner has no image prompts the batch already *is* the frozen image features, so f⁰ = ``out.image_raw``.
* text targets t̄_k = mean over PromptSRC's 60 templates (:data:`~vlprompt.data.templates.PROMPTSRC_TEMPLATES`,
  used for every dataset as in the reference, whatever the dataset's or a user's ``--template``) of the
  **unnormalised** frozen text features of class k, normalised only for the losses. As in the reference (a
  separate fp32 CLIP), they are computed in fp32 and outside autocast in every precision mode
  (:meth:`~vlprompt.backbones.PromptableCLIP.float_copy` under ``--precision fp16``). They depend on the class
  names, so they are a non-persistent buffer, built once per label space at its first loss (evaluation never pays
  the 60 × K text passes).

The losses see the features that give the logits, after every add-on's ``adapt`` (RESTORE_p's calibrated
features in ``promptsrc+restore``); the teachers never pass through an add-on.

**Losses** per batch (:func:`src_losses`; f̂, t̂ = the normalised prompted features that give the logits,
z = s · f̂ t̂ᵀ and z⁰ = s · f̂⁰ t̂⁰ᵀ with CLIP's frozen scale s = 100, p = softmax(z), temperature 1):

    src_text  = λ_text · mean_{k,d} |t̂_{kd} − t̂⁰_{kd}|                     (λ_text = 25)
    src_image = λ_img  · mean_{i,d} |f̂_{id} − f̂⁰_{id}|                     (λ_img = 10)
    src_kl    = λ_kl   · Σ_{i,k} p⁰_{ik} (log p⁰_{ik} − log p_{ik}) / (B·K)  (λ_kl = 1; divided by the
                                                                            number of logits, not by B)

and the task adds CE, so L = CE + src_kl + src_text + src_image.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F

from vlprompt.addons.base import AddOn
from vlprompt.addons.src.config import SrcConfig
from vlprompt.capabilities import Capability
from vlprompt.data.templates import PROMPTSRC_TEMPLATES
from vlprompt.methods.prompts import hand_crafted_features


def src_losses(
    f: torch.Tensor, f0: torch.Tensor, t: torch.Tensor, t0: torch.Tensor, scale, weights: Sequence[float]
) -> Dict[str, torch.Tensor]:
    """The three weighted self-regulating terms for image features ``f``/``f0`` ``[B, E]`` (prompted /
    frozen), text features ``t``/``t0`` ``[K, E]``, logit scale ``scale`` and ``weights`` =
    (text, image, kl). Features are normalised here; everything is computed in fp32."""
    f, f0, t, t0 = (F.normalize(x.float(), dim=-1) for x in (f, f0, t, t0))
    z, z0 = scale * f @ t.t(), scale * f0 @ t0.t()
    kl = F.kl_div(F.log_softmax(z, dim=-1), F.log_softmax(z0, dim=-1), reduction="sum", log_target=True)
    w_text, w_image, w_kl = weights
    return {
        "src_text": w_text * (t - t0).abs().mean(),
        "src_image": w_image * (f - f0).abs().mean(),
        "src_kl": w_kl * kl / z.numel(),
    }


class SrcAddOn(AddOn):
    requires = frozenset({Capability.SHARED_TEXT})
    frozen_image_teacher = True

    def __init__(self, task, config: SrcConfig):
        super().__init__(task, config)
        self.register_buffer("text_targets", None, persistent=False)

    def set_classnames(self, space) -> None:
        self.classnames = list(space.classnames)
        self.text_targets = None  # rebuilt for these classes at the next loss

    def frozen_text_targets(self) -> torch.Tensor:
        """t̄ ``[K, E]`` for the current classes: fp32, outside autocast."""
        backbone = self.backbone
        with torch.autocast(backbone.device.type, enabled=False):
            return hand_crafted_features(
                backbone.float_copy(), self.classnames, PROMPTSRC_TEMPLATES, normalize_each=False
            )

    def losses(self, out, labels, step):
        if self.text_targets is None:
            self.text_targets = self.frozen_text_targets()
        if out.images is None:
            image_teacher = out.image_raw.detach()
        elif out.frozen_image is not None:
            image_teacher = out.frozen_image
        else:
            with torch.no_grad():
                image_teacher = self.backbone.encode_image(out.images)
        cfg = self.config
        return src_losses(
            out.image,
            image_teacher,
            out.text,
            self.text_targets,
            self.backbone.logit_scale,
            (cfg.text_weight, cfg.image_weight, cfg.kl_weight),
        )
