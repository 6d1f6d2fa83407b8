"""Render result summaries as Markdown, CSV or LaTeX tables (``vlprompt table``).

One table per method (rows = datasets or targets, then the average row), preceded by an overview of the
methods' average rows when a protocol has several methods. A cell reads ``mean ± std`` over seeds, with
``(found/expected)`` when seeds are missing, or ``—`` when nothing was found. ``paper=True`` adds, after each
column, the published number of the same method (:mod:`vlprompt.results.published`) and our difference.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from vlprompt.protocols import BASE_NEW, PROTOCOLS, SHOTS, TRANSFER
from vlprompt.results.published import lookup
from vlprompt.results.summaries import AVERAGE, Summary, Value

MISSING_CELL = "—"
NO_PAPER = "paper: no published number for this method, protocol and backbone"
COLUMN_TITLES = {"base": "Base", "new": "New", "H": "H", "acc": "accuracy"}


@dataclass
class Table:
    title: str
    header: List[str]
    rows: List[List[str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def format_value(value: Value) -> str:
    if value.mean is None:
        return MISSING_CELL
    text = f"{value.mean:.2f}"
    if value.std is not None:
        text += f" ± {value.std:.2f}"
    if value.n < value.expected:
        text += f" ({value.n}/{value.expected})"
    return text


def column_title(summary: Summary, column: str) -> str:
    if summary.layout == SHOTS:
        return f"{column} shot{'s' if column != '1' else ''}"
    return COLUMN_TITLES.get(column, column)


def describe(summary: Summary) -> str:
    parts = [summary.backbone or "unknown backbone"]
    if summary.shots is not None:
        parts.append(f"{summary.shots} shots")
    parts.append("seeds " + " ".join(map(str, summary.seeds)))
    return f"{PROTOCOLS[summary.protocol].title}: {summary.method} ({', '.join(parts)})"


def method_table(summary: Summary, paper: bool = False) -> Table:
    published = lookup(summary.protocol, summary.method, summary.backbone) if paper else None
    header = ["dataset" if summary.layout != TRANSFER else "dataset (source, targets)"]
    for column in summary.columns:
        title = column_title(summary, column)
        header += [title, f"{title} paper", f"Δ {title}"] if paper else [title]
    table = Table(describe(summary), header)
    for row, cells in summary.rows.items():
        line = [row]
        for column in summary.columns:
            value = cells.get(column, Value(None))
            line.append(format_value(value))
            if paper:
                ref = published.rows.get(row, {}).get(column) if published else None
                line.append(MISSING_CELL if ref is None else f"{ref:.2f}")
                diff = None if ref is None or value.mean is None else value.mean - ref
                line.append(MISSING_CELL if diff is None else f"{diff:+.2f}")
        table.rows.append(line)
    if summary.layout == BASE_NEW:
        table.notes.append("average: Base and New averaged over datasets, H of those averages")
    elif summary.layout == TRANSFER:
        table.notes.append("average: mean over the targets (the source row is not included)")
    if paper:
        table.notes.append(f"paper: {published.source}" if published else NO_PAPER)
    return table


def overview_table(group: Sequence[Summary]) -> Optional[Table]:
    """Several methods side by side: the average row (base-to-new, few-shot), or the source, every target and
    the average (cross-dataset, domain generalisation: the papers' table layout)."""
    if len(group) < 2:
        return None
    first = group[0]
    if first.layout == TRANSFER:
        sources = [r for r in first.rows if r not in first.targets and r != AVERAGE]
        cells = [(r, "acc") for r in (*sources, *first.targets, AVERAGE)]
        header = ["method", *(f"{r} (source)" for r in sources), *first.targets, AVERAGE]
        title = f"{PROTOCOLS[first.protocol].title} ({first.shots} shots)"
    else:
        cells = [(AVERAGE, c) for c in first.columns]
        header = ["method", *(column_title(first, c) for c in first.columns)]
        title = f"{PROTOCOLS[first.protocol].title}: average over datasets"
        title += f" ({first.shots} shots)" if first.shots is not None else ""
    table = Table(title, header)
    table.rows = [[s.method, *(format_value(s.value(r, c)) for r, c in cells)] for s in group]
    return table


def tables(summaries: Sequence[Summary], paper: bool = False) -> List[Table]:
    """Per protocol (and shot count): the overview of methods, then each method's table."""
    out: List[Table] = []
    groups: dict = {}
    for s in summaries:
        groups.setdefault((s.protocol, s.shots), []).append(s)
    for group in groups.values():
        overview = overview_table(group)
        if overview is not None:
            out.append(overview)
        out += [method_table(s, paper) for s in group]
    return out


def render(tables: Sequence[Table], fmt: str = "md") -> str:
    return {"md": _markdown, "csv": _csv, "latex": _latex}[fmt](tables)


def _markdown(tables: Sequence[Table]) -> str:
    blocks = []
    for t in tables:
        widths = [max(len(r[i]) for r in [t.header, *t.rows]) for i in range(len(t.header))]

        def line(cells, widths=widths):
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

        rows = [line(t.header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, t.rows)]
        blocks.append("\n".join([f"### {t.title}", "", *rows, *([""] if t.notes else []), *t.notes]))
    return "\n\n".join(blocks) + "\n"


def _csv(tables: Sequence[Table]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i, t in enumerate(tables):
        if i:
            buffer.write("\n")
        buffer.write(f"# {t.title}\n")
        writer.writerow(t.header)
        writer.writerows(t.rows)
    return buffer.getvalue()


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(a, b)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace(MISSING_CELL, "--")


def _latex(tables: Sequence[Table]) -> str:
    blocks = []
    for t in tables:
        lines = [
            f"% {t.title}",
            r"\begin{tabular}{l" + "r" * (len(t.header) - 1) + "}",
            r"\toprule",
            " & ".join(map(_tex, t.header)) + r" \\",
            r"\midrule",
        ]
        for row in t.rows:
            if row[0] == AVERAGE:
                lines.append(r"\midrule")
            lines.append(" & ".join(map(_tex, row)) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
