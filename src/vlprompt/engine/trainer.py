"""One method-agnostic training loop with Dassl ``TrainerX`` semantics (the reference trainers' engine).

* SGD (momentum 0.9, weight decay 5e-4, no Nesterov) over the task's trainable parameters, one group per
  learning-rate multiplier; the groups' LRs follow :func:`~vlprompt.engine.schedule.group_lrs` (the warm-up LR
  for every group, then multiplier × the cosine LR) and are constant within an epoch (the reference steps its
  scheduler once, at the last batch of every epoch). Each epoch record holds ``lr`` (multiplier 1) and
  ``lr_groups`` (every group's LR, in group order). ``train.optimizer``/``train.schedule``/``train.steps`` choose
  another optimizer (AdamW), a per-step cosine and an iteration budget (:mod:`vlprompt.engine.optim`).
* A component's gradient hook (:mod:`vlprompt.engine.backward`) may take over the backward pass; otherwise the
  loop back-propagates the summed loss.
* Each step asks the task for its loss terms (:meth:`~vlprompt.task.PromptTask.training_step`); the loop only sums,
  back-propagates, steps and logs. The last-epoch model is the result (no validation-based selection).
* Randomness is re-seeded at every epoch start from ``(seed, epoch)``, and the full state (trainable tensors,
  persistent buffers, optimizer, the epoch records) is checkpointed atomically at every epoch end, so a killed
  run re-started with the same command resumes and ends with the same weights as an uninterrupted run; the
  run's ``metrics.jsonl`` is rewritten from the checkpoint's records on resume.
* A non-finite loss stops the run with the epoch, step and loss term; nothing already written changes.
* ``train.log_steps`` writes one JSON line per optimizer step to ``steps.jsonl`` (``epoch`` and ``batch``
  counted from 1, the base ``lr`` in force, ``loss``, every loss term and report value, the batch accuracy
  ``acc`` in percent), appended per finished epoch; a resumed run keeps the lines of the epochs it restored.
* On several processes (:mod:`vlprompt.engine.distributed`) each rank trains on its slice of every global batch
  behind DistributedDataParallel, its loss weighted by its share of the batch; the epoch's records (and the
  step lines) are summed over the ranks, so they and the weights are those of the single-process run. Rank 0
  writes the checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import pickle
import random
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from vlprompt import fileio
from vlprompt.engine import distributed
from vlprompt.engine.backward import GradientContext
from vlprompt.engine.optim import LRPlan, build_optimizer, epochs_for_steps, set_lrs
from vlprompt.engine.precision import autocast_context
from vlprompt.engine.train_data import TrainData
from vlprompt.errors import VLPromptError
from vlprompt.progress import CONSOLE
from vlprompt.progress import progress as progress_bar
from vlprompt.task.types import StepInfo

log = logging.getLogger(__name__)

RESUME_FILE = "checkpoints/last.pt"
STEPS_FILE = "steps.jsonl"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 100_003 + epoch * 7_919 + 17) % (2**31)


def save_resume(path: Path, task, optimizer, epoch: int, history: list) -> None:
    state = {k: v.detach().clone() for k, v in task.state_dict().items()}
    payload = {"epoch": epoch, "task": state, "optimizer": optimizer.state_dict(), "history": history}
    fileio.atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_resume(path: Path) -> dict:
    """The payload of a resume checkpoint (tensors and plain values only); a damaged, truncated or foreign file is a
    one-line error — checked before any work when a run is restarted."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _unusable(path, "it holds objects other than tensors and plain values") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise _unusable(path, f"damaged or truncated: {_first_sentence(exc)}") from None
    if not isinstance(payload, dict) or not {"epoch", "task", "optimizer"} <= set(payload):
        raise _unusable(path, "not a vlprompt resume checkpoint")
    return payload


def load_resume(path: Path, task, optimizer) -> tuple:
    """``(epochs done, epoch records)`` from a resume checkpoint; a damaged one is a one-line error."""
    payload = read_resume(path)
    try:
        task.load_state_dict(payload["task"])
        optimizer.load_state_dict(payload["optimizer"])
        return int(payload["epoch"]), list(payload.get("history", []))
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise _unusable(path, f"it does not fit this run: {_first_sentence(exc)}") from None


def _first_sentence(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(exc).__name__


def _unusable(path: Path, reason: str) -> VLPromptError:
    return VLPromptError(f"cannot resume from {path} ({reason}); delete it to restart the run from epoch 1")


def train(
    task,
    data: TrainData,
    cfg,
    run,
    seed: int,
    device: torch.device,
    evaluate: Optional[Callable[[int], Dict[str, float]]] = None,
    progress: bool = True,
    on_epoch: Optional[Callable[[dict], None]] = None,
) -> List[dict]:
    """Train ``task`` for ``cfg.epochs`` epochs in run directory ``run``
    (:class:`~vlprompt.engine.rundir.RunDir`); returns the per-epoch records, each also passed to ``on_epoch``
    (e.g. TensorBoard) once written to ``metrics.jsonl`` and checkpointed."""
    groups = task.param_groups(cfg.lr)
    if not groups:
        raise VLPromptError(f"method {task.method!r} has no trainable parameters; use `vlprompt zeroshot` instead")
    optimizer = build_optimizer(groups, cfg)
    resume_path = run.path / RESUME_FILE
    start, history = 0, []
    steps_path = run.path / STEPS_FILE
    main = distributed.is_main()
    if resume_path.exists():
        start, history = load_resume(resume_path, task, optimizer)
        run.rewrite_metrics(history)
        log.info("resuming from %s after epoch %d/%d", resume_path, start, cfg.epochs)
    if cfg.log_steps and main:
        _keep_steps(steps_path, start)
    step_fn = distributed.training_step_function(task)
    batches = data.batches_per_epoch(cfg.batch_size)
    if cfg.steps:  # an iteration budget replaces the epochs; train.max_epochs (quick runs) caps it too
        steps = min(cfg.steps, cfg.max_epochs * batches) if cfg.max_epochs else cfg.steps
        if steps < cfg.steps:
            log.info("train.steps %d capped by train.max_epochs=%d to %d", cfg.steps, cfg.max_epochs, steps)
        cfg = dataclasses.replace(cfg, steps=steps, epochs=epochs_for_steps(steps, batches))
    plan = LRPlan(cfg, [group["lr_scale"] for group in optimizer.param_groups], batches)
    done = sum(record.get("steps", 0) for record in history)
    for epoch in range(start, cfg.epochs):
        first = done
        lrs = plan.group_lrs(epoch, first)
        set_lrs(optimizer, lrs)
        step_log: Optional[List[dict]] = [] if cfg.log_steps else None
        record = run_epoch(
            task, data, optimizer, cfg, seed, epoch, device, progress, step_fn, step_log=step_log, plan=plan, done=done
        )
        done += record.get("steps", 0)
        lr = plan.base_lr(epoch, first)
        if main:
            for entry in step_log or []:
                fileio.append_jsonl(steps_path, {"epoch": epoch + 1, "lr": lr, **entry})
        record.update({"epoch": epoch + 1, "lr": lr, "lr_groups": lrs})
        record.update(task.on_epoch_end(epoch, cfg.epochs))
        if evaluate is not None and cfg.eval_every and (epoch + 1) % cfg.eval_every == 0:
            record.update({f"test_{k}": v for k, v in evaluate(epoch).items()})
        history.append(record)
        run.append_metrics(record)
        log.info(
            "epoch %d/%d %s",
            epoch + 1,
            cfg.epochs,
            " ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)),
            extra=CONSOLE if progress else None,
        )
        if distributed.is_main():
            save_resume(resume_path, task, optimizer, epoch + 1, history)
        if on_epoch is not None:
            on_epoch(record)
    return history


def _keep_steps(path: Path, epochs: int) -> None:
    """Keep the ``steps.jsonl`` lines of the first ``epochs`` epochs (those a resumed run restored)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    kept = [line for line in lines if json.loads(line)["epoch"] <= epochs]
    if len(kept) != len(lines):
        fileio.write_text(path, "".join(line + "\n" for line in kept))


def nonfinite_settings(task, cfg) -> List[str]:
    """``section.key=value`` of every NaN or infinite number among the training settings and the method's and
    add-ons' settings (a cause of a non-finite loss that no learning rate fixes)."""
    import dataclasses
    import math

    sections = [("train", cfg)] + [(task.composition.base, getattr(task.learner, "config", None))]
    sections += [(name, getattr(addon, "config", None)) for name, addon in task.addons.items()]
    return [
        f"{section}.{f.name}={getattr(config, f.name)}"
        for section, config in sections
        if dataclasses.is_dataclass(config)
        for f in dataclasses.fields(config)
        if isinstance(getattr(config, f.name), float) and not math.isfinite(getattr(config, f.name))
    ]


def check_finite(
    losses: Dict[str, torch.Tensor], epoch: int, step: int, suspects: Callable[[], List[str]] = list
) -> None:
    """Stop before the optimizer step when a loss term is not finite (on any process); ``suspects()``: the
    non-finite settings (:func:`nonfinite_settings`), named as the cause instead of the learning-rate advice."""
    flags = distributed.all_reduce_sum({name: float(not torch.isfinite(v).all()) for name, v in losses.items()})
    for name, flag in flags.items():
        if flag:
            suspects = suspects()
            fix = (
                f"the setting {', '.join(suspects)} is not a finite number: give it a finite value (--set)"
                if suspects
                else "lower --lr or use --precision fp32"
            )
            raise VLPromptError(
                f"non-finite loss at epoch {epoch + 1}, step {step + 1}: term {name!r} = "
                f"{float(losses[name].detach())}; stopped before the optimizer step (earlier checkpoints and results "
                f"are untouched) — {fix}"
            )


def run_epoch(
    task,
    data: TrainData,
    optimizer,
    cfg,
    seed: int,
    epoch: int,
    device,
    progress: bool,
    step_fn=None,
    step_log=None,
    plan: Optional[LRPlan] = None,
    done: int = 0,
) -> dict:
    """One epoch; returns its record (mean loss terms, train accuracy; ``steps`` under ``train.steps`` or
    ``step_cosine``). ``step_fn`` (default ``task.training_step``) runs a step — behind DistributedDataParallel on
    several processes, where each takes its rows of every batch (see the module doc). ``step_log``: a list that
    receives one entry per optimizer step (``train.log_steps``). ``plan``/``done``: the LR plan and the optimizer
    steps of the earlier epochs (per-step schedules and the step budget)."""
    seed_everything(epoch_seed(seed, epoch))
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    loader = data.make_loader(epoch, generator)
    task.train()
    sums: Dict[str, float] = {}
    correct = seen = steps = 0
    step_fn, world = step_fn or task.training_step, distributed.world_size()
    hook = getattr(task, "gradient_hook", None)
    counted = plan is not None and (plan.per_step or bool(cfg.steps))
    bar = progress_bar(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", enabled=progress, summary=False)
    for step, batch in enumerate(bar):
        if counted and cfg.steps and done + steps >= cfg.steps:
            break
        if batch is None:  # every image of the batch was skipped (--skip-corrupt)
            continue
        x, y = batch[0], batch[1]
        frozen = batch[3] if len(batch) > 3 else None  # the frozen teacher of these views (train_data)
        if len(y) < world:  # fewer images than processes (left by --skip-corrupt): no process may sit out
            log.warning(
                "epoch %d, step %d: %d image(s) for %d processes; step skipped", epoch + 1, step + 1, len(y), world
            )
            continue
        rows = distributed.local_rows(len(y))
        share = (rows.stop - rows.start) / len(y)
        x, y = x[rows].to(device), y[rows].to(device)
        frozen = frozen[rows].to(device) if frozen is not None else None
        if plan is not None and plan.per_step:
            set_lrs(optimizer, plan.group_lrs(epoch, done + steps))
        # a gradient hook all-reduces its own gradients (GradientContext): DDP must not sync in its backward
        sync = step_fn.no_sync() if hook is not None and world > 1 else contextlib.nullcontext()
        with sync, autocast_context(cfg.precision, device):
            info = StepInfo(epoch=epoch, num_epochs=cfg.epochs, step=step)
            teacher = {} if frozen is None else {"frozen_image": frozen}  # only streams that carry it pass it
            result = step_fn(x, y, info, data.features, **teacher)
        check_finite(result.losses, epoch, step, lambda: nonfinite_settings(task, cfg))
        loss = result.loss
        optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over the ranks: weighting by share · world gives the global batch's gradient
        scale = share * world if world > 1 else 1.0
        if hook is None:
            (loss * scale if world > 1 else loss).backward()
        else:
            hook(result.losses, GradientContext([p for g in optimizer.param_groups for p in g["params"]], scale))
        optimizer.step()
        terms = {name: value.item() for name, value in result.losses.items()}
        terms["loss"] = loss.item()
        terms.update({name: float(value) for name, value in result.report.items()})
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + value * share
        hits = int((result.logits.argmax(-1) == y).sum())
        correct += hits
        seen += len(y)
        steps += 1
        bar.set_postfix(loss=f"{sums['loss'] / steps:.4f}", acc=f"{100.0 * correct / seen:.1f}")
        if step_log is not None:  # the global batch's values: shares summed over the ranks
            line = distributed.all_reduce_sum({**{k: v * share for k, v in terms.items()}, "hits": hits, "n": len(y)})
            hits_all, n_all = line.pop("hits"), line.pop("n")
            step_log.append({"batch": step + 1, "loss": line.pop("loss"), **line, "acc": 100.0 * hits_all / n_all})
    if steps == 0:
        raise VLPromptError("the training split is empty after sampling; check --shots and the dataset")
    sums = distributed.all_reduce_sum(sums)
    counts = distributed.all_reduce_sum({"correct": correct, "seen": seen})
    record = {name: total / steps for name, total in sums.items()}
    record["train_acc"] = 100.0 * counts["correct"] / counts["seen"]
    if counted:
        record["steps"] = steps
    return record
