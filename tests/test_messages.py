"""segdec.messages: the package's module loggers, shown as plain lines by ``show_messages``."""

import logging

import pytest

from segdec.messages import PACKAGE, show_messages


@pytest.fixture
def package_logger():
    """The ``segdec`` logger as it was before the test (the CLI's tests configure it too)."""
    handlers, level = list(PACKAGE.handlers), PACKAGE.level
    PACKAGE.handlers.clear()
    PACKAGE.setLevel(logging.NOTSET)
    yield PACKAGE
    PACKAGE.handlers[:] = handlers
    PACKAGE.setLevel(level)


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
