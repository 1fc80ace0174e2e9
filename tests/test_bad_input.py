"""Bad input gets a clear error naming the file or field, and the run directory always describes
what was trained (issue 12: each case below reproduced a failure of an earlier main)."""

from __future__ import annotations

import logging
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import requests
import torch
import yaml

from segdec.batch import load_batch, run_batch
from segdec.checkpoint import load_checkpoint
from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.download import DownloadError, extract_safely, fetch_from_kaggle
from segdec.data.images import DataError
from segdec.demo import demo_config
from segdec.errors import CheckpointError, ConfigError, SegdecError
from segdec.train import _check_resumable, train

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def one_epoch(tiny_severstal, out: Path, **changes) -> RunConfig:
    values = {"data_root": str(tiny_severstal), "epochs": 1, "n_seg": 3, "out_dir": str(out),
              **changes}
    return demo_config(out.parent, **values)


def train_split(run: Path) -> tuple[int, int]:
    split = pd.read_csv(run / "split.csv")
    positives = split[(split.subset == "train") & (split.label == 1)]
    return len(positives), int(positives.has_pixel_label.sum())


@pytest.mark.slow
def test_a_new_run_never_reuses_a_failed_attempts_split(tiny_severstal, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(DataError, match="below the network"):  # fails before any checkpoint
        train(one_epoch(tiny_severstal, run, input_height=56), progress=False)
    assert not (run / "split.csv").exists()  # a failed start writes nothing
    train(one_epoch(tiny_severstal, run, n_all=3, n_seg=1), progress=False)
    assert train_split(run) == (3, 1)
    saved = RunConfig.from_file(run / "config.yaml")
    assert (saved.n_all, saved.n_seg) == (3, 1)


@pytest.mark.slow
def test_a_refused_resume_writes_nothing(tiny_severstal, tmp_path, monkeypatch):
    run = tmp_path / "run"
    config = one_epoch(tiny_severstal, run)
    train(config, progress=False)
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "split.csv")}
    other_split = tmp_path / "other.csv"
    pd.read_csv(run / "split.csv").iloc[::-1].to_csv(other_split, index=False)
    for changed in (config.replace(epochs=2, learning_rate=0.5),
                    config.replace(epochs=2, split_csv=str(other_split))):
        with pytest.raises(ValueError, match="cannot resume"):
            train(changed, resume=True, progress=False)
        assert {name: (run / name).read_bytes() for name in before} == before
    # the untouched run still resumes, its data folder spelled relative this time
    monkeypatch.chdir(tiny_severstal.parent)
    resumed = config.replace(data_root=tiny_severstal.name)
    assert train(resumed, resume=True, progress=False)["n_test"] > 0


def test_resuming_compares_folders_not_their_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    absolute = RunConfig(data_root=str(tmp_path / "data"))
    _check_resumable(absolute.to_dict(), RunConfig(data_root="data"), tmp_path / "last.pt")
    with pytest.raises(ValueError, match="differs in data_root"):
        _check_resumable(absolute.to_dict(), RunConfig(data_root="elsewhere"), tmp_path / "x")


@pytest.mark.slow
def test_a_split_csv_must_hold_n_all_and_n_seg(tiny_severstal, tmp_path):
    train(one_epoch(tiny_severstal, tmp_path / "first"), progress=False)
    given = str(tmp_path / "first" / "split.csv")
    n_all, n_seg = train_split(tmp_path / "first")
    with pytest.raises(DataError, match=f"has {n_all} training positives, but n_all=3"):
        train(one_epoch(tiny_severstal, tmp_path / "a", split_csv=given, n_all=3, n_seg=1),
              progress=False)
    with pytest.raises(DataError, match=f"{n_seg} training positives with pixel labels, but "
                                        "n_seg=1; set n_seg"):
        train(one_epoch(tiny_severstal, tmp_path / "b", split_csv=given, n_all=None, n_seg=1),
              progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


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


def test_predict_fails_when_no_image_can_be_read(tiny_run, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.jpg"):
        (images / name).write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--images", str(images), "--out", str(out), "--device", "cpu"]) == 2
    assert "none of the 2 images could be read" in capsys.readouterr().err
    assert len(pd.read_csv(out / "skipped.csv")) == 2


@pytest.mark.parametrize(("values", "message"), [
    ({"epochs": "ten"}, "epochs='ten' must be a whole number"),
    ({"epochs": True}, "epochs=True must be a whole number"),
    ({"learning_rate": "fast"}, "learning_rate='fast' must be a number"),
    ({"batch_size": 4.5}, "batch_size=4.5 must be a whole number"),
    ({"input_height": [64]}, r"input_height=\[64\] must be a whole number"),
    ({"attention": "maybe"}, "attention='maybe' must be true or false"),
    ({"data_root": True}, "data_root=True must be text"),
])
def test_wrong_types_name_the_field(values, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(values)


def test_python_and_command_line_types():
    with pytest.raises(ValueError, match="attention='no' must be true or false"):
        RunConfig(attention="no")
    assert RunConfig.from_dict({"out_dir": 2024}).out_dir == "2024"
    assert main(["train", "--epochs", "ten", "--out-dir", "x"]) == 2
    import argparse

    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser)
    args = parser.parse_args(["--out-dir", "2024", "--data-root", "on"])
    config = RunConfig.from_args(args)
    assert (config.out_dir, config.data_root) == ("2024", "on")


def test_yaml_mistakes_name_the_file(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("epochs: [3\n")
    listed = tmp_path / "listed.yaml"
    listed.write_text("input_height: [64]\n")
    with pytest.raises(ValueError, match=f"{broken} is not valid YAML"):
        RunConfig.from_file(broken)
    with pytest.raises(ValueError, match=f"{listed}: input_height"):
        RunConfig.from_file(listed)
    assert main(["train", "--config", str(broken)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_one_invalid_batch_entry_fails_alone(tmp_path, caplog):
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump({
        "batch": "t", "notebook": str(NOTEBOOKS / "02_train.ipynb"),
        "runs": [{"name": "good"}, {"name": "bad", "epochs": "ten"}]}))
    batch = load_batch(path)
    assert [r.name for r in batch.runs] == ["good"] and "epochs='ten'" in batch.invalid["bad"]
    caplog.set_level(logging.INFO, logger="segdec")
    assert run_batch(path, dry_run=True) == 1
    assert f"bad: cannot run: {batch.invalid['bad']}" in caplog.messages


def test_a_zip_with_a_symlink_is_refused(tmp_path):
    archive = tmp_path / "linked.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        link = zipfile.ZipInfo("train_images/evil.jpg")
        link.external_attr = (0o120777 << 16)  # a symbolic link
        zipped.writestr(link, "/etc/passwd")
    with pytest.raises(DownloadError, match="symbolic link"):
        extract_safely(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "train_images").exists()


def test_kaggle_without_a_network_is_one_line(tmp_path):
    class Offline:
        def competition_download_files(self, competition, path, quiet):
            raise requests.ConnectionError("Max retries exceeded with url: /api/v1/...")

    with pytest.raises(DownloadError, match="could not reach Kaggle.*--zip"):
        fetch_from_kaggle(tmp_path, Offline())


# ---- issue 21 --------------------------------------------------------------------------------
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


def test_a_run_too_large_for_memory_is_refused_before_it_writes(tiny_severstal, tmp_path):
    run = tmp_path / "run"
    config = one_epoch(tiny_severstal, run, input_height=16384, input_width=16384,
                       precision="fp32")
    # 16384 * 16384 pixels * 10 images * 1613 bytes
    with pytest.raises(ConfigError, match="16384x16384 with batch_size=10 needs at least 4032.5 "
                                          "GiB for activations, more than the"):
        train(config, progress=False)
    assert not run.exists()


def test_the_memory_estimate_is_what_a_training_step_keeps(tiny_severstal):
    """The bytes-per-pixel constant against a fresh count on the network as it is today."""
    from segdec.memory import training_bytes
    from segdec.model import ModelConfig, SegDecNet

    config = RunConfig(input_height=128, input_width=192, batch_size=2)
    kept = {}

    def count(tensor):
        kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    model = SegDecNet(ModelConfig())
    with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
        decision, seg = model(torch.rand(2, 1, 128, 192))
    (decision.sum() + seg.sum()).backward()
    assert training_bytes(config, False) == pytest.approx(sum(kept.values()), rel=0.1)


def test_resume_on_the_command_line(tiny_run, tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["train", "--resume", "--out-dir", str(missing)]) == 2
    assert (f"nothing to resume in {missing}: it holds no checkpoints/last.pt; start the run "
            "without --resume") in capsys.readouterr().err
    assert not missing.exists()
    assert main(["train", "--out-dir", str(tiny_run)]) == 2
    err = capsys.readouterr().err
    assert "continue it with --resume" in err and "resume=True" not in err


def test_resuming_a_finished_run_changes_nothing(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert main(["train", "--resume", "--out-dir", str(run)]) == 0
    assert "is a finished run (1 of 1 epochs, tested): nothing to resume" in \
        capsys.readouterr().out
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before


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
