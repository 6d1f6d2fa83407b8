"""The model a training loop trains: a prompt learner plus add-ons (:class:`PromptTask`), the method strings that
compose them (:func:`parse_method`) and the values that flow through them (:mod:`vlprompt.task.types`).

Method strings and label spaces need no model library; :class:`PromptTask` (torch) is imported on first use."""

from __future__ import annotations

import importlib

from vlprompt.task.composition import Composition, aliases, check_composition, parse_method
from vlprompt.task.types import LabelSpace, Output, StepInfo, StepResult

__all__ = [
    "aliases",
    "Composition",
    "LabelSpace",
    "Output",
    "PromptTask",
    "StepInfo",
    "StepResult",
    "check_composition",
    "cosine_logits",
    "parse_method",
]


def __getattr__(name: str):
    if name in ("PromptTask", "cosine_logits"):
        return getattr(importlib.import_module("vlprompt.task.prompt_task"), name)
    raise AttributeError(f"module 'vlprompt.task' has no attribute {name!r}")
