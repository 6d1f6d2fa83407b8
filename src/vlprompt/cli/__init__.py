"""The ``vlprompt`` console script.

Every sub-command lives in its own module under ``vlprompt.cli`` and exposes ``add_parser(subparsers)``,
which registers the sub-command and sets ``func`` (called with the parsed namespace; returns an exit code
or ``None``). User errors — a bad flag (argparse), a :class:`vlprompt.errors.VLPromptError`, an OS error on a
file the user named — print one line and exit with status 2. Building the parser imports no model library, so
``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from vlprompt import __version__
from vlprompt.errors import VLPromptError

#: sub-command modules, in the order ``vlprompt --help`` lists them
COMMAND_MODULES = [
    "vlprompt.cli.list_cmd",
    "vlprompt.cli.data_cmd",
    "vlprompt.cli.zeroshot_cmd",
    "vlprompt.cli.train_cmd",
    "vlprompt.cli.eval_cmd",
    "vlprompt.cli.predict_cmd",
    "vlprompt.cli.export_cmd",
    "vlprompt.cli.convert_cmd",
    "vlprompt.cli.presets_cmd",
    "vlprompt.cli.demo_cmd",
    "vlprompt.cli.toy_pretrain_cmd",
    "vlprompt.cli.corrupt_cmd",
    "vlprompt.cli.analyze_cmd",
    "vlprompt.cli.sweep_cmd",
    "vlprompt.cli.table_cmd",
    "vlprompt.cli.plot_cmd",
    "vlprompt.cli.report_cmd",
]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``error: ...``, exit status 2), like every other user error;
    sub-command parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vlprompt",
        description="Prompt learning for CLIP-style vision-language models (offline-ready).",
    )
    parser.add_argument("--version", action="version", version=f"vlprompt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def one_line(message: str) -> str:
    """The user-facing line of an error message; errors raised in DataLoader workers arrive wrapped in
    torch's "Caught ... in DataLoader worker" text with the original message on the last line."""
    if "Original Traceback" in message:
        message = message.strip().splitlines()[-1].split("VLPromptError: ", 1)[-1]
    return message


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed (vlprompt train --nproc re-launches it)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from vlprompt.progress import configure

    configure(quiet=getattr(args, "quiet", False), verbose=getattr(args, "verbose", False))
    try:
        code = args.func(args)
    except VLPromptError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not about a file: a bug, shown with its traceback
            raise
        print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
