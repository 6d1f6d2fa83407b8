"""Norm/accuracy curves of a training run (the figures of the Nemesis README, Fu et al., ICLR 2024).

A run trained with an add-on that logs per-position prompt norms (``nemesis``: ``v{j}_norm`` or
``<tensor>_v{j}_norm`` per epoch) and with ``--eval-every 1`` (``test_accuracy`` per epoch) has everything
the figures show: epoch vs mean prompt norm (and each position's norm) vs test accuracy. Plain CoOp: norms
rise then plateau while accuracy degrades; CoOp + Nemesis: norms rise, fall, stabilise, accuracy keeps rising.
Rendered with matplotlib's Agg canvas (no display, no global pyplot state).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Dict, List

from vlprompt import fileio
from vlprompt.errors import VLPromptError
from vlprompt.extras import require

MEAN_COLOURS = ("black", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown")
NORM_KEY = re.compile(r"^(?:(?P<tensor>.+)_)?v(?P<pos>\d+)_norm$")


def epoch_records(metrics_jsonl: Path) -> List[Dict]:
    """The per-epoch lines of a run's ``metrics.jsonl`` (the final-evaluation line is skipped)."""
    path = Path(metrics_jsonl)
    if not path.exists():
        raise VLPromptError(f"{path} not found: pass the metrics.jsonl of a `vlprompt train` run")
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except ValueError as exc:
        raise VLPromptError(f"{path} is damaged ({exc}); re-run that training run or move the file away") from None
    return [r for r in lines if isinstance(r, dict) and "epoch" in r]


def norm_series(records: List[Dict]) -> Dict[str, Dict[int, List[float]]]:
    """tensor ('' when unnamed) -> position -> per-epoch norm."""
    series: Dict[str, Dict[int, List[float]]] = {}
    for record in records:
        for key, value in record.items():
            match = NORM_KEY.match(key)
            if match:
                series.setdefault(match["tensor"] or "", {}).setdefault(int(match["pos"]), []).append(value)
    return series


def has_norm_history(metrics_jsonl: Path) -> bool:
    return Path(metrics_jsonl).exists() and bool(norm_series(epoch_records(metrics_jsonl)))


def plot_norms_and_accuracy(metrics_jsonl: Path, out_png: Path) -> Path:
    """Write :func:`norms_figure` of ``metrics_jsonl`` to ``out_png``."""
    fig = norms_figure(metrics_jsonl)
    out_png = Path(out_png)
    fileio.atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    return out_png


def norms_figure(metrics_jsonl: Path):
    """Per-epoch mean prompt norm (thick), per-position norms (thin) and, on a second axis, test accuracy."""
    require("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    records = epoch_records(metrics_jsonl)
    series = norm_series(records)
    if not series:
        raise VLPromptError(f"{metrics_jsonl} has no per-position prompt norms: train with +nemesis to log them")
    epochs = [r["epoch"] for r in records if any(NORM_KEY.match(k) for k in r)]
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for colour, (tensor, positions) in zip(itertools.cycle(MEAN_COLOURS), sorted(series.items())):
        label = f"{tensor} " if tensor else ""
        for values in positions.values():
            ax.plot(epochs, values, linewidth=0.6, alpha=0.35, color=colour)
        mean = [sum(v) / len(v) for v in zip(*positions.values())]
        ax.plot(epochs, mean, linewidth=2.5, color=colour, label=f"{label}mean prompt norm")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("prompt norm")
    handles, labels = ax.get_legend_handles_labels()
    acc = [(r["epoch"], r["test_accuracy"]) for r in records if "test_accuracy" in r]
    if acc:
        ax2 = ax.twinx()
        ax2.plot(
            [e for e, _ in acc], [a for _, a in acc], color="tab:red", marker="o", markersize=3, label="test accuracy"
        )
        ax2.set_ylabel("test accuracy (%)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best", fontsize=8)
    ax.set_title(Path(metrics_jsonl).parent.name)
    fig.tight_layout()
    return fig
