"""Optional dependencies: each is an extra of the package, and a feature that needs a missing one fails with one
line naming the extra (``pip install 'vlprompt[plot]'``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from vlprompt.errors import VLPromptError

#: module -> the extra that installs it
EXTRAS = {
    "matplotlib": "plot",
    "submitit": "slurm",
    "torch.utils.tensorboard": "tensorboard",
    "sklearn.linear_model": "probe",
}
#: module -> the missing package, where it is not the module's top-level name
PACKAGES = {"torch.utils.tensorboard": "tensorboard", "sklearn.linear_model": "scikit-learn"}


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise a one-line error naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module, module)
        package = PACKAGES.get(module, module.split(".")[0])
        raise VLPromptError(f"{purpose} needs {package}: pip install 'vlprompt[{extra}]'") from None
