"""Figures of a sweep folder (``vlprompt plot``), rendered on matplotlib's Agg canvas (imported lazily).

* ``fewshot.png``: accuracy vs number of shots per method, averaged over datasets (CoOp, Zhou et al.,
  IJCV 2022, Fig. 3), and ``fewshot_datasets.png`` with one panel per dataset;
* ``b2n[_shots<K>].png``: average Base / New / H bars per method;
* ``norms/<run>.png``: prompt norms and test accuracy over epochs of every training run that logged
  per-position norms (+nemesis; Nemesis, Fu et al., ICLR 2024), via :mod:`vlprompt.analysis.plots`;
* ``low_norm.png`` and ``feature_shift.png`` when ``vlprompt analyze low-norm|feature-shift SWEEP_ROOT`` has run
  (:mod:`vlprompt.results.analyses`).

Every figure is drawn first; the files are written only when none of them would replace a file that ``vlprompt
plot`` did not write for this sweep (:mod:`vlprompt.outputs`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, List, Sequence, Tuple

from vlprompt import outputs
from vlprompt.engine.rundir import METRICS
from vlprompt.protocols import BASE_NEW, SHOTS
from vlprompt.results.summaries import AVERAGE, Summary
from vlprompt.sweep.layout import TRAIN, finished_runs


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


#: a figure to write: its path and the matplotlib figure
Drawn = Tuple[Path, Any]


def _drawn(fig, path: Path) -> Drawn:
    fig.tight_layout()
    return path, fig


def _curve(ax, summary: Summary, row: str) -> None:
    points = [(int(c), summary.value(row, c).mean) for c in summary.columns]
    points = [(k, v) for k, v in points if v is not None]
    if points:
        style = {"linestyle": "--", "marker": "*", "markersize": 10} if len(points) == 1 else {"marker": "o"}
        ax.plot([k for k, _ in points], [v for _, v in points], label=summary.method, **style)


def _shots_axis(ax, shots: Sequence[int]) -> None:
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(list(shots))
    ax.set_xticklabels([str(k) for k in shots])
    ax.set_xlabel("shots per class")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)


def fewshot_curves(group: Sequence[Summary], out: Path) -> List[Drawn]:
    shots = sorted({int(c) for s in group for c in s.columns})
    fig = _figure(6, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for summary in group:
        _curve(ax, summary, AVERAGE)
    _shots_axis(ax, shots)
    n = len(group[0].targets)
    ax.set_title(f"few-shot, average over {n} dataset{'s' if n != 1 else ''}")
    ax.legend(fontsize=8)
    drawn = [_drawn(fig, out / "fewshot.png")]
    datasets = group[0].targets
    cols = min(4, len(datasets))
    fig = _figure(4 * cols, 3.2 * math.ceil(len(datasets) / cols))
    for i, dataset in enumerate(datasets):
        ax = fig.add_subplot(math.ceil(len(datasets) / cols), cols, i + 1)
        for summary in group:
            _curve(ax, summary, dataset)
        _shots_axis(ax, shots)
        ax.set_title(dataset)
        if i == 0:
            ax.legend(fontsize=7)
    return drawn + [_drawn(fig, out / "fewshot_datasets.png")]


def b2n_bars(group: Sequence[Summary], out: Path) -> Drawn:
    fig = _figure(max(6, 1.2 * len(group) + 2), 4)
    ax = fig.add_subplot(1, 1, 1)
    colours = {"base": "#4c72b0", "new": "#dd8452", "H": "#55a868"}
    for k, column in enumerate(("base", "new", "H")):
        heights = [s.value(AVERAGE, column).mean or 0.0 for s in group]
        ax.bar([i + (k - 1) * 0.27 for i in range(len(group))], heights, 0.27, label=column, color=colours[column])
    ax.set_xticks(list(range(len(group))))
    ax.set_xticklabels([s.method for s in group], rotation=30, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 115)
    ax.set_title(f"base-to-new, average over datasets ({group[0].shots} shots)")
    ax.legend(loc="upper center", ncol=3)
    return _drawn(fig, out / ("b2n.png" if group[0].shots == 16 else f"b2n_shots{group[0].shots}.png"))


def norm_curves(root: Path, out: Path) -> List[Drawn]:
    from vlprompt.analysis.plots import has_norm_history, norms_figure

    drawn = []
    for key in finished_runs(root):
        metrics = key.path(root) / METRICS
        if key.kind == TRAIN and has_norm_history(metrics):
            drawn.append((out / "norms" / (key.relpath.replace("/", "__") + ".png"), norms_figure(metrics)))
    return drawn


def plot_all(root: Path, summaries: Sequence[Summary], out: Path) -> List[Path]:
    """Every figure the sweep folder has data for; returns the files written (none when one of them may not be
    replaced: a one-line error)."""
    drawn: List[Drawn] = []
    fewshot = [s for s in summaries if s.layout == SHOTS]
    if fewshot:
        drawn += fewshot_curves(fewshot, out)
    for shots in sorted({s.shots for s in summaries if s.layout == BASE_NEW}):
        drawn.append(b2n_bars([s for s in summaries if s.layout == BASE_NEW and s.shots == shots], out))
    drawn += norm_curves(root, out)
    from vlprompt.results.analyses import low_norm_figure, shift_figure

    drawn += [d for d in (low_norm_figure(root, out), shift_figure(root, out)) if d is not None]
    source = str(Path(root).resolve())
    outputs.check_outputs([path for path, _ in drawn], source, "pass another --out")
    return [
        outputs.write_owned(path, source, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=120))
        for path, fig in drawn
    ]
