"""Command lines of the tiny training runs the CLI tests share (importable by test modules, unlike conftest)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple


def train_argv(out: Path, folder: Path, backbone: Sequence[str], *extra: str, epochs: int = 1) -> List[str]:
    """``vlprompt train`` of CoOp (4 context vectors) on an image folder with the tiny backbone flags."""
    return [
        "train", "--method", "coop", "--dataset", "folder", "--data-root", str(folder), "--out", str(out),
        "--epochs", str(epochs), "--batch-size", "4", "--lr", "0.01", "--set", "coop.n_ctx=4", *backbone, *extra,
    ]  # fmt: skip


def snapshot(root: Path, skip: Sequence[str] = ()) -> Dict[str, str]:
    """Every path under ``root`` (but those with a part in ``skip``) -> its content's SHA-1 (``<dir>`` for folders):
    what a refused command must leave unchanged."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(root.rglob("*"))
        if not any(part in p.parts for part in skip)
    }


def run_cli(argv: Sequence[str], capsys) -> Tuple[int, str, List[str]]:
    """``vlprompt argv`` in this process: ``(exit status, stderr, its non-empty lines)`` (argparse's exits too)."""
    from vlprompt.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    return code, err, [line for line in re.split(r"[\r\n]", err) if line.strip()]
