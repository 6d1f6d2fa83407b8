"""The example add-on of CONTRIBUTING.md: an L2 penalty on the learner's prompt vectors. conftest.py registers it,
so the composition matrix (tests/test_composition.py) picks it up without any list being edited."""

from dataclasses import dataclass

from vlprompt.addons import AddOn, AddOnConfig
from vlprompt.capabilities import Capability
from vlprompt.config import setting
from vlprompt.registry import ADDONS


@dataclass
class PromptL2Config(AddOnConfig):
    weight: float = setting(1e-3, "λ of the penalty λ · Σ_p ‖p‖²")


@ADDONS.register("prompt_l2", PromptL2Config)
class PromptL2(AddOn):
    requires = frozenset({Capability.PROMPT_VECTORS})

    def losses(self, out, labels, step):
        vectors = self.learner.prompt_vectors().values()
        return {"prompt_l2": self.config.weight * sum(v.float().pow(2).sum() for v in vectors)}
