"""``vlprompt train``: train a prompt-learning method (base method + add-ons) and evaluate it."""

from __future__ import annotations

from vlprompt.cli.common import (
    add_backbone_args,
    add_dataset_args,
    add_run_args,
    add_verbosity_args,
    backbone_options,
    count,
    data_options,
    positive,
    positive_float,
)
from vlprompt.presets import PROTOCOLS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a method (e.g. coop, kgcoop+dept, maple+dept+restore) and test it",
        description="Train prompts on the (few-shot) train split, save weights, evaluate the last-epoch model "
        "on the test split. Re-running the same command resumes an interrupted run.",
    )
    p.add_argument("--method", required=True, help="base method plus add-ons joined by '+' (see `vlprompt list`)")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="evaluation protocol whose published settings to use (default: the method's own protocol)",
    )
    p.add_argument(
        "--preset", default=None, help="a named published setting (e.g. dept, promptsrc); see `vlprompt presets`"
    )
    add_dataset_args(p)
    add_backbone_args(p)
    add_run_args(p, batch_default=None)
    p.add_argument("--epochs", type=positive, default=None)
    p.add_argument("--lr", type=positive_float, default=None)
    p.add_argument("--eval-every", type=count, default=None, help="test accuracy every N epochs into metrics.jsonl")
    p.add_argument(
        "--feature-pool",
        type=count,
        default=None,
        help="speed option: with the feature cache, each epoch draws one of N cached augmented views per image "
        "instead of a fresh one (0 = fresh views, the references' augmentation)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override any setting, e.g. --set coop.n_ctx=4 --set nemesis.weight=10 (repeatable)",
    )
    p.add_argument(
        "--log",
        action="append",
        choices=["tensorboard"],
        default=[],
        help="also write TensorBoard event files under OUT/tb, per epoch (pip install 'vlprompt[tensorboard]')",
    )
    add_verbosity_args(p)
    p.set_defaults(func=run)


def config_from_args(args):
    from vlprompt.config import make_config

    return make_config(
        args.method,
        args.dataset,
        protocol=args.protocol,
        preset=args.preset,
        overrides=args.set or [],
        out=args.out,
        **backbone_options(args),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        precision=args.precision,
        eval_every=args.eval_every,
        feature_pool=args.feature_pool,
        feature_cache=False if args.no_feature_cache else None,
        **data_options(args),
    )


def run(args) -> int:
    from vlprompt.api import train

    train(config_from_args(args), quiet=args.quiet, logs=args.log)
    return 0
