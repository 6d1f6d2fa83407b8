"""The typed description of a run: :class:`RunConfig`, its sections, ``--set`` overrides and YAML round trips.

A run is ``RunConfig(method, data, backbone, train, components, protocol, preset, out, ...)``; ``components``
maps every component of the method (``coop``, ``kg``, ...) to its config dataclass. :func:`make_config` builds
a resolved one from a method string, a dataset and options, applying the published presets
(:mod:`vlprompt.presets`); the CLI builds one from flags, ``config.yaml`` is its dump and
:meth:`RunConfig.load` gives it back. Every field has ``help`` metadata, and the sections validate themselves in
``__post_init__`` so a bad value is refused before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vlprompt.errors import VLPromptError
from vlprompt.settings import (  # noqa: F401  (re-exported: the section helpers of every config module)
    AT_LEAST_0,
    AT_LEAST_1,
    FINITE,
    POSITIVE,
    UNIT,
    Bounds,
    check_bounds,
    setting,
)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise VLPromptError(message)


def check_template(template: str, where: str) -> str:
    """A prompt template must hold exactly one ``{}`` (the class name) and nothing else ``str.format`` reads."""
    try:
        ok = template.count("{}") == 1 and template.format("x") == template.replace("{}", "x", 1)
    except (IndexError, KeyError, ValueError):
        ok = False
    _require(ok, f"{where} {template!r}: a template needs exactly one {{}} for the class name and no other braces")
    return template


#: the numeric precisions a run resolves to (:func:`vlprompt.engine.precision.resolve_precision`), and the
#: ``--precision`` choices (``auto``: amp on CUDA, fp32 elsewhere)
RESOLVED_PRECISIONS = ("fp32", "bf16", "amp", "fp16")
PRECISIONS = ("auto", *RESOLVED_PRECISIONS)
#: ``--label-space`` choices of evaluation (:func:`vlprompt.engine.labels.eval_label_space`)
LABEL_SPACES = ("auto", "seen", "unseen")
#: ``train.optimizer`` and ``train.schedule`` choices (:mod:`vlprompt.engine.optim`)
OPTIMIZERS = ("sgd", "adamw", "adam")
SCHEDULES = ("epoch_cosine", "step_cosine")
SUBSAMPLES = ("all", "base", "new")
TRAIN_ORDERS = ("random", "sequential")
TRAIN_TRANSFORMS = ("augment", "resize")


@dataclass
class DataConfig:
    dataset: str = setting("toy-b2n", "dataset name (see `vlprompt list datasets`)")
    data_root: Optional[str] = setting(None, "folder holding the dataset folders / the ImageFolder tree / the images")
    split_file: Optional[str] = setting(None, "CoOp-format split JSON (for --dataset split)")
    shots: int = setting(0, "images per class drawn from train (0 = all; CoOp's few-shot sampling)")
    seed: int = setting(1, "seed of the few-shot sample and of training")
    subsample: str = setting("all", "label space: all classes, the base half or the new half")
    skip_corrupt: bool = setting(False, "skip unreadable images (listed on the console) instead of stopping")
    num_workers: int = setting(0, "data-loader worker processes")
    train_order: str = setting(
        "random", "random: a shuffled epoch (the references' RandomSampler); sequential: the stored few-shot order"
    )
    train_transform: str = setting(
        "augment", "augment: random resized crop + flip; resize: both sides resized, no randomness (parity checks)"
    )
    template: Optional[str] = setting(
        None, "prompt template with one {} for the class name (default: the dataset's own, e.g. CoOp's)"
    )
    templates_file: Optional[str] = setting(None, "file of templates for the zero-shot ensemble (.txt lines / JSON)")
    classnames_file: Optional[str] = setting(
        None, "class names: JSON {folder or raw name: class name} or [names in label order], or text lines"
    )

    def __post_init__(self):
        _require(self.shots >= 0, f"--shots must be >= 0 (0 = all images), got {self.shots}")
        _require(0 <= self.seed < 2**63, f"--seed must be in 0..2^63-1, got {self.seed}")
        _require(self.subsample in SUBSAMPLES, f"--subsample must be one of {', '.join(SUBSAMPLES)}")
        _require(self.num_workers >= 0, f"--num-workers must be >= 0, got {self.num_workers}")
        _require(self.train_order in TRAIN_ORDERS, f"data.train_order must be one of {', '.join(TRAIN_ORDERS)}")
        _require(
            self.train_transform in TRAIN_TRANSFORMS,
            f"data.train_transform must be one of {', '.join(TRAIN_TRANSFORMS)}",
        )
        if self.template is not None:
            check_template(self.template, "--template")


@dataclass
class BackboneConfig:
    name: str = setting("toy", "open_clip model name, model-config JSON path, or `toy`")
    pretrained: Optional[str] = setting(
        None,
        "open_clip tag, local weights file or folder, or `none` (random weights); unset: the architecture's default",
        literal_none=True,
    )
    trust_pickle: bool = setting(False, "allow fully unpickling a weights file (only for files you trust)")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    quick_gelu: Optional[bool] = setting(None, "QuickGELU (OpenAI's CLIP) or GELU; None: decided from the weights")


@dataclass
class TrainConfig:
    epochs: int = setting(10, "training epochs")
    max_epochs: int = setting(0, "cap on the resolved epochs, for quick runs of published settings (0 = no cap)")
    batch_size: int = setting(4, "training batch size")
    lr: float = setting(0.0035, "base learning rate")
    optimizer: str = setting(
        "sgd", "sgd (Dassl's SGD, the CoOp family) | adamw (CLIP-LoRA, Tip-Adapter-F) | adam (Dassl's Adam: TCP)"
    )
    momentum: float = setting(0.9, "SGD momentum", bounds=AT_LEAST_0)
    weight_decay: float = setting(5e-4, "weight decay (applies to the prompts too, as in Dassl)", bounds=AT_LEAST_0)
    adam_beta1: float = setting(0.9, "AdamW beta1")
    adam_beta2: float = setting(0.999, "AdamW beta2")
    adam_eps: float = setting(1e-8, "AdamW epsilon")
    schedule: str = setting(
        "epoch_cosine", "epoch_cosine (Dassl: constant warm-up, cosine per epoch) | step_cosine (cosine per step)"
    )
    min_lr: float = setting(0.0, "the final learning rate of step_cosine (eta_min)")
    steps: int = setting(0, "0: train.epochs decides; N > 0: N optimizer steps in all, replacing train.epochs")
    warmup_epochs: int = setting(1, "epochs of constant warm-up before cosine annealing (epoch_cosine)")
    warmup_lr: float = setting(1e-5, "learning rate of the constant warm-up")
    precision: str = setting("auto", "auto | fp32 | bf16 | amp | fp16 (the references' pure half mode)")
    feature_cache: bool = setting(True, "train on cached frozen image features when the image tower has no prompts")
    feature_pool: int = setting(
        0, "0: a fresh augmented view of every image in every epoch (the references); N > 0: each epoch draws one of N"
    )
    shared_prefix: bool = setting(True, "encode the class-shared prompt prefix once (exact; false: full sequences)")
    text_chunk: int = setting(0, "most text sequences per text-tower pass, checkpointed when chunked (0 = automatic)")
    fp16_prompts: bool = setting(
        False, "round prompt tokens inserted into the towers to fp16, as the references' .half() (parity checks)"
    )
    log_steps: bool = setting(False, "write one line per optimizer step to steps.jsonl (losses, lr, batch accuracy)")
    causal_truncation: bool = setting(
        True,
        "run the text tower only up to the batch's last EOT token (exact); false: all 77 positions and no shared "
        "prefix, the references' text pass (speed comparisons)",
    )
    eval_every: int = setting(0, "evaluate on the test split every N epochs (0 = only at the end)")
    test_batch_size: int = setting(100, "evaluation batch size")
    eval_chunk: int = setting(25, "images per chunk for image-conditioned text (CoCoOp) evaluation")

    def __post_init__(self):
        _require(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        _require(self.max_epochs >= 0, f"train.max_epochs must be >= 0 (0 = no cap), got {self.max_epochs}")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        for name, label in (("lr", "--lr (train.lr)"), ("warmup_lr", "train.warmup_lr")):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, f"{label} must be a positive number, got {value}")
        _require(self.optimizer in OPTIMIZERS, f"train.optimizer must be one of {', '.join(OPTIMIZERS)}")
        _require(self.schedule in SCHEDULES, f"train.schedule must be one of {', '.join(SCHEDULES)}")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            _require(0 <= value < 1, f"train.{name} must be in [0, 1), got {value}")
        _require(math.isfinite(self.adam_eps) and self.adam_eps > 0, f"train.adam_eps must be > 0, got {self.adam_eps}")
        _require(
            math.isfinite(self.min_lr) and 0 <= self.min_lr <= self.lr,
            f"train.min_lr must be in [0, train.lr], got {self.min_lr}",
        )
        _require(
            self.min_lr == 0 or self.schedule == "step_cosine",
            "train.min_lr applies to train.schedule=step_cosine only (Dassl's cosine ends at 0)",
        )
        _require(self.steps >= 0, f"train.steps must be >= 0 (0 = train.epochs decides), got {self.steps}")
        _require(self.warmup_epochs >= 0, f"train.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        _require(self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}")
        _require(self.feature_pool >= 0, f"--feature-pool must be >= 0, got {self.feature_pool}")
        _require(self.text_chunk >= 0, f"train.text_chunk must be >= 0 (0 = automatic), got {self.text_chunk}")
        _require(self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}")
        _require(
            self.test_batch_size >= 1 and self.eval_chunk >= 1,
            f"train.test_batch_size (--batch-size of zeroshot/eval) and train.eval_chunk must be >= 1, "
            f"got {self.test_batch_size} and {self.eval_chunk}",
        )


#: the fixed sections of a run besides its components
SECTIONS = {"data": DataConfig, "backbone": BackboneConfig, "train": TrainConfig}


# ------------------------------------------------------------------------------------------ values and overrides
def _field_types(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def coerce(value: Any, typ: Any, key: str) -> Any:
    """Parse ``value`` (a ``--set`` string or a YAML scalar) as the annotated type ``typ`` of ``key``."""
    origin = typing.get_origin(typ)
    if origin is typing.Union:
        options = [t for t in typing.get_args(typ) if t is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        errors = []
        for option in options:
            try:
                return coerce(value, option, key)
            except VLPromptError as exc:
                errors.append(str(exc))
        raise VLPromptError(errors[0] if errors else f"{key}={value!r} has an unsupported type")
    if typ is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise VLPromptError(f"{key}={value}: expected true or false")
    if typ in (int, float):
        if isinstance(value, bool):
            raise VLPromptError(f"{key}={value}: expected {'an' if typ is int else 'a'} {typ.__name__}")
        try:
            number = typ(value)
        except (TypeError, ValueError):
            raise VLPromptError(f"{key}={value}: expected {'an' if typ is int else 'a'} {typ.__name__}") from None
        if typ is int and isinstance(value, float) and value != number:
            raise VLPromptError(f"{key}={value}: expected an int")
        return number
    if typ is str:
        return str(value)
    return value


def coerce_field(cls, key: str, value: Any, section: str) -> Any:
    """``value`` parsed for field ``key`` of section dataclass ``cls`` (:func:`coerce`, except that a
    ``literal_none`` field keeps the string ``none``)."""
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}.get(key, {})
    if meta.get("literal_none") and isinstance(value, str) and value.lower() == "none":
        return "none"
    return coerce(value, _field_types(cls)[key], f"{section}.{key}")


def make_section(cls, values: Dict[str, Any], section: str):
    """Instantiate section dataclass ``cls`` from ``values`` (coerced to the field types; unknown keys refused)."""
    types = _field_types(cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise VLPromptError(
            f"unknown setting {section}.{unknown[0]}; {section} has: {', '.join(sorted(types)) or 'no settings'}"
        )
    coerced = {k: coerce_field(cls, k, v, section) for k, v in values.items()}
    check_bounds(cls, coerced, section)
    try:
        return cls(**coerced)
    except TypeError as exc:
        raise VLPromptError(f"invalid {section} settings: {exc}") from None


def parse_override(pair: str) -> Tuple[str, str, str]:
    """``"section.key=value"`` -> ``(section, key, value)`` (the value still a string)."""
    key, sep, value = pair.partition("=")
    section, dot, name = key.partition(".")
    if not sep or not dot or not section or not name:
        raise VLPromptError(f"--set {pair!r}: expected section.key=value, e.g. train.epochs=5 or coop.n_ctx=4")
    return section.strip(), name.strip(), value.strip()


def to_dict(config) -> Dict[str, Any]:
    return dataclasses.asdict(config)


# ------------------------------------------------------------------------------------------ the run
@dataclass
class RunConfig:
    """Everything that determines a run. ``components`` maps component names to their config dataclasses;
    ``sources`` records where each non-default value came from (preset, dataset rule, flag, ``--set``)."""

    method: str
    data: DataConfig = field(default_factory=DataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    components: Dict[str, Any] = field(default_factory=dict)
    protocol: Optional[str] = None
    preset: Optional[str] = None
    init_from: Optional[str] = None
    out: Optional[str] = None
    sources: Dict[str, str] = field(default_factory=dict)

    def section(self, name: str):
        """The dataclass of section ``name`` (``data``, ``backbone``, ``train`` or a component)."""
        if name in SECTIONS:
            return getattr(self, name)
        try:
            return self.components[name]
        except KeyError:
            raise VLPromptError(
                f"unknown section {name!r}; this run has: {', '.join([*SECTIONS, *self.components])}"
            ) from None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "method": self.method,
            "protocol": self.protocol,
            "preset": self.preset,
            "init_from": self.init_from,
            "out": self.out,
            "data": to_dict(self.data),
            "backbone": to_dict(self.backbone),
            "train": to_dict(self.train),
            "components": {name: to_dict(cfg) for name, cfg in self.components.items()},
            "sources": dict(self.sources),
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "RunConfig":
        from vlprompt.task.composition import parse_method

        if not isinstance(d, dict) or "method" not in d:
            raise VLPromptError("not a vlprompt run configuration (no `method`)")
        composition = parse_method(d["method"])
        stored = d.get("components") or {}
        components = {}
        for name, config_class in composition.configs():
            components[name] = make_section(config_class, stored.get(name) or {}, name)
        return cls(
            method=d["method"],
            data=make_section(DataConfig, d.get("data") or {}, "data"),
            backbone=make_section(BackboneConfig, d.get("backbone") or {}, "backbone"),
            train=make_section(TrainConfig, d.get("train") or {}, "train"),
            components=components,
            protocol=d.get("protocol"),
            preset=d.get("preset"),
            init_from=d.get("init_from"),
            out=d.get("out"),
            sources=dict(d.get("sources") or {}),
        )

    def dump(self, path: Path) -> None:
        from vlprompt import fileio

        fileio.write_yaml(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise VLPromptError(f"cannot read run configuration {path}: {exc}") from None
        try:
            return cls.from_dict(data)
        except VLPromptError as exc:
            raise VLPromptError(f"{path}: {exc}") from None

    def describe(self) -> List[str]:
        """One ``section.key = value <- source`` line per setting."""
        from vlprompt.presets import describe

        values = {name: to_dict(self.section(name)) for name in [*SECTIONS, *self.components]}
        return describe(self.sources, values)


#: option names of :func:`make_config` that are not ``DataConfig`` / ``TrainConfig`` field names
_BACKBONE_OPTIONS = {
    "backbone": "name",
    "pretrained": "pretrained",
    "trust_pickle": "trust_pickle",
    "device": "device",
    "quick_gelu": "quick_gelu",
}


def make_config(
    method: str,
    dataset: str = "toy-b2n",
    *,
    protocol: Optional[str] = None,
    preset: Optional[str] = None,
    overrides: Sequence[str] = (),
    out: Optional[str] = None,
    init_from: Optional[str] = None,
    **options: Any,
) -> RunConfig:
    """A resolved :class:`RunConfig` for ``method`` on ``dataset``.

    ``options`` are field names of :class:`DataConfig` (``shots``, ``seed``, ``subsample``, ``data_root``, ...) and
    :class:`TrainConfig` (``epochs``, ``lr``, ``batch_size``, ``precision``, ...) plus ``backbone``, ``pretrained``,
    ``trust_pickle``, ``device`` and ``quick_gelu``; ``None`` means "not given". ``overrides`` are ``section.key=value`` strings
    (``--set``). Values resolve as dataclass defaults < published presets and dataset rules < options <
    overrides (:func:`vlprompt.presets.resolve`).

    >>> cfg = make_config("coop", "toy-b2n", shots=16, subsample="base", epochs=2)  # doctest: +SKIP
    """
    from vlprompt.presets import resolve
    from vlprompt.task.composition import parse_method

    composition = parse_method(method)
    configs = composition.configs()
    flags: Dict[str, Dict[str, Any]] = {"data": {"dataset": dataset}, "backbone": {}, "train": {}}
    train_fields, data_fields = set(_field_types(TrainConfig)), set(_field_types(DataConfig))
    for key, value in options.items():
        if key in _BACKBONE_OPTIONS:
            flags["backbone"][_BACKBONE_OPTIONS[key]] = value
        elif key in data_fields:
            flags["data"][key] = value
        elif key in train_fields:
            flags["train"][key] = value
        else:
            known = sorted(data_fields | train_fields | set(_BACKBONE_OPTIONS))
            raise VLPromptError(f"unknown run option {key!r}; known: {', '.join(known)}")
    sections = {**SECTIONS, **dict(configs)}
    parsed = []
    for pair in overrides:
        section, key, value = parse_override(pair)
        if section not in sections:
            raise VLPromptError(f"--set {pair}: unknown section {section!r}; this run has: {', '.join(sections)}")
        types = _field_types(sections[section])
        if key not in types:
            make_section(sections[section], {key: None}, section)  # raises the one-line "unknown setting" error
        parsed.append((section, key, coerce_field(sections[section], key, value, section)))
    shots = flags["data"].get("shots") or 0
    resolution = resolve(
        configs,
        protocol=protocol,
        preset=preset,
        dataset=dataset,
        shots=shots,
        flags=flags,
        overrides=parsed,
    )
    values = resolution.values
    cap = values.get("train", {}).get("max_epochs") or 0
    if cap and values["train"].get("epochs", TrainConfig.epochs) > cap:
        resolution.set("train", "epochs", cap, f"capped by train.max_epochs (was {values['train'].get('epochs')})")
    built = {name: make_section(cls, values.get(name, {}), name) for name, cls in sections.items()}
    return RunConfig(
        method=composition.method,
        data=built.pop("data"),
        backbone=built.pop("backbone"),
        train=built.pop("train"),
        components=built,
        protocol=protocol,
        preset=resolution.preset,
        init_from=init_from,
        out=out,
        sources=resolution.sources,
    )
