"""RESTORE, paper formulation (Yang et al., ECCV 2024, Sec. 3.2-3.3): activation-level feature shift Ω (Eq. 6),
the feature-shift consistency loss (Eqs. 7-10) and the FS-guided surgery block (Eq. 11). See
:mod:`vlprompt.addons.restore.model` for the formulas and the choices the paper leaves open.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from vlprompt.addons.restore.model import Restore


def block_shift(backbone, tower: str, block, x_in: torch.Tensor, x_out: torch.Tensor, n: int) -> torch.Tensor:
    """Ω_l = strip(block(x_in)) − block(strip(x_in)) ``[N, T, D]``: non-prompt outputs with prompts minus the
    frozen block applied to the non-prompt input tokens alone."""
    reference = backbone.run_block(tower, block, backbone.strip_prompts(tower, x_in, n))
    return backbone.strip_prompts(tower, x_out, n) - reference


def sequence_norms(omega: torch.Tensor, per_token: bool = True) -> torch.Tensor:
    """‖Ω^{(s)}‖_F over tokens × channels for each sequence s ``[N]``, divided by √T when ``per_token``."""
    norms = omega.float().flatten(1).norm(dim=1)
    return norms / omega.shape[1] ** 0.5 if per_token else norms


def shift_norm(omega: torch.Tensor, per_token: bool = True) -> torch.Tensor:
    """‖Ω_l‖: the mean over sequences of :func:`sequence_norms`."""
    return sequence_norms(omega, per_token).mean()


def tower_shifts(
    backbone, tower: str, taps: Sequence[tuple], per_token: bool = True, input_prompts: int = 0
) -> Dict[int, torch.Tensor]:
    """{layer: ‖Ω_l‖} for the tapped blocks of ``tower`` whose input carries prompts; ``input_prompts`` is
    the count for block inputs whose prompts the adapter does not report (text: the input-level context)."""
    shifts = {}
    for layer, block, x_in, x_out, n in taps:
        n = n or input_prompts
        if n > 0:
            shifts[layer] = shift_norm(block_shift(backbone, tower, block, x_in, x_out, n), per_token)
    return shifts


def fs_loss_paper(norms_v: Dict[int, torch.Tensor], norms_t: Dict[int, torch.Tensor]) -> torch.Tensor:
    """L_fs = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² over the layers present in both towers (Eqs. 7-9)."""
    common = sorted(set(norms_v) & set(norms_t))
    if not common:
        return torch.zeros(())
    return sum((norms_v[layer] - norms_t[layer]) ** 2 for layer in common)


def surgery_alpha(norms: Dict[int, torch.Tensor], coefficient: float) -> torch.Tensor:
    """α = coefficient · Σ_l ‖Ω_l‖, detached (γ for vision, β for text; Eq. 11)."""
    total = sum(norms.values()) if norms else torch.zeros(())
    return coefficient * torch.as_tensor(total).detach()


class Surgery(nn.Module):
    """S(x) = ReLU(LN(x) · W_up) · W_down (Eq. 11); W_down starts at zero."""

    def __init__(self, dim: int, hidden: int, device=None):
        super().__init__()
        self.norm = nn.LayerNorm(dim, device=device)
        self.up = nn.Linear(dim, hidden, bias=False, device=device)
        self.down = nn.Linear(hidden, dim, bias=False, device=device)
        nn.init.zeros_(self.down.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.to(self.up.weight.dtype)
        return self.down(torch.relu(self.up(self.norm(y)))).to(x.dtype)


class RestorePaper(Restore):
    """``restore.formulation=paper``."""

    @classmethod
    def tap_towers(cls, config):
        return frozenset({"text", "vision"})

    @classmethod
    def check_config(cls, config, provides) -> Optional[str]:
        if config.omega_norm not in ("token", "sequence"):
            return f"unknown restore.omega_norm {config.omega_norm!r}: use token or sequence"
        return super().check_config(config, provides)

    def __init__(self, task, config):
        super().__init__(task, config)
        dim, device = self.backbone.embed_dim, self.backbone.device
        self.shifts: Tuple[Dict[int, torch.Tensor], Dict[int, torch.Tensor]] = ({}, {})
        if config.surgery:
            hidden = config.adapter_hidden or max(1, dim // 4)
            self.surgery_v = Surgery(dim, hidden, device)
            self.surgery_t = Surgery(dim, hidden, device)

    def _need_shifts(self) -> bool:
        cfg = self.config
        return (self.training and cfg.fs_weight > 0) or (cfg.surgery and cfg.fs_guided)

    def adapt(self, out) -> None:
        cfg = self.config
        per_token = cfg.omega_norm == "token"
        self.shifts = ({}, {})
        if self._need_shifts():
            self.shifts = (
                tower_shifts(self.backbone, "vision", out.taps.get("vision", []), per_token),
                tower_shifts(
                    self.backbone, "text", out.taps.get("text", []), per_token, self.learner.input_text_prompts()
                ),
            )
        if cfg.surgery:
            if cfg.fs_guided:
                a_v, a_t = surgery_alpha(self.shifts[0], cfg.gamma), surgery_alpha(self.shifts[1], cfg.beta)
            else:
                a_v = a_t = torch.tensor(cfg.surgery_alpha)
            out.image = a_v.to(out.image) * self.surgery_v(out.image) + out.image
            out.text = a_t.to(out.text) * self.surgery_t(out.text) + out.text

    def losses(self, out, labels, step):
        if self.config.fs_weight == 0:
            return {}
        return {"restore_fs": self.config.fs_weight * fs_loss_paper(*self.shifts).to(out.logits.device)}

    def step_report(self) -> Dict[str, float]:
        """Σ_l ‖Ω_l‖ of both towers in the last forward."""
        return {
            f"restore_shift_{t}": float(sum(v.detach() for v in s.values())) for t, s in zip("vt", self.shifts) if s
        }
