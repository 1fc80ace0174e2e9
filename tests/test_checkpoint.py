"""segdec.checkpoint: writes survive a kill, and unreadable or malformed checkpoints are named
without a traceback, from the API and from the command line."""

import pickle
import re
from pathlib import Path

import pytest
import torch

from segdec.checkpoint import load_checkpoint
from segdec.cli import main
from segdec.errors import CheckpointError
from segdec.train import train
from tests.conftest import one_epoch


@pytest.mark.slow
def test_a_killed_checkpoint_write_leaves_no_temporary_behind(tiny_severstal, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    stale = run / "checkpoints" / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    train(one_epoch(tiny_severstal, run), resume=True, progress=False)
    assert not stale.exists() and (run / "checkpoints" / "last.pt").exists()


def test_unreadable_checkpoints_are_named_without_a_traceback(tmp_path, capsys):
    empty, truncated = tmp_path / "empty.pt", tmp_path / "truncated.pt"
    empty.write_bytes(b"")
    torch.save({"format": 1, "model": {}, "model_config": {}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    for path in (empty, truncated):
        with pytest.raises(ValueError, match=f"{path} cannot be read as a checkpoint"):
            load_checkpoint(path)
    malicious = tmp_path / "malicious.pt"
    with open(malicious, "wb") as handle:
        pickle.dump({"format": 1, "payload": Path("x")}, handle)  # an object, not a tensor
    with pytest.raises(ValueError, match="refused") as refused:
        load_checkpoint(malicious)
    assert "weights_only=False" not in str(refused.value)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({"format": 1, "model": {}}, incomplete)
    with pytest.raises(ValueError, match="without model_config"):
        load_checkpoint(incomplete)
    for argv, message in (
        (["export", "--checkpoint", str(incomplete), "--onnx", str(tmp_path / "m.onnx")],
         "without model_config"),
        (["predict", "--checkpoint", str(truncated), "--images", str(tmp_path), "--out",
          str(tmp_path / "out")], "cannot be read as a checkpoint"),
        (["evaluate", "--run", str(tmp_path / "nowhere")], "does not exist"),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def _tampered(tiny_run, tmp_path, change) -> Path:
    state = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    change(state)
    path = tmp_path / "tampered.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["model_config"].update(colour_mode="rgb"),
     "describes its network with colour_mode, which this segdec does not know"),
    (lambda s: s["model"].pop("seg_head.weight"), "lacks the weights seg_head.weight"),
    (lambda s: s["model"].update(extra=torch.zeros(1)), "holds unknown weights extra"),
    (lambda s: s["model"].update({"seg_head.weight": torch.zeros(1)}),
     "holds weights of the wrong shape seg_head.weight"),
    (lambda s: s.pop("input_size"), "without input_size"),
    (lambda s: s.update(input_size=[30, -8]), "holds input_size [30, -8] (a run writes"),
    (lambda s: s.update(bit_depth=99), "holds bit_depth 99 (a run writes 8 to 16)"),
    (lambda s: s.update(threshold=float("nan")), "holds threshold nan (a run writes a "),
])
def test_malformed_checkpoints_are_named(tiny_run, tmp_path, capsys, change, message):
    path = _tampered(tiny_run, tmp_path, change)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(path)
    assert main(["predict", "--checkpoint", str(path), "--images", str(tmp_path), "--out",
                 str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
