"""Backbone families: what kind of towers an open_clip model config builds, read from the config alone (torch-free,
so ``vlprompt list`` and the README table need no model library). The tower adapters
(:mod:`vlprompt.backbones.towers`) decide what actually runs; a family only names the combination.

===============  ======================================================  =========================================
family           image tower / text tower                                what runs
===============  ======================================================  =========================================
``clip``         open_clip ViT / causal CLIP text transformer            every method
``clip-resnet``  CLIP ModifiedResNet / causal text                       text-side methods (no vision prompts)
``eva``          timm Eva (EVA02: rotary embeddings) / causal text       every method but LoRA (timm blocks)
``timm-vit``     other timm ViTs / causal text                           every method but LoRA (timm blocks)
``siglip``       timm ViT with attention-pool head / bidirectional       every method but LoRA; full-sequence
                 text pooling the last position; logit bias              text path (no shared prefix)
``bidirectional``open_clip ViT / bidirectional text                      as ``siglip``, open_clip ViT blocks
``timm-cnn``     timm ConvNeXt / FastViT / Swin / ViTamin trunks         text-side methods (no vision prompts)
``hf-text``      a Hugging Face text model as text tower                 refused (no prompt-ready text tower)
``coca``         CoCa (multimodal decoder)                               refused
===============  ======================================================  =========================================
"""

from __future__ import annotations

from typing import Dict

#: family -> one-line description (``vlprompt list backbones``, README)
FAMILIES = {
    "clip": "open_clip ViT + causal CLIP text",
    "clip-resnet": "CLIP ModifiedResNet + causal text (no vision prompts)",
    "eva": "timm Eva ViT (EVA02: RoPE) + causal text",
    "timm-vit": "timm ViT + causal text",
    "siglip": "timm ViT, attention-pool head + bidirectional text, logit bias",
    "bidirectional": "open_clip ViT + bidirectional text",
    "timm-cnn": "timm CNN/hybrid trunk + causal text (no vision prompts)",
    "hf-text": "Hugging Face text model (not supported)",
    "coca": "CoCa (not supported)",
}
#: timm model-name prefixes of the ViT trunks the timm adapter places prompts in
TIMM_VIT_PREFIXES = ("vit_", "deit", "eva")
#: of those, the hybrid ones whose stem is a CNN
TIMM_HYBRID_PREFIXES = ("vitamin", "vit_base_mci", "vit_base_r", "vit_small_r", "vit_large_r")


def family(config: Dict) -> str:
    """The family of an open_clip model config (table above)."""
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    if config.get("multimodal_cfg"):
        return "coca"
    if text.get("hf_model_name"):
        return "hf-text"
    bidirectional = bool(text.get("no_causal_mask"))
    timm_name = vision.get("timm_model_name") or ""
    if timm_name:
        if timm_name.startswith(TIMM_HYBRID_PREFIXES) or not timm_name.startswith(TIMM_VIT_PREFIXES):
            return "timm-cnn"
        if bidirectional:
            return "siglip"
        return "eva" if timm_name.startswith("eva") else "timm-vit"
    if isinstance(vision.get("layers"), (list, tuple)):
        return "clip-resnet"
    return "bidirectional" if bidirectional else "clip"
