"""What the learners' declarations share (torch-free): the base config class and the constants of several
CoOp-family presets."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import Declaration

#: the init phrase of CoOp-family and deep-prompting context vectors
INIT_WORDS = "a photo of a"
#: CoOp's class-token positions
POSITIONS = ("end", "middle", "front")
#: CoOp's few-shot schedule (configs rn50_ep50 / rn50_ep100 / rn50): epochs by shots
FEWSHOT_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}
#: zero-shot template modes
TEMPLATE_MODES = ("single", "ensemble")
#: ``ctx_init`` value that takes the init words and the text after the class name from the run's template
TEMPLATE_INIT = "template"
MAPLE_REPO = "MaPLe repository (Khattak et al., CVPR 2023)"


@dataclass
class LearnerConfig(Declaration):
    """Fields shared by all learners; subclasses add their own (dataclass inheritance). The class attributes of
    :class:`~vlprompt.components.Declaration` carry the learner's published settings and facts."""


def train_values(batch_size, lr, epochs):
    """A preset's ``train`` section of the CoOp family's three values."""
    return {"batch_size": batch_size, "lr": lr, "epochs": epochs}


WORD_INIT = {"n_ctx": 4, "ctx_init": INIT_WORDS}
