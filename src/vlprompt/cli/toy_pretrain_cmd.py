"""``vlprompt toy-pretrain``: pretrain the toy CLIP (the recipe of :mod:`vlprompt.toy.pretrain`)."""

from __future__ import annotations

from vlprompt.toy.pretrain_args import DESCRIPTION, add_arguments


def add_parser(sub) -> None:
    p = sub.add_parser(
        "toy-pretrain",
        help="pretrain the toy CLIP on the toy world (how the embedded toy weights were made)",
        description=DESCRIPTION,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.toy.pretrain import run as pretrain

    pretrain(args)
    return 0
