"""``vlprompt analyze``: analyses of a trained run (``feature-shift``: RESTORE's per-layer Ω, Eq. 6)."""

from __future__ import annotations

from vlprompt.cli.common import add_backbone_args, add_dataset_args, count, positive
from vlprompt.config import LABEL_SPACES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a trained run (feature-shift: per-layer ‖Ω_l‖ of both towers)",
        description="Analyses of a trained run directory written by `vlprompt train`.",
    )
    kinds = p.add_subparsers(dest="analysis", metavar="<analysis>")
    fs = kinds.add_parser(
        "feature-shift",
        help="per-layer feature shift ‖Ω_l‖ of the image and text towers (RESTORE, Eq. 6)",
        description="For every block: the mean over sequences of ‖non-prompt outputs of the block with prompts − "
        "the frozen block on the non-prompt inputs alone‖_F, over the test images (vision) and the "
        "class prompts (text). Blocks without prompts report 0. Prints a table; --out writes JSON.",
    )
    fs.add_argument("--run", required=True, help="run directory written by `vlprompt train`")
    add_dataset_args(fs)
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
    fs.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.analysis.feature_shift import feature_shift
    from vlprompt.cli.common import backbone_options, data_config

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
    )
    return 0
