"""Command lines of the tiny training runs the CLI tests share (importable by test modules, unlike conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence


def train_argv(out: Path, folder: Path, backbone: Sequence[str], *extra: str, epochs: int = 1) -> List[str]:
    """``vlprompt train`` of CoOp (4 context vectors) on an image folder with the tiny backbone flags."""
    return [
        "train", "--method", "coop", "--dataset", "folder", "--data-root", str(folder), "--out", str(out),
        "--epochs", str(epochs), "--batch-size", "4", "--lr", "0.01", "--set", "coop.n_ctx=4", *backbone, *extra,
    ]  # fmt: skip
