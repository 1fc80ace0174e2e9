"""segdec.checkpoint: writes survive a kill, and unreadable or malformed checkpoints are named
without a traceback, from the API and from the command line."""

import pickle
import re
from pathlib import Path

import pytest
import torch

from segdec.checkpoint import load_checkpoint, model_from_checkpoint
from segdec.cli import main
from segdec.demo import demo_config
from segdec.errors import CheckpointError
from segdec.outputs import record
from segdec.train import TRAIN_OUTPUTS, train
from tests.helpers import one_epoch


@pytest.mark.slow
def test_a_killed_checkpoint_write_leaves_no_temporary_behind(tiny_severstal, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    record(run, "train", TRAIN_OUTPUTS)  # a run lists its files before it writes the first
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
        # an object, not a tensor, in the pickle protocol torch.save writes
        pickle.dump({"format": 1, "payload": Path("x")}, handle, protocol=2)
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


def test_checkpoints_load_without_unpickling(tiny_severstal, tmp_path):
    config = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=1,
                         out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert state["model_config"]["atrous"] is True and state["input_size"] == [64, 128]
    newer = dict(state, format=99)
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="newer than this segdec reads"):
        load_checkpoint(tmp_path / "newer.pt")
    # Written before seg_to_decision existed: its network read the map's logits.
    assert state["model_config"]["seg_to_decision"] == "probability"
    for saved in (state["model_config"], state["run_config"]):
        del saved["seg_to_decision"]
    torch.save(state, tmp_path / "older.pt")
    older = load_checkpoint(tmp_path / "older.pt")
    assert older["model_config"]["seg_to_decision"] == "logit"
    assert model_from_checkpoint(older).config.seg_to_decision == "logit"
    torch.save(state, tmp_path / "run" / "checkpoints" / "last.pt")  # a run trained before
    with pytest.raises(ValueError, match="differs in seg_to_decision"):
        train(config, resume=True, progress=False)


def test_evaluate_refuses_a_checkpoint_trained_at_another_bit_depth(tiny_run):
    """Its network would score images scaled unlike its training; older checkpoints say nothing
    of their depth and pass."""
    from segdec.checkpoint import check_belongs_to_run
    from segdec.config import RunConfig

    state = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    config = RunConfig.from_dict(state["run_config"])
    check_belongs_to_run(state, config, tiny_run / "best.pt")
    with pytest.raises(CheckpointError, match=r"it has bit_depth 12 \(the run: 8\)"):
        check_belongs_to_run({**state, "bit_depth": 12}, config, tiny_run / "best.pt")
    check_belongs_to_run({k: v for k, v in state.items() if k != "bit_depth"}, config,
                         tiny_run / "best.pt")
