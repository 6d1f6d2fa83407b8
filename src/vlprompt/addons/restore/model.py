"""RESTORE — feature-shift consistency + FS-guided surgery (Yang et al., "RESTORE: Towards Feature Shift for
Vision-Language Prompt Learning", ECCV 2024), the ``restore`` add-on.

Needs deep prompts in both towers (``maple``, ``ivlp``, ``promptsrc``). Two formulations, ``formulation``;
the default is the released code's, the one behind the released numbers.

**code** (default; the released ``MaPLe_FSA`` trainer and RESTORE_p; :mod:`vlprompt.addons.restore.code_formulation`)
  * Parameter-level shift proxy on the learner's ``deep_prompt_pairs()`` (P_i, V_i), i = 1..J−1:
    s_i = ‖P_iᵀP_i‖_F / ‖P_i⁽⁰⁾ᵀP_i⁽⁰⁾‖_F (:func:`~vlprompt.addons.restore.code_formulation.shift_ratio`;
    ‖PᵀP‖_F = ‖PPᵀ‖_F = sqrt(Σσ⁴)); the initial values are persistent buffers captured, detached, when the
    add-on is built (= the model's first forward when training; re-captured from the loaded prompts after
    ``--init-from``; loaded from the weights otherwise).
  * L_fs = Σ_i (s_i^t − s_i^v)² (:func:`~vlprompt.addons.restore.code_formulation.fs_loss_code`), term ``restore_fs`` =
    ``fs_weight`` · L_fs (1; the MaPLe_FSA run script uses 0.5 for DTD, a dataset rule).
  * Feature Calibrators, one for text and one for images (E → 4E → E; 512 → 2048 in the reference), mixed
    into the prompted features that give the logits. Two released variants, ``variant``:

    - ``maple`` (RESTORE_m, ``MaPLe_FSA``): FC(x) = x + W₂ QuickGELU(W₁ LN(x) + b₁) + b₂;
      t′ = r_t FC_t(t) + (1 − r_t) t, f′ = r_v FC_v(f) + (1 − r_v) f
      (:func:`~vlprompt.addons.restore.code_formulation.calibrate`). r_t, r_v are non-trainable persistent buffers
      initialised from ``text_calib_r`` / ``vis_calib_r`` (0.1 / 0.1; the run script's per-dataset values
      are dataset rules) and updated once, after the epoch with 0-based index ⌊E/3⌋: r_t += 0.02 S_t,
      r_v += 0.005 S_v, S = mean over deep layers of the un-normalised ‖PᵀP‖_F
      (:func:`~vlprompt.addons.restore.code_formulation.updated_ratios`).
    - ``promptsrc`` (RESTORE_p, recovered from the released ``promptsrcv2`` bytecode; no source or config was
      released): the calibrator's feed-forward ends with a second QuickGELU,
      FC(x) = x + QuickGELU(W₂ QuickGELU(W₁ LN(x) + b₁) + b₂), and the mix is fixed,
      t′ = 0.2 FC_t(t) + 0.9 t, f′ = 0.2 FC_v(f) + 0.9 f (the two coefficients do not sum to 1); no ratio
      buffers, no update.

    ``variant = auto`` (default) resolves from the composition when the add-on is built: ``promptsrc`` when it
    holds PromptSRC's ``src`` add-on (``promptsrc+restore`` = ``ivlp+src+gpa+restore``), ``maple`` otherwise
    (``maple+restore``, ``ivlp+restore``). We chose a variant resolved from the composition over a preset
    because the two variants differ in *structure* (the calibrator's layers), which a value in a preset
    should not switch silently, and because the composition alone determines which released model a run
    reproduces; an explicit ``--set restore.variant=maple|promptsrc`` still selects either on any learner.

**paper** (Sec. 3 of the paper, activation level; :mod:`vlprompt.addons.restore.paper_formulation`; not what the released
code runs: ``--set restore.formulation=paper``)
  * Feature shift of block l (Eq. 6): Ω_l = G_{l+1} − Φ_l(G_l), where G_{l+1} are the non-prompt outputs of
    block l run *with* its prompts and Φ_l(G_l) is the same frozen block run on the non-prompt input tokens
    *without* prompts (``backbone.strip_prompts`` + ``backbone.run_block``). A block counts when its input
    carries prompts: the adapter's tap count (deep prompts; the vision tower's input-level prompts at block 0)
    or, for text block 0, the learner's input-level context at positions 1..M.
  * L_fs = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² over the blocks present in both towers (Eqs. 7-9); term ``restore_fs`` =
    λ_fs · L_fs (λ_fs = ``fs_weight`` = 1, as in the paper). Gradients flow through both passes.
  * Surgery (Eq. 11, ``surgery``): S(x) = ReLU(LN(x) W_up) W_down (no biases) on the image and text features:
    x̃ ← α_v S_v(x̃) + x̃, w̃ ← α_t S_t(w̃) + w̃, with α_v = γ Σ_l ‖Ω_l^v‖ and α_t = β Σ_l ‖Ω_l^t‖ from the
    current forward (training and evaluation). ``fs_guided = false`` uses a fixed α (the "+Surgery" ablation).

  The paper leaves these values open; **ours, not the paper's**:

  * ``omega_norm`` — how ‖Ω_l‖ is taken. ``token`` (default): the Frobenius norm of each sequence's Ω_l over
    tokens × channels divided by √T (T = non-prompt tokens of that sequence: the per-token RMS, so the
    197-token image and the ~20-token class prompts are comparable and the text value does not depend on
    the adapter's causal truncation after the last EOT), averaged over the sequences — the B images for
    vision, the K class prompts (B·K for image-conditioned text) for text. ``sequence`` drops the √T.
  * ``gamma`` = γ and ``beta`` = β (0.1 each), ``surgery_alpha`` (the fixed α of ``fs_guided = false``, 0.1);
  * ``adapter_hidden`` — the surgery's bottleneck width (0 → E // 4);
  * α is detached (L_fs is the only objective acting on the shifts), and W_down starts at zero, so the
    surgery starts as the identity whatever α is.

**In a composition** add-ons transform the features in method order (``adapt``), and every add-on's loss terms
are computed afterwards, from the features that give the logits. So in ``promptsrc+restore`` PromptSRC's
self-regulating losses compare the *calibrated* prompted features with the frozen teachers, as RESTORE_p does,
whatever the order of ``src`` and ``restore`` in the method string; the teachers (the prompt-free image tower and
the template-averaged text features) come from the frozen backbone and never pass through a calibrator. Only
the relative order of add-ons that both transform features would matter.
"""

from __future__ import annotations

from typing import Optional

from vlprompt.addons.base import AddOn
from vlprompt.addons.restore.config import RestoreConfig
from vlprompt.capabilities import Capability
from vlprompt.registry import load_object

FORMULATIONS = ("code", "paper")
#: the class of each formulation, named as the registries name implementations (``module:Class``, imported when
#: a model is built): the formulations subclass :class:`Restore`, so this module does not import them
IMPLEMENTATIONS = {
    "code": "vlprompt.addons.restore.code_formulation:RestoreCode",
    "paper": "vlprompt.addons.restore.paper_formulation:RestorePaper",
}
VARIANTS = ("auto", "maple", "promptsrc")


def resolve_variant(config: RestoreConfig, composition) -> str:
    """The code formulation's variant: ``config.variant``, or for ``auto`` ``promptsrc`` (RESTORE_p) when the
    composition holds PromptSRC's ``src`` add-on and ``maple`` (RESTORE_m) otherwise."""
    if config.variant != "auto":
        return config.variant
    return "promptsrc" if "src" in composition.addons else "maple"


class Restore(AddOn):
    """The registered ``restore`` add-on; :meth:`implementation` picks the formulation's class."""

    requires = frozenset({Capability.DEEP_TEXT, Capability.DEEP_VISION})

    @classmethod
    def implementation(cls, config) -> type:
        return load_object(IMPLEMENTATIONS["paper" if config.formulation == "paper" else "code"])

    @classmethod
    def check_config(cls, config, provides) -> Optional[str]:
        if config.formulation not in FORMULATIONS:
            return f"unknown restore.formulation {config.formulation!r}: use code or paper"
        return None
