"""Console output of long loops and of the ``vlprompt`` logger: a progress bar on a terminal, plain lines otherwise.

* On a terminal (stderr is a TTY) a loop shows a transient tqdm bar.
* Anywhere else (CI, SLURM, ``> log 2>&1``) a loop writes no carriage returns: a line at every ``every`` percent
  reached ``interval`` seconds after the previous line (short loops stay silent), and a closing line if it wrote
  any.
* :func:`configure` (the command line's ``--quiet`` / ``--verbose``) sets the console verbosity: quiet shows no
  progress and only warnings and errors; the default also shows the records logged with ``extra=CONSOLE`` (one line
  per training epoch); verbose shows every record down to DEBUG.

Every long loop of the package (training epochs, evaluation, feature encoding, toy data generation) goes through
:func:`progress`, so a run's output is readable wherever it is written.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Iterable, Optional

#: ``extra`` of a log record that the console shows at the default verbosity (not only with --verbose)
CONSOLE = {"console": True}

QUIET, NORMAL, VERBOSE = "quiet", "normal", "verbose"
_state = {"verbosity": NORMAL}
_handler: Optional[logging.Handler] = None


def is_tty() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def is_quiet() -> bool:
    return _state["verbosity"] == QUIET


class ConsoleHandler(logging.Handler):
    """Writes ``vlprompt`` records to the current ``sys.stderr`` (looked up at every record, so redirections such
    as a sweep job's log apply), through ``tqdm.write`` on a terminal so that an open bar is not broken."""

    def __init__(self, verbosity: str):
        super().__init__(logging.DEBUG if verbosity == VERBOSE else logging.INFO)
        self.verbosity = verbosity

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or self.verbosity == VERBOSE:
            return True
        return self.verbosity == NORMAL and getattr(record, "console", False)

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return f"[{record.name}] {text}" if self.verbosity == VERBOSE and record.levelno < logging.INFO else text

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:  # a logging call must never break the run
            self.handleError(record)


def configure(quiet: bool = False, verbose: bool = False) -> None:
    """Set the console verbosity of this process (``--quiet`` / ``--verbose``) and (re)attach the console handler
    of the ``vlprompt`` logger."""
    global _handler
    verbosity = QUIET if quiet else VERBOSE if verbose else NORMAL
    _state["verbosity"] = verbosity
    logger = logging.getLogger("vlprompt")
    if _handler is not None:
        logger.removeHandler(_handler)
    _handler = ConsoleHandler(verbosity)
    logger.addHandler(_handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def write_line(text: str) -> None:
    """One line on stderr, above an open progress bar on a terminal."""
    if is_tty():
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class Progress:
    """A loop's progress (see the module doc); use it as an iterable wrapper or call :meth:`update`."""

    def __init__(
        self,
        iterable: Optional[Iterable] = None,
        *,
        total: Optional[int] = None,
        desc: str = "",
        unit: str = "it",
        enabled: bool = True,
        every: int = 25,
        interval: float = 10.0,
        summary: bool = True,
    ):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc, unit
        self.every, self.interval, self.summary = every, interval, summary
        self.enabled = enabled and not is_quiet()
        self.n, self.postfix, self.printed = 0, "", False
        self.start = self.last = time.monotonic()
        self.next_mark = every
        self._bar = None
        if self.enabled and is_tty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.total:
            percent = 100 * self.n // self.total
            if percent >= self.next_mark:
                self.next_mark = (percent // self.every + 1) * self.every
                now = time.monotonic()
                if now - self.last >= self.interval and self.n < self.total:
                    self.last = now
                    self._line(f"{percent}%")

    def _line(self, where: str) -> None:
        self.printed = True
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        elapsed = _format_seconds(time.monotonic() - self.start)
        write_line(f"{self.desc}: {where} ({count} {self.unit}, {elapsed}){' ' + self.postfix if self.postfix else ''}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.printed and self.summary:
            self._line("done")
        self.enabled = False


def progress(iterable: Optional[Iterable] = None, **options: Any) -> Progress:
    """:class:`Progress` over ``iterable`` (or driven by ``update``); options: ``total``, ``desc``, ``unit``,
    ``enabled`` (False: silent), ``every`` (percent between lines off a terminal), ``interval`` (seconds between
    such lines, so that short loops write none), ``summary`` (False: no closing line; the caller logs one)."""
    return Progress(iterable, **options)
