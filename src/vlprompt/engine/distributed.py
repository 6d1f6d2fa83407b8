"""One run on several processes (``torchrun --nproc-per-node N -m vlprompt train ...`` or ``vlprompt train --nproc
N``): the same computation as the single-process run with the same global batch size and learning rate.

* **Process group.** :func:`process_group` joins the group torchrun describes in the environment (``WORLD_SIZE``,
  ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): NCCL when the run uses CUDA (each process on the
  GPU of its local rank), gloo on CPU. A single process (no ``WORLD_SIZE`` or 1) runs as before.
* **Data.** Every rank draws the same epoch order and the same augmented views (the epoch generator and the
  per-image view seeds are the same everywhere), reads the same global batches and keeps its contiguous slice
  of each (:func:`local_rows`). Its loss is weighted by its share of the batch times the world size, so
  the gradient DistributedDataParallel averages is the single-process gradient of the global batch: exactly for
  loss terms that are means over the batch's images or do not depend on the batch (cross-entropy, KgCoOp's and
  PromptSRC's constraints, DePT's head, the Nemesis norms); Nemesis PAN counts its pre-inference successes over
  the global batch (:func:`sum_across`). Global randomness (PAN's sampled positions) is consumed identically on
  every rank, so it stays in step.
* **Model.** Only the trainable :class:`~vlprompt.task.PromptTask` is wrapped
  (:func:`training_step_function`); the frozen backbone is not one of its parameters and is never synchronised
  (random ``--pretrained none`` weights are broadcast from rank 0 once, :func:`share_random_backbone`).
* **Files.** Rank 0 writes every file (marker, lock, log, ``metrics.jsonl``, checkpoints, weights, results,
  the feature cache); the other ranks compute only (:class:`FollowerRun`). On resume every rank loads the
  checkpoint. Evaluation and feature encoding are sharded over the ranks and gathered in item order
  (:func:`shard_loader`, :func:`gather_rows`), so ``predictions.csv`` matches the single-process run.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn

from vlprompt.backbones.loading import RANDOM_WEIGHTS
from vlprompt.errors import VLPromptError


# ------------------------------------------------------------------------------------------ where we are
def launched() -> bool:
    """True in a process started by torchrun for a group of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on the rank that writes files (rank 0, or the only process)."""
    return rank() == 0


def local_rows(n: int) -> slice:
    """This rank's contiguous share of ``n`` rows (sizes differ by at most one; rank order = row order)."""
    r, w = rank(), world_size()
    return slice(n * r // w, n * (r + 1) // w)


# ------------------------------------------------------------------------------------------ the group
def _uses_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[None]:
    """Join torchrun's process group for the duration (a no-op for a single process or an existing group).
    ``device`` is the run's ``--device``: CUDA runs use NCCL with one GPU per local rank, CPU runs gloo."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield
        return
    cuda = _uses_cuda(device)
    if cuda:
        if ":" in device:
            raise VLPromptError(
                f"--device {device} with several processes: use --device cuda (each process takes the GPU of its "
                "local rank; choose GPUs with CUDA_VISIBLE_DEVICES)"
            )
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise VLPromptError(
                f"process {local} has no GPU: {torch.cuda.device_count()} visible; use at most that many processes "
                "or --device cpu"
            )
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
        dist.barrier()  # no process leaves while another still works with the group (gloo aborts otherwise)
    finally:
        dist.destroy_process_group()


def _device() -> torch.device:
    """Where collective tensors live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ------------------------------------------------------------------------------------------ collectives
def sum_across(value: float) -> float:
    """``value`` summed over the ranks (itself for a single process); ints stay ints."""
    if not active():
        return value
    return type(value)(all_reduce_sum({"v": value})["v"])


def all_reduce_sum(values: Dict[str, float]) -> Dict[str, float]:
    """Each entry summed over the ranks (every rank passes the same keys, in any order); float64 on the wire."""
    if not active() or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    summed = dict(zip(keys, t.cpu().tolist()))
    return {k: summed[k] for k in values}


def average_tensors(tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Each tensor averaged over the ranks (as DistributedDataParallel averages gradients); unchanged on one."""
    if not active():
        return list(tensors)
    out = []
    for t in tensors:
        t = t.detach().clone()
        dist.all_reduce(t)
        out.append(t / world_size())
    return out


def gather_rows(*pieces: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """For each argument (a list of tensor pieces, possibly empty on some ranks), the pieces of every rank in
    rank order concatenated along dim 0, on the CPU."""
    local = [[t.cpu() for t in p] for p in pieces]
    if active():
        ranks: List[Optional[list]] = [None] * world_size()
        dist.all_gather_object(ranks, local)
        local = [[t for r in ranks for t in r[i]] for i in range(len(pieces))]
    return [torch.cat(p) if p else torch.empty(0) for p in local]


def share_random_backbone(backbone) -> None:
    """Random (``--pretrained none``) backbone weights differ per process: take rank 0's."""
    if not active() or getattr(backbone.spec, "pretrained", None) != RANDOM_WEIGHTS:
        return
    with torch.no_grad():
        for tensor in backbone.clip.state_dict().values():
            dist.broadcast(tensor, src=0)


# ------------------------------------------------------------------------------------------ data and model
def shard_loader(loader):
    """A loader over this rank's contiguous share of ``loader``'s dataset (same batch size, workers and collate; not
    for batch-sampler loaders); the dataset's own indices pass through, so gathered rows go back in item order."""
    if not active():
        return loader
    from torch.utils.data import DataLoader, Subset

    n = len(loader.dataset)
    part = Subset(loader.dataset, range(n)[local_rows(n)])
    return DataLoader(part, batch_size=loader.batch_size, num_workers=loader.num_workers, collate_fn=loader.collate_fn)


class _TrainingStep(nn.Module):
    """``forward`` = the task's training step, so that DistributedDataParallel sees it as the forward pass."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, inputs, labels, info, features, **teacher):
        return self.task.training_step(inputs, labels, info, features, **teacher)


def training_step_function(task) -> Callable:
    """``task.training_step`` for a single process; for several, the step behind DistributedDataParallel
    (gradients averaged over the ranks in the backward pass). ``find_unused_parameters`` lets a composition
    leave some trainable tensors out of a step; the class-name buffers are never re-broadcast."""
    if not active():
        return task.training_step
    from torch.nn.parallel import DistributedDataParallel

    options = {"find_unused_parameters": True}
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    options["forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"] = False
    device = next(task.parameters()).device
    if device.type == "cuda":
        options["device_ids"] = [device]
    return DistributedDataParallel(_TrainingStep(task), **options)


# ------------------------------------------------------------------------------------------ files
class FollowerRun:
    """The run directory as ranks other than 0 see it: its path (to read a resume checkpoint), no writes."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append_metrics(self, record: Dict) -> None:
        pass

    def rewrite_metrics(self, records) -> None:
        pass

    def __enter__(self) -> "FollowerRun":
        return self

    def __exit__(self, *exc) -> None:
        pass


# ------------------------------------------------------------------------------------------ launching
def torchrun_args(nproc: int, args: Sequence[str]) -> List[str]:
    """torchrun's arguments that run ``vlprompt <args>`` on ``nproc`` local processes (standalone rendezvous); only
    the first process's output reaches the console (every process would print the same lines)."""
    return ["--standalone", f"--nproc-per-node={nproc}", "--local-ranks-filter=0", "-m", "vlprompt", *args]


def launch(nproc: int, args: Sequence[str], device: str = "auto") -> int:
    """Run ``vlprompt <args>`` on ``nproc`` processes, as ``python -m torch.distributed.run`` (torchrun) would, and
    return 0 or the exit status of the first process that failed (the first process's own message is on the
    console, another's is named in one line; no launcher traceback or logs). ``device`` is the run's ``--device``:
    a CUDA run needs a GPU per process. CPU threads are divided between the processes unless ``OMP_NUM_THREADS``
    is set; the processes' C++ warnings (DDP's reducer) are off unless ``TORCH_CPP_LOG_LEVEL`` is set."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if launched():
        raise VLPromptError("--nproc inside a torchrun process group: drop --nproc (torchrun already started them)")
    if _uses_cuda(device) and nproc > torch.cuda.device_count():
        raise VLPromptError(
            f"--nproc {nproc}: {torch.cuda.device_count()} GPU(s) visible, one per process is needed; use at most "
            "that many processes or --device cpu"
        )
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TORCH_CPP_LOG_LEVEL")}
    os.environ["OMP_NUM_THREADS"] = saved["OMP_NUM_THREADS"] or str(max(1, (os.cpu_count() or 1) // nproc))
    os.environ["TORCH_CPP_LOG_LEVEL"] = saved["TORCH_CPP_LOG_LEVEL"] or "ERROR"
    try:
        with _quiet_launcher():
            run(get_args_parser().parse_args(torchrun_args(nproc, args)))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode if failure.exitcode > 0 else 1
        if rank != 0 and 0 not in exc.failures:  # its message went to the hidden output
            print(
                f"error: process {rank} of {nproc} failed (exit status {code}); re-run with --nproc 1 to see why",
                file=sys.stderr,
            )
        return code
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
    return 0


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """Silence torch's launcher logs (``Sending process ... closing signal``, ``failed (exitcode: 2)``) below errors
    it cannot report otherwise: the processes print their own one-line messages."""
    import logging

    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith(_LAUNCHER_LOGS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


#: the loggers of torch's process launcher (torchrun)
_LAUNCHER_LOGS = ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")
