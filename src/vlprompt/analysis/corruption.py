"""Corruption experiments on a trained prompt (the "Low-Norm Effect" of Nemesis, Fu et al., ICLR 2024, Sec. 3).

One prompt position j of a trained prompt tensor C (``[..., M, D]``, position axis −2) is changed before
the normal test, for every leading index (CSC classes, per-layer prompts):

* ``original``          — no change;
* ``replace`` (j, σ)    — c_j ← z, z ~ N(0, σ² I_D) drawn from a generator seeded with ``--seed``
  (independently per leading index); σ = 0 gives the zero vector;
* ``scale`` (j, s)      — c_j ← s · c_j (RESCALE; s < 1 reduces the norm, s > 1 increases it).

The change is applied through ``learner.override`` (the trained weights are never modified), so a sweep
evaluates many corruptions on one loaded task and the frozen test features are computed once.
Low-Norm Effect summary (:func:`summarize`): among corruptions that *reduce* the position's norm
(norm ratio ‖c_j'‖/‖c_j‖ < 1), how many raise test accuracy over ``original`` and by how much.

Fixed relative to the released scripts: ``original`` works, ``scale`` is one name everywhere, the run to
corrupt is named explicitly (``--run``), and the evaluated checkpoint is the run's final weights.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io as textio
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch

from vlprompt import fileio
from vlprompt.engine.rundir import METRICS
from vlprompt.errors import VLPromptError

log = logging.getLogger("vlprompt")

OPS = ("original", "replace", "scale")
SWEEP_FIELDS = ("op", "pos", "weight", "accuracy", "delta", "norm_ratio")


# ----------------------------------------------------------------------------------- pure operations
def corrupt_position(ctx: torch.Tensor, op: str, pos: int, weight: float, seed: int = 1) -> torch.Tensor:
    """A corrupted copy of ``ctx`` ``[..., M, D]``: row ``pos`` replaced by N(0, weight²) noise or scaled."""
    out = ctx.detach().clone()
    if op == "replace":
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(out[..., pos, :].shape, generator=generator) * weight
        out[..., pos, :] = noise.to(out)
    elif op == "scale":
        out[..., pos, :] *= weight
    elif op != "original":
        raise VLPromptError(f"unknown --op {op!r}: use original, replace or scale")
    return out


def position_norm(ctx: torch.Tensor, pos: int) -> float:
    """‖c_pos‖₂, averaged over leading axes."""
    return float(ctx.detach().float()[..., pos, :].norm(dim=-1).mean())


def prompt_tensor(learner, name: Optional[str]) -> tuple:
    """(name, tensor) of the learner's prompt vectors; ``name`` may be omitted when there is only one."""
    vectors = learner.prompt_vectors()
    if not vectors:
        raise VLPromptError(f"method {learner.name!r} has no prompt vectors to corrupt")
    if name is None:
        if len(vectors) > 1:
            raise VLPromptError(f"this run has several prompt tensors; choose one with --tensor ({', '.join(vectors)})")
        name = next(iter(vectors))
    if name not in vectors:
        raise VLPromptError(
            f"--tensor {name!r} is not a prompt tensor of this run; choose one of: {', '.join(vectors)}"
        )
    return name, vectors[name]


@contextlib.contextmanager
def corrupted(learner, name: str, op: str, pos: int, weight: float, seed: int = 1) -> Iterator[Dict]:
    """Evaluate under a corruption of one position; yields the record written to results.json."""
    ctx = learner.prompt_vectors()[name].detach()
    m = ctx.shape[-2]
    if not 0 <= pos < m:
        raise VLPromptError(f"--pos {pos} is outside 0..{m - 1} ({name} has {m} positions)")
    new = corrupt_position(ctx, op, pos, weight, seed)
    before, after = position_norm(ctx, pos), position_norm(new, pos)
    info = {
        "op": op,
        "tensor": name,
        "pos": pos,
        "weight": weight,
        "norm_before": float(ctx.float().norm()),
        "norm_after": float(new.float().norm()),
        "pos_norm_before": before,
        "pos_norm_after": after,
        "norm_ratio": after / before if before > 0 else float("nan"),
    }
    with learner.override({name: new}):
        yield info


# ----------------------------------------------------------------------------------- sweeps
def sweep(
    learner, name: str, op: str, positions: Sequence[int], weights: Sequence[float], accuracy, seed: int = 1
) -> List[Dict]:
    """Rows (op, pos, weight, accuracy, delta, norm_ratio): first ``original``, then every position × weight.
    ``accuracy()`` evaluates the task as it currently is."""
    base = accuracy()
    rows = [{"op": "original", "pos": "", "weight": "", "accuracy": base, "delta": 0.0, "norm_ratio": 1.0}]
    for pos in positions:
        for weight in weights:
            with corrupted(learner, name, op, pos, weight, seed) as info:
                acc = accuracy()
            rows.append(
                {
                    "op": op,
                    "pos": pos,
                    "weight": weight,
                    "accuracy": acc,
                    "delta": acc - base,
                    "norm_ratio": info["norm_ratio"],
                }
            )
            log.info("corrupt %s pos=%d weight=%g: accuracy %.2f%% (%+.2f)", op, pos, weight, acc, acc - base)
    return rows


def _group(label: str, rows: List[Dict]) -> Dict:
    gains = [r["delta"] for r in rows if r["delta"] > 0]
    return {
        "group": label,
        "corruptions": len(rows),
        "raised": len(gains),
        "fraction": len(gains) / len(rows) if rows else 0.0,
        "mean_gain": sum(gains) / len(gains) if gains else None,
        "max_gain": max(gains) if gains else None,
    }


def summarize(rows: List[Dict]) -> List[Dict]:
    """How often and by how much corruptions raise accuracy over ``original``: per weight, then over all
    norm-reducing (ratio < 1) and all norm-increasing (ratio > 1) corruptions."""
    corrupt = [r for r in rows if r["op"] != "original"]
    weights = sorted({r["weight"] for r in corrupt})
    groups = [_group(f"weight={w:g}", [r for r in corrupt if r["weight"] == w]) for w in weights]
    groups.append(_group("norm reduced", [r for r in corrupt if r["norm_ratio"] < 1]))
    groups.append(_group("norm increased", [r for r in corrupt if r["norm_ratio"] > 1]))
    return groups


def format_summary(groups: List[Dict]) -> str:
    def gain(v):
        return "-" if v is None else f"{v:+.2f}"

    lines = [f"{'corruptions':<16}{'n':>5}{'raised':>8}{'fraction':>10}{'mean gain':>11}{'max gain':>10}"]
    for g in groups:
        lines.append(
            f"{g['group']:<16}{g['corruptions']:>5}{g['raised']:>8}{g['fraction']:>10.2f}"
            f"{gain(g['mean_gain']):>11}{gain(g['max_gain']):>10}"
        )
    return "\n".join(lines)


def write_csv(path: Path, rows: List[Dict]) -> None:
    buf = textio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SWEEP_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    fileio.write_text(path, buf.getvalue())


# ----------------------------------------------------------------------------------- command
def parse_positions(text: str, m: int) -> List[int]:
    """``all`` or a comma list of positions, each in ``0..m-1``."""
    if text.strip().lower() == "all":
        return list(range(m))
    try:
        positions = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        positions = []
    if not positions:
        raise VLPromptError(f"--positions {text!r}: use all or a comma list such as 0,3,7")
    outside = [p for p in positions if not 0 <= p < m]
    if outside:
        raise VLPromptError(f"--positions {text}: {outside[0]} is outside 0..{m - 1} (the prompt has {m} positions)")
    return positions


def parse_weights(text: str) -> List[float]:
    try:
        values = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        values = []
    if not values:
        raise VLPromptError(f"--weights {text!r}: use a comma list such as 0,0.001,0.1,0.5,2")
    for value in values:
        check_weight(value, f"--weights {text}")
    return values


def check_weight(weight: float, flag: str) -> float:
    """A replacement std or a rescale factor must be a finite number >= 0."""
    if not (math.isfinite(weight) and weight >= 0):
        raise VLPromptError(
            f"{flag}: {weight} is not a finite number >= 0 (the std of the replacement or the rescale factor)"
        )
    return weight


@dataclass
class Corruption:
    """What to corrupt: one ``op`` at ``pos`` with ``weight``, or (``sweep``) every position of ``positions``
    (``all`` or ``0,3,7``) × every weight of ``weights`` (``0,0.1,0.5``); ``tensor`` names the prompt tensor
    (default: the run's only one)."""

    op: str = "original"
    tensor: Optional[str] = None
    pos: Optional[int] = None
    weight: Optional[float] = None
    sweep: bool = False
    positions: Optional[str] = None
    weights: Optional[str] = None

    def __post_init__(self):
        if self.op not in OPS:
            raise VLPromptError(f"unknown --op {self.op!r}: use original, replace or scale")
        if self.sweep and self.op == "original":
            raise VLPromptError("--sweep needs --op scale or --op replace")
        if not self.sweep and self.op != "original" and (self.pos is None or self.weight is None):
            raise VLPromptError(f"--op {self.op} needs --pos J and --weight W (or use --sweep)")
        if self.sweep and (self.positions is None or self.weights is None):
            raise VLPromptError("--sweep needs --positions (all or 0,3,...) and --weights (e.g. 0,0.001,0.1,0.5,2)")
        if self.weight is not None:
            check_weight(self.weight, "--weight")
        if self.weights is not None:
            parse_weights(self.weights)


def corrupt(
    source,
    data,
    corruption: Corruption,
    *,
    label_space: str = "auto",
    out=None,
    feature_cache: bool = True,
    quiet: bool = False,
    **backbone_options,
) -> Dict:
    """``vlprompt corrupt``: test trained run ``source`` on ``data`` (a :class:`~vlprompt.config.DataConfig`) with
    one corruption (a run directory with results.json and predictions.csv) or a sweep (sweep.csv, summary.json /
    .txt and, when the run logged norms, norms.png). The replacement noise is seeded with ``data.seed``."""
    from vlprompt.engine.evaluation import evaluate
    from vlprompt.engine.features import FeatureCache
    from vlprompt.engine.rundir import RunDir
    from vlprompt.pipeline.evaluation import evaluate_task, open_on_data
    from vlprompt.pipeline.identity import data_identity, resolve_path
    from vlprompt.pipeline.records import finished

    identity = {
        "source": resolve_path(str(source)),
        "data": data_identity(data),
        "label_space": label_space,
        "corruption": dataclasses.asdict(corruption),
        "backbone": {k: backbone_options.get(k) for k in ("backbone", "pretrained", "precision")},
    }
    kind = "corrupt-sweep" if corruption.sweep else "corrupt"
    if corruption.sweep:
        previous = Path(out or ".") / "summary.json"
        if out is not None and RunDir.check(Path(out), kind, identity) is not None and previous.is_file():
            if not quiet:
                print(f"already complete: {previous}; use another --out to run again")
            return json.loads(previous.read_text())
    else:
        done = finished(out, kind, identity, quiet)
        if done is not None:
            return done
    trained, ds, space, task = open_on_data(source, data, label_space, **backbone_options)
    name, ctx = prompt_tensor(task.learner, corruption.tensor)
    if not corruption.sweep:
        weight = 1.0 if corruption.weight is None else corruption.weight
        with corrupted(task.learner, name, corruption.op, corruption.pos or 0, weight, data.seed) as info:
            if corruption.op == "original":
                info.update(pos=None, weight=None)
            return evaluate_task(
                task, trained, ds, data, space, kind=kind, out=out, identity=identity, feature_cache=feature_cache,
                quiet=quiet, extra={"corruption": info},
            )  # fmt: skip
    cache = FeatureCache(trained.backbone) if feature_cache else None

    def accuracy() -> float:
        result = evaluate(
            task, ds.test, trained.backbone, trained.config.train, cache, data.num_workers, data.skip_corrupt,
            progress=False,
        )  # fmt: skip
        return result.metrics["accuracy"]

    if out is None:
        raise VLPromptError("--sweep needs --out (the folder for sweep.csv and the summary)")
    positions = parse_positions(corruption.positions, ctx.shape[-2])
    with RunDir(Path(out), kind, identity).open() as run:
        return _run_sweep(source, run, task.learner, name, positions, corruption, accuracy, data.seed, quiet)


def _run_sweep(source, run, learner, name: str, positions, corruption: Corruption, accuracy, seed: int, quiet: bool):
    from vlprompt.analysis.plots import has_norm_history, plot_norms_and_accuracy
    from vlprompt.extras import available

    rows = sweep(learner, name, corruption.op, positions, parse_weights(corruption.weights), accuracy, seed)
    groups = summarize(rows)
    write_csv(run.path / "sweep.csv", rows)
    table = format_summary(groups)
    fileio.write_text(run.path / "summary.txt", table + "\n")
    metrics_path = Path(source) / METRICS
    if has_norm_history(metrics_path):
        if available("matplotlib"):
            plot_norms_and_accuracy(metrics_path, run.path / "norms.png")
        elif not quiet:
            print("norms.png skipped: plots need matplotlib (pip install 'vlprompt[plot]')")
    summary = {
        "source_run": str(source),
        "op": corruption.op,
        "tensor": name,
        "original_accuracy": rows[0]["accuracy"],
        "groups": groups,
    }
    fileio.write_json(run.path / "summary.json", summary)
    log.info("corruption sweep (%s, original accuracy %.2f%%):\n%s", corruption.op, rows[0]["accuracy"], table)
    if not quiet:
        print(f"original accuracy: {rows[0]['accuracy']:.2f}%  ({len(rows) - 1} corruptions, op {corruption.op})")
        print(table)
        print(f"-> {run.path / 'sweep.csv'}")
    return summary
