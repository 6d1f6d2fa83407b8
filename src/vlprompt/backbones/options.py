"""Per-call encoder settings: :class:`EncodeOptions` travels with each encode call (or is bound to one task's view
of the backbone by ``PromptableCLIP.with_options``) instead of being written onto the shared backbone. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncodeOptions:
    """How the towers encode (every setting exact up to float rounding unless said otherwise).

    * ``shared_prefix``: class prompts use the shared-prefix text path where it applies; False always runs full
      sequences (for debugging; results agree up to float rounding);
    * ``text_chunk``: most sequences (suffixes) per text-tower pass, 0 = automatic (``AUTO_CHUNK_BUDGET``);
    * ``causal_truncation``: full-sequence text passes stop after the batch's last EOT; False runs all
      ``context_length`` positions and no shared prefix — the references' text pass, for speed comparisons;
    * ``fp16_prompts``: every prompt token inserted into a tower (appended vision prompts, deep text and vision
      prompts; not the text input context) is rounded to fp16 per sequence, as the reference code's ``.half()``
      at insertion does even in its fp32 and amp modes (MaPLe repository ``clip/model.py``). Deep text prompts
      then take the full-sequence path.
    """

    shared_prefix: bool = True
    text_chunk: int = 0
    causal_truncation: bool = True
    fp16_prompts: bool = False

    @classmethod
    def from_train(cls, train) -> "EncodeOptions":
        """The options of a run's ``train`` config section (the same-named settings)."""
        return cls(
            shared_prefix=train.shared_prefix,
            text_chunk=train.text_chunk,
            causal_truncation=train.causal_truncation,
            fp16_prompts=train.fp16_prompts,
        )
