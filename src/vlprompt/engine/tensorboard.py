"""TensorBoard event files of a training run (``vlprompt train --log tensorboard``; ``pip install
'vlprompt[tensorboard]'``), written under ``<run>/tb`` once per epoch from the epoch's record (the line of
``metrics.jsonl``), plus the final test metrics.

Tags: ``loss/total`` and ``loss/<term>`` (``ce``, and each add-on's term, e.g. ``loss/kg``); ``train/lr``,
``train/accuracy``; ``test/<metric>`` (``--eval-every`` and the final evaluation); ``<add-on>/<metric>`` for an
add-on's prefixed metrics (``src/text``, ``dept/head_acc``, ``restore/r_t``, ``restore/shift_v``); ``metrics/<name>``
for the rest (Nemesis' per-position norms ``v0_norm`` ..., ``matrix_norm``). The x axis is the epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from vlprompt.extras import require

TB_DIR = "tb"
FIXED = {"loss": "loss/total", "ce": "loss/ce", "lr": "train/lr", "train_acc": "train/accuracy"}


def require_tensorboard():
    """The ``SummaryWriter`` class, or a one-line error naming the extra to install."""
    return require("torch.utils.tensorboard", "--log tensorboard").SummaryWriter


def tag(key: str, addons: Iterable[str]) -> str:
    """The TensorBoard tag of an epoch-record key (see the module doc)."""
    addons = list(addons)
    if key in FIXED:
        return FIXED[key]
    if key in addons:
        return f"loss/{key}"
    if key.startswith("test_"):
        return f"test/{key[5:]}"
    for name in addons:
        if key.startswith(f"{name}_"):
            return f"{name}/{key[len(name) + 1 :]}"
    return f"metrics/{key}"


class TensorBoardLog:
    """Scalars of every epoch record of a run (``addons``: the method's add-on names, for the tags)."""

    def __init__(self, run_path: Path, addons: Iterable[str]):
        self.writer = require_tensorboard()(log_dir=str(Path(run_path) / TB_DIR))
        self.addons = list(addons)

    def epoch(self, record: Dict) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag(key, self.addons), float(value), step)
        self.writer.flush()

    def final(self, results: Dict, epoch: int) -> None:
        """The last-epoch model's test metrics (``test/accuracy``, ``test/macro_f1``)."""
        for key in ("accuracy", "macro_f1"):
            self.writer.add_scalar(f"test/{key}", float(results[key]), epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
