"""Where the package's messages go: every module logs to its own logger under ``segdec``, and
``show_messages`` prints them as plain lines for the command line and the notebooks."""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

PACKAGE = logging.getLogger("segdec")


class _PlainLines(logging.Formatter):
    """The message alone, as the user reads it; a warning says that it is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"{record.levelname.lower()}: {text}" if record.levelno >= logging.WARNING else text


class _AboveProgressBars(logging.Handler):
    """Each message through ``tqdm.write`` on the standard output of the moment (a terminal, a
    notebook cell, a test's capture): above an active progress bar, not through it, and flushed
    at once, so that a long batch's log file shows its progress as it goes."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def show_messages() -> None:
    """Print the package's messages (INFO and above) on standard output from now on; once,
    however often it is called. The command line calls it, and so do the notebooks."""
    PACKAGE.setLevel(logging.INFO)
    if not any(isinstance(handler, _AboveProgressBars) for handler in PACKAGE.handlers):
        handler = _AboveProgressBars()
        handler.setFormatter(_PlainLines())
        PACKAGE.addHandler(handler)
