"""One method-agnostic training loop with Dassl ``TrainerX`` semantics (the reference trainers' engine).

* SGD (momentum 0.9, weight decay 5e-4, no Nesterov) over the task's trainable parameters, one group per
  learning-rate multiplier; the groups' LRs follow :func:`~vlprompt.engine.schedule.group_lrs` (the warm-up LR
  for every group, then multiplier × the cosine LR) and are constant within an epoch (the reference steps its
  scheduler once, at the last batch of every epoch). Each epoch record holds ``lr`` (multiplier 1) and
  ``lr_groups`` (every group's LR, in group order).
* Each step asks the task for its loss terms (:meth:`~vlprompt.task.PromptTask.training_step`); the loop only sums,
  back-propagates, steps and logs. The last-epoch model is the result (no validation-based selection).
* Randomness is re-seeded at every epoch start from ``(seed, epoch)``, and the full state (trainable tensors,
  persistent buffers, optimizer, the epoch records) is checkpointed atomically at every epoch end, so a killed
  run re-started with the same command resumes and ends with the same weights as an uninterrupted run; the
  run's ``metrics.jsonl`` is rewritten from the checkpoint's records on resume.
* A non-finite loss stops the run with the epoch, step and loss term; nothing already written changes.
"""

from __future__ import annotations

import logging
import pickle
import random
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from vlprompt import fileio
from vlprompt.engine.precision import autocast_context
from vlprompt.engine.schedule import group_lrs, lr_at_epoch
from vlprompt.engine.train_data import TrainData
from vlprompt.errors import VLPromptError
from vlprompt.progress import CONSOLE
from vlprompt.progress import progress as progress_bar
from vlprompt.task.types import StepInfo

log = logging.getLogger(__name__)

RESUME_FILE = "checkpoints/last.pt"


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
    optimizer = torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, dampening=0, nesterov=False
    )
    resume_path = run.path / RESUME_FILE
    start, history = 0, []
    if resume_path.exists():
        start, history = load_resume(resume_path, task, optimizer)
        run.rewrite_metrics(history)
        log.info("resuming from %s after epoch %d/%d", resume_path, start, cfg.epochs)
    for epoch in range(start, cfg.epochs):
        lr = lr_at_epoch(epoch, cfg.epochs, cfg.lr, cfg.warmup_epochs, cfg.warmup_lr)
        scales = [group["lr_scale"] for group in optimizer.param_groups]
        lrs = group_lrs(epoch, cfg.epochs, cfg.lr, scales, cfg.warmup_epochs, cfg.warmup_lr)
        for group, group_lr in zip(optimizer.param_groups, lrs):
            group["lr"] = group_lr
        record = run_epoch(task, data, optimizer, cfg, seed, epoch, device, progress)
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
        save_resume(resume_path, task, optimizer, epoch + 1, history)
        if on_epoch is not None:
            on_epoch(record)
    return history


def run_epoch(task, data: TrainData, optimizer, cfg, seed: int, epoch: int, device, progress: bool) -> dict:
    seed_everything(epoch_seed(seed, epoch))
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    loader = data.make_loader(epoch, generator)
    task.train()
    sums: Dict[str, float] = {}
    correct = seen = steps = 0
    bar = progress_bar(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", enabled=progress, summary=False)
    for step, batch in enumerate(bar):
        if batch is None:  # every image of the batch was skipped (--skip-corrupt)
            continue
        x, y, _ = batch
        x, y = x.to(device), y.to(device)
        with autocast_context(cfg.precision, device):
            result = task.training_step(x, y, StepInfo(epoch=epoch, num_epochs=cfg.epochs, step=step), data.features)
        for name, value in result.losses.items():
            if not torch.isfinite(value).all():
                raise VLPromptError(
                    f"non-finite loss at epoch {epoch + 1}, step {step + 1}: term {name!r} = {float(value.detach())}; "
                    "stopped before the optimizer step (earlier checkpoints and results are untouched) — "
                    "lower --lr or use --precision fp32"
                )
        loss = result.loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name, value in result.losses.items():
            sums[name] = sums.get(name, 0.0) + value.item()
        sums["loss"] = sums.get("loss", 0.0) + loss.item()
        for name, value in result.report.items():
            sums[name] = sums.get(name, 0.0) + float(value)
        correct += int((result.logits.argmax(-1) == y).sum())
        seen += len(y)
        steps += 1
        bar.set_postfix(loss=f"{sums['loss'] / steps:.4f}", acc=f"{100.0 * correct / seen:.1f}")
    if steps == 0:
        raise VLPromptError("the training split is empty after sampling; check --shots and the dataset")
    record = {name: total / steps for name, total in sums.items()}
    record["train_acc"] = 100.0 * correct / seen
    return record
