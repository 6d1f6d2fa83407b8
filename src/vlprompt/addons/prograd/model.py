"""ProGrad — prompt-aligned gradient (Zhu et al., "Prompt-aligned Gradient for Prompt Tuning", ICCV 2023, Sec. 3.2,
Eqs. 5-7; BeierZhu/Prompt-align), the ``prograd`` add-on; ``coop+prograd`` is ProGrad.

**Teacher.** Zero-shot CLIP with the dataset's hand-crafted prompt (``prograd.template``; its presets set ProGrad's
own ``CUSTOM_TEMPLATES``): logits ``z⁰ = s · f̂⁰ t̂⁰ᵀ`` from the prompt-free, wrapper-free towers — the image teacher
is the frozen image tower on the same (augmented) images, or the cached frozen features; the text teacher is
computed once per label space in fp32, as the reference's separate ``clip_model.float()``.

**Losses** (``ProGradLoss``; z = the student's logits, p⁰ = softmax(z⁰ / T)):

    L_ce = CE(z, y)                                          (the task's ``ce``)
    L_kl = T² · (1/B) Σ_i Σ_k −p⁰_ik · log softmax(z_i / T)_k   (``prograd_kl``: the soft cross-entropy the reference
                                                              calls ``kl_loss``; its gradient is the KL's)

**Update** (:meth:`ProGrad.gradient_hook`, the reference's ``prograd_backward_and_update``): per trainable tensor,
with G_d = ∇L (the gradient of every loss term but ``prograd_kl``: just CE for ``coop+prograd``) and
G_g = ∇L_kl, both over the global batch, the step uses

    G = G_d                                      if cos(G_d, G_g) ≥ 0
    G = G_d − λ · (G_d · Ĝ_g) Ĝ_g,  Ĝ_g = G_g / ‖G_g‖   otherwise            (Eq. 7; λ = ``prograd.lam``)

so it never moves against the zero-shot prediction; L_kl itself only gives the direction.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from vlprompt.addons.base import AddOn
from vlprompt.addons.prograd.config import ProGradConfig
from vlprompt.methods.prompts import hand_crafted_features

#: the loss term that only gives the direction of the update
KL_TERM = "prograd_kl"


def prograd_losses(logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · mean_i Σ_k −softmax(z⁰_i / T)_k · log_softmax(z_i / T)_k`` (fp32), as ``ProGradLoss``."""
    target = F.softmax(teacher.float() / temperature, dim=-1)
    log_p = F.log_softmax(logits.float() / temperature, dim=-1)
    return (-(target * log_p) * temperature * temperature).sum(dim=1).mean()


def project(main: Optional[torch.Tensor], general: Optional[torch.Tensor], lam: float) -> Optional[torch.Tensor]:
    """Eq. 7 for one tensor: ``main`` minus λ times its component along ``general`` when the two conflict (negative
    cosine), else ``main`` unchanged (also when either is missing or zero)."""
    if main is None or general is None:
        return main
    unit = general / torch.linalg.norm(general)
    along = torch.dot(main.flatten(), unit.flatten())
    if not bool(along < 0):  # NaN (a zero gradient) compares False, as in the reference
        return main
    return main - lam * along * unit


class ProGrad(AddOn):
    def __init__(self, task, config: ProGradConfig):
        super().__init__(task, config)
        # the frozen towers without the learner's block wrappers (LoRA): the teacher is zero-shot CLIP
        object.__setattr__(self, "_zero_shot", task.backbone.with_options())
        self.register_buffer("text_teacher", None, persistent=False)

    def set_classnames(self, space) -> None:
        self.classnames = list(space.classnames)
        self.template = self.config.template or space.template
        self.text_teacher = None  # rebuilt for these classes at the next loss

    def teacher_logits(self, out) -> torch.Tensor:
        zero_shot = self._zero_shot
        if self.text_teacher is None:
            with torch.autocast(zero_shot.device.type, enabled=False):
                self.text_teacher = hand_crafted_features(zero_shot.float_copy(), self.classnames, [self.template])
        with torch.no_grad():
            image = out.image_raw if out.images is None else zero_shot.encode_image(out.images)
            image = F.normalize(image.detach().float(), dim=-1)
            return zero_shot.logit_scale.float() * image @ self.text_teacher.t()

    def losses(self, out, labels, step):
        return {KL_TERM: prograd_losses(out.logits, self.teacher_logits(out), self.config.temperature)}

    def gradient_hook(self, losses: Dict[str, torch.Tensor], grads) -> None:
        """Project the gradient of the training loss (every term but ``prograd_kl``) away from the conflicting
        part along the gradient of ``prograd_kl``, tensor by tensor (see the module doc)."""
        main = sum(value for name, value in losses.items() if name != KL_TERM)
        g_main: List[Optional[torch.Tensor]] = grads.of(main)
        g_general: List[Optional[torch.Tensor]] = grads.of(losses[KL_TERM])
        grads.set([project(a, b, self.config.lam) for a, b in zip(g_main, g_general)])
