"""A reference checkpoint as a vlprompt run directory (``vlprompt convert --from dassl``).

:func:`convert_checkpoint` reads the checkpoint with the restricted unpickler, renames its tensors
(:func:`~vlprompt.convert.keymap.to_vlprompt`), resolves the method's configuration, builds the task on the
given backbone for the label space of the given data flags, loads the tensors and writes a run directory
(``weights.safetensors`` + ``weights.json``, ``config.yaml``, ``log.txt``; kind ``convert``) that
``vlprompt eval``, ``corrupt``, ``analyze`` and ``train --init-from`` accept like a trained run.

Settings:

* read from the tensor shapes (the learner's declared ``checkpoint_settings``, :mod:`vlprompt.components`): the
  number of context / prompt vectors, the prompt depths (the stacked deep prompts + 1), CoOp's class-specific
  context (a ``[K, M, D]`` ``ctx``); a ``--set`` that contradicts them is a one-line error;
* fixed by the reference trainer: MaPLe_FSA is RESTORE's released formulation (``restore.formulation=code``);
* ``train.fp16_prompts`` is on unless set: the reference rounds the prompt tokens it inserts into the towers
  to fp16 in every precision mode, so a converted run reproduces its logits;
* everything else (``ctx_init``, the class-token position, add-on weights) comes from the presets and
  ``--set``, as for ``train``. A CoOp / CoCoOp ``ctx_init`` whose word count differs from the checkpoint's
  context length is dropped when it came from a preset (the words only initialise the context, which the
  checkpoint replaces) and refused when given with ``--set``.

The label space is that of the data flags (``--dataset``, ``--split-file``, ``--subsample``, ...): give those
the checkpoint was trained with, so that a base-class run evaluates on the new classes like any other run.
Class-dependent buffers (``token_prefix`` / ``token_suffix``) are dropped and rebuilt from the class names, after
their class count is compared with the data flags' (another count is a one-line error);
tensors the reference saves but never uses are reported and ignored. A DePT checkpoint without its linear
head (``linear_probe_proj``) converts to the base method alone: its FiLM layers only feed that head, so every
evaluation is the similarity head's. Frozen CLIP tensors found in the checkpoint (MaPLe, IVLP, PromptSRC, DePT
and MaPLe_FSA save the whole model) are checked against the backbone: a missing counterpart, another shape, or
values further apart than fp16 rounding (the references' default half mode) mean another backbone, which is an
error unless ``check_frozen`` is off. Trained tensors holding NaN or infinity, and context tensors without vectors
(or dimensions) for their setting, are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from vlprompt import fileio
from vlprompt.errors import VLPromptError

log = logging.getLogger("vlprompt")

#: frozen tensors may differ from the backbone's by fp16 rounding (max |diff| / max |w|)
FROZEN_TOLERANCE = 2.0**-8
_SHOWN = 4


@dataclass
class Conversion:
    """What :func:`convert_checkpoint` did."""

    path: Path  # the run directory written
    method: str
    trainer: str
    source: Path
    epoch: Optional[int]
    tensors: Dict[str, List[int]]  # vlprompt names -> shapes loaded
    settings: Dict[str, Any]  # settings read from the shapes / implied by the trainer
    dropped_class_buffers: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)  # saved and used by the reference, not by this conversion
    derived: List[str] = field(default_factory=list)
    frozen_checked: int = 0
    frozen_max_abs_diff: float = 0.0

    def describe(self) -> List[str]:
        """The one- or two-line report printed by ``vlprompt convert``."""
        epoch = f", epoch {self.epoch}" if self.epoch is not None else ""
        shapes = _names([f"{k} {v}" for k, v in self.tensors.items()])
        lines = [
            f"converted {self.source} ({self.trainer}{epoch}) -> {self.path} as {self.method}: "
            f"{len(self.tensors)} tensor(s) ({shapes})"
        ]
        notes = []
        if self.dropped_class_buffers:
            notes.append(
                f"dropped class buffers {', '.join(self.dropped_class_buffers)} (rebuilt from the class names)"
            )
        if self.unused:
            notes.append(
                f"ignored {len(self.unused)} tensor(s) the reference saves but never uses ({_names(self.unused)})"
            )
        if self.ignored:
            notes.append(f"ignored {_names(self.ignored)} (no DePT head: the FiLM layers only feed it)")
        if self.derived:
            notes.append(f"derived {', '.join(self.derived)}")
        if self.frozen_checked:
            notes.append(
                f"{self.frozen_checked} frozen CLIP tensor(s) match the backbone (max |diff| {self.frozen_max_abs_diff:.3g})"
            )
        if notes:
            lines.append("; ".join(notes))
        return lines


def _names(names: Sequence[str]) -> str:
    return ", ".join(list(names)[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


# ------------------------------------------------------------------------------------------ settings
def shape_settings(base: str, tensors: Dict[str, torch.Tensor], source: Path) -> Dict[Tuple[str, str], Any]:
    """``{(section, key): value}`` read from the converted tensors' shapes (the learner's ``checkpoint_settings``); a
    tensor with too few dimensions or no vectors for its setting is a one-line error naming the checkpoint."""
    from vlprompt.registry import LEARNERS

    settings = {}
    for shape in LEARNERS.config(base).checkpoint_settings:
        key, name, read, absent = shape.key, shape.tensor, shape.read, shape.absent
        try:
            value = read(tensors[name]) if name in tensors else absent
        except IndexError:
            value = 0
        if key.startswith("n_ctx") and value is not None and value < 1:
            raise VLPromptError(
                f"{source}: {name} has shape {list(tensors[name].shape)}, no {base} context (one [n, width] vector "
                "per context token); the checkpoint is damaged or holds another method (--method)"
            )
        if value is not None:
            settings[(base, key)] = value
    return settings


def check_finite(tensors: Dict[str, torch.Tensor], source: Path) -> None:
    """Refuse trained tensors holding NaN or infinity (a diverged or damaged run): they would evaluate to noise."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise VLPromptError(
                f"{source}: {name} holds {bad} NaN/infinite value(s); the checkpoint is damaged or its training "
                "diverged: convert a checkpoint of a run that trained normally"
            )


def check_class_count(ref_state: Dict[str, torch.Tensor], buffers: Sequence[str], space_size: int, source, where):
    """The class-name buffers the reference saved (``token_prefix`` ``[K, 1, D]``, ...) hold one row per class of
    the label space it was trained on: refuse data flags that give another number of classes."""
    counts = {name: ref_state[name].shape[0] for name in buffers if name in ref_state and ref_state[name].dim()}
    for name, k in counts.items():
        if k != space_size:
            raise VLPromptError(
                f"{source}: the checkpoint was trained on {k} classes ({name} {list(ref_state[name].shape)}), the "
                f"data flags ({where}) give {space_size}; pass the --dataset / --subsample it was trained on"
            )


def _user_settings(overrides: Sequence[str]) -> Dict[Tuple[str, str], str]:
    from vlprompt.config import parse_override

    return {(section, key): value for section, key, value in map(parse_override, overrides)}


def _check_contradictions(fixed: Dict[Tuple[str, str], Any], user: Dict[Tuple[str, str], str], method: str) -> None:
    from vlprompt.config import coerce

    for (section, key), value in fixed.items():
        given = user.get((section, key))
        if given is not None and coerce(given, type(value), f"{section}.{key}") != value:
            raise VLPromptError(
                f"--set {section}.{key}={given} contradicts the checkpoint, which holds {section}.{key}={value} "
                f"for {method}; drop that --set"
            )


def _word_init(method: str, base: str, fixed, user, protocol, preset, dataset) -> Optional[str]:
    """The ``--set`` that keeps a CoOp / CoCoOp ``ctx_init`` consistent with the checkpoint's context (its
    length; none with a class-specific context)."""
    from vlprompt.presets import resolve
    from vlprompt.registry import LEARNERS
    from vlprompt.task.composition import parse_method

    if not LEARNERS.config(base).checkpoint_word_init:
        return None
    n_ctx, csc = fixed[(base, "n_ctx")], fixed.get((base, "csc"), False)
    given = user.get((base, "ctx_init"))
    if given is not None:
        words = given.replace("_", " ").split()
        if words and (len(words) != n_ctx or csc):
            raise VLPromptError(
                f"--set {base}.ctx_init={given!r} does not fit the checkpoint's context ({n_ctx} vectors"
                f"{', class-specific' if csc else ''}); drop it (the checkpoint's context replaces the init words)"
            )
        return None
    configs = parse_method(method).configs()
    resolved = resolve(configs, protocol=protocol, preset=preset, dataset=dataset).values.get(base, {})
    words = str(resolved.get("ctx_init", configs[0][1]().ctx_init)).replace("_", " ").split()
    return f"{base}.ctx_init=" if words and (len(words) != n_ctx or csc) else None


# ------------------------------------------------------------------------------------------ checks
def check_frozen(frozen: Dict[str, torch.Tensor], backbone) -> float:
    """The largest |difference| between the checkpoint's frozen CLIP tensors and the backbone's; a tensor the
    backbone lacks, of another shape, or further apart than fp16 rounding is a one-line error."""
    from vlprompt.convert.keymap import clip_name

    own = backbone.clip.state_dict()
    worst = 0.0
    hint = "is --backbone / --pretrained the model the checkpoint was trained on? (--skip-frozen-check converts anyway)"
    for name, tensor in frozen.items():
        target = own.get(clip_name(name))
        if target is None:
            raise VLPromptError(f"the checkpoint's frozen tensor {name} has no counterpart in the backbone; {hint}")
        if tensor.numel() != target.numel() or (tensor.dim() and tuple(tensor.shape) != tuple(target.shape)):
            raise VLPromptError(
                f"the checkpoint's frozen tensor {name} has shape {list(tensor.shape)}, the backbone's "
                f"{list(target.shape)}; {hint}"
            )
        a, b = tensor.float().reshape(target.shape), target.detach().float().cpu()
        diff = float((a - b).abs().max()) if b.numel() else 0.0
        scale = float(b.abs().max()) if b.numel() else 0.0
        if diff > FROZEN_TOLERANCE * scale:
            raise VLPromptError(
                f"the checkpoint's frozen tensor {name} differs from the backbone's by up to {diff:.3g} "
                f"(largest |value| {scale:.3g}); {hint}"
            )
        worst = max(worst, diff)
    return worst


def _load_checked(task, tensors: Dict[str, torch.Tensor], source: Path, space_size: int) -> None:
    """Load the converted tensors; a class-dependent tensor sized for another label space names the data flags."""
    from vlprompt.engine.weights import load_into

    task.shape_fitted_buffers(tensors)
    own = task.release_state_dict()
    for name in task.learner.fitted_settings:  # not saved by the reference: the configured values
        tensors.setdefault(f"learner.{name}", own[f"learner.{name}"])
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if any(space_size in own[k].shape for k in wrong):
        shapes = "; ".join(f"{k} {list(tensors[k].shape)} (here {list(own[k].shape)})" for k in wrong[:_SHOWN])
        raise VLPromptError(
            f"{source}: {shapes}: the data flags give {space_size} classes; pass the --dataset / --subsample the "
            "checkpoint was trained on"
        )
    load_into(task, tensors, source)


def _without(method: str, addon: str) -> str:
    return "+".join(part for part in method.split("+") if part.strip().lower() != addon)


# ------------------------------------------------------------------------------------------ conversion
def convert_checkpoint(
    checkpoint,
    out,
    method: Optional[str] = None,
    dataset: str = "toy-b2n",
    *,
    protocol: Optional[str] = None,
    preset: Optional[str] = None,
    overrides: Sequence[str] = (),
    check_frozen_tensors: bool = True,
    quiet: bool = False,
    source_format: str = "dassl",
    **options: Any,
) -> Conversion:
    """Convert the reference checkpoint ``checkpoint`` (a ``model.pth.tar-N`` file, its module folder or its
    run folder) into the run directory ``out`` (see the module doc).

    ``method`` (inferred from the tensor names when None), ``dataset``, ``protocol``, ``preset``, ``overrides``
    (``--set``) and ``options`` (the data and backbone fields of :func:`~vlprompt.config.make_config`:
    ``data_root``, ``split_file``, ``subsample``, ``backbone``, ``pretrained``, ``trust_pickle``, ...) are those
    of ``vlprompt train``; ``trust_pickle`` also applies to the checkpoint. ``source_format`` ``tip-adapter``: a
    Tip-Adapter cache folder (:mod:`vlprompt.convert.tip_adapter`) instead of a Dassl checkpoint.
    """
    from vlprompt.config import make_config
    from vlprompt.convert.dassl import read_reference_checkpoint
    from vlprompt.convert.formats import TIP_ADAPTER
    from vlprompt.convert.keymap import infer_method, to_vlprompt, trainers
    from vlprompt.convert.tip_adapter import read_tip_cache
    from vlprompt.engine.labels import label_space
    from vlprompt.pipeline.build import build_task
    from vlprompt.pipeline.loading import load_backbone, load_data
    from vlprompt.task.composition import parse_method

    if source_format == TIP_ADAPTER:
        ref = read_tip_cache(checkpoint, options.get("shots"))
    else:
        ref = read_reference_checkpoint(checkpoint, trust_pickle=bool(options.get("trust_pickle")))
    method = method or infer_method(ref.state_dict)
    converted = to_vlprompt(method, ref.state_dict)
    reference = trainers()[converted.method]
    trainer = reference.name
    tensors, ignored = dict(converted.tensors), []
    addon, marker = reference.optional_addon or (None, None)
    if addon in parse_method(method).addons and marker not in tensors:
        ignored = [k for k in tensors if k.startswith(f"addons.{addon}.")]
        tensors = {k: v for k, v in tensors.items() if k not in ignored}
        method = _without(method, addon)
    composition = parse_method(method)
    check_finite(tensors, ref.source)
    trained_with = {tuple(key.split(".", 1)): value for key, value in reference.settings}
    fixed = {**shape_settings(composition.base, tensors, ref.source), **trained_with}
    user = _user_settings(overrides)
    _check_contradictions(fixed, user, method)
    extra = [f"{section}.{key}={value}" for (section, key), value in fixed.items()]
    word_init = _word_init(method, composition.base, fixed, user, protocol, preset, dataset)
    extra += [word_init] if word_init else []
    extra += [] if ("train", "fp16_prompts") in user else ["train.fp16_prompts=true"]
    cfg = make_config(method, dataset, protocol=protocol, preset=preset, overrides=[*overrides, *extra],
                      out=str(out), **options)  # fmt: skip
    for dotted in [e.split("=", 1)[0] for e in extra]:
        cfg.sources[dotted] = f"vlprompt convert ({trainer} checkpoint)"
    data = load_data(cfg.data)
    space = label_space(data)
    where = f"--dataset {cfg.data.dataset} --subsample {cfg.data.subsample}"
    check_class_count(ref.state_dict, converted.dropped_class_buffers, len(space), ref.source, where)
    backbone = load_backbone(cfg.backbone, quiet=quiet)
    frozen_diff = check_frozen(converted.frozen, backbone) if check_frozen_tensors and converted.frozen else 0.0
    task = build_task(backbone, cfg, space)
    _load_checked(task, tensors, ref.source, len(space))
    result = Conversion(
        path=Path(out),
        method=cfg.method,
        trainer=trainer,
        source=ref.source,
        epoch=ref.epoch,
        tensors={k: list(v.shape) for k, v in tensors.items()},
        settings={f"{s}.{k}": v for (s, k), v in fixed.items()},
        dropped_class_buffers=converted.dropped_class_buffers,
        unused=converted.unused,
        ignored=ignored,
        derived=converted.derived,
        frozen_checked=len(converted.frozen) if check_frozen_tensors else 0,
        frozen_max_abs_diff=frozen_diff,
    )
    provenance = {
        "module": ref.module,
        "epoch": ref.epoch,
        "settings_from_checkpoint": result.settings,
        "dropped_class_buffers": result.dropped_class_buffers,
        "unused": result.unused,
        "ignored": ignored,
        "derived": result.derived,
        "frozen_checked": result.frozen_checked,
        "frozen_max_abs_diff": frozen_diff,
    }
    write_converted_run(Path(out), cfg, task, backbone, space, ref.source, trainer, provenance, result.describe())
    if not quiet:
        print("\n".join(result.describe()))
    return result


def write_converted_run(out: Path, cfg, task, backbone, space, source: Path, trainer: str, provenance, lines) -> None:
    """The run directory of a converted checkpoint (kind ``convert``): ``config.yaml`` and the weights with their
    provenance (the source file and its SHA-1, the reference trainer, ``provenance``); ``lines`` go to its log."""
    from vlprompt.config import to_dict
    from vlprompt.engine.rundir import CONFIG, RunDir
    from vlprompt.engine.weights import save_weights
    from vlprompt.pipeline.identity import backbone_identity, data_identity
    from vlprompt.pipeline.records import weights_meta

    sha1 = fileio.file_digest(source, "sha1")
    identity = {
        "checkpoint": str(source.resolve()),
        "checkpoint_sha1": sha1,
        "method": cfg.method,
        "data": data_identity(cfg.data),
        "backbone": backbone_identity(cfg.backbone),
        "components": {name: to_dict(c) for name, c in cfg.components.items()},
        "train": to_dict(cfg.train),
    }
    provenance = {"checkpoint": str(source.resolve()), "checkpoint_sha1": sha1, "trainer": trainer, **provenance}
    with RunDir(out, "convert", identity).open() as run:
        cfg.dump(run.path / CONFIG)
        save_weights(run.path, task, {**weights_meta(cfg, task, backbone, space), "converted_from": provenance})
        for line in lines:
            log.info(line)
