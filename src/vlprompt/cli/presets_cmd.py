"""``vlprompt presets``: the resolved configuration of a method, with the source of every value."""

from __future__ import annotations

from vlprompt.cli.common import count
from vlprompt.protocols import PROTOCOLS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "presets",
        help="show a method's resolved settings and where each value comes from",
        description="Resolves METHOD's published presets for the protocol, dataset and shot count, as `vlprompt "
        "train` would, and prints every setting with its source (default / preset / dataset rule / flag / --set).",
    )
    p.add_argument("method", help="base method plus add-ons joined by '+', e.g. coop+nemesis")
    p.add_argument("--dataset", default=None, help="dataset name (dataset rules apply to it)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=None)
    p.add_argument("--preset", default=None, help="a named variant (e.g. dept, promptsrc)")
    p.add_argument("--shots", type=count, default=16, help="shots per class (CoOp's few-shot epochs depend on it)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="overrides, as for train")
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.config import make_config

    cfg = make_config(
        args.method,
        args.dataset or "",
        protocol=args.protocol,
        preset=args.preset,
        overrides=args.set or [],
        shots=args.shots,
    )
    print(
        f"{cfg.method}: preset {cfg.preset or '(none)'}, protocol {cfg.protocol or '(method default)'}, "
        f"dataset {args.dataset or '(any)'}, {args.shots} shots"
    )
    for line in cfg.describe():
        if not line.startswith("data.") and not line.startswith("backbone."):
            print(f"  {line}")
    return 0
