"""Run records: ``results.json`` (:class:`Results`), ``predictions.csv``, ``logits.safetensors`` and the
``weights.json`` sidecar — what they hold and how a finished run's records are written and read back."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

from vlprompt import __version__
from vlprompt.config import DataConfig, RunConfig, to_dict
from vlprompt.engine.rundir import RESULTS, RunDir
from vlprompt.pipeline.identity import architecture_id
from vlprompt.task import LabelSpace

if TYPE_CHECKING:
    from vlprompt.task import PromptTask

log = logging.getLogger("vlprompt")

PathLike = Union[str, Path]
PREDICTIONS = "predictions.csv"
LOGITS = "logits.safetensors"


class Results(dict):
    """A run's ``results.json`` (``accuracy`` in percent, ``macro_f1``, ``num_images``, ``num_classes``,
    ``method``, ``dataset``, ...); ``path`` is the run directory that holds it (None when nothing was written)."""

    path: Optional[Path] = None

    @property
    def accuracy(self) -> float:
        return self["accuracy"]


@dataclass
class Run:
    """A finished training run: its directory, resolved configuration and test results."""

    path: Path
    config: RunConfig
    results: Results


def backbone_record(backbone) -> Dict[str, Any]:
    """What results.json and weights.json record about the backbone."""
    spec = backbone.spec
    return {
        "backbone": spec.backbone,
        "architecture": architecture_id(spec.config),
        "pretrained": spec.pretrained,
        "quick_gelu": spec.quick_gelu,
        "activation_reason": spec.activation_reason,
    }


def environment() -> Dict[str, Any]:
    """The versions and the device a record was written with."""
    import platform

    import open_clip
    import torch

    return {
        "vlprompt": __version__,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def prompt_record(dataset) -> Dict[str, Any]:
    """The prompts a run used (results.json): the template, KgCoOp's when it differs, a user's ensemble."""
    record: Dict[str, Any] = {"template": dataset.template}
    if dataset.kgcoop_template and dataset.kgcoop_template != dataset.template:
        record["kgcoop_template"] = dataset.kgcoop_template
    if dataset.templates is not None:
        record["ensemble_templates"] = list(dataset.templates)
    return record


def weights_meta(cfg: RunConfig, task: PromptTask, backbone, space: LabelSpace) -> Dict[str, Any]:
    """The ``weights.json`` sidecar of a trained (or converted) run: composition, configs, backbone, label space."""
    return {
        "vlprompt_version": __version__,
        "method": cfg.method,
        "base": task.composition.base,
        "addons": list(task.composition.addons),
        "configs": {"train": to_dict(cfg.train), **{n: to_dict(c) for n, c in cfg.components.items()}},
        "run_config": cfg.to_dict(),
        "backbone": backbone_record(backbone),
        "dataset": cfg.data.dataset,
        "subsample": cfg.data.subsample,
        "label_space": dataclasses.asdict(space),
        "classnames_sha1": hashlib.sha1("\n".join(space.classnames).encode()).hexdigest()[:16],
        "environment": environment(),
    }


def make_results(evaluation, dataset, data: DataConfig, method: str, backbone, extra: Dict) -> Results:
    """The ``results.json`` of a run's test ``evaluation``: metrics, data, backbone, prompts, ``extra`` fields."""
    return Results(
        {
            **evaluation.metrics,
            "num_classes": dataset.num_classes,
            "method": method,
            "dataset": data.dataset,
            "subsample": data.subsample,
            "shots": data.shots,
            "seed": data.seed,
            **backbone_record(backbone),
            **prompt_record(dataset),
            "split": "test",
            **extra,
            "environment": environment(),
        }
    )


def finish(run: Optional[RunDir], results: Results, evaluation, dataset, quiet: bool, save_logits: bool) -> Results:
    """Write ``predictions.csv`` (and ``logits.safetensors``), the final metrics line and ``results.json``."""
    from vlprompt.engine.evaluation import write_logits, write_predictions

    if run is not None:
        write_predictions(run.path / PREDICTIONS, evaluation, dataset.test, dataset.classnames)
        if save_logits:
            write_logits(run.path / LOGITS, evaluation)
        run.append_metrics({"final": True, **{k: results[k] for k in ("accuracy", "macro_f1")}})
        run.write_results(results)
        results.path = run.path
        log.info(
            "%s on %s: accuracy %.2f%%, macro-F1 %.2f%% (%d images) -> %s",
            results["method"],
            results["dataset"],
            results["accuracy"],
            results["macro_f1"],
            results["num_images"],
            run.path / RESULTS,
        )
    if not quiet:
        where = f" -> {run.path / RESULTS}" if run is not None else ""
        print(
            f"* accuracy: {results['accuracy']:.2f}%  macro_f1: {results['macro_f1']:.2f}%  "
            f"({results['num_images']} images, {results['num_classes']} classes){where}"
        )
    return results


def finished(out: Optional[PathLike], kind: str, identity: Dict, quiet: bool = False) -> Optional[Results]:
    """Check ``out`` before any work (refusing a foreign or different run directory, see
    :meth:`~vlprompt.engine.rundir.RunDir.check`) and return the results of a finished run there, else None."""
    if out is None or RunDir.check(Path(out), kind, identity) is None or not (Path(out) / RESULTS).is_file():
        return None
    results = Results(RunDir(Path(out), kind, identity).results())
    results.path = Path(out)
    if not quiet:
        print(
            f"run already complete: {Path(out) / RESULTS} (accuracy {results['accuracy']:.2f}%); "
            "use another --out to run again"
        )
    return results
