"""The GPU suite: on a machine with a CUDA device, the GPU tests and every benchmark with ``--device cuda``, within
about 10 minutes on one GPU, written as one markdown report.

Steps, in order (each in its own process, with its own time limit; a failing or timed-out step is reported and the
suite goes on):

1. ``pytest -m gpu tests/test_gpu.py`` — every method trains two steps and evaluates under ``--precision auto``
   (bf16 autocast) and ``fp16``; DDP with NCCL on every visible GPU (skipped with one); the feature cache and the
   predictions equal to the CPU's within tolerance;
2. every benchmark in ``benchmarks/`` with ``--device cuda`` at a size that fits the budget (the settings are in
   :data:`STEPS`; a step is listed with the reason when it cannot run, e.g. DDP on one GPU).

``--dry-run`` runs nothing: it lists the steps (commands, time limits, skips) and writes the report with every step
``planned``; it runs on a CPU-only machine (tests/test_gpu_suite.py).

**Report** (``--report``, default ``gpu_suite_report.md``): a title, the machine line (CPU, torch, CUDA, every GPU's
name and memory), a summary table ``| step | command | status | seconds |`` (status: ``passed``, ``failed (rc N)``,
``timed out after N s``, ``skipped: reason`` or ``planned``), then one section per step holding its output: for
pytest the summary lines, for a benchmark its markdown tables as printed, ready for BENCHMARKS.md.

Usage::

    benchmarks/gpu_suite.sh                       # = python benchmarks/gpu_suite.py
    python benchmarks/gpu_suite.py --dry-run --report /tmp/plan.md
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    name: str
    args: List[str]  # after ``python``
    timeout: int  # seconds
    min_gpus: int = 1

    def command(self) -> str:
        return " ".join(["python", *self.args])


#: the suite; on one GPU the limits sum to 500 s (DDP, which needs two, adds 90 s where it runs)
STEPS = [
    Step("GPU tests", ["-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py"], 150),
    Step("prompted image towers", ["benchmarks/bench_prompted.py", "--device", "cuda"], 120),
    Step("text tower", ["benchmarks/bench_text.py", "--device", "cuda", "--repeats", "5"], 90),
    Step("whole CoOp runs", ["benchmarks/bench_run.py", "--device", "cuda", "--classes", "10"], 80),
    Step("backbone families", ["benchmarks/bench_families.py", "--device", "cuda"], 60),
    Step("DDP", ["benchmarks/bench_ddp.py", "--device", "cuda"], 90, min_gpus=2),
]


def gpu_lines() -> List[str]:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return ["torch not importable"]
    lines = [f"torch {torch.__version__}, CUDA {torch.version.cuda}, Python {platform.python_version()}"]
    if not torch.cuda.is_available():
        return lines + ["no CUDA device visible"]
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        lines.append(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
    return lines


def visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover
        return 0


def skip_reason(step: Step, gpus: int) -> Optional[str]:
    if gpus < step.min_gpus:
        return f"needs {step.min_gpus} GPUs, {gpus} visible"
    return None


def run_step(step: Step) -> tuple:
    """``(status, seconds, output)`` of one step run in the repository root."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *step.args], cwd=REPO, env=env, capture_output=True, text=True, timeout=step.timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return f"timed out after {step.timeout} s", time.perf_counter() - start, out
    seconds = time.perf_counter() - start
    status = "passed" if done.returncode == 0 else f"failed (rc {done.returncode})"
    output = done.stdout if done.returncode == 0 else done.stdout + "\n" + done.stderr[-4000:]
    return status, seconds, output


def step_section(step: Step, output: str) -> List[str]:
    lines = [f"## {step.name}", "", f"`{step.command()}`", ""]
    if step.args[:2] == ["-m", "pytest"]:
        kept = [line for line in output.splitlines() if line.strip()][-30:]
        return lines + ["```", *kept, "```", ""]
    return lines + [output.strip(), ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list the steps and write the plan; run nothing")
    parser.add_argument("--report", default="gpu_suite_report.md", help="the markdown report to write")
    parser.add_argument("--steps", nargs="+", help="run only the steps with these names' first words")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib

    gpus = visible_gpus()
    if not args.dry_run and gpus == 0:
        print("gpu_suite: no CUDA device visible; use --dry-run to list the steps", file=sys.stderr)
        return 2
    steps = [s for s in STEPS if not args.steps or s.name.split()[0].lower() in {w.lower() for w in args.steps}]
    rows, sections = [], []
    for step in steps:
        reason = skip_reason(step, gpus) if not args.dry_run else None
        if args.dry_run:
            print(f"would run: {step.command()}  (limit {step.timeout} s)")
            status, seconds, output = "planned", 0.0, ""
        elif reason:
            status, seconds, output = f"skipped: {reason}", 0.0, ""
        else:
            print(f"running: {step.command()}", flush=True)
            status, seconds, output = run_step(step)
        rows.append(f"| {step.name} | `{step.command()}` | {status} | {seconds:.0f} |")
        if output:
            sections += step_section(step, output)
    report = [
        "# vlprompt GPU suite" + (" (dry run)" if args.dry_run else ""),
        "",
        f"Machine: {benchlib.cpu_model()} ({os.cpu_count()} cores); " + "; ".join(gpu_lines()),
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| step | command | status | seconds |",
        "|---|---|---|---:|",
        *rows,
        "",
        *sections,
    ]
    Path(args.report).write_text("\n".join(report) + "\n")
    print(f"report: {args.report}")
    failed = [r for r in rows if "| failed" in r or "| timed out" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
