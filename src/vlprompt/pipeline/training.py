"""Training orchestration (:func:`train`).

Order of work (nothing is written before the configuration, the data and the model are known to be valid):
resolve the run's identity → refuse a foreign or different ``--out``, or return at once if the run is finished
(importing no model library) → read and check the data (splits, classes, image files) → check the resume
checkpoint of an interrupted run → join the process group (several processes) → load the backbone → build the task
(and set its ``--init-from`` starting values) → open the run directory (marker, lock) → train → save the weights →
evaluate.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Dict, Sequence

from vlprompt.config import RunConfig
from vlprompt.engine.labels import label_space
from vlprompt.engine.rundir import CONFIG, RunDir
from vlprompt.errors import VLPromptError
from vlprompt.pipeline.build import build_task, make_feature_cache
from vlprompt.pipeline.identity import data_fingerprint, run_identity
from vlprompt.pipeline.loading import backbone_line, load_backbone, load_data
from vlprompt.pipeline.records import Run, finish, finished, make_results, weights_meta

log = logging.getLogger("vlprompt")

#: the extra epoch logs of :func:`train` (``--log``)
LOGS = ("tensorboard",)


def _check_resume(out: Path) -> None:
    """Refuse a damaged resume checkpoint of an interrupted run before any work (one line)."""
    from vlprompt.engine.trainer import RESUME_FILE, read_resume

    if (out / RESUME_FILE).is_file():
        read_resume(out / RESUME_FILE)


def train(cfg: RunConfig, *, quiet: bool = False, save_logits: bool = False, logs: Sequence[str] = ()) -> Run:
    """Train ``cfg`` (a :class:`~vlprompt.config.RunConfig` with ``out`` set), save its weights, evaluate the last
    epoch on the test split (``save_logits``: also ``logits.safetensors``). ``cfg.init_from`` (a run directory or
    a tensor file, :mod:`vlprompt.convert.initial`) gives the starting values of a fresh run. Re-running an
    interrupted run resumes it; a finished run is returned as it is. ``logs``: extra epoch logs,
    ``("tensorboard",)`` writes event files under ``<out>/tb``.

    In a process started by ``torchrun`` (or ``vlprompt train --nproc N``) the run is shared by all processes of the
    group (:mod:`vlprompt.engine.distributed`): same result, rank 0 writes the files and prints."""
    if cfg.out is None:
        raise VLPromptError("RunConfig.out is required: the run directory to write (--out)")
    unknown = sorted(set(logs) - set(LOGS))
    if unknown:
        raise VLPromptError(f"--log {unknown[0]}: unknown; choose from {', '.join(LOGS)}")
    if "tensorboard" in logs:
        from vlprompt.engine.tensorboard import require_tensorboard

        require_tensorboard()  # fails in one line before any work when the extra is missing
    out, identity = Path(cfg.out), run_identity(cfg)
    done = finished(out, "train", identity, quiet)
    if done is not None:
        return Run(out, cfg, done)
    dataset = load_data(cfg.data, need_train=True)
    _check_resume(out)

    from vlprompt.engine import distributed

    with distributed.process_group(cfg.backbone.device):
        return _train(cfg, out, identity, dataset, quiet or not distributed.is_main(), save_logits, logs)


def _train(cfg: RunConfig, out: Path, identity, dataset, quiet: bool, save_logits: bool, logs: Sequence[str]) -> Run:
    """:func:`train` once the configuration and the data are known to be valid, inside the process group."""
    from vlprompt.engine import distributed
    from vlprompt.engine import features as fc
    from vlprompt.engine.evaluation import evaluate as run_evaluation
    from vlprompt.engine.precision import resolve_precision
    from vlprompt.engine.train_data import train_stream
    from vlprompt.engine.trainer import RESUME_FILE, seed_everything
    from vlprompt.engine.trainer import train as run_training
    from vlprompt.engine.weights import save_weights

    backbone = load_backbone(cfg.backbone, quiet=quiet)
    distributed.share_random_backbone(backbone)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train))
    cfg.train.precision = resolve_precision(cfg.train.precision, backbone.device)
    space = label_space(dataset)
    seed_everything(cfg.data.seed)
    task = build_task(backbone, cfg, space)
    initial = None
    if cfg.init_from is not None and not (out / RESUME_FILE).exists():  # a resumed run continues its own values
        from vlprompt.convert.initial import load_initial_values

        initial = load_initial_values(task, cfg.init_from, cfg.backbone.trust_pickle)
        if not quiet:
            print(initial.describe())
    fingerprints = {"data": data_fingerprint(dataset), "backbone": fc.backbone_fingerprint(backbone)}
    main = distributed.is_main()
    run_dir = RunDir(out, "train", identity).open(fingerprints) if main else distributed.FollowerRun(out)
    with run_dir as run, _epoch_board(logs if main else (), out, task) as board:
        log.info(backbone_line(backbone))
        if initial is not None:
            log.info(initial.describe())
        if main:
            cfg.dump(run.path / CONFIG)
        cache = make_feature_cache(backbone, cfg.train.feature_cache)
        data = cfg.data
        stream = train_stream(task, dataset.train, backbone, cfg.train, data, cache)

        def periodic_eval(epoch: int) -> Dict[str, float]:
            evaluation = run_evaluation(
                task, dataset.test, backbone, cfg.train, cache, data.num_workers, data.skip_corrupt, progress=False
            )
            return {"accuracy": evaluation.metrics["accuracy"]}

        start = time.time()
        history = run_training(
            task, stream, cfg.train, run, data.seed, backbone.device, periodic_eval, progress=not quiet,
            on_epoch=board.epoch if board is not None else None,
        )  # fmt: skip
        train_time = time.time() - start
        if main:
            save_weights(run.path, task, weights_meta(cfg, task, backbone, space))
        evaluation = run_evaluation(
            task, dataset.test, backbone, cfg.train, cache, data.num_workers, data.skip_corrupt, progress=not quiet
        )
        extra = {"label_space": "seen", "epochs": len(history), "train_time_s": round(train_time, 2)}
        if cfg.protocol:
            extra["protocol"] = cfg.protocol
        results = make_results(evaluation, dataset, data, cfg.method, backbone, extra)
        finish(run if main else None, results, evaluation, dataset, quiet, save_logits)
        if board is not None:
            board.final(results, cfg.train.epochs)
    return Run(out, cfg, results)


def _epoch_board(logs: Sequence[str], out: Path, task):
    """The TensorBoard log of a training run (a context manager), or a null context without ``--log``."""
    import contextlib

    from vlprompt.engine.tensorboard import TensorBoardLog

    return TensorBoardLog(out, task.composition.addons) if "tensorboard" in logs else contextlib.nullcontext()
