"""The declaration of CLIP-LoRA: its config, published settings and facts (torch-free; :mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    Recipe,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import (
    LearnerConfig,
)
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_1, FINITE, setting

LORA_REPO = "CLIP-LoRA (Zanella & Ben Ayed, CVPRW 2024), MaxZanella/CLIP-LoRA"
#: CLIP-LoRA's ``INDEX_POSITIONS_TEXT`` / ``INDEX_POSITIONS_VISION['ViT-B/16']`` (loralib/utils.py), 12-block towers
LORA_POSITIONS = {
    "top": (11,),
    "top1": (11,),
    "top2": (10, 11),
    "top3": (9, 10, 11),
    "bottom": (0, 1, 2, 3),
    "mid": (4, 5, 6, 7),
    "up": (8, 9, 10, 11),
    "half-up": (6, 7, 8, 9, 10, 11),
    "half-bottom": (0, 1, 2, 3, 4, 5),
    "all": tuple(range(12)),
}
#: ``INDEX_POSITIONS_VISION['ViT-L/14']``: the positions CLIP-LoRA defines for 24-block towers
LORA_POSITIONS_24 = {"half-up": tuple(range(12, 24)), "half-bottom": tuple(range(12)), "all": tuple(range(24))}
LORA_ENCODERS = ("text", "vision", "both")
#: CLIP-LoRA's fixed settings (run_utils.py defaults, lora.py's optimizer and schedule)
LORA_SETTINGS = {
    "train": {
        "optimizer": "adamw",
        "lr": 2e-4,
        "weight_decay": 1e-2,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "schedule": "step_cosine",
        "min_lr": 1e-6,
        "batch_size": 32,
        "steps": {shots: 500 * shots for shots in (1, 2, 4, 8, 16)},
    },
    "lora": {"rank": 2, "alpha": 1.0, "dropout": 0.25, "params": "q,k,v", "position": "all"},
}


def lora_layers(position: str, depth: int) -> tuple:
    """The block indices CLIP-LoRA adapts at ``position`` in a ``depth``-block tower (those beyond it skipped)."""
    table = LORA_POSITIONS_24 if depth == 24 else LORA_POSITIONS
    if position not in table:
        raise VLPromptError(
            f"lora.position={position!r} is not defined for a {depth}-block tower; choose one of: {', '.join(table)}"
        )
    return tuple(i for i in table[position] if i < depth)


@LEARNERS.register("lora", implementation="vlprompt.methods.lora.model:LoRA")
@dataclass
class LoRAConfig(LearnerConfig):
    rank: int = setting(2, "r: rank of the low-rank updates (--r)", bounds=AT_LEAST_1)
    alpha: float = setting(1.0, "α: the update is scaled by α/√r, as CLIP-LoRA's LoRALayer (--alpha)", bounds=FINITE)
    dropout: float = setting(0.25, "dropout on the input of each low-rank branch, in training (--dropout_rate)")
    params: str = setting("q,k,v", "attention matrices adapted, comma-separated: q, k, v, o (o: output projection)")
    position: str = setting("all", f"blocks adapted: {' | '.join(LORA_POSITIONS)} (CLIP-LoRA's INDEX_POSITIONS)")
    encoder: str = setting("both", "towers adapted: text | vision | both")
    template: str = setting(
        "a photo of a {}.", "class prompt (CLIP-LoRA's datasets all use this one; empty: the run's dataset template)"
    )

    presets = {
        "fewshot": Preset(
            LORA_SETTINGS,
            f"{LORA_REPO}, run_utils.py defaults (n_iters 500 x shots, lr 2e-4, batch 32, r 2, alpha 1, dropout "
            "0.25, q,k,v of all blocks of both towers) and lora.py (AdamW wd 1e-2, CosineAnnealingLR eta_min 1e-6)",
        ),
        "b2n": Preset(
            LORA_SETTINGS,
            f"{LORA_REPO}, the same settings (README: fixed hyperparameters for every task and number of shots)",
        ),
    }

    def __post_init__(self):
        if not 0 <= self.dropout < 1:
            raise VLPromptError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        bad = [p for p in self.projections if p not in "qkvo"] or ([] if self.projections else [self.params])
        if bad or len(set(self.projections)) != len(self.projections):
            raise VLPromptError(f"lora.params={self.params!r}: use distinct letters of q, k, v, o, e.g. q,k,v")
        if self.position not in LORA_POSITIONS:
            raise VLPromptError(f"unknown lora.position {self.position!r}; choose one of: {', '.join(LORA_POSITIONS)}")
        if self.encoder not in LORA_ENCODERS:
            raise VLPromptError(f"unknown lora.encoder {self.encoder!r}: use text, vision or both")
        if self.template and self.template.count("{}") != 1:
            raise VLPromptError(f"lora.template {self.template!r} must contain exactly one {{}} for the class name")

    @property
    def projections(self) -> tuple:
        """The adapted matrices as CLIP-LoRA's letters, in the order given."""
        return tuple(p.strip() for p in self.params.split(",") if p.strip())

    recipes = (
        Recipe(
            "clip-lora-fewshot",
            "CLIP-LoRA (Zanella & Ben Ayed, CVPRW 2024)",
            "fewshot",
            ("zeroshot", "lora"),
            note="rank 2 on q, k, v of both towers, AdamW lr 2e-4, 500 x shots iterations",
        ),
    )
