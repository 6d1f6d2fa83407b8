"""Add-ons stacked on a base method, one package each (``vlprompt.addons.<name>``): its ``config`` module declares it
(torch-free; :mod:`vlprompt.components`) and registers it in :data:`vlprompt.registry.ADDONS`, which imports every
package's ``config`` on first use; its ``model`` module is imported when a model is built."""

from __future__ import annotations

import importlib

from vlprompt.addons.declarations import AddOnConfig
from vlprompt.registry import ADDONS

__all__ = ["ADDONS", "AddOn", "AddOnConfig"]


def __getattr__(name: str):
    if name == "AddOn":  # needs torch: imported on first use
        return importlib.import_module("vlprompt.addons.base").AddOn
    raise AttributeError(f"module 'vlprompt.addons' has no attribute {name!r}")
