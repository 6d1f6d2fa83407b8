"""The declaration of the linear probe: its config, published settings and facts (torch-free;
:mod:`vlprompt.components`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import (
    RN50,
    Published,
    Recipe,
    shot_rows,
)
from vlprompt.errors import VLPromptError
from vlprompt.methods.declarations import (
    LearnerConfig,
)
from vlprompt.presets import Preset
from vlprompt.registry import LEARNERS
from vlprompt.settings import AT_LEAST_0, AT_LEAST_1, setting

#: the solvers of ``linear_probe.solver``, and the module scikit-learn's needs (the ``[probe]`` extra)
SOLVERS = ("sklearn", "torch")
SKLEARN_MODULE = "sklearn.linear_model"
LPCLIP = "the CoOp repository's lpclip/linear_probe.py (Zhou et al., IJCV 2022; CLIP's linear probe, Radford et al.)"


@LEARNERS.register("linear_probe", implementation="vlprompt.methods.linear_probe.model:LinearProbe")
@dataclass
class LinearProbeConfig(LearnerConfig):
    solver: str = setting(
        "sklearn", "sklearn: scikit-learn's lbfgs as lpclip calls it (vlprompt[probe]); torch: L-BFGS"
    )
    grid: str = setting("1e6,1e4,1e2,1,1e-2,1e-4,1e-6", "comma-separated C values of the initial search")
    steps: int = setting(
        8, "bisection rounds in log10(C) around the grid's best (0: the grid's best)", bounds=AT_LEAST_0
    )
    max_iter: int = setting(1000, "solver iterations per fit", bounds=AT_LEAST_1)
    search_split: str = setting("fewshot_val", "fewshot_val: min(K, 4) val images per class (lpclip); val: all")

    presets = {"fewshot": Preset({"linear_probe": {"steps": 8}}, f"{LPCLIP}, --num_step 8")}
    #: the CoOp repository publishes no numbers (its paper plots them); ImageNet as Tip-Adapter's paper quotes them
    published = (
        Published(
            "fewshot",
            "linear_probe",
            RN50[0],
            "Linear-probe CLIP on ImageNet (RN50) as Tip-Adapter's paper (Zhang et al., ECCV 2022) Table 2 quotes the "
            "official scores; the other datasets are published only as CoOp's Figure 3 curves",
            shot_rows({"imagenet": "22.17 31.90 41.20 49.52 56.13"}),
        ),
    )

    @property
    def c_grid(self) -> list:
        """The C values of ``grid`` (a one-line error for a bad list)."""
        try:
            values = [float(v) for v in self.grid.split(",")]
        except ValueError:
            values = []
        if not values or not all(v > 0 for v in values):
            raise VLPromptError(f"linear_probe.grid {self.grid!r}: give positive C values separated by commas")
        return values

    def __post_init__(self):
        self.c_grid  # noqa: B018  (validates the grid)
        if self.solver not in SOLVERS:
            raise VLPromptError(f"unknown linear_probe.solver {self.solver!r}: use sklearn or torch")
        if self.search_split not in ("val", "fewshot_val"):
            raise VLPromptError(f"unknown linear_probe.search_split {self.search_split!r}: use fewshot_val or val")

    recipes = (
        Recipe(
            "linear-probe-fewshot",
            "CoOp (Zhou et al., IJCV 2022)",
            "fewshot",
            ("zeroshot", "linear_probe"),
            backbone=RN50,
            note="lpclip: logistic regression, C searched on the few-shot val (needs vlprompt[probe])",
        ),
    )
