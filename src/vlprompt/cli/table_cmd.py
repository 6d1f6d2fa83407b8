"""``vlprompt table``: the papers' result tables from a sweep folder."""

from __future__ import annotations

from vlprompt.protocols import PROTOCOLS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "table",
        help="result tables (few-shot, base-to-new, cross-dataset, domain generalisation) of a sweep folder",
        description="Read every results.json under OUT (the `vlprompt sweep` layout) and print one table per "
        "protocol and method: mean ± std over seeds, missing seeds as (found/expected), base-to-new averages "
        "with H of the averaged Base and New; seeds run with different settings, or one method's runs with different "
        "backbones, are refused. Also writes summary.csv per method (DePT's column layout), replacing only a "
        "summary.csv it wrote for this sweep.",
    )
    p.add_argument("root", metavar="OUT", help="the sweep's --root folder")
    p.add_argument("--protocol", nargs="+", choices=PROTOCOLS, default=None, help="only these")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md")
    p.add_argument("--paper", action="store_true", help="add the published numbers of each method and the difference")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys
    from pathlib import Path

    from vlprompt.errors import VLPromptError
    from vlprompt.results.render import render, tables
    from vlprompt.results.summaries import summaries
    from vlprompt.results.summary_csv import write_summaries

    root = Path(args.root)
    if not root.is_dir():
        raise VLPromptError(f"{root} is not a folder: pass the --root of a `vlprompt sweep`")
    found = summaries(root, args.protocol)
    if not found:
        raise VLPromptError(f"{root} holds no finished runs (results.json) in the sweep layout; run `vlprompt sweep`")
    written = write_summaries(root, found)  # refused before printing when it would replace a user's file
    print(render(tables(found, paper=args.paper), args.format), end="")
    print(f"wrote {len(written)} summary.csv file(s) under {root}", file=sys.stderr)
    return 0
