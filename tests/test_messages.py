"""segdec.messages: the package's module loggers, shown as plain lines by ``show_messages`` and
written above tqdm's bars by ``above_progress_bars``."""

import logging
import sys

import pytest
from tqdm.auto import tqdm

from segdec.messages import PACKAGE, PREDICT, above_progress_bars, show_messages


@pytest.fixture
def package_logger():
    """The ``segdec`` loggers as they were before the test (the CLI's tests configure them)."""
    saved = [(logger, list(logger.handlers), logger.level) for logger in (PACKAGE, PREDICT)]
    for logger, _, _ in saved:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
    yield PACKAGE
    for logger, handlers, level in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_messages_are_plain_lines_on_standard_output_once_shown(package_logger, capsys):
    prepare = logging.getLogger("segdec.data.prepare")
    prepare.info("not shown yet")  # the package says nothing at INFO until asked
    show_messages()
    show_messages()  # a second call adds no second handler: every line comes once
    prepare.info("bit depth %d: %s", 12, "the deepest of the training images")
    prepare.warning("image sizes spread widely")
    logging.getLogger("segdec.batch").debug("not shown: below INFO")
    assert capsys.readouterr().out == ("bit depth 12: the deepest of the training images\n"
                                       "warning: image sizes spread widely\n")


def test_predicts_notes_go_to_standard_error_beside_its_errors(package_logger, capsys):
    show_messages()
    logging.getLogger("segdec.predict").info("segdec predict: skipped %s", "broken.jpg")
    logging.getLogger("segdec.train").info("epoch 1/1")
    assert capsys.readouterr() == ("epoch 1/1\n", "segdec predict: skipped broken.jpg\n")


def test_a_message_during_a_progress_bar_comes_once_on_its_own_line(package_logger, capsys):
    """Written through the bar, a message would continue the bar's line; above it, the bar is
    cleared, the message written on a line of its own, and the bar drawn again below."""
    show_messages()
    with above_progress_bars():
        for step in tqdm(range(3), desc="steps", file=sys.stdout, ascii=True):
            if step == 1:
                logging.getLogger("segdec.train").info("halfway")
    out = capsys.readouterr().out
    assert out.count("halfway") == 1
    # what a terminal shows of each line: the text after its last carriage return
    assert "halfway" in [line.rsplit("\r", 1)[-1] for line in out.split("\n")]
    assert "steps: 100%" in out
    # the console handler is back after the bars
    logging.getLogger("segdec.train").info("after")
    assert capsys.readouterr().out == "after\n"


def test_bars_leave_loggers_alone_that_print_nothing(package_logger):
    """Without ``show_messages`` (a notebook that did not ask), the bars give the package no
    console handler that would print its messages."""
    with above_progress_bars():
        assert PACKAGE.handlers == [] and PREDICT.handlers == []
