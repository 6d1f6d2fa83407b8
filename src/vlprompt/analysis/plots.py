"""Norm/accuracy curves of a training run (the figures of the Nemesis README, Fu et al., ICLR 2024).

A run trained with an add-on that logs per-position prompt norms (``nemesis``: ``v{j}_norm`` or
``<tensor>_v{j}_norm`` per epoch) and with ``--eval-every 1`` (``test_accuracy`` per epoch) has everything
the figures show: epoch vs mean prompt norm (and each position's norm) vs test accuracy. Plain CoOp: norms
rise then plateau while accuracy degrades; CoOp + Nemesis: norms rise, fall, stabilise, accuracy keeps rising.
Also the sweep-wide analyses' figures: the frequency of the Low-Norm Effect (:func:`plot_low_norm`) and the
feature-shift discrepancy against generalisation (:func:`plot_shift_scatter`, RESTORE).
Also the sweep-wide analyses' figures: the frequency of the Low-Norm Effect (:func:`low_norm_figure`) and the
feature-shift discrepancy against generalisation (:func:`shift_figure`, RESTORE).
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


def _canvas(width: float, height: float):
    require("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def low_norm_figure(groups: Dict):
    """The frequency of the Low-Norm Effect (Nemesis README figure): per method one row of two panels, bars per
    dataset and shot count of the corruptions that reduced a norm and improved accuracy (left) and that increased
    a norm and hurt accuracy (right). ``groups``: (method, dataset, shots) -> :class:`~vlprompt.analysis.low_norm
    .Counts`."""
    methods = sorted({m for m, _, _ in groups})
    datasets = sorted({d for _, d, _ in groups})
    shots = sorted({k for _, _, k in groups})
    width = 0.8 / len(shots)
    fig = _canvas(max(7.0, 2.4 * len(datasets) + 2), 3.4 * len(methods))
    panels = (("improved", "norm reduced → accuracy up"), ("hurt", "norm increased → accuracy down"))
    for row, method in enumerate(methods):
        for col, (field, title) in enumerate(panels):
            ax = fig.add_subplot(len(methods), 2, 2 * row + col + 1)
            for i, k in enumerate(shots):
                heights = [getattr(groups.get((method, d, k)), field, 0) for d in datasets]
                xs = [j - 0.4 + width * (i + 0.5) for j in range(len(datasets))]
                ax.bar(xs, heights, width, label=f"{k} shot{'s' if k != 1 else ''}")
            ax.set_xticks(list(range(len(datasets))))
            ax.set_xticklabels(datasets, rotation=30, ha="right")
            ax.set_ylabel("corruptions")
            ax.set_title(f"{method}: {title}", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def shift_figure(points: List, rho: Dict):
    """RESTORE's evidence: per run, the cross-modal shift discrepancy against the new-class accuracy (left) and H
    (right), coloured by method, Spearman's ρ in the titles. ``points``: :class:`~vlprompt.results.analyses
    .Point`; ``rho``: {"new": ρ, "H": ρ}."""
    fig = _canvas(10, 4.2)
    methods = sorted({p.method for p in points})
    for col, (field, label) in enumerate((("new", "new-class accuracy (%)"), ("H", "H (%)"))):
        ax = fig.add_subplot(1, 2, col + 1)
        for i, method in enumerate(methods):  # the same colour per method in both panels
            mine = [p for p in points if p.method == method]
            xs, ys = [p.discrepancy for p in mine], [getattr(p, field) for p in mine]
            ax.scatter(xs, ys, color=f"C{i % 10}", label=method)
        value = rho.get(field)
        ax.set_title(f"Spearman ρ = {'n/a' if value is None else f'{value:+.3f}'} ({len(points)} runs)", fontsize=9)
        ax.set_xlabel("shift discrepancy Σ_l (‖Ω_l^v‖ − ‖Ω_l^t‖)²")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
