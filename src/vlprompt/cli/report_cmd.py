"""``vlprompt report``: a sweep folder as one self-contained HTML file."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of a sweep: tables beside the published numbers, figures, runs",
        description="Write one HTML file that opens offline: the result tables with the published numbers beside "
        "ours, the sweep-wide analyses' tables, every figure of `vlprompt plot` embedded in the page, and each "
        "run's settings with relative links to its files.",
    )
    p.add_argument("root", metavar="SWEEP_ROOT", help="the sweep's --root folder")
    p.add_argument("--out", default=None, help="the HTML file (default: SWEEP_ROOT/report.html)")
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.results.report import write_report

    print(write_report(args.root, args.out))
    return 0
