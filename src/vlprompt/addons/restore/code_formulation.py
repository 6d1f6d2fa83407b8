"""RESTORE, released-code formulation (the ``MaPLe_FSA`` trainer of the RESTORE repository = RESTORE_m, and
RESTORE_p on PromptSRC recovered from its released bytecode): a parameter-level shift proxy on the deep prompt
pairs, its consistency loss, and residual QuickGELU feature calibrators — mixed with ratios updated once during
training (``maple``), or with fixed coefficients and a second QuickGELU (``promptsrc``). See
:mod:`vlprompt.addons.restore.model` for the formulas and how the variant is chosen.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from vlprompt.addons.restore.model import VARIANTS, Restore, resolve_variant
from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

#: RESTORE_p's fixed calibration coefficients (FC, identity)
FIXED_CALIBRATION = (0.2, 0.9)
#: ratio increments per unit of mean ‖PᵀP‖_F (text, vision)
RATIO_STEPS = (0.02, 0.005)


def gram_norm(p: torch.Tensor) -> torch.Tensor:
    """‖PᵀP‖_F computed as ‖PPᵀ‖_F (equal: both are sqrt(Σσ⁴)); fp32."""
    p = p.float()
    return (p @ p.t()).norm()


def shift_ratio(p: torch.Tensor, p0_gram: torch.Tensor) -> torch.Tensor:
    """s = ‖PᵀP‖_F / ‖P⁽⁰⁾ᵀP⁽⁰⁾‖_F, with the initial value ``p0_gram`` = ‖P⁽⁰⁾ᵀP⁽⁰⁾‖_F."""
    return gram_norm(p) / p0_gram


def initial_grams(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``addons.restore.init_gram_{t,v}``: ‖P_iᵀP_i‖_F and ‖V_iᵀV_i‖_F (V_i = F_i(P_i)) per deep layer.

    MaPLe_FSA does not save them: it captures them, detached, at its model's first forward, which after
    loading a checkpoint (``load_model`` or ``INIT_WEIGHTS``) sees the loaded prompts. They are derived the
    same way here, from the converted prompts and couplings (``vlprompt convert``: the MaPLe_FSA trainer's
    ``derive``, :mod:`vlprompt.addons.restore.config`).
    """
    deep = tensors.get("learner.text_deep", torch.zeros(0, 0, 0))
    grams_t, grams_v = [], []
    for i, p in enumerate(deep.unbind(0)):
        names = (f"learner.couplings.{i}.weight", f"learner.couplings.{i}.bias")
        if any(n not in tensors for n in names):
            raise VLPromptError(
                f"maple+restore: deep text prompt {i} has no coupling "
                f"(prompt_learner.compound_prompt_projections.{i}.*); is the checkpoint complete?"
            )
        v = p.float() @ tensors[names[0]].float().t() + tensors[names[1]].float()
        grams_t.append(gram_norm(p))
        grams_v.append(gram_norm(v))
    stack = lambda grams: torch.stack(grams) if grams else torch.zeros(0)
    return {"addons.restore.init_gram_t": stack(grams_t), "addons.restore.init_gram_v": stack(grams_v)}


def fs_loss_code(ratios_t: torch.Tensor, ratios_v: torch.Tensor) -> torch.Tensor:
    """L_fs = Σ_i (s_i^t − s_i^v)²."""
    return ((ratios_t - ratios_v) ** 2).sum()


def updated_ratios(r_t: float, r_v: float, grams_t: Sequence[float], grams_v: Sequence[float]) -> Tuple[float, float]:
    """r_t + 0.02 · mean_i ‖P_iᵀP_i‖_F and r_v + 0.005 · mean_i ‖V_iᵀV_i‖_F (the once-only update)."""
    return (r_t + RATIO_STEPS[0] * sum(grams_t) / len(grams_t), r_v + RATIO_STEPS[1] * sum(grams_v) / len(grams_v))


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class FeatureCalibrator(nn.Module):
    """FC(x) = x + W₂ · QuickGELU(W₁ · LN(x) + b₁) + b₂ (E → 4E → E, default init; RESTORE_m), or with
    ``out_act`` FC(x) = x + QuickGELU(W₂ · QuickGELU(W₁ · LN(x) + b₁) + b₂) (RESTORE_p). Computed in the
    calibrator's dtype (a plain LayerNorm: fp16 under ``--precision fp16``, as in the reference)."""

    def __init__(self, dim: int, device=None, out_act: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(dim, device=device)
        self.fc1 = nn.Linear(dim, 4 * dim, device=device)
        self.act = QuickGELU()
        self.fc2 = nn.Linear(4 * dim, dim, device=device)
        self.act_out = QuickGELU() if out_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.to(self.fc1.weight.dtype)
        return (y + self.act_out(self.fc2(self.act(self.fc1(self.norm(y)))))).to(x.dtype)


def calibrate(x: torch.Tensor, fc: nn.Module, ratio, mode: str = "ratio") -> torch.Tensor:
    """x′ = r · FC(x) + (1 − r) · x (``ratio``) or 0.2 · FC(x) + 0.9 · x (``fixed``, RESTORE_p)."""
    a, b = FIXED_CALIBRATION if mode == "fixed" else (ratio, 1 - ratio)
    return a * fc(x) + b * x


class RestoreCode(Restore):
    """``restore.formulation=code``; ``variant`` is the resolved ``maple`` (RESTORE_m) or ``promptsrc`` (RESTORE_p)."""

    @classmethod
    def requirements(cls, config):
        return super().requirements(config) | {Capability.PROMPT_PAIRS}

    @classmethod
    def check_config(cls, config, provides) -> Optional[str]:
        if config.variant not in VARIANTS:
            return f"unknown restore.variant {config.variant!r}: use {', '.join(VARIANTS)}"
        return super().check_config(config, provides)

    def __init__(self, task, config):
        super().__init__(task, config)
        dim, device = self.backbone.embed_dim, self.backbone.device
        self.variant = resolve_variant(config, task.composition)
        fixed = self.variant == "promptsrc"
        self.calibrator_t = FeatureCalibrator(dim, device, out_act=fixed)
        self.calibrator_v = FeatureCalibrator(dim, device, out_act=fixed)
        grams = self._grams()
        self.register_buffer("init_gram_t", torch.tensor(grams[0], device=device))
        self.register_buffer("init_gram_v", torch.tensor(grams[1], device=device))
        if not fixed:
            self.register_buffer("text_ratio", torch.tensor(float(config.text_calib_r), device=device))
            self.register_buffer("vis_ratio", torch.tensor(float(config.vis_calib_r), device=device))

    def _grams(self) -> Tuple[List[float], List[float]]:
        """Current ‖P_iᵀP_i‖_F and ‖V_iᵀV_i‖_F per deep layer (detached floats)."""
        pairs = self.learner.deep_prompt_pairs()
        with torch.no_grad():
            return [float(gram_norm(p)) for p, _ in pairs], [float(gram_norm(v)) for _, v in pairs]

    def shift_ratios(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(s^t, s^v) per deep layer, differentiable w.r.t. the prompts."""
        pairs = self.learner.deep_prompt_pairs()
        s_t = torch.stack([shift_ratio(p, g0) for (p, _), g0 in zip(pairs, self.init_gram_t)])
        s_v = torch.stack([shift_ratio(v, g0) for (_, v), g0 in zip(pairs, self.init_gram_v)])
        return s_t, s_v

    def adapt(self, out) -> None:
        if self.variant == "promptsrc":
            out.text = calibrate(out.text, self.calibrator_t, None, "fixed")
            out.image = calibrate(out.image, self.calibrator_v, None, "fixed")
            return
        out.text = calibrate(out.text, self.calibrator_t, self.text_ratio.to(out.text.dtype))
        out.image = calibrate(out.image, self.calibrator_v, self.vis_ratio.to(out.image.dtype))

    def losses(self, out, labels, step):
        if self.config.fs_weight == 0:
            return {}
        return {"restore_fs": self.config.fs_weight * fs_loss_code(*self.shift_ratios()).to(out.logits.device)}

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        if self.variant != "maple" or epoch != num_epochs // 3:
            return
        r_t, r_v = updated_ratios(float(self.text_ratio), float(self.vis_ratio), *self._grams())
        self.text_ratio.fill_(r_t)
        self.vis_ratio.fill_(r_v)

    def epoch_metrics(self) -> Dict[str, float]:
        if self.variant != "maple":
            return {}
        return {"restore_r_t": float(self.text_ratio), "restore_r_v": float(self.vis_ratio)}

    def on_initial_values(self) -> None:
        """The initial Gram norms are those of the loaded prompts (MaPLe_FSA captures them at its first forward)."""
        grams = self._grams()
        self.init_gram_t.copy_(torch.tensor(grams[0]))
        self.init_gram_v.copy_(torch.tensor(grams[1]))
