"""A sweep in one self-contained HTML file: ``vlprompt report SWEEP_ROOT`` (default ``SWEEP_ROOT/report.html``).

The page holds, with nothing fetched when it opens (no scripts, no style sheets, no external images):

* the result tables of ``vlprompt table --paper`` (ours beside the published numbers and the difference), and the
  sweep-wide analyses' tables when they have run (``low-norm.csv``, ``feature-shift.csv``);
* every figure ``vlprompt plot`` draws, embedded as ``data:image/png;base64`` URIs (needs matplotlib; without it
  the page says so);
* per run directory: its settings (``config.yaml``) and relative links to its files, which resolve while the
  report stays in the sweep folder (or wherever ``--out`` puts it: links are relative to the report).

Like ``vlprompt plot``'s figures, the file replaces only a report vlprompt wrote for the same sweep
(:mod:`vlprompt.outputs`).
"""

from __future__ import annotations

import base64
import csv
import html
import os
import tempfile
from pathlib import Path
from typing import List, Optional

from vlprompt import outputs
from vlprompt.errors import VLPromptError
from vlprompt.results.render import Table
from vlprompt.sweep.layout import SWEEP_DIR

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 80em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
pre { background: #f4f4f4; padding: 0.5em; overflow-x: auto; }
"""


def table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    notes = "".join(f"<p><small>{html.escape(n)}</small></p>" for n in t.notes)
    return f"<h3>{html.escape(t.title)}</h3>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"


def csv_table(path: Path, title: str) -> Optional[Table]:
    if not path.is_file():
        return None
    rows = list(csv.reader(path.read_text().splitlines()))
    return Table(title, rows[0], rows[1:], [f"from {path.name}"]) if rows else None


def image_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(caption)}</figcaption></figure>"  # fmt: skip


def figures_html(root: Path, summaries) -> List[str]:
    from vlprompt.extras import available

    if not available("matplotlib"):
        return ["<p>figures skipped: they need matplotlib (pip install 'vlprompt[plot]')</p>"]
    from vlprompt.results.plots import plot_all

    with tempfile.TemporaryDirectory() as tmp:
        paths = plot_all(root, summaries, Path(tmp))
        return [image_html(p, p.relative_to(tmp).as_posix()) for p in paths]


def run_dirs(root: Path) -> List[Path]:
    """Every run directory of the sweep layout (training, evaluation and analysis runs)."""
    found = [p.parent for p in root.glob("*/*/*/shots*/seed*/*/.vlprompt-run.json")]
    found += [p.parent for p in root.glob("*/*/*/shots*/seed*/*/feature_shift.json")]
    return sorted({p for p in found if SWEEP_DIR not in p.relative_to(root).parts})


def runs_html(root: Path, out: Path) -> List[str]:
    blocks = []
    for run in run_dirs(root):
        name = run.relative_to(root).as_posix()
        files = sorted(p for p in run.rglob("*") if p.is_file() and not p.name.startswith("."))
        links = " · ".join(
            f'<a href="{html.escape(Path(os.path.relpath(p, out.parent)).as_posix())}">'
            f"{html.escape(p.relative_to(run).as_posix())}</a>"
            for p in files
        )
        config = run / "config.yaml"
        settings = f"<pre>{html.escape(config.read_text())}</pre>" if config.is_file() else ""
        blocks.append(f"<details><summary>{html.escape(name)}</summary><p>{links}</p>{settings}</details>")
    return blocks


def build(root: Path, out: Path) -> str:
    from vlprompt.results.render import tables
    from vlprompt.results.summaries import summaries

    found = summaries(root)
    if not found:
        raise VLPromptError(f"{root} holds no finished runs (results.json) in the sweep layout; run `vlprompt sweep`")
    extra = [csv_table(root / "low-norm.csv", "Low-Norm Effect (vlprompt analyze low-norm)"),
             csv_table(root / "feature-shift.csv", "Feature shift vs generalisation (vlprompt analyze feature-shift)")]  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>vlprompt report: {html.escape(root.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>vlprompt sweep report: {html.escape(str(root))}</h1>",
        "<h2>Results</h2>",
        *(table_html(t) for t in [*tables(found, paper=True), *(t for t in extra if t is not None)]),
        "<h2>Figures</h2>",
        *figures_html(root, found),
        "<h2>Runs</h2>",
        *runs_html(root, out),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(root: Path, out: Optional[Path] = None) -> Path:
    """Write the report of sweep folder ``root`` to ``out`` (default ``root/report.html``)."""
    root = Path(root)
    if not root.is_dir():
        raise VLPromptError(f"{root} is not a folder: pass the --root of a `vlprompt sweep`")
    out = Path(out) if out else root / "report.html"
    source = str(root.resolve())
    outputs.check_outputs([out], source, "pass another --out")
    text = build(root.resolve(), out.resolve())
    return outputs.write_owned(out, source, lambda tmp: tmp.write_text(text))
