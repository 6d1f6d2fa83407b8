"""``vlprompt sweep``: a protocol × methods × datasets × seeds (× shots) grid of runs, resumable."""

from __future__ import annotations

import argparse

from vlprompt.cli.common import add_verbosity_args, count, seed
from vlprompt.protocols import PROTOCOLS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a protocol (fewshot, b2n, xd, dg) for several methods, datasets and seeds",
        description="Build every run of a protocol as a `vlprompt train/eval/zeroshot` job in "
        "OUT/<protocol>/<method>/<dataset>/shots<K>/seed<S>/<kind>, check the whole plan first (a run folder "
        "made with other settings is refused, naming the first difference), skip the finished ones, run "
        "the rest (evaluations after their training run), keep going past failures and report them with the "
        "tail of their log. Re-running the same command finishes what is missing. Then: `vlprompt table OUT`.",
    )
    g = p.add_argument_group("what to run")
    g.add_argument("--recipe", default=None, help="a paper's experiment (see `vlprompt list recipes`); flags override")
    g.add_argument("--protocol", choices=PROTOCOLS, default=None)
    g.add_argument("--methods", nargs="+", default=None, help="methods, e.g. zeroshot coop kgcoop+dept")
    g.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help="training datasets (xd/dg: the source); `all` (default) = the protocol's, `toy` = its toy analogue",
    )
    g.add_argument(
        "--targets",
        nargs="+",
        default=None,
        help="xd/dg evaluation targets; `all` (default) = the protocol's, `toy` = toy-xd (xd) / toy-shift (dg)",
    )
    g.add_argument("--seeds", nargs="+", type=seed, default=None, help="default 1 2 3")
    g.add_argument("--shots", nargs="+", type=count, default=None, help="default: 1 2 4 8 16 (fewshot), else 16")
    g.add_argument("--root", required=True, help="output folder of the sweep (OUT)")
    g.add_argument("--data-root", default=None, help="folder holding the dataset folders")
    g.add_argument("--backbone", default=None, help="open_clip model (default: the recipe's, else toy)")
    g.add_argument("--pretrained", default=None, help="weights tag or file (default: the recipe's)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="passed to every training run, e.g. --set train.epochs=1 (repeatable)",
    )
    g.add_argument("--num-workers", type=count, default=0, help="data-loader workers of each job")
    g.add_argument("--template", default=None, help="prompt template with one {} for every job (see `train --help`)")
    g.add_argument("--classnames", default=None, metavar="FILE", help="class-names file for every job")
    g.add_argument("--templates", default=None, metavar="single|ensemble|FILE", help="the zero-shot runs' templates")
    g.add_argument("--dry-run", action="store_true", help="list the jobs and their state; run nothing")
    x = p.add_argument_group("where to run")
    x.add_argument("--launcher", choices=["local", "slurm"], default="local")
    x.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="local: parallel worker processes (default 1: in this process; with --devices: one per device)",
    )
    x.add_argument("--devices", default=None, help="local: comma-separated GPU ids, one job per GPU (0,1,2,3)")
    x.add_argument("--slurm-partition", default=None)
    x.add_argument("--slurm-gpus-per-job", type=int, default=1)
    x.add_argument("--slurm-cpus-per-job", type=int, default=None)
    x.add_argument("--slurm-time", default="24:00:00", help="time limit per job: minutes or [D-]HH:MM[:SS]")
    x.add_argument("--slurm-array-parallelism", type=int, default=256, help="array tasks running at once")
    x.add_argument(
        "--slurm-cluster",
        choices=["slurm", "local"],
        default="slurm",
        help="local: submitit's local executor (the same code path on this machine, for testing)",
    )
    add_verbosity_args(p)
    p.set_defaults(func=run)


def job_args(args: argparse.Namespace) -> list:
    """Flags every job gets: the prompts (files as absolute paths: jobs run from anywhere) and --verbose."""
    from vlprompt.api import resolve_path

    flags = ["--template", args.template] if args.template is not None else []
    flags += ["--classnames", resolve_path(args.classnames)] if args.classnames else []
    return flags + (["--verbose"] if args.verbose else [])


def launcher_from_args(args: argparse.Namespace):
    from vlprompt.cli import main
    from vlprompt.errors import VLPromptError

    if args.launcher == "slurm":
        from vlprompt.sweep.slurm import SlurmLauncher, import_submitit

        if args.jobs != 1 or args.devices:
            raise VLPromptError("--jobs and --devices are for --launcher local; Slurm places jobs itself")
        import_submitit()
        return SlurmLauncher(
            root=args.root,
            command=main,
            partition=args.slurm_partition,
            gpus_per_job=args.slurm_gpus_per_job,
            cpus_per_job=args.slurm_cpus_per_job,
            time=args.slurm_time,
            array_parallelism=args.slurm_array_parallelism,
            cluster=args.slurm_cluster,
        )
    from vlprompt.sweep.executors import LocalLauncher

    if args.jobs < 1:
        raise VLPromptError(f"--jobs {args.jobs}: give at least 1")
    devices = tuple(d.strip() for d in args.devices.split(",") if d.strip()) if args.devices else ()
    if devices:
        from vlprompt.backbones import check_gpu_ids

        check_gpu_ids([int(d) if d.isdigit() else d for d in devices], f"--devices {args.devices}")
    return LocalLauncher(main, jobs=args.jobs, devices=devices)


def run(args) -> int:
    import io
    import sys

    from vlprompt.api import resolve_path
    from vlprompt.cli.planning import planned_identity
    from vlprompt.sweep import build_spec, plan, run_sweep, states
    from vlprompt.sweep.checks import check_plan
    from vlprompt.sweep.progress import Progress

    spec = build_spec(
        args.root,
        recipe=args.recipe,
        protocol=args.protocol,
        methods=args.methods,
        datasets=args.datasets,
        targets=args.targets,
        seeds=args.seeds,
        shots=args.shots,
        backbone=args.backbone,
        pretrained=args.pretrained,
        sets=args.set,
        data_root=args.data_root,
        num_workers=args.num_workers,
        job_args=job_args(args),
        templates=args.templates if args.templates in (None, "single", "ensemble") else resolve_path(args.templates),
    )
    jobs = plan(spec)
    check_plan(spec, jobs, planned_identity)  # once, before any job: a bad setting or a changed plan is one line
    if args.dry_run:
        state = states(jobs)
        for job in jobs:
            print(f"{state[job.key]:<8} {job.key.relpath}\n         {job.command_line()}")
        counts = {s: list(state.values()).count(s) for s in ("done", "resume", "pending", "blocked")}
        print(f"{len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        return 0
    launcher = launcher_from_args(args)
    done_before = sum(job.done for job in jobs)
    workers = min(launcher.workers, len(jobs))
    progress = Progress(len(jobs), done_before, workers, stream=io.StringIO() if args.quiet else None)
    try:
        report = run_sweep(jobs, launcher, progress)
    except KeyboardInterrupt:
        print("sweep interrupted: re-run the same command to resume (finished jobs are skipped)", file=sys.stderr)
        return 130
    print("\n".join(report.lines()), file=sys.stderr)
    return 0 if report.ok else 1
