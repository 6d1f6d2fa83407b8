"""Add-ons stacked on a base method. Importing this package registers all of them in ``ADDONS``."""

from vlprompt.addons.base import ADDONS, AddOn, Output, StepInfo
from vlprompt.addons import kg, src  # noqa: F401,E402  (registers kg, src)

__all__ = ["ADDONS", "AddOn", "Output", "StepInfo"]
