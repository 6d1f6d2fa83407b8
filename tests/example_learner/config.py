"""The declaration of the example learner: its config and, next to it, every fact a component declares."""

from dataclasses import dataclass

from vlprompt.components import Published, Recipe, Rule, Trainer, b2n_cell, dassl_table
from vlprompt.methods.declarations import LearnerConfig
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import setting

#: the name its (hypothetical) reference trainer saves W under
WEIGHT = Rule("adapter.weight", "learner.weight", required=True)


@LEARNERS.register("text_adapter", implementation="example_learner.model:TextAdapter")
@dataclass
class TextAdapterConfig(LearnerConfig):
    alpha: float = setting(0.2, "α of t = t₀ + α · t₀ W (W starts at zero: the run starts as zero-shot CLIP)")

    presets = {"b2n": Preset({"text_adapter": {"alpha": 0.2}}, "the example's paper (Table 1 settings)")}
    published = (
        Published(
            "b2n", "text_adapter", "ViT-B-16", "the example's paper, Table 2", {"average": b2n_cell(80, 70, 74.67)}
        ),
    )
    recipes = (Recipe("text-adapter-b2n", "the example's paper", "b2n", ("zeroshot", "text_adapter")),)
    reference = {"text_adapter": Trainer("TextAdapterTrainer", dassl_table(WEIGHT))}
