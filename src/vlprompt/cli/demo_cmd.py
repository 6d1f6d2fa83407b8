"""``vlprompt demo``: base-to-new and few-shot on the offline toy world for every available method."""

from __future__ import annotations

from vlprompt.cli.common import add_verbosity_args, positive


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the base-to-new and few-shot protocols on the offline toy world (no download)",
        description="Trains every available method on the toy world's base classes, evaluates "
        "base and new classes, prints a Base/New/H table, writes summary.csv and summary.png; then fits or "
        "trains the few-shot baselines (linear probe, Tip-Adapter(-F), CLIP-Adapter, CLIP-LoRA, CoOp) at 4 shots "
        "and prints their table, written to summary_fewshot.csv.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--quick", action="store_true", help="fewer methods and epochs (a CI smoke run)")
    p.add_argument("--epochs", type=positive, default=None, help="epochs per method (default 10; --quick: 2)")
    add_verbosity_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.cli import main
    from vlprompt.cli.planning import planned_identity
    from vlprompt.demo import run_demo

    run_demo(args.out, main, planned_identity, quick=args.quick, epochs=args.epochs, quiet=args.quiet)
    return 0
