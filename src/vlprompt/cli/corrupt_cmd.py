"""``vlprompt corrupt``: Nemesis corruption experiments on a trained run (the Low-Norm Effect)."""

from __future__ import annotations

from vlprompt.cli.common import add_backbone_args, add_dataset_args, add_run_args, backbone_options, count, data_config
from vlprompt.config import LABEL_SPACES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "corrupt",
        help="test a trained run with one prompt position replaced or rescaled (Nemesis, Low-Norm Effect)",
        description="Corrupt one position of a trained prompt tensor before testing: replace it by N(0, W²I) "
        "(W=0: zero vector; seeded by --seed) or rescale it by W. --sweep tests every position × "
        "weight and writes sweep.csv, summary.json/.txt and norms.png (when the run logged norms).",
    )
    p.add_argument("--run", required=True, help="run directory written by `vlprompt train`")
    p.add_argument("--op", choices=["original", "replace", "scale"], default="original")
    p.add_argument("--pos", type=count, default=None, help="position j (0-based) to corrupt")
    p.add_argument("--weight", type=float, default=None, help="std of the replacement (replace) or factor (scale)")
    p.add_argument("--tensor", default=None, help="prompt tensor name (default: the run's only one, e.g. ctx)")
    p.add_argument("--sweep", action="store_true", help="test every --positions × --weights corruption")
    p.add_argument("--positions", default=None, help="with --sweep: all, or a comma list such as 0,3,7")
    p.add_argument("--weights", default=None, help="with --sweep: comma list, e.g. 0,0.001,0.1,0.5,2")
    add_dataset_args(p)
    add_backbone_args(p, inherit=True)
    add_run_args(p, batch_default=None, precision_default=None)
    p.add_argument(
        "--label-space",
        choices=LABEL_SPACES,
        default="auto",
        help="seen = the trained classes; auto decides from the class names",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.analysis.corruption import Corruption, corrupt

    corruption = Corruption(
        op=args.op,
        tensor=args.tensor,
        pos=args.pos,
        weight=args.weight,
        sweep=args.sweep,
        positions=args.positions,
        weights=args.weights,
    )
    corrupt(
        args.run,
        data_config(args),
        corruption,
        label_space=args.label_space,
        out=args.out,
        feature_cache=not args.no_feature_cache,
        **backbone_options(args),
        precision=args.precision,
        batch_size=args.batch_size,
    )
    return 0
