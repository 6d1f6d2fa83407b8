"""Evaluating a trained run on a dataset (:func:`evaluate`), and the evaluation run directory other commands
(corruption robustness) write with :func:`evaluate_task`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional, Union

from vlprompt.config import DataConfig
from vlprompt.engine.labels import eval_label_space
from vlprompt.engine.rundir import CONFIG, RunDir
from vlprompt.pipeline.build import make_feature_cache
from vlprompt.pipeline.identity import data_identity, local_path, resolve_path
from vlprompt.pipeline.loading import backbone_line, load_data
from vlprompt.pipeline.records import PathLike, Results, Run, finish, finished, make_results
from vlprompt.pipeline.trained import TrainedRun, open_trained
from vlprompt.task import LabelSpace

log = logging.getLogger("vlprompt")


def evaluate(
    run: Union[Run, PathLike],
    dataset: Optional[str] = None,
    *,
    data_root: Optional[str] = None,
    split_file: Optional[str] = None,
    subsample: str = "all",
    shots: int = 0,
    seed: int = 1,
    template: Optional[str] = None,
    templates_file: Optional[str] = None,
    classnames_file: Optional[str] = None,
    label_space: str = "auto",
    out: Optional[PathLike] = None,
    backbone: Optional[str] = None,
    pretrained: Optional[str] = None,
    trust_pickle: bool = False,
    device: str = "auto",
    quick_gelu: Optional[bool] = None,
    precision: Optional[str] = None,
    batch_size: Optional[int] = None,
    feature_cache: bool = True,
    skip_corrupt: bool = False,
    num_workers: int = 0,
    save_logits: bool = False,
    quiet: bool = False,
    plan_only: bool = False,
) -> Results:
    """Evaluate a trained run on ``dataset`` (default: the run's own dataset and data root) and ``subsample`` —
    e.g. a base-class run on the new classes. Class-name buffers are rebuilt for the label space; ``label_space``
    ``auto`` decides seen/unseen from the class names. ``template``, ``templates_file`` and ``classnames_file``
    default to the run's own on its own dataset. With ``out`` a run directory is written. ``plan_only``: return
    the run identity the evaluation would have (what a sweep compares with a run directory), doing nothing."""
    source = run.path if isinstance(run, Run) else Path(run)
    trained_data = _trained_data(source)
    same = dataset in (None, trained_data.dataset)
    prompts = {"template": template, "templates_file": templates_file, "classnames_file": classnames_file}
    data = DataConfig(
        dataset=dataset or trained_data.dataset,
        data_root=data_root if (data_root is not None or dataset) else trained_data.data_root,
        split_file=split_file if (split_file is not None or dataset) else trained_data.split_file,
        subsample=subsample,
        shots=shots,
        seed=seed,
        skip_corrupt=skip_corrupt,
        num_workers=num_workers,
        **{k: v if v is not None or not same else getattr(trained_data, k) for k, v in prompts.items()},
    )
    identity = {
        "source": resolve_path(str(source)),
        "data": data_identity(data),
        "label_space": label_space,
        "backbone": {"name": local_path(backbone), "pretrained": local_path(pretrained), "quick_gelu": quick_gelu},
        "precision": precision,
    }
    if plan_only:
        return identity
    done = finished(out, "eval", identity, quiet)
    if done is not None:
        return done
    trained, ds, space, task = open_on_data(
        source,
        data,
        label_space,
        backbone=backbone,
        pretrained=pretrained,
        trust_pickle=trust_pickle,
        device=device,
        quick_gelu=quick_gelu,
        precision=precision,
        batch_size=batch_size,
        quiet=quiet,
    )
    return evaluate_task(
        task, trained, ds, data, space, kind="eval", out=out, identity=identity, feature_cache=feature_cache,
        save_logits=save_logits, quiet=quiet,
    )  # fmt: skip


def open_on_data(source: PathLike, data: DataConfig, label_space: str = "auto", **backbone_options):
    """``(trained run, dataset, label space, task)``: a trained run switched to ``data``'s label space."""
    trained = open_trained(source, **backbone_options)
    ds = load_data(data)
    space = eval_label_space(ds, trained.meta["label_space"]["classnames"], label_space)
    return trained, ds, space, trained.task(space)


def _trained_data(source: Path) -> DataConfig:
    from vlprompt.engine.weights import load_weights

    meta, _ = load_weights(source)
    stored = (meta.get("run_config") or {}).get("data")
    return DataConfig(**stored) if stored else DataConfig(dataset=meta.get("dataset", "toy-b2n"))


def evaluate_task(
    task,
    trained: TrainedRun,
    ds,
    data: DataConfig,
    space: LabelSpace,
    *,
    kind: str,
    out: Optional[PathLike],
    identity: Dict,
    feature_cache: bool = True,
    save_logits: bool = False,
    quiet: bool = False,
    extra: Optional[Dict] = None,
) -> Results:
    """Evaluate a trained run's ``task`` on ``ds`` and, with ``out``, write a ``kind`` run directory (eval,
    corrupt) whose marker holds ``identity``."""
    from vlprompt import fileio
    from vlprompt.engine.evaluation import evaluate as run_evaluation

    run = RunDir(Path(out), kind, identity).open() if out is not None else None
    try:
        if run is not None:
            log.info(backbone_line(trained.backbone))
            fileio.write_yaml(run.path / CONFIG, {"command": kind, **identity})
        evaluation = run_evaluation(
            task,
            ds.test,
            trained.backbone,
            trained.config.train,
            make_feature_cache(trained.backbone, feature_cache),
            data.num_workers,
            data.skip_corrupt,
            progress=not quiet,
        )
        fields = {"label_space": "seen" if space.seen else "unseen", "source_run": str(trained.path), **(extra or {})}
        results = make_results(evaluation, ds, data, trained.config.method, trained.backbone, fields)
        return finish(run, results, evaluation, ds, quiet, save_logits)
    finally:
        if run is not None:
            run.close()
