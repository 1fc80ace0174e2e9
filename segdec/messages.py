"""Where the package's messages go: every module logs to its own logger under ``segdec``;
``show_messages`` prints them as plain lines (the command line and the notebooks call it), and
``above_progress_bars`` keeps them off tqdm's bars while a command's bars run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

PACKAGE = logging.getLogger("segdec")
# Predict's notes (an image skipped, files left out, an older checkpoint) go to standard error,
# beside its errors: its standard output is the summary of what it scored.
PREDICT = logging.getLogger("segdec.predict")


class _PlainLines(logging.Formatter):
    """The message alone, as the user reads it; a warning says that it is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"{record.levelname.lower()}: {text}" if record.levelno >= logging.WARNING else text


class _Console(logging.StreamHandler):
    """A handler on ``sys.stdout`` or ``sys.stderr`` as they are when a message comes (a notebook
    cell's, a test's capture), not as they were when it was made; ``logging_redirect_tqdm``
    takes it for the console it is."""

    def __init__(self, stream_name: str) -> None:
        logging.Handler.__init__(self)  # not StreamHandler's: it would fix the stream
        self.stream_name = stream_name
        self.setFormatter(_PlainLines())

    @property
    def stream(self) -> TextIO:
        return getattr(sys, self.stream_name)


def show_messages() -> None:
    """Print the package's messages (INFO and above) from now on: predict's on standard error,
    all others on standard output; once, however often it is called. The command line calls
    it, and so do the notebooks."""
    PACKAGE.setLevel(logging.INFO)
    if not any(isinstance(handler, _Console) for handler in PACKAGE.handlers):
        output = _Console("stdout")
        predicts = logging.Filter(PREDICT.name)  # passes PREDICT's records, which it prints
        output.addFilter(lambda record: not predicts.filter(record))
        PACKAGE.addHandler(output)
    if not any(isinstance(handler, _Console) for handler in PREDICT.handlers):
        PREDICT.addHandler(_Console("stderr"))


def _on_console(logger: logging.Logger) -> bool:
    return any(isinstance(handler, logging.StreamHandler)
               and handler.stream in (sys.stdout, sys.stderr) for handler in logger.handlers)


@contextmanager
def above_progress_bars() -> Iterator[None]:
    """While it lasts, the package's console messages are written above tqdm's bars
    (``tqdm.write``), each on its own line, not into a bar's line. Only loggers printing to the
    console are redirected: ``logging_redirect_tqdm`` would give any other one a console handler
    of its own, printing what a caller never asked to see."""
    with logging_redirect_tqdm([logger for logger in (PACKAGE, PREDICT) if _on_console(logger)],
                               tqdm_class=tqdm):
        yield
