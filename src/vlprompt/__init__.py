"""vlprompt: composable prompt learning for CLIP-style vision-language models.

Public API (importing ``vlprompt`` is cheap; each name loads its module on first use)::

    import vlprompt

    cfg = vlprompt.make_config("coop", "toy-b2n", shots=16, subsample="base", epochs=2, out="runs/coop-base")
    run = vlprompt.train(cfg)                                    # -> Run (path, config, results)
    new = vlprompt.evaluate(run, subsample="new")                # -> Results (dict: accuracy, macro_f1, ...)
    model = vlprompt.load_run("runs/coop-base")                  # -> LoadedRun
    model.predict(["cat.png"], classnames=["cat", "dog"]).labels # -> ["cat"]

* :func:`make_config` / :class:`RunConfig` — one typed, serialisable description of a run (``config.yaml``);
* :func:`train`, :func:`evaluate`, :func:`zeroshot` — the command line's ``train`` / ``eval`` / ``zeroshot``;
* :func:`create_task` — a :class:`PromptTask` for your own training loop (``task.training_step``);
* :func:`load_run` — a trained run that predicts on any label space the method supports;
* :func:`export_classifier` — a CoOp/KgCoOp(/DePT) run as a fixed classifier file for plain open_clip;
* :func:`parse_method` — method strings such as ``maple+dept+restore``.
"""

from __future__ import annotations

import importlib
from typing import Any, List

__version__ = "0.1.0"

#: public name -> module that defines it
_API = {
    "RunConfig": "vlprompt.config",
    "DataConfig": "vlprompt.config",
    "BackboneConfig": "vlprompt.config",
    "TrainConfig": "vlprompt.config",
    "make_config": "vlprompt.config",
    "train": "vlprompt.api",
    "evaluate": "vlprompt.api",
    "zeroshot": "vlprompt.api",
    "create_task": "vlprompt.api",
    "load_run": "vlprompt.api",
    "export_classifier": "vlprompt.export",
    "Run": "vlprompt.api",
    "Results": "vlprompt.api",
    "LoadedRun": "vlprompt.api",
    "Prediction": "vlprompt.api",
    "PromptTask": "vlprompt.task",
    "StepInfo": "vlprompt.task",
    "LabelSpace": "vlprompt.task",
    "parse_method": "vlprompt.task",
    "VLPromptError": "vlprompt.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vlprompt' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_API))
