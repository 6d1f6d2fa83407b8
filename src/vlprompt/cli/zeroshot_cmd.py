"""``vlprompt zeroshot``: evaluate zero-shot CLIP with hand-crafted prompts."""

from __future__ import annotations

from vlprompt.cli.common import (
    add_backbone_args,
    add_dataset_args,
    add_run_args,
    add_verbosity_args,
    backbone_options,
    data_options,
)

MODES = ("single", "ensemble")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "zeroshot",
        help="zero-shot CLIP evaluation with hand-crafted prompts",
        description="Zero-shot CLIP: logits = 100 * cos(image, template(class)).",
    )
    add_dataset_args(p)
    add_backbone_args(p)
    add_run_args(p, batch_default=100)
    p.add_argument(
        "--templates",
        default="single",
        metavar="single|ensemble|FILE",
        help="single: the dataset's template (or --template); ensemble: CoOp's 7 templates + it; FILE: your "
        "ensemble (.txt one template per line, or a JSON list; each with one {})",
    )
    p.add_argument("--save-logits", action="store_true", help="also write logits.safetensors")
    add_verbosity_args(p)
    p.set_defaults(func=run)


def config_from_args(args):
    """The zero-shot run's configuration (a bad --templates or --set fails here, before any work)."""
    from pathlib import Path

    from vlprompt.config import make_config
    from vlprompt.errors import VLPromptError

    if args.templates not in MODES and not Path(args.templates).is_file():
        raise VLPromptError(f"--templates {args.templates}: use single, ensemble or an existing templates file")
    if args.template is not None and args.templates not in MODES:
        raise VLPromptError(
            f"--template does not apply with --templates {args.templates} (the file is the whole ensemble): "
            "add the template to the file, or drop one of the two"
        )
    mode = args.templates if args.templates in MODES else "ensemble"
    args.templates_file = None if args.templates in MODES else args.templates
    return make_config(
        "zeroshot",
        args.dataset,
        overrides=[f"zeroshot.templates={mode}"],
        out=args.out,
        **backbone_options(args),
        test_batch_size=args.batch_size,
        precision=args.precision,
        feature_cache=False if args.no_feature_cache else None,
        **data_options(args),
    )


def run(args) -> int:
    from vlprompt.api import zeroshot

    zeroshot(config_from_args(args), save_logits=args.save_logits, quiet=args.quiet)
    return 0
