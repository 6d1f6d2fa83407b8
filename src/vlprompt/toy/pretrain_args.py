"""The arguments of the toy CLIP's pretraining recipe (:mod:`vlprompt.toy.pretrain`), torch-free: declared once for
``vlprompt toy-pretrain`` and ``python -m vlprompt.toy.pretrain``."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = "Pretrain the toy CLIP on captioned scenes of the toy world."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="folder for toy_clip.safetensors and toy_clip.json")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--pool", type=int, default=32768, help="number of distinct pretraining scenes")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (part of what makes a run repeatable)")
    p.add_argument("--data-root", type=Path, default=None, help="where toy-b2n is generated for the report")
    p.add_argument("--no-report", action="store_true", help="skip the zero-shot headroom report")
