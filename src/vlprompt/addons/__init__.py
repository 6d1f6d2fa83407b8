"""Add-ons stacked on a base method. Importing this package registers all of them in ``ADDONS``."""

from vlprompt.addons.base import ADDONS, AddOn, Output, StepInfo
from vlprompt.addons import kg, src  # noqa: F401,E402  (registers kg, src)
from vlprompt.addons import nemesis  # noqa: F401,E402  (registers nemesis)
from vlprompt.addons import dept, restore  # noqa: F401,E402  (registers dept, restore)

__all__ = ["ADDONS", "AddOn", "Output", "StepInfo"]
