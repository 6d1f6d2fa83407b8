"""``vlprompt eval``: evaluate a trained run on a dataset / label space."""

from __future__ import annotations

from vlprompt.cli.common import add_backbone_args, add_dataset_args, add_run_args, add_verbosity_args, backbone_options
from vlprompt.config import LABEL_SPACES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a trained run (e.g. a base run on the new classes, or another dataset)",
        description="Rebuild a trained run from its weights.json / weights.safetensors and test it. Class-name "
        "dependent buffers are rebuilt for the new label space.",
    )
    p.add_argument("--run", required=True, help="run directory written by `vlprompt train` (or `vlprompt convert`)")
    add_dataset_args(p)
    add_backbone_args(p, inherit=True)
    add_run_args(p, batch_default=None, precision_default=None)
    p.add_argument(
        "--label-space",
        choices=LABEL_SPACES,
        default="auto",
        help="seen = the trained classes (DePT fuses its head); auto decides from the class names",
    )
    p.add_argument("--save-logits", action="store_true", help="also write logits.safetensors")
    add_verbosity_args(p)
    p.set_defaults(func=run)


def evaluate_args(args, plan_only: bool = False):
    """:func:`vlprompt.api.evaluate` of the parsed flags (``plan_only``: the run identity it would have)."""
    from vlprompt.api import evaluate

    return evaluate(
        args.run,
        args.dataset,
        data_root=args.data_root,
        split_file=args.split_file,
        subsample=args.subsample,
        shots=args.shots,
        seed=args.seed,
        template=args.template,
        classnames_file=args.classnames,
        label_space=args.label_space,
        out=args.out,
        **backbone_options(args),
        precision=args.precision,
        batch_size=args.batch_size,
        feature_cache=not args.no_feature_cache,
        skip_corrupt=args.skip_corrupt,
        num_workers=args.num_workers,
        save_logits=args.save_logits,
        quiet=args.quiet,
        plan_only=plan_only,
    )


def run(args) -> int:
    evaluate_args(args)
    return 0
