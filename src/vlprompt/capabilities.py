"""Capabilities: what a prompt learner provides and what a backbone's towers offer, as one declared enumeration.

Learners declare theirs with ``PromptLearner.capabilities(config, backbone)`` (known before anything is built);
add-ons declare what they require, and a composition lacking something fails before training with a one-line
reason (:func:`vlprompt.task.composition.check_composition`). Tower adapters declare theirs
(:mod:`vlprompt.backbones.towers`). The members are ``str`` values, so the string forms (``"shared_text"``, ...)
compare equal and read well in messages. Torch-free.
"""

from __future__ import annotations

from enum import Enum


class Capability(str, Enum):
    # ---------------------------------------------------------------- learners
    SHARED_TEXT = "shared_text"
    """One text feature per class (``[K, E]``), not per image."""
    TRAINED_TEXT = "trained_text"
    """The class text features depend on trained parameters (text prompts, a text adapter, low-rank text updates),
    so a loss on them trains something (KgCoOp's consistency)."""
    PER_INSTANCE_TEXT = "per_instance_text"
    """Image-conditioned text features ``[B, K, E]`` (CoCoOp)."""
    PROMPT_VECTORS = "prompt_vectors"
    """Named prompt tensors whose second-to-last axis is the prompt position (``prompt_vectors()``)."""
    CLASS_TOKEN_END = "class_token_end"
    """Every class prompt ends with the class name (``[SOS][ctx][name][.][EOT]``)."""
    IMAGE_PROMPTS = "image_prompts"
    """The image tower carries prompts (so image features cannot be cached)."""
    DEEP_TEXT = "deep_text"
    """Per-layer prompts in the text tower."""
    DEEP_VISION = "deep_vision"
    """Per-layer prompts in the vision tower."""
    PROMPT_PAIRS = "prompt_pairs"
    """Layer-aligned deep prompts in both towers (``deep_prompt_pairs()``)."""
    # ---------------------------------------------------------------- towers
    VISION_PROMPTS = "vision_prompts"
    """The image tower accepts appended and per-layer (deep) prompt tokens."""
    LAYER_TAPS = "layer_taps"
    """The tower reports every block's input and output to a hook (RESTORE's feature shift)."""
    CAUSAL_TEXT = "causal_text"
    """The text tower attends causally, so sequences can be cut after the last EOT (causal truncation)."""
    SHARED_PREFIX = "shared_prefix"
    """Prompts that share their first positions can encode them once (``encode_text_shared``)."""
    BLOCK_WRAPPERS = "block_wrappers"
    """The tower's blocks run through the block runner, so learners may wrap them (LoRA, adapters)."""

    def __str__(self) -> str:
        return self.value

    #: hash as the plain string, so ``"shared_text" in {Capability.SHARED_TEXT}`` holds (Enum hashes the name)
    __hash__ = str.__hash__


def names(capabilities) -> str:
    """``"a, b"``: sorted capability values for one-line messages (``"nothing"`` when empty)."""
    return ", ".join(sorted(str(c) for c in capabilities)) or "nothing"
