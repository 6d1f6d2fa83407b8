"""RESTORE — feature-shift consistency + FS-guided surgery (Yang et al., "RESTORE: Towards Feature Shift for
Vision-Language Prompt Learning", ECCV 2024), the ``restore`` add-on.

Needs deep prompts in both towers (``maple``, ``ivlp``, ``promptsrc``). Two formulations, ``formulation``:

**paper** (Sec. 3 of the paper, activation level; :mod:`vlprompt.addons.restore_paper`)
  * Feature shift of block l (Eq. 6): Ω_l = G_{l+1} − Φ_l(G_l), where G_{l+1} are the non-prompt outputs of
    block l run *with* its prompts and Φ_l(G_l) is the same frozen block run on the non-prompt input tokens
    *without* prompts (``backbone.strip_prompts`` + ``backbone.run_block``; :func:`block_shift`). A block
    counts when its input carries prompts: the adapter's tap count (deep prompts; the vision tower's
    input-level prompts at block 0) or, for text block 0, the learner's input-level context at positions
    1..M (:func:`text_prompt_count`).
  * ‖Ω_l‖ (open point, our choice; :func:`shift_norm`): the Frobenius norm of each sequence's Ω_l over
    tokens × channels, divided by √T (T = non-prompt tokens of that sequence: the per-token RMS, so the
    197-token image and the ~20-token class prompts are comparable and the text value does not depend on
    the adapter's causal truncation after the last EOT), averaged over the sequences — the B images for
    vision, the K class prompts (B·K for image-conditioned text) for text. ``omega_norm = sequence``
    drops the √T (the plain per-sequence Frobenius norm).
  * L_fs = Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² over the blocks present in both towers (Eqs. 7-9, :func:`fs_loss_paper`);
    term ``restore_fs`` = λ_fs · L_fs (λ_fs = ``fs_weight`` = 1). Gradients flow through both passes.
  * Surgery (Eq. 11, ``surgery``): S(x) = ReLU(LN(x) W_up) W_down (no biases; hidden size
    ``adapter_hidden``, 0 → E // 4, a bottleneck — the paper gives none) on the image and text features:
    x̃ ← α_v S_v(x̃) + x̃, w̃ ← α_t S_t(w̃) + w̃, with α_v = γ Σ_l ‖Ω_l^v‖ and α_t = β Σ_l ‖Ω_l^t‖ from the
    current forward (training and evaluation; :func:`surgery_alpha`). γ = ``gamma``, β = ``beta`` default
    to 0.1 — **not** from the paper (unstated there). α is detached: L_fs is the only objective acting on
    the shifts. W_down starts at zero (our choice), so the surgery starts as the identity whatever α is.
    ``fs_guided = false`` uses the fixed α = ``surgery_alpha`` (the "+Surgery" ablation).

**code** (the released ``MaPLe_FSA`` trainer, whose numbers the paper reports; :mod:`vlprompt.addons.restore_code`)
  * Parameter-level shift proxy on the learner's ``deep_prompt_pairs()`` (P_i, V_i), i = 1..J−1:
    s_i = ‖P_iᵀP_i‖_F / ‖P_i⁽⁰⁾ᵀP_i⁽⁰⁾‖_F (:func:`shift_ratio`; ‖PᵀP‖_F = ‖PPᵀ‖_F = sqrt(Σσ⁴)); the
    initial values are persistent buffers captured, detached, when the add-on is built (= the model's
    first forward when training; loaded from the weights otherwise).
  * L_fs = Σ_i (s_i^t − s_i^v)² (:func:`fs_loss_code`), weight ``fs_weight`` (1; the reference uses 0.5
    for DTD: ``--set restore.fs_weight=0.5``).
  * Feature Calibrators FC(x) = x + W₂ QuickGELU(W₁ LN(x) + b₁) + b₂ (E → 4E → E; 512 → 2048 in the
    reference), one for text, one for images; t′ = r_t FC_t(t) + (1 − r_t) t, f′ = r_v FC_v(f) + (1 − r_v) f
    (:func:`~vlprompt.addons.restore_code.calibrate`). r_t, r_v are non-trainable persistent buffers initialised from ``text_calib_r`` /
    ``vis_calib_r`` (0.1 / 0.1; per-dataset values of the released run script are dataset rules) and updated once, after the epoch with 0-based
    index ⌊E/3⌋: r_t += 0.02 S_t, r_v += 0.005 S_v, S = mean over deep layers of the un-normalised ‖PᵀP‖_F
    (:func:`updated_ratios`). ``calib_mode = fixed`` is RESTORE_p's t′ = 0.2 FC_t(t) + 0.9 t (recovered from the released bytecode).
"""

from __future__ import annotations

from typing import Optional

from vlprompt.addons.base import AddOn

FORMULATIONS = ("paper", "code")


class Restore(AddOn):
    """The registered ``restore`` add-on; :meth:`implementation` picks the formulation's class."""

    requires = frozenset({"deep_text", "deep_vision"})

    @classmethod
    def implementation(cls, config) -> type:
        if config.formulation == "code":
            from vlprompt.addons.restore_code import RestoreCode

            return RestoreCode
        from vlprompt.addons.restore_paper import RestorePaper

        return RestorePaper

    @classmethod
    def check_config(cls, config, provides) -> Optional[str]:
        if config.formulation not in FORMULATIONS:
            return f"unknown restore.formulation {config.formulation!r}: use paper or code"
        return None
