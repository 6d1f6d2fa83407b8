"""Add-ons stacked on a base method. Importing this package registers all of them in ``ADDONS``."""

from vlprompt.addons.base import ADDONS, AddOn, Output, StepInfo

__all__ = ["ADDONS", "AddOn", "Output", "StepInfo"]
