"""Zero-shot CLIP on a dataset's test split (:func:`zeroshot`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from vlprompt.config import RunConfig
from vlprompt.engine.labels import label_space
from vlprompt.engine.rundir import CONFIG, RunDir
from vlprompt.errors import VLPromptError
from vlprompt.pipeline.build import build_task, make_feature_cache
from vlprompt.pipeline.identity import run_identity
from vlprompt.pipeline.loading import backbone_line, load_backbone, load_data
from vlprompt.pipeline.records import Results, finish, finished, make_results

log = logging.getLogger("vlprompt")


def zeroshot(cfg: RunConfig, *, quiet: bool = False, save_logits: bool = False) -> Results:
    """Zero-shot CLIP (``cfg.method`` = ``zeroshot``) on ``cfg.data``'s test split; writes a run directory when
    ``cfg.out`` is set."""
    if cfg.method != "zeroshot":
        raise VLPromptError(f"vlprompt.zeroshot needs method 'zeroshot', got {cfg.method!r}; use vlprompt.train")
    identity = run_identity(cfg)
    out = Path(cfg.out) if cfg.out is not None else None
    done = finished(out, "zeroshot", identity, quiet)
    if done is not None:
        return done
    dataset = load_data(cfg.data)

    from vlprompt.engine.evaluation import evaluate as run_evaluation
    from vlprompt.engine.precision import resolve_precision

    backbone = load_backbone(cfg.backbone, quiet=quiet)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train))
    cfg.train.precision = resolve_precision(cfg.train.precision, backbone.device)
    task = build_task(backbone, cfg, label_space(dataset))
    run = RunDir(out, "zeroshot", identity).open() if out is not None else None
    try:
        if run is not None:
            log.info(backbone_line(backbone))
            cfg.dump(run.path / CONFIG)
        data = cfg.data
        evaluation = run_evaluation(
            task,
            dataset.test,
            backbone,
            cfg.train,
            make_feature_cache(backbone, cfg.train.feature_cache),
            data.num_workers,
            data.skip_corrupt,
            progress=not quiet,
        )
        templates = cfg.components["zeroshot"].templates
        results = make_results(evaluation, dataset, data, "zeroshot", backbone, {"templates": templates})
        return finish(run, results, evaluation, dataset, quiet, save_logits)
    finally:
        if run is not None:
            run.close()
