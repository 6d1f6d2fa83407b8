"""The run identity a sweep job's command line would give its run directory — parsed and resolved exactly as the
command itself resolves it, so that a sweep's plan is checked once before any job
(:func:`vlprompt.sweep.checks.check_plan`)."""

from __future__ import annotations

import functools
from typing import Dict, Tuple

from vlprompt.sweep.jobs import Job


@functools.lru_cache(maxsize=1)
def _parser():
    from vlprompt.cli import build_parser

    return build_parser()


def planned_identity(job: Job) -> Tuple[str, Dict]:
    """``(kind, identity)`` of the run directory ``job`` would write (bad flags and settings fail here)."""
    from vlprompt.cli import eval_cmd, train_cmd, zeroshot_cmd
    from vlprompt.pipeline.identity import run_identity

    args = _parser().parse_args(list(job.argv))
    if job.command == "train":
        return "train", run_identity(train_cmd.config_from_args(args))
    if job.command == "zeroshot":
        return "zeroshot", run_identity(zeroshot_cmd.config_from_args(args))
    return "eval", eval_cmd.evaluate_args(args, plan_only=True)
