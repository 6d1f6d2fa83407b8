"""Add-ons stacked on a base method. Their declarations (:mod:`vlprompt.addons.configs`, torch-free) register them in
:data:`vlprompt.registry.ADDONS`; each implementation module is imported when a model is built."""

from __future__ import annotations

import importlib

from vlprompt.addons.configs import AddOnConfig
from vlprompt.registry import ADDONS

__all__ = ["ADDONS", "AddOn", "AddOnConfig"]


def __getattr__(name: str):
    if name == "AddOn":  # needs torch: imported on first use
        return importlib.import_module("vlprompt.addons.base").AddOn
    raise AttributeError(f"module 'vlprompt.addons' has no attribute {name!r}")
