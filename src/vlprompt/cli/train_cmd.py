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
from vlprompt.protocols import PROTOCOLS


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
        "--init-from",
        default=None,
        metavar="RUN|FILE",
        help="start from these values of the trainable tensors instead of the random/word initialisation: a run "
        "directory (trained or converted), a .safetensors file keyed by vlprompt's or the reference's names, or a "
        "reference checkpoint",
    )
    p.add_argument("--save-logits", action="store_true", help="also write logits.safetensors (final evaluation)")
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
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train on N local processes (DistributedDataParallel; one GPU each on CUDA, gloo on CPU) with the "
        "same global batch and learning rate; the same as `torchrun --nproc-per-node N -m vlprompt train ...`",
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
        init_from=args.init_from,
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


def without_nproc(argv):
    """``argv`` without its ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def run(args) -> int:
    from vlprompt.api import finished, run_identity, train
    from vlprompt.errors import VLPromptError

    cfg = config_from_args(args)  # bad flags fail here, before any process starts
    if args.nproc < 1:
        raise VLPromptError(f"--nproc must be >= 1, got {args.nproc}")
    if args.nproc == 1:
        train(cfg, quiet=args.quiet, logs=args.log, save_logits=args.save_logits)
    elif finished(cfg.out, "train", run_identity(cfg), args.quiet) is None:  # a finished run starts nothing
        from vlprompt.api import load_data
        from vlprompt.engine.distributed import launch

        load_data(cfg.data, need_train=True)  # bad data is one line here, not one per process
        return launch(args.nproc, without_nproc(args.argv), cfg.backbone.device)
    return 0
