"""Prompt learners (base methods), one package each (``vlprompt.methods.<name>``): its ``config`` module declares it
(torch-free; :mod:`vlprompt.components`) and registers it in :data:`vlprompt.registry.LEARNERS`, which imports every
package's ``config`` on first use; its ``model`` module is imported when a model is built."""

from __future__ import annotations

import importlib

from vlprompt.registry import LEARNERS

__all__ = ["LEARNERS", "LabelSpace", "PromptLearner"]

#: names that need torch, imported on first use
_LAZY = {"PromptLearner": "vlprompt.methods.base", "LabelSpace": "vlprompt.task.types"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vlprompt.methods' has no attribute {name!r}")
