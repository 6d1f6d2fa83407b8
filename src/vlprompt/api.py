"""The library API: train, evaluate, zero-shot, build a task for your own loop, load a trained run.

Every function takes typed values (:class:`~vlprompt.config.RunConfig`, paths, names) — never command-line
objects — and the ``vlprompt`` command line is a thin layer over them. Runs write ordinary run directories
(:mod:`vlprompt.engine.rundir`): ``config.yaml``, ``log.txt``, ``metrics.jsonl``, ``results.json``,
``predictions.csv`` and, for training, ``weights.safetensors`` + ``weights.json``.

This module is the public façade: the work is done one layer down, in :mod:`vlprompt.pipeline` (one module per
job: run identity, run records, loading, building the task, training, zero-shot, evaluation, trained runs), and a
run's calls never come back here. The order of work of :func:`train` is described in
:mod:`vlprompt.pipeline.training`.
"""

from __future__ import annotations

from vlprompt.pipeline.build import build_task, create_task
from vlprompt.pipeline.evaluation import evaluate, evaluate_task, open_on_data
from vlprompt.pipeline.identity import (
    PROMPT_SETTINGS,
    architecture_id,
    backbone_identity,
    data_fingerprint,
    data_identity,
    resolve_path,
    run_identity,
)
from vlprompt.pipeline.loading import backbone_line, load_backbone, load_data
from vlprompt.pipeline.records import (
    LOGITS,
    PREDICTIONS,
    PathLike,
    Results,
    Run,
    backbone_record,
    environment,
    finished,
    prompt_record,
    weights_meta,
)
from vlprompt.pipeline.trained import LoadedRun, Prediction, TrainedRun, load_run, open_trained
from vlprompt.pipeline.training import LOGS, train
from vlprompt.pipeline.zeroshot import zeroshot

__all__ = [
    "LOGITS",
    "LOGS",
    "PREDICTIONS",
    "PROMPT_SETTINGS",
    "LoadedRun",
    "PathLike",
    "Prediction",
    "Results",
    "Run",
    "TrainedRun",
    "architecture_id",
    "backbone_identity",
    "backbone_line",
    "backbone_record",
    "build_task",
    "create_task",
    "data_fingerprint",
    "data_identity",
    "environment",
    "evaluate",
    "evaluate_task",
    "finished",
    "load_backbone",
    "load_data",
    "load_run",
    "open_on_data",
    "open_trained",
    "prompt_record",
    "resolve_path",
    "run_identity",
    "train",
    "weights_meta",
    "zeroshot",
]
