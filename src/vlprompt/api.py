"""The library API: train, evaluate, zero-shot, build a task for your own loop, load a trained run.

Every function takes typed values (:class:`~vlprompt.config.RunConfig`, paths, names) — never command-line
objects — and the ``vlprompt`` command line is a thin layer over them. Runs write ordinary run directories
(:mod:`vlprompt.engine.rundir`): ``config.yaml``, ``log.txt``, ``metrics.jsonl``, ``results.json``,
``predictions.csv`` and, for training, ``weights.safetensors`` + ``weights.json``.

Order of work in :func:`train` (nothing is written before the configuration, the data and the model are known to
be valid): resolve the run's identity → refuse a foreign or different ``--out``, or return at once if the run is
finished (importing no model library) → read and check the data (splits, classes, image files) → check the resume
checkpoint of an interrupted run → join the process group (several processes) → load the backbone → build the task
(and set its ``--init-from`` starting values) → open the run directory (marker, lock) → train → save the weights →
evaluate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from vlprompt import __version__
from vlprompt.config import BackboneConfig, DataConfig, RunConfig, make_config, to_dict
from vlprompt.engine.labels import eval_label_space, label_space
from vlprompt.engine.rundir import CONFIG, RESULTS, RunDir
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace

if TYPE_CHECKING:  # torch and the task are imported where a model is built, so checks before that stay fast
    import torch

    from vlprompt.task import PromptTask

log = logging.getLogger("vlprompt")

PathLike = Union[str, Path]
PREDICTIONS = "predictions.csv"
#: the extra epoch logs of :func:`train` (``--log``)
LOGS = ("tensorboard",)
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


# ------------------------------------------------------------------------------------------ shared pieces
def resolve_path(value: Optional[str]) -> Optional[str]:
    """An absolute, normalised path for a user path (relative, absolute or with a trailing slash alike)."""
    return None if value is None else str(Path(value).expanduser().resolve())


def _local(value: Optional[str]) -> Optional[str]:
    """Resolve ``value`` when it names an existing local file or folder (model names and tags stay as they are)."""
    if value is not None and Path(value).expanduser().exists():
        return resolve_path(value)
    return value


#: data settings that change what a run computes only when set (absent from the identity otherwise, so runs
#: written before they existed keep their identity)
PROMPT_SETTINGS = ("template", "templates_file", "classnames_file")


def data_identity(data: DataConfig) -> Dict[str, Any]:
    d = to_dict(data)
    d.pop("num_workers")
    for key in ("data_root", "split_file", "templates_file", "classnames_file"):
        d[key] = resolve_path(d[key])
    for key in PROMPT_SETTINGS:
        if d[key] is None:
            d.pop(key)
    return d


def backbone_identity(backbone: BackboneConfig) -> Dict[str, Any]:
    return {"name": _local(backbone.name), "pretrained": _local(backbone.pretrained), "quick_gelu": backbone.quick_gelu}


def run_identity(cfg: RunConfig) -> Dict[str, Any]:
    """What a training run computes: everything but where it is written, the provenance notes and settings that
    do not change the numbers (workers, device)."""
    return {
        "method": cfg.method,
        "data": data_identity(cfg.data),
        "backbone": backbone_identity(cfg.backbone),
        "train": to_dict(cfg.train),
        "components": {name: to_dict(c) for name, c in cfg.components.items()},
        "init_from": resolve_path(cfg.init_from),
    }


def load_data(data: DataConfig, *, need_train: bool = False):
    """The (few-shot, subsampled) dataset of ``data``, checked before any work (empty splits, a single class,
    classes without training images, missing image files unless ``skip_corrupt``: one-line errors)."""
    from vlprompt.data import build_dataset
    from vlprompt.data.verify import check_usable

    dataset = build_dataset(
        data.dataset, data.data_root, shots=data.shots, seed=data.seed, subsample=data.subsample,
        split_file=data.split_file, template=data.template, templates_file=data.templates_file,
        classnames_file=data.classnames_file,
    )  # fmt: skip
    where = f"--dataset {data.dataset}" + (f" --subsample {data.subsample}" if data.subsample != "all" else "")
    check_usable(dataset, where, ("test", "train") if need_train else ("test",), check_files=not data.skip_corrupt)
    return dataset


def load_backbone(backbone: BackboneConfig, quick_gelu_reason: Optional[str] = None, quiet: bool = True):
    """The frozen backbone of ``backbone``; its name, weights and activation are printed unless ``quiet``."""
    from vlprompt.backbones import load_backbone as load

    bb = load(
        backbone.name,
        backbone.pretrained,
        trust_pickle=backbone.trust_pickle,
        device=backbone.device,
        quick_gelu=backbone.quick_gelu,
        quick_gelu_reason=quick_gelu_reason,
    )
    if not quiet:
        print(backbone_line(bb))
    return bb


def backbone_line(backbone) -> str:
    """``backbone: NAME (WEIGHTS), activation: QuickGELU (REASON)`` — printed at load, logged in the run."""
    from vlprompt.backbones.loading import activation_name

    spec = backbone.spec
    activation = f"{activation_name(spec.quick_gelu)} ({spec.activation_reason})"
    return f"backbone: {spec.backbone} ({spec.pretrained}), activation: {activation}"


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


def architecture_id(config: Dict[str, Any]) -> str:
    """A hash of an open_clip model config, activation excluded: equal for every spelling of one architecture
    (a model name, its ``-quickgelu`` variant, a copy of its config JSON)."""
    arch = {k: v for k, v in config.items() if k != "quick_gelu"}
    return hashlib.sha1(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _check_architecture(trained: Dict[str, Any], backbone: Optional[str], run: Path) -> None:
    """Refuse ``--backbone`` naming another architecture than the one run ``run`` was trained on."""
    if backbone is None or "architecture" not in trained:
        return
    from vlprompt.backbones.loading import resolve_config

    if architecture_id(resolve_config(backbone)[0]) != trained["architecture"]:
        raise VLPromptError(
            f"--backbone {backbone} is not the architecture {run} was trained on ({trained['backbone']}); "
            "drop --backbone to use the run's own (another architecture's features do not fit its prompts)"
        )


def data_fingerprint(dataset) -> str:
    """A hash of the split items (paths and labels) and class names a run uses."""
    h = hashlib.sha1()
    for split in ("train", "val", "test"):
        for d in dataset.split(split):
            h.update(f"{split}\t{d.relpath}\t{d.label}\n".encode())
    h.update("\n".join(dataset.classnames).encode())
    if dataset.templates is not None:  # a user's ensemble file: its content, not only its path
        h.update("\n".join(dataset.templates).encode())
    return h.hexdigest()[:16]


def environment() -> Dict[str, Any]:
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


def build_task(backbone, cfg: RunConfig, space: LabelSpace) -> PromptTask:
    """The task of ``cfg`` on ``backbone`` for ``space``, on the backbone's device, in the run's precision, with the
    run's encoder settings (shared prefix, chunk size, causal truncation, fp16 prompt rounding) bound to the task's
    view of the backbone."""
    from vlprompt.backbones.options import EncodeOptions
    from vlprompt.engine.precision import apply_fp16
    from vlprompt.task import PromptTask

    options = EncodeOptions.from_train(cfg.train)
    task = PromptTask(backbone, cfg.method, cfg.components, space, options).to(backbone.device)
    if cfg.train.precision == "fp16":
        apply_fp16(backbone, task)
    return task


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


def _results(evaluation, dataset, data: DataConfig, method: str, backbone, extra: Dict) -> Results:
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


def _finish(run: Optional[RunDir], results: Results, evaluation, dataset, quiet: bool, save_logits: bool) -> Results:
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
            run.path / "results.json",
        )
    if not quiet:
        where = f" -> {run.path / 'results.json'}" if run is not None else ""
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


def _check_resume(out: Path) -> None:
    """Refuse a damaged resume checkpoint of an interrupted run before any work (one line)."""
    from vlprompt.engine.trainer import RESUME_FILE, read_resume

    if (out / RESUME_FILE).is_file():
        read_resume(out / RESUME_FILE)


def _feature_cache(backbone, enabled: bool):
    from vlprompt.engine.features import FeatureCache

    return FeatureCache(backbone) if enabled else None


# ------------------------------------------------------------------------------------------ train / zero-shot
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
        cache = _feature_cache(backbone, cfg.train.feature_cache)
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
        results = _results(evaluation, dataset, data, cfg.method, backbone, extra)
        _finish(run if main else None, results, evaluation, dataset, quiet, save_logits)
        if board is not None:
            board.final(results, cfg.train.epochs)
    return Run(out, cfg, results)


def _epoch_board(logs: Sequence[str], out: Path, task):
    """The TensorBoard log of a training run (a context manager), or a null context without ``--log``."""
    import contextlib

    from vlprompt.engine.tensorboard import TensorBoardLog

    return TensorBoardLog(out, task.composition.addons) if "tensorboard" in logs else contextlib.nullcontext()


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
            _feature_cache(backbone, cfg.train.feature_cache),
            data.num_workers,
            data.skip_corrupt,
            progress=not quiet,
        )
        templates = cfg.components["zeroshot"].templates
        results = _results(evaluation, dataset, data, "zeroshot", backbone, {"templates": templates})
        return _finish(run, results, evaluation, dataset, quiet, save_logits)
    finally:
        if run is not None:
            run.close()


# ------------------------------------------------------------------------------------------ trained runs
@dataclass
class TrainedRun:
    """A finished training run's weights, sidecar and configuration, with the backbone to run it on."""

    path: Path
    meta: Dict
    tensors: Dict[str, torch.Tensor]
    config: RunConfig
    backbone: Any = field(repr=False)

    @property
    def trained_space(self) -> LabelSpace:
        return LabelSpace(**self.meta["label_space"])

    def task(self, space: Optional[LabelSpace] = None) -> PromptTask:
        """The trained task, switched to ``space`` (default: the trained label space)."""
        from vlprompt.engine.weights import load_into

        task = build_task(self.backbone, self.config, self.trained_space)
        load_into(task, self.tensors, self.path / "weights.safetensors")
        if space is not None:
            task.set_label_space(space)
        return task.eval()


def open_trained(
    path: PathLike,
    *,
    backbone: Optional[str] = None,
    pretrained: Optional[str] = None,
    trust_pickle: bool = False,
    device: str = "auto",
    quick_gelu: Optional[bool] = None,
    precision: Optional[str] = None,
    batch_size: Optional[int] = None,
    quiet: bool = True,
) -> TrainedRun:
    """Load a trained run directory with its backbone (the run's own unless ``backbone``/``pretrained`` are given,
    with the activation it was trained with unless ``quick_gelu`` or another architecture is given);
    ``precision`` / ``batch_size`` override the run's evaluation settings."""
    from vlprompt.engine.precision import resolve_precision
    from vlprompt.engine.weights import load_weights

    path = Path(path)
    meta, tensors = load_weights(path)
    if "run_config" not in meta:
        raise VLPromptError(
            f"{path / 'weights.json'} was written by an older vlprompt (no run_config); train the run again"
        )
    cfg = RunConfig.from_dict(meta["run_config"])
    trained = meta["backbone"]
    _check_architecture(trained, backbone, path)
    source = trained["pretrained"]
    reason = None
    if quick_gelu is None and backbone is None and trained.get("quick_gelu") is not None:
        quick_gelu, reason = trained["quick_gelu"], f"as trained: {trained.get('activation_reason')}"
    spec = BackboneConfig(
        name=backbone or trained["backbone"],
        pretrained=pretrained if pretrained is not None else (None if source == "embedded" else source),
        trust_pickle=trust_pickle,
        device=device,
        quick_gelu=quick_gelu,
    )
    bb = load_backbone(spec, quick_gelu_reason=reason, quiet=quiet)
    cfg = dataclasses.replace(cfg, backbone=spec, train=dataclasses.replace(cfg.train))
    cfg.train.precision = resolve_precision(precision or cfg.train.precision, bb.device)
    if batch_size:
        cfg.train.test_batch_size = batch_size
    return TrainedRun(path, meta, tensors, cfg, bb)


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
) -> Results:
    """Evaluate a trained run on ``dataset`` (default: the run's own dataset and data root) and ``subsample`` —
    e.g. a base-class run on the new classes. Class-name buffers are rebuilt for the label space; ``label_space``
    ``auto`` decides seen/unseen from the class names. ``template``, ``templates_file`` and ``classnames_file``
    default to the run's own on its own dataset. With ``out`` a run directory is written."""
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
        "backbone": {"name": _local(backbone), "pretrained": _local(pretrained), "quick_gelu": quick_gelu},
        "precision": precision,
    }
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
            _feature_cache(trained.backbone, feature_cache),
            data.num_workers,
            data.skip_corrupt,
            progress=not quiet,
        )
        fields = {"label_space": "seen" if space.seen else "unseen", "source_run": str(trained.path), **(extra or {})}
        results = _results(evaluation, ds, data, trained.config.method, trained.backbone, fields)
        return _finish(run, results, evaluation, ds, quiet, save_logits)
    finally:
        if run is not None:
            run.close()


# ------------------------------------------------------------------------------------------ your own loop
def create_task(
    method: str,
    backbone: Union[str, Any] = "toy",
    classnames: Union[Sequence[str], LabelSpace, None] = None,
    *,
    pretrained: Optional[str] = None,
    preset: Optional[str] = None,
    protocol: Optional[str] = None,
    dataset: Optional[str] = None,
    overrides: Sequence[str] = (),
    template: str = "a photo of a {}.",
    device: str = "auto",
) -> PromptTask:
    """A :class:`~vlprompt.task.PromptTask` for your own training loop: ``method`` (e.g. ``"coop+nemesis"``) on
    ``backbone`` (a name / config path, or an already loaded backbone) for ``classnames`` (or a full
    :class:`~vlprompt.task.LabelSpace`), with the published preset (``preset`` / ``protocol`` / ``dataset``) and
    ``overrides`` (``"coop.n_ctx=4"``). Use ``task.training_step(...)``, ``task.param_groups(lr)`` and
    ``task.predict(...)``."""
    if classnames is None:
        raise VLPromptError("create_task needs the class names (or a LabelSpace) the task separates")
    space = classnames if isinstance(classnames, LabelSpace) else LabelSpace(list(classnames), template=template)
    if isinstance(backbone, str):
        backbone = load_backbone(BackboneConfig(name=backbone, pretrained=pretrained, device=device))
    cfg = make_config(method, dataset or "", protocol=protocol, preset=preset, overrides=overrides)
    return build_task(backbone, cfg, space)


# ------------------------------------------------------------------------------------------ predictions
@dataclass
class Prediction:
    """Logits ``[N, K]`` of N images over ``classnames``."""

    logits: torch.Tensor
    classnames: List[str]

    @property
    def labels(self) -> List[str]:
        """The top-1 class name of every image."""
        return [self.classnames[i] for i in self.logits.argmax(-1).tolist()]

    def topk(self, k: int = 5) -> List[List[tuple]]:
        """Per image, the ``k`` best ``(class name, softmax probability)`` pairs."""
        probs = self.logits.float().softmax(-1)
        values, idx = probs.topk(min(k, probs.shape[-1]), dim=-1)
        return [[(self.classnames[i], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values, idx.tolist())]


class LoadedRun:
    """A trained run ready to predict: ``.predict(images, classnames=...)`` on any label space the method supports,
    ``.tensors`` (the trained tensors), ``.config`` (the resolved :class:`~vlprompt.config.RunConfig`)."""

    def __init__(self, trained: TrainedRun):
        self._trained = trained
        self.path = trained.path
        self.config = trained.config
        self.tensors = trained.tensors
        self.backbone = trained.backbone
        self.classnames: List[str] = list(trained.trained_space.classnames)
        self._task = trained.task()

    def _space(self, classnames: Optional[Sequence[str]], template: Optional[str]) -> LabelSpace:
        trained = self._trained.trained_space
        if classnames is None or list(classnames) == list(trained.classnames):
            return dataclasses.replace(trained, template=template or trained.template)
        tpl = template or trained.template
        return LabelSpace(list(classnames), template=tpl, kgcoop_template=tpl, ensemble_templates=[tpl], seen=False)

    def task_for(self, classnames: Optional[Sequence[str]] = None, template: Optional[str] = None) -> PromptTask:
        """The trained task on ``classnames`` (default: the trained classes; other names are an unseen space)."""
        space = self._space(classnames, template)
        if space != self._task.space:
            self._task.set_label_space(space)
        return self._task

    def images_to_tensor(self, images: Sequence[Union[str, Path, Any]]) -> torch.Tensor:
        """A batch from image paths or PIL images, with the backbone's test transform."""
        import torch
        from PIL import Image

        from vlprompt.data.images import load_rgb
        from vlprompt.data.transforms import backbone_transform

        transform = backbone_transform(self.backbone)
        loaded = []
        for image in images:
            if isinstance(image, Image.Image):
                loaded.append(transform(image.convert("RGB")))
                continue
            try:
                loaded.append(transform(load_rgb(str(image))))
            except OSError as exc:
                raise VLPromptError(f"cannot read image {image}: {exc}") from None
        return torch.stack(loaded)

    def predict(
        self,
        images: Union[torch.Tensor, Sequence[Union[str, Path, Any]]],
        classnames: Optional[Sequence[str]] = None,
        template: Optional[str] = None,
        batch_size: int = 64,
    ) -> Prediction:
        """Logits of ``images`` (paths, PIL images, or a preprocessed ``[B, 3, H, W]`` tensor) over ``classnames``
        (default: the trained classes); other class names use the similarity head (label space unseen)."""
        import torch

        space = self.task_for(classnames, template).space
        batch = images if isinstance(images, torch.Tensor) else self.images_to_tensor(images)
        with torch.no_grad():
            logits = [
                self._task.predict(images=batch[s : s + batch_size].to(self.backbone.device)).float().cpu()
                for s in range(0, len(batch), batch_size)
            ]
        return Prediction(torch.cat(logits), list(space.classnames))


def load_run(
    path: PathLike, *, backbone: Optional[str] = None, pretrained: Optional[str] = None, device: str = "auto"
) -> LoadedRun:
    """A trained run directory (``vlprompt train`` or a converted reference checkpoint) ready to predict."""
    return LoadedRun(open_trained(path, backbone=backbone, pretrained=pretrained, device=device))
