"""DePT — Decoupled Prompt Tuning (Zhang et al., "DePT: Decoupled Prompt Tuning", CVPR 2024), the ``dept`` add-on.

A channel-adjusted transfer (CAT) head beside the base method's similarity head, in its own feature
space, for the classes the model was trained on (works on every base: coop, cocoop, kgcoop, ivlp, vpt,
maple, promptsrc):

* FiLM layers (fp32, cast to the feature dtype at use; ``fp32_params``):
  FiLM_v(f) = γ_v ⊙ f + b_v and FiLM_t(t) = γ_t ⊙ t + b_t, γ ∈ R^E initialised to 1, b to 0 (:func:`film`);
* a linear head z^lin(x) = W x + b, W ∈ R^{C×E}, C = classes of the label space the add-on is built with
  (the training space), default PyTorch init.

Training (f = ``out.image`` ``[B, E]``, t = ``out.text`` ``[K, E]`` or ``[B, K, E]``: the **unnormalised**
features that give the similarity logits z^sim = ``out.logits``):

    inputs = [FiLM_t(t_{y_1}); …; FiLM_t(t_{y_B}); FiLM_v(f_1); …; FiLM_v(f_B)]   (2B × E, :func:`head_inputs`)
    L = (1 − λ) · CE(z^sim, y) + λ · CE(W·inputs + b, [y; y])                     (λ = ``weight`` = 0.7)

implemented as ``ce_scale`` = 1 − λ on the task's cross-entropy plus the term ``dept`` = λ · CE(z^lin).
For image-conditioned text (CoCoOp) t_{y_i} is sample i's own text feature of its class, t[i, y_i].

Evaluation (:meth:`DePTAddOn.eval_logits`): on a *seen* label space (the training classes, the ImageNet
source, the DG targets) the logits are the test-time fusion (:func:`dept_fused_logits`)

    z = (1 − λ) · z^sim + λ · (W · FiLM_v(f) + b)          (``test_time_fusion``; false → z^lin alone)

mixing logits of different scales (100·cos and an unscaled linear head) as the reference does. For a
subset of the training classes (ImageNet-A/-R against the 1000-class head, ``LabelSpace.rows``) only
those rows of W and b are used. On an unseen space (new classes, XD targets) the CAT head is ignored
and the similarity logits are returned unchanged. The runner decides ``seen``; nothing here looks at
dataset names.

Optimisation: the FiLM and head parameters get lr × ``lr_mult`` (6.5, the reference's ``LR_EXP``:
0.0035 → 0.02275; CoCoOp 0.002 → 0.013) through ``lr_scale`` from the first cosine epoch on; during the
constant warm-up epoch they run, like every group, at the warm-up LR 1e-5 (Dassl's warm-up scheduler sets one
LR for all groups; :func:`vlprompt.engine.schedule.group_lrs`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from vlprompt.addons.base import AddOn
from vlprompt.addons.dept.config import DePTConfig
from vlprompt.errors import VLPromptError


def film(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """FiLM(x) = γ ⊙ x + b, the fp32 parameters cast to the feature dtype."""
    return gamma.to(x.dtype) * x + beta.to(x.dtype)


def linear_head(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """z^lin = W x + b in the head's dtype, returned as fp32 logits."""
    return F.linear(x.to(weight.dtype), weight, bias).float()


def head_inputs(
    image: torch.Tensor,
    text: torch.Tensor,
    labels: torch.Tensor,
    film_v: Tuple[torch.Tensor, torch.Tensor],
    film_t: Tuple[torch.Tensor, torch.Tensor],
):
    """The CAT head's training batch: ``([FiLM_t(t_y); FiLM_v(f)]`` ``[2B, E]``, ``[y; y])``.

    ``text`` is ``[K, E]`` (shared) or ``[B, K, E]`` (per image: sample i uses ``text[i, y_i]``).
    """
    if text.dim() == 3:
        t = text[torch.arange(len(labels), device=text.device), labels]
    else:
        t = text[labels]
    x = torch.cat([film(t, *film_t), film(image.to(t.dtype), *film_v)])
    return x, torch.cat([labels, labels])


def dept_fused_logits(
    z_sim: torch.Tensor,
    image: torch.Tensor,
    film_v: Tuple[torch.Tensor, torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """Test-time fusion ``(1 − λ) · z^sim + λ · (W · FiLM_v(f) + b)`` (fp32)."""
    return (1.0 - lam) * z_sim.float() + lam * linear_head(film(image, *film_v), weight, bias)


class DePTAddOn(AddOn):
    fp32_params = ("film_",)

    def __init__(self, task, config: DePTConfig):
        super().__init__(task, config)
        dim, device = self.backbone.embed_dim, self.backbone.device
        self.film_v_scale = nn.Parameter(torch.ones(dim, device=device))
        self.film_v_bias = nn.Parameter(torch.zeros(dim, device=device))
        self.film_t_scale = nn.Parameter(torch.ones(dim, device=device))
        self.film_t_bias = nn.Parameter(torch.zeros(dim, device=device))
        self.head = nn.Linear(dim, len(task.space), device=device)
        self._head_acc: Optional[float] = None

    @property
    def lr_scale(self) -> float:
        return self.config.lr_mult

    @property
    def ce_scale(self) -> float:
        return 1.0 - self.config.weight

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def set_classnames(self, space) -> None:
        """The head is trained state and is kept; a seen space must match its rows."""
        if not space.seen:
            return
        if space.rows is not None:
            bad = [r for r in space.rows if not 0 <= r < self.num_classes]
            if bad or len(space.rows) != len(space):
                raise VLPromptError(
                    f"dept: the label space's rows {bad[:3] or len(space.rows)} do not select {len(space)} classes "
                    f"of the {self.num_classes}-class head; evaluate with --label-space unseen"
                )
        elif len(space) != self.num_classes:
            raise VLPromptError(
                f"dept: a seen label space has {len(space)} classes but the head was trained on {self.num_classes}; "
                "evaluate with --label-space unseen"
            )

    def losses(self, out, labels, step):
        x, y = head_inputs(
            out.image, out.text, labels, (self.film_v_scale, self.film_v_bias), (self.film_t_scale, self.film_t_bias)
        )
        z_lin = linear_head(x, self.head.weight, self.head.bias)
        self._head_acc = 100.0 * float(z_lin.detach().argmax(-1).eq(y).float().mean())
        return {"dept": self.config.weight * F.cross_entropy(z_lin, y)}

    def step_report(self):
        """The CAT head's accuracy on the step's 2B inputs (text and image features)."""
        return {} if self._head_acc is None else {"dept_head_acc": self._head_acc}

    def exported_tensors(self, space):
        """The fused head of :meth:`eval_logits` on the trained classes (the ``dept_*`` tensors of ``vlprompt
        export``; nothing on other classes, where DePT's logits are the base learner's)."""
        if not space.seen:
            return {}
        weight = self.config.weight if self.config.test_time_fusion else 1.0
        return {
            "dept_weight": torch.tensor(weight),
            "dept_film_scale": self.film_v_scale.float(),
            "dept_film_bias": self.film_v_bias.float(),
            "dept_head_weight": self.head.weight.float(),
            "dept_head_bias": self.head.bias.float(),
        }

    def eval_logits(self, out, space):
        if not space.seen:
            return None
        weight, bias = self.head.weight, self.head.bias
        if space.rows is not None:
            rows = torch.as_tensor(space.rows, device=weight.device)
            weight, bias = weight[rows], bias[rows]
        film_v = (self.film_v_scale, self.film_v_bias)
        if not self.config.test_time_fusion:
            return linear_head(film(out.image, *film_v), weight, bias)
        return dept_fused_logits(out.logits, out.image, film_v, weight, bias, self.config.weight)
