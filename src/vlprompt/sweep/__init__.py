"""Sweeps: the research workflow of the papers (protocol × methods × datasets × seeds × shots) in one command.

* :mod:`vlprompt.protocols` — few-shot, base-to-new, cross-dataset, domain generalisation as objects;
* :mod:`~vlprompt.sweep.layout` — the run-directory layout ``<root>/<protocol>/<method>/<dataset>/shots<K>/
  seed<S>/<kind>`` (the one place that knows it);
* :mod:`~vlprompt.sweep.jobs` — a sweep's jobs as ``vlprompt`` CLI argv lists, with their dependencies;
* :mod:`~vlprompt.sweep.checks` — the plan checked once before any job (settings, root, run identities);
* :mod:`~vlprompt.sweep.runner` — skip finished jobs, run the rest in dependency stages, report failures;
* :mod:`~vlprompt.sweep.executors` / :mod:`~vlprompt.sweep.slurm` — in-process, worker processes, submitit;
* :mod:`~vlprompt.sweep.recipes` — named sweeps reproducing each paper's experiments.
"""

from vlprompt.sweep.jobs import Job, SweepSpec, plan, states
from vlprompt.sweep.recipes import build_spec, recipes
from vlprompt.sweep.runner import SweepReport, run_sweep

__all__ = ["Job", "SweepSpec", "plan", "states", "recipes", "build_spec", "SweepReport", "run_sweep"]
