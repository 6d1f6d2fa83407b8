"""Nemesis: normalising the soft prompt vectors (Fu et al., "Nemesis: Normalizing the Soft-prompt Vectors of
Vision-Language Models", ICLR 2024), the ``nemesis`` add-on; ``coop+nemesis`` is the paper's method.

**Notation.** A prompt tensor C has the prompt *position* on axis −2: CoOp's generic context
C ∈ R^{M×D} (row c_j), CSC context C ∈ R^{K×M×D} (rows c_{k,j}). ‖·‖ is the per-vector norm of type
``norm_type`` ∈ {two (L2), one (L1), inf (L∞)} (:func:`position_norms`).

**Weighted-norm functional** (:func:`weighted_norm`), position weights a ∈ R^M::

    N(a) = Σ_{leading} Σ_j a_j ‖c_{…,j}‖ / max(1, #{j : a_j ≠ 0})

The numerator sums over every leading axis (CSC: Σ_k Σ_j, i.e. K times a per-class mean — reproduced as
written); the normaliser counts non-zero *position* weights only, never M·K.

**PUN** (position-uniform): a_j = A (``weight``) for all j, so L_PUN = A · mean_j ‖c_j‖ (generic).

**PAN** (position-aware), recomputed every step (:meth:`NemesisAddOn.pan_weights`):

1. sample S = ``num_positions`` (NP) distinct positions uniformly (torch RNG, seeded per epoch);
2. pre-inference under ``no_grad`` in the current (training) mode on the *same* batch: n_0 = number of
   correct top-1 predictions with C (the step's own logits), n_j = the number with C^{(j)}, whose row j
   (for every leading index) is multiplied by CW (``corruption_weight``, the RESCALE operation);
3. a_j = s if n_j > n_0 (strictly, on counts) else 0; a_j = 0 for j ∉ S (:func:`pan_weights`).
   s = ``pan_weight`` (default A; the reference hard-codes 50 for Food101/OxfordPets: a dataset rule here);
4. L_PAN = N(a). Variant NP = ``random<N>``: N sampled positions all get s, without pre-inference.

**Objective** (β = ``beta``): L = CE + ω(e) · (β · L_PUN + (1 − β) · L_PAN); gradients flow only through
the norms of the live prompt parameters (a_j are constants). ω (:func:`omega`): ``logistic``
ω(e) = 1 − 1/(1 + exp(−0.2 (e − E/2))), e the 0-based epoch, E the number of epochs; ``constant`` ω ≡ 1
(the reference's choice for Food101/OxfordPets: a dataset rule here, visible in ``vlprompt presets``).

**Defaults.** A bare ``coop+nemesis`` runs PUN with A = 1 and the L2 norm (the "PEN/PUN, ω = 1" setting of the
Nemesis README figures) on CoOp's few-shot preset; PAN (``beta`` < 1) needs ``num_positions`` and
``corruption_weight``, which the released scripts take as required arguments without published values.

**Generalisation beyond CoOp** (the extension the Nemesis README suggests): every tensor of
``learner.prompt_vectors()`` is treated like C — CoCoOp's shared ``ctx`` [M, D]; per-layer prompt tokens
[J, n, D] of vpt/ivlp/maple/promptsrc, where the layer axis J is a leading axis and is summed over in the
numerator like CSC's class axis. With several tensors (text and vision prompts) each gets its own positions
and weights and L_PUN / L_PAN are the sums of N(a) over the tensors; NP larger than a tensor's number of
positions is clamped to it.

Logged per epoch (:meth:`NemesisAddOn.epoch_metrics`, merged into ``metrics.jsonl``): ``v{j}_norm`` (‖c_j‖
of type NT at the epoch end, mean over leading axes), ``matrix_norm`` (Frobenius / induced-1 / induced-∞
per NT, mean over leading axes), ``alpha_{j}`` (a_j averaged over the epoch's steps: PAN's weights when
β < 1, else PUN's A) and ``omega``; names get a ``<tensor>_`` prefix when the learner has several tensors.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple, Union

import torch

from vlprompt.addons.base import AddOn
from vlprompt.addons.nemesis.config import NemesisConfig
from vlprompt.engine import distributed
from vlprompt.errors import VLPromptError

#: NT -> (per-vector norm order, matrix norm order)
NORM_ORDS = {"two": (2, "fro"), "one": (1, 1), "inf": (math.inf, math.inf)}
OMEGA_SCHEDULES = ("logistic", "constant")
RANDOM_PREFIX = "random"


def _norm_orders(norm_type: str):
    if norm_type not in NORM_ORDS:
        raise VLPromptError(f"unknown nemesis.norm_type {norm_type!r}: use two, one or inf")
    return NORM_ORDS[norm_type]


def position_norms(ctx: torch.Tensor, norm_type: str = "two") -> torch.Tensor:
    """‖c_{…,j}‖ for every vector of ``ctx`` ``[..., M, D]`` -> ``[..., M]`` (fp32)."""
    return torch.linalg.vector_norm(ctx.float(), ord=_norm_orders(norm_type)[0], dim=-1)


def weighted_norm(ctx: torch.Tensor, a: torch.Tensor, norm_type: str = "two") -> torch.Tensor:
    """N(a) = Σ_{leading} Σ_j a_j ‖c_{…,j}‖ / max(1, #{j : a_j ≠ 0}) for ``a`` ``[M]``."""
    a = a.to(device=ctx.device, dtype=torch.float32)
    return (position_norms(ctx, norm_type) * a).sum() / max(1, int(a.ne(0).sum()))


def matrix_norm(ctx: torch.Tensor, norm_type: str = "two") -> torch.Tensor:
    """The matrix norm of C matching NT (Frobenius, induced 1, induced ∞), mean over leading axes."""
    return torch.linalg.matrix_norm(ctx.float(), ord=_norm_orders(norm_type)[1]).mean()


def omega(epoch: int, num_epochs: int, schedule: str = "logistic") -> float:
    """ω(e) = 1 − 1/(1 + exp(−0.2 (e − E/2))) (``logistic``, e 0-based) or 1 (``constant``)."""
    if schedule == "constant":
        return 1.0
    if schedule != "logistic":
        raise VLPromptError(f"unknown nemesis.omega_schedule {schedule!r}: use logistic or constant")
    return 1.0 - 1.0 / (1.0 + math.exp(-0.2 * (epoch - num_epochs / 2)))


def parse_num_positions(value: Union[int, str, None]) -> Tuple[int, bool]:
    """NP = ``4`` -> (4, False); ``random4`` -> (4, True) (weight s without pre-inference)."""
    text = str(value).strip().lower() if value is not None else ""
    is_random = text.startswith(RANDOM_PREFIX)
    digits = text[len(RANDOM_PREFIX) :] if is_random else text
    if not digits.isdigit() or int(digits) < 1:
        raise VLPromptError(
            f"nemesis.num_positions={value!r}: PAN (nemesis.beta < 1) needs a positive int or random<N>, "
            "e.g. --set nemesis.num_positions=4"
        )
    return int(digits), is_random


def pan_weights(num_positions: int, s: float, n0: int, counts: Dict[int, int]) -> torch.Tensor:
    """a ∈ R^M: a_j = s where the corrupted prompt's correct count n_j is strictly above n_0, else 0."""
    a = torch.zeros(num_positions)
    for j, n_j in counts.items():
        if n_j > n0:
            a[j] = s
    return a


def rescale_position(ctx: torch.Tensor, j: int, factor: float) -> torch.Tensor:
    """A detached copy of ``ctx`` with row j (for every leading index) multiplied by ``factor``."""
    out = ctx.detach().clone()
    out[..., j, :] *= factor
    return out


class NemesisAddOn(AddOn):
    requires = frozenset({"prompt_vectors"})

    def __init__(self, task, config: NemesisConfig):
        super().__init__(task, config)
        if float(config.beta) < 1:  # PAN samples NP of each prompt tensor's M positions
            n, _ = parse_num_positions(config.num_positions)
            for name, ctx in self.learner.prompt_vectors().items():
                if n > ctx.shape[-2]:
                    raise VLPromptError(
                        f"nemesis.num_positions={config.num_positions} is above the {ctx.shape[-2]} positions of "
                        f"prompt tensor {name} (e.g. --set nemesis.num_positions={ctx.shape[-2]})"
                    )
        self._alpha_sums: Dict[str, torch.Tensor] = {}
        self._steps = 0
        self._omega: Optional[float] = None

    # ------------------------------------------------------------------ configuration
    @classmethod
    def check_config(cls, config, provides) -> Optional[str]:
        if config.weight is None:
            return "nemesis.weight is required (the paper's ω: 1, 10 or 20): --set nemesis.weight=10"
        _norm_orders(config.norm_type)
        omega(0, 1, config.omega_schedule)
        if config.beta < 1:
            _, is_random = parse_num_positions(config.num_positions)
            if not is_random:
                if config.corruption_weight is None:
                    return (
                        "nemesis.corruption_weight (CW) is required for PAN (nemesis.beta < 1): "
                        "--set nemesis.corruption_weight=0.5"
                    )
                if "class_token_end" not in provides:
                    return (
                        "PAN's pre-inference is defined only for class_token_position end: "
                        "use nemesis.beta=1 (PUN) or nemesis.num_positions=random<N>"
                    )
        return None

    @property
    def pan_scale(self) -> float:
        cfg = self.config
        return float(cfg.weight if cfg.pan_weight is None else cfg.pan_weight)

    # ------------------------------------------------------------------ PAN pre-inference
    @torch.no_grad()
    def count_correct(self, overrides: Dict[str, torch.Tensor], out, labels: torch.Tensor) -> int:
        """Correct top-1 predictions on the step's batch with some prompt tensors replaced (over the whole global
        batch when it is split between processes)."""
        with self.learner.override(overrides):
            if out.images is not None:
                logits = self.task.forward(images=out.images).logits
            else:
                logits = self.task.forward(image_features=out.image_raw).logits
        return distributed.sum_across(int(logits.argmax(-1).eq(labels).sum()))

    def pan_weights(self, vectors: Dict[str, torch.Tensor], out, labels) -> Dict[str, torch.Tensor]:
        """PAN's a per tensor: pre-inference on sampled positions (or ``random<N>``: all sampled get s)."""
        n, is_random = parse_num_positions(self.config.num_positions)
        s = self.pan_scale
        n0 = None if is_random else distributed.sum_across(int(out.logits.detach().argmax(-1).eq(labels).sum()))
        weights = {}
        for name, ctx in vectors.items():
            m = ctx.shape[-2]
            chosen = torch.randperm(m)[: min(n, m)].tolist()
            if is_random:
                weights[name] = torch.zeros(m).index_fill_(0, torch.tensor(chosen, dtype=torch.long), s)
                continue
            cw = float(self.config.corruption_weight)
            counts = {j: self.count_correct({name: rescale_position(ctx, j, cw)}, out, labels) for j in chosen}
            weights[name] = pan_weights(m, s, n0, counts)
        return weights

    # ------------------------------------------------------------------ loss
    def losses(self, out, labels, step):
        cfg = self.config
        vectors = self.learner.prompt_vectors()
        nt, beta = cfg.norm_type, float(cfg.beta)
        w = omega(step.epoch, step.num_epochs, cfg.omega_schedule)
        total = 0.0
        alphas = {name: torch.full((v.shape[-2],), float(cfg.weight)) for name, v in vectors.items()}
        if beta > 0:
            total = total + beta * sum(weighted_norm(v, alphas[name], nt) for name, v in vectors.items())
        if beta < 1:
            alphas = self.pan_weights(vectors, out, labels)
            total = total + (1 - beta) * sum(weighted_norm(v, alphas[name], nt) for name, v in vectors.items())
        self._record(alphas, w)
        return {"nemesis": w * total}

    # ------------------------------------------------------------------ logging
    def _record(self, alphas: Dict[str, torch.Tensor], w: float) -> None:
        for name, a in alphas.items():
            self._alpha_sums[name] = self._alpha_sums.get(name, 0) + a
        self._steps += 1
        self._omega = w

    def epoch_metrics(self) -> Dict[str, float]:
        """Per-position norms at the epoch end, epoch-mean position weights, matrix norm and ω."""
        if not self._steps:
            return {}
        vectors = self.learner.prompt_vectors()
        record: Dict[str, float] = {}
        for name, ctx in vectors.items():
            prefix = f"{name}_" if len(vectors) > 1 else ""
            norms = position_norms(ctx.detach(), self.config.norm_type).reshape(-1, ctx.shape[-2]).mean(0)
            record.update({f"{prefix}v{j}_norm": float(v) for j, v in enumerate(norms)})
            record[f"{prefix}matrix_norm"] = float(matrix_norm(ctx.detach(), self.config.norm_type))
            alpha = self._alpha_sums.get(name)
            if alpha is not None:
                record.update({f"{prefix}alpha_{j}": float(v) / self._steps for j, v in enumerate(alpha)})
        record["omega"] = float(self._omega)
        self._alpha_sums, self._steps = {}, 0
        return record
