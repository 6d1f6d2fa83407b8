"""``vlprompt convert``: a reference (Dassl) checkpoint as a vlprompt run directory."""

from __future__ import annotations

from vlprompt.cli.common import add_backbone_args, add_dataset_args, backbone_options, data_options
from vlprompt.convert.formats import CLIP_LORA, DASSL, FORMATS
from vlprompt.protocols import PROTOCOLS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="turn a reference checkpoint (CoOp/Dassl, MaPLe repository, ...) into a run directory",
        description="Read a reference trainer's checkpoint (model.pth.tar-N, its module folder or its output "
        "folder) without executing code, rename its tensors, and write a run directory that `vlprompt eval`, "
        "`corrupt`, `analyze` and `train --init-from` accept. Give the backbone and the data flags the checkpoint "
        "was trained with (they fix the label space); n_ctx, depths and CSC are read from the tensor shapes.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="model.pth.tar-N, its module folder, or the run's output folder")
    p.add_argument(
        "--from",
        dest="source_format",
        choices=list(FORMATS),
        default=DASSL,
        help="checkpoint format (default dassl): " + "; ".join(f"{name}: {what}" for name, what in FORMATS.items()),
    )
    p.add_argument(
        "--method", default=None, help="the method the checkpoint holds (default: inferred from the tensor names)"
    )
    p.add_argument("--protocol", choices=PROTOCOLS, default=None, help="protocol whose published settings to use")
    p.add_argument("--preset", default=None, help="a named published setting (e.g. dept); see `vlprompt presets`")
    add_dataset_args(p)
    add_backbone_args(p)
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="settings the checkpoint does not record, e.g. --set coop.class_token_position=middle (repeatable)",
    )
    p.add_argument(
        "--skip-frozen-check",
        action="store_true",
        help="convert even when frozen CLIP tensors in the checkpoint differ from the backbone's",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.convert import convert_checkpoint

    if args.source_format == CLIP_LORA:
        return _run_clip_lora(args)
    convert_checkpoint(
        args.checkpoint,
        args.out,
        args.method,
        args.dataset,
        protocol=args.protocol,
        preset=args.preset,
        overrides=args.set or [],
        check_frozen_tensors=not args.skip_frozen_check,
        source_format=args.source_format,
        **backbone_options(args),
        **data_options(args),
    )
    return 0


def _run_clip_lora(args) -> int:
    from vlprompt.convert.clip_lora import convert_clip_lora
    from vlprompt.errors import VLPromptError

    if args.method not in (None, "lora"):
        raise VLPromptError(f"--from {CLIP_LORA} holds a lora run, not {args.method!r}; drop --method")
    convert_clip_lora(
        args.checkpoint,
        args.out,
        args.dataset,
        protocol=args.protocol,
        preset=args.preset,
        overrides=args.set or [],
        **backbone_options(args),
        **data_options(args),
    )
    return 0
