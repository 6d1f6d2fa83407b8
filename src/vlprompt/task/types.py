"""Values that flow through a :class:`~vlprompt.task.PromptTask`: the label space, a forward pass's output, where
training is, and what one training step returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

if TYPE_CHECKING:  # torch is needed only by the values that hold tensors
    import torch


@dataclass
class LabelSpace:
    """The classes a model is asked to tell apart, with the dataset's hand-crafted prompts.

    ``seen`` is True when these are the classes the model was trained on (DePT's head applies only then);
    ``rows`` maps each class to its row in the training label space when the classes are a subset of it
    (ImageNet-A/-R against a 1000-class head), else None.
    """

    classnames: List[str]
    template: str = "a photo of a {}."
    kgcoop_template: Optional[str] = None
    ensemble_templates: Optional[List[str]] = None
    seen: bool = True
    rows: Optional[List[int]] = None

    def __len__(self) -> int:
        return len(self.classnames)


@dataclass
class StepInfo:
    """Where training is: 0-based epoch, number of epochs, step within the epoch."""

    epoch: int = 0
    num_epochs: int = 1
    step: int = 0


@dataclass
class Output:
    """Features and logits of one forward pass (unnormalised features; logits = scale · cos).

    ``image_raw`` / ``text_raw`` are the features before any add-on transformed them; ``images`` the input images
    (None when the batch was cached features); ``frozen_image`` the prompt-free image features of those images'
    views when the training stream carries them from the feature cache (else None); ``taps`` the per-block
    inputs/outputs of the towers an add-on asked for (see :class:`~vlprompt.backbones.adapter.PromptableCLIP`).
    """

    image: torch.Tensor
    text: torch.Tensor
    logits: Optional[torch.Tensor] = None
    image_raw: Optional[torch.Tensor] = None
    text_raw: Optional[torch.Tensor] = None
    images: Optional[torch.Tensor] = None
    frozen_image: Optional[torch.Tensor] = None
    taps: Dict[str, List[tuple]] = field(default_factory=dict)


@dataclass
class StepResult:
    """One training step: named, already weighted loss terms (the loss is their sum), the logits (for the
    training accuracy) and a report of extra scalars to log (averaged over the epoch by the trainer)."""

    losses: Dict[str, torch.Tensor]
    logits: torch.Tensor
    report: Dict[str, float] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        return sum(self.losses.values())
