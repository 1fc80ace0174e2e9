"""segdec.cli and segdec.errors: input errors are one line under one base class, bugs keep
their traceback."""

import pytest

from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.download import DownloadError
from segdec.errors import CheckpointError, ConfigError, DataError, SegdecError


def test_input_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    import segdec.cli

    def fails_with(error: Exception):
        def command(args):
            raise error
        return command

    monkeypatch.setattr(segdec.cli, "cmd_evaluate", fails_with(ConfigError("bad setting")))
    assert main(["evaluate", "--run", "r"]) == 2
    assert capsys.readouterr().err == "segdec evaluate: error: bad setting\n"
    for bug in (ValueError("a bug"), ImportError("a bug"), KeyError("a bug")):
        monkeypatch.setattr(segdec.cli, "cmd_evaluate", fails_with(bug))
        with pytest.raises(type(bug), match="a bug"):
            main(["evaluate", "--run", "r"])


def test_input_errors_share_one_base_and_stay_value_errors():
    for error in (DataError, DownloadError, ConfigError, CheckpointError):
        assert issubclass(error, SegdecError) and issubclass(error, ValueError)
    with pytest.raises(ConfigError):
        RunConfig(epochs=0)


@pytest.mark.parametrize(("argv", "message"), [
    (["synth", "--out", "data", "--size", "10x10"], "size 10x10 must be at least 64x64"),
    (["summary", "."], "no finished runs to report on"),
    (["train", "--config", "missing.yaml"], "run configuration missing.yaml does not exist"),
])
def test_input_errors_of_other_commands_stay_one_line(tmp_path, monkeypatch, capsys, argv,
                                                      message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
