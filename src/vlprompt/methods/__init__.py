"""Prompt learners (base methods). Importing this package registers all of them in ``LEARNERS``."""

from vlprompt.methods import coop, zeroshot  # noqa: F401  (registration)
from vlprompt.methods import cocoop, deep, maple  # noqa: F401  (registration)
from vlprompt.methods.base import LEARNERS, LabelSpace, PromptLearner

__all__ = ["LEARNERS", "LabelSpace", "PromptLearner"]
