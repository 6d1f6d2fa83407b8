"""``vlprompt analyze``: analyses of a trained run or of a whole sweep folder (``feature-shift``: RESTORE's
per-layer Ω, Eq. 6, of one run or against generalisation over a base-to-new sweep; ``low-norm``: the frequency
of Nemesis' Low-Norm Effect over a sweep; ``prompts``: the learned vectors' norms and nearest words)."""

from __future__ import annotations

from vlprompt.cli.common import add_backbone_args, add_dataset_args, add_verbosity_args, count, positive
from vlprompt.config import LABEL_SPACES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a trained run or a sweep (feature-shift, low-norm, prompts)",
        description="Analyses of a trained run directory written by `vlprompt train`, or of every run of a "
        "`vlprompt sweep` folder.",
    )
    kinds = p.add_subparsers(dest="analysis", metavar="<analysis>")
    fs = kinds.add_parser(
        "feature-shift",
        help="per-layer feature shift ‖Ω_l‖ of the image and text towers (RESTORE, Eq. 6)",
        description="For every block: the mean over sequences of ‖non-prompt outputs of the block with prompts − "
        "the frozen block on the non-prompt inputs alone‖_F, over the test images (vision) and the "
        "class prompts (text). Blocks without prompts report 0. Prints a table; --out writes JSON. "
        "With SWEEP_ROOT instead of --run: every base-to-new training run of the sweep on its base classes "
        "(cached in .../seed<S>/feature-shift/), the cross-modal shift discrepancy Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)² "
        "against New and H per run (SWEEP_ROOT/feature-shift.csv, plots/feature_shift.png) and Spearman's ρ.",
    )
    fs.add_argument("root", metavar="SWEEP_ROOT", nargs="?", default=None, help="a `vlprompt sweep` folder")
    fs.add_argument("--run", default=None, help="run directory written by `vlprompt train` (needs --dataset)")
    add_dataset_args(fs, dataset_required=False)
    g = fs.add_argument_group("analysis")
    g.add_argument("--out", default=None, help="write the per-layer values to this JSON file")
    g.add_argument("--max-images", type=count, default=0, help="use the first N test images (0 = all)")
    g.add_argument(
        "--norm",
        choices=["token", "sequence"],
        default="token",
        help="token: per-sequence Frobenius norm / sqrt(tokens) (RESTORE add-on default); "
        "sequence: the plain per-sequence Frobenius norm",
    )
    g.add_argument(
        "--label-space",
        choices=LABEL_SPACES,
        default="auto",
        help="the label space the text prompts are built for (auto decides from the class names)",
    )
    g.add_argument("--batch-size", type=positive, default=None, help="images per batch (default: the run's)")
    g.add_argument("--precision", default=None, help="default: the run's (see `vlprompt train --help`)")
    add_backbone_args(fs, inherit=True)
    add_jobs_args(fs)
    fs.set_defaults(func=run)
    add_low_norm(kinds)
    add_prompts(kinds)


def add_jobs_args(p) -> None:
    """How the per-run jobs of a sweep-wide analysis run (as `vlprompt sweep --launcher local`)."""
    g = p.add_argument_group("where to run")
    g.add_argument("--jobs", type=positive, default=1, help="parallel worker processes (default 1: in this process)")
    g.add_argument("--devices", default=None, help="comma-separated GPU ids, one job per GPU (0,1,2,3)")
    add_verbosity_args(p)


def add_low_norm(kinds) -> None:
    p = kinds.add_parser(
        "low-norm",
        help="the frequency of the Low-Norm Effect over a sweep (Nemesis corruption experiments on every run)",
        description="Run `vlprompt corrupt --sweep` (replace and scale, every position × weight) on every finished "
        "training run of SWEEP_ROOT that has a prompt tensor, into .../seed<S>/low-norm-<op>/ next to each run "
        "(finished ones are never run again), then count per method, dataset and shots how often reducing a "
        "position's norm improved accuracy and how often increasing it hurt: SWEEP_ROOT/low-norm.md, "
        "low-norm.csv and plots/low_norm.png.",
    )
    p.add_argument("root", metavar="SWEEP_ROOT", help="the --root folder of a `vlprompt sweep`")
    p.add_argument("--ops", nargs="+", choices=["replace", "scale"], default=["replace", "scale"])
    p.add_argument("--positions", default="all", help="all (default), or a comma list such as 0,3,7")
    p.add_argument("--replace-weights", default=None, help="replacement std values σ (default 0,0.0001)")
    p.add_argument("--scale-weights", default=None, help="rescaling factors s (default 0.001,0.1,0.5,2)")
    p.add_argument("--tensor", default=None, help="prompt tensor to corrupt (default: ctx, else vision_ctx)")
    p.add_argument("--format", choices=["md", "csv"], default="md", help="the table printed on stdout")
    add_jobs_args(p)
    p.set_defaults(func=run_low_norm)


def run_low_norm(args) -> int:
    from pathlib import Path

    from vlprompt.analysis.corruption import parse_weights
    from vlprompt.analysis.low_norm import DEFAULT_WEIGHTS, Grid
    from vlprompt.analysis.sweep_runs import launcher, parse_devices
    from vlprompt.cli import main
    from vlprompt.results.analyses import analyze_low_norm

    weights = {op: getattr(args, f"{op}_weights") or DEFAULT_WEIGHTS[op] for op in ("replace", "scale")}
    for text in weights.values():
        parse_weights(text)  # a bad list fails before any job runs
    grid = Grid(tuple(args.ops), args.positions, weights["replace"], weights["scale"], args.tensor)
    result = analyze_low_norm(
        Path(args.root), grid, launcher(main, args.jobs, parse_devices(args.devices)), args.format, args.quiet
    )
    return 0 if result["report"].ok else 1


def run(args) -> int:
    from pathlib import Path

    from vlprompt.analysis.feature_shift import feature_shift
    from vlprompt.cli.common import backbone_options, data_config
    from vlprompt.errors import VLPromptError

    if args.root is not None:
        from vlprompt.analysis.sweep_runs import launcher, parse_devices
        from vlprompt.results.analyses import analyze_feature_shift

        if args.run or args.dataset or args.out:
            raise VLPromptError("analyze feature-shift: give SWEEP_ROOT or --run DIR --dataset NAME [--out], not both")
        from vlprompt.cli import main

        workers = launcher(main, args.jobs, parse_devices(args.devices))
        result = analyze_feature_shift(Path(args.root), workers, args.norm, args.max_images, args.quiet)
        return 0 if result["report"].ok else 1
    if args.run is None or args.dataset is None:
        raise VLPromptError("analyze feature-shift needs SWEEP_ROOT, or --run DIR and --dataset NAME")
    feature_shift(
        args.run,
        data_config(args),
        label_space=args.label_space,
        norm=args.norm,
        max_images=args.max_images,
        out=args.out,
        **backbone_options(args),
        precision=args.precision,
        batch_size=args.batch_size,
        quiet=args.quiet,
    )
    return 0


def add_prompts(kinds) -> None:
    p = kinds.add_parser(
        "prompts",
        help="norms and nearest vocabulary tokens of every learned prompt vector of a run",
        description="For every learned prompt vector (context, deep and vision prompts; any learner): its norm "
        "and, for those in the token-embedding space, the K nearest vocabulary tokens with their Euclidean "
        "distances, beside the typical distance between vocabulary tokens (the median nearest-neighbour "
        "distance) so a word can be told from noise. Vision prompts have no vocabulary: norms only.",
    )
    p.add_argument("--run", required=True, help="run directory written by `vlprompt train`")
    p.add_argument("--topk", type=positive, default=5, help="nearest tokens per vector (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_backbone_args(p, inherit=True)
    p.set_defaults(func=run_prompts)


def run_prompts(args) -> int:
    from vlprompt.analysis.prompt_words import analyze_run
    from vlprompt.cli.common import backbone_options

    analyze_run(args.run, k=args.topk, as_json=args.json, **backbone_options(args))
    return 0
