"""The three rules of every folder segdec writes (issue 37): a command overwrites or deletes only
files it wrote, one writer per folder, every expected failure one line that says what to do;
and the silent or unclear cases the probe found."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

import segdec.batch
import segdec.checkpoint
import segdec.cli
import segdec.io
import segdec.outputs
import segdec.train
from segdec.batch import load_batch, run_batch
from segdec.budget import plan_budget
from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.check import check_samples
from segdec.data.download import MARKER, DownloadError, download
from segdec.data.folder import read_folder
from segdec.data.synthetic import synthesize
from segdec.errors import ConfigError, FolderBusyError
from segdec.export import onnx_metadata
from segdec.outputs import LOCK, FolderLock
from segdec.records import copy_records
from segdec.timing import RunEstimate, duration
from segdec.train import train
from tests.helpers import one_epoch
from tests.layouts import image, write_layout

HOST = socket.gethostname()


def config_file(tiny_severstal: Path, run: Path, **changes) -> Path:
    """A tiny run's configuration as a YAML file, for ``segdec train --config``."""
    return one_epoch(tiny_severstal, run, **changes).save(run.parent / f"{run.name}.yaml")


def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def write_batch(path: Path, runs: list[dict], **defaults) -> Path:
    path.write_text(yaml.safe_dump({"batch": "t", "runs_dir": str(path.parent / "runs"),
                                    "defaults": defaults, "runs": runs}))
    return path


# ---- 1. a command overwrites or deletes only files it wrote --------------------------------------
def test_predict_never_replaces_a_datasets_ground_truth_masks(tiny_run, tmp_path, capsys):
    parts = tmp_path / "myparts"
    write_layout("images-masks", parts)
    before = files(parts)
    command = ["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
               "--images", str(parts / "images"), "--out", str(parts), "--device", "cpu"]
    for overwrite in ([], ["--overwrite"]):
        assert main([*command, *overwrite]) == 2
        assert capsys.readouterr().err == (
            f"segdec predict: error: {parts} holds masks/a.png, masks/b.png, which segdec "
            "predict did not write (ground-truth masks of a dataset, say); predict never "
            "replaces such files: choose another --out for the results\n")
        assert files(parts) == before


def test_split_never_replaces_a_runs_split_and_replaces_its_own_only_when_asked(
        tiny_run, tiny_severstal, tmp_path, capsys):
    run = run_copy(tiny_run, tmp_path)
    before = (run / "split.csv").read_bytes()
    command = ["split", "--data-root", str(tiny_severstal), "--n-all", "4", "--seed", "7",
               "--out"]
    for overwrite in ([], ["--overwrite"]):
        assert main([*command, str(run / "split.csv"), *overwrite]) == 2
        assert capsys.readouterr().err == (
            f"segdec split: error: {run / 'split.csv'} is the split that the run in {run} "
            "trained on; a run's split is never replaced: write the new split elsewhere\n")
    assert (run / "split.csv").read_bytes() == before
    mine = tmp_path / "seed7.csv"
    assert main([*command, str(mine)]) == 0
    assert main([*command, str(mine)]) == 2
    assert capsys.readouterr().err.endswith(
        f"segdec split: error: {mine} already exists; replace it with --overwrite, or choose "
        "another --out\n")
    assert main([*command, str(mine), "--overwrite"]) == 0
    notes = tmp_path / "notes.csv"
    notes.write_text("when,what\nmonday,lens cleaned\n")
    assert main([*command, str(notes), "--overwrite"]) == 2
    assert capsys.readouterr().err.endswith(
        f"segdec split: error: {notes} is not a split file (no image, subset, label, "
        "has_pixel_label columns), so --overwrite does not replace it; choose another --out\n")
    assert notes.read_text() == "when,what\nmonday,lens cleaned\n"


def test_train_never_overwrites_a_finished_runs_records(tiny_run, tiny_severstal, tmp_path,
                                                       capsys):
    copy_records(tiny_run.parent, tmp_path / "records")
    records = tmp_path / "records" / tiny_run.name
    before = files(records)
    assert main(["train", "--config", str(config_file(tiny_severstal, tmp_path / "new")),
                 "--out-dir", str(records)]) == 2
    assert capsys.readouterr().err == (
        f"segdec train: error: {records} holds a finished run's records (config.yaml, split.csv,"
        " history.csv, metrics.json, predictions.csv, runtime.json, timing.json) and no "
        "checkpoints/last.pt to continue from; a new run there would overwrite them: choose "
        "another --out-dir (out_dir), or move them away\n")
    assert files(records) == before


def test_evaluate_refuses_a_split_other_than_the_one_the_run_trained_on(tiny_run, tmp_path,
                                                                         capsys):
    run = run_copy(tiny_run, tmp_path)
    split = pd.read_csv(run / "split.csv")
    swapped = split.copy()
    train_row = split.index[(split.subset == "train") & (split.label == 1)][0]
    test_row = split.index[(split.subset == "test") & (split.label == 1)][0]
    swapped.loc[[train_row, test_row], "subset"] = ["test", "train"]  # a training image tested
    swapped.to_csv(run / "split.csv", index=False)
    before = files(run)
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        f"segdec evaluate: error: {run / 'split.csv'} is not the split that "
        f"{run / 'checkpoints' / 'best.pt'} trained on (it was changed or replaced since): its "
        "test set could hold training images, so the run is not evaluated on it; restore the "
        "run's own split.csv\n")
    assert files(run) == before
    # a run trained before checkpoints recorded their split is evaluated as before
    split.to_csv(run / "split.csv", index=False)
    best = run / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    del state["split_digest"]
    torch.save(state, best)
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 0


# ---- 2. one writer per folder ------------------------------------------------------------------
def test_a_second_writer_is_refused_at_once_naming_the_holder(tiny_run, tiny_severstal,
                                                              tmp_path, capsys):
    run = tmp_path / "run"
    with FolderLock(run, "train") as held:
        assert main(["train", "--config", str(config_file(tiny_severstal, run))]) == 2
        assert capsys.readouterr().err == (
            f"segdec train: error: {run} is being written by segdec train (PID {os.getpid()} on "
            f"{HOST}, since {held.record['since']}); one writer per folder: wait for it to end or"
            f" choose another folder (if that process is gone, delete {run / LOCK})\n")
        assert sorted(p.name for p in run.iterdir()) == [LOCK]
    assert not run.exists()  # made for the lock, and empty again: removed
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": 1, "host": "camera-pc", "command": "segdec "
                                        "predict", "since": "2025-01-01T08:00:00+00:00"}))
    assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--images", str(tiny_severstal / "train_images"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"segdec predict: error: {out} is being written by segdec predict (PID 1 on camera-pc, "
        "since 2025-01-01T08:00:00+00:00); one writer per folder: wait for it to end or choose "
        f"another folder (if that process is gone, delete {out / LOCK})\n")
    assert sorted(p.name for p in out.iterdir()) == [LOCK]


def test_a_lock_whose_process_died_is_taken_over_and_said_so(tmp_path, caplog):
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()  # its PID now names no process
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK).write_text(json.dumps({"pid": crashed.pid, "host": HOST, "command": "segdec "
                                           "train", "since": "2025-01-01T08:00:00+00:00"}))
    caplog.set_level(logging.WARNING, logger="segdec")
    with FolderLock(folder, "train"):
        assert json.loads((folder / LOCK).read_text())["pid"] == os.getpid()
    assert caplog.messages == [
        f"{folder}: taking over the lock of segdec train (PID {crashed.pid} on {HOST}, since "
        "2025-01-01T08:00:00+00:00), which is no longer running"]
    assert list(folder.iterdir()) == []


def test_a_lock_is_released_when_its_writer_fails(tmp_path):
    folder = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError, match="a bug"), FolderLock(folder, "predict"):
        assert (folder / LOCK).is_file()
        raise RuntimeError("a bug")
    assert not (tmp_path / "a").exists()


def test_a_batch_refuses_runs_sharing_a_folder_before_it_starts(tmp_path, capsys):
    shared = tmp_path / "shared"
    path = write_batch(tmp_path / "b.yaml", [{"name": "a", "out_dir": str(shared)},
                                             {"name": "b"},
                                             {"name": "c", "out_dir": str(shared)}])
    assert main(["batch", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        f"segdec batch: error: {path}: runs 'a' and 'c' both train into {shared}; give each run "
        "its own out_dir\n")


def test_a_batch_is_one_writer_and_ctrl_c_says_how_to_continue(tmp_path, monkeypatch, capsys):
    path = write_batch(tmp_path / "b.yaml", [{"name": "a"}])
    with FolderLock(load_batch(path).out_dir, "batch"), pytest.raises(
            FolderBusyError, match=f"{tmp_path / 'out' / 't'} is being written by segdec batch"):
        run_batch(path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(segdec.batch, "execute_runs", interrupted)
    assert main(["batch", str(path)]) == 130
    assert capsys.readouterr().err == (
        "segdec batch: interrupted: finished runs are kept, and a run stopped mid-way resumes "
        f"from its last checkpoint; continue with: segdec batch {path}\n")
    assert not (tmp_path / "out").exists()  # the lock is released with the folder it made


# ---- 3. every expected failure is one line that says what to do --------------------------------
@pytest.mark.parametrize(("number", "text", "remedy"), [
    (errno.ENOSPC, "No space left on device", "the disk is full: free space on it, or choose a "
                                              "folder on another disk, then run again"),
    (errno.EROFS, "Read-only file system", "the file system is read-only: choose a folder you "
                                           "can write to"),
    (errno.ENOTDIR, "Not a directory", "a part of this path is a file, not a folder: give a "
                                       "path through folders"),
    (errno.EEXIST, "File exists", "a file of that name is in the way: give another path, or move "
                                  "the file"),
])
def test_operating_system_failures_are_one_line_with_a_remedy(monkeypatch, capsys, number,
                                                              text, remedy):
    def fails(args):
        raise OSError(number, text, "runs/x/metrics.json")

    monkeypatch.setattr(segdec.cli, "cmd_evaluate", fails)
    assert main(["evaluate", "--run", "runs/x"]) == 2
    assert capsys.readouterr().err == (
        f"segdec evaluate: error: runs/x/metrics.json: {text}; {remedy}\n")


def test_a_read_only_folder_is_named_in_split_and_train(tiny_severstal, tmp_path, monkeypatch,
                                                        capsys):
    out = tmp_path / "readonly" / "split.csv"

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(Path(dir) / ".split.csv.x.tmp"))

    monkeypatch.setattr(segdec.io.tempfile, "mkstemp", read_only)
    assert main(["split", "--data-root", str(tiny_severstal), "--n-all", "4", "--out",
                 str(out)]) == 2
    assert capsys.readouterr().err.endswith(
        f"segdec split: error: {out}: Read-only file system; the file system is read-only: "
        "choose a folder you can write to\n")
    monkeypatch.undo()
    run = tmp_path / "readonly" / "run"
    run.parent.mkdir(exist_ok=True)
    config = config_file(tiny_severstal, run)
    monkeypatch.setattr(segdec.outputs.os, "access", lambda *args, **kwargs: False)
    monkeypatch.setattr(segdec.outputs.os, "statvfs", lambda path: os.statvfs_result(
        (4096, 4096, 1, 1, 1, 1, 1, 1, os.ST_RDONLY, 255)))
    assert main(["train", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"segdec train: error: cannot write in {run.parent} (read-only file system); give a "
        "folder you can write to\n")
    assert not run.exists()


def test_an_out_dir_that_is_a_file_is_named(tiny_severstal, tmp_path, capsys):
    taken = tmp_path / "results"
    taken.write_text("a file")
    assert main(["train", "--config", str(config_file(tiny_severstal, tmp_path / "run")),
                 "--out-dir", str(taken)]) == 2
    assert capsys.readouterr().err == (
        f"segdec train: error: {taken} is a file, not a folder; give a folder for the run "
        "(out_dir)\n")
    assert taken.read_text() == "a file"


def test_a_full_disk_mid_run_says_so_and_the_run_resumes(tiny_severstal, tmp_path, monkeypatch,
                                                         capsys):
    run = tmp_path / "run"
    config = config_file(tiny_severstal, run, epochs=2)
    save, saved_last = torch.save, []

    def disk_fills_at_the_second_last_pt(state, path):
        if Path(path).name.startswith(".last.pt."):
            saved_last.append(path)
            if len(saved_last) == 2:
                raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos "
                                   "1472 vs 1366")
        save(state, path)

    monkeypatch.setattr(segdec.checkpoint.torch, "save", disk_fills_at_the_second_last_pt)
    assert main(["train", "--config", str(config)]) == 2
    last = run / "checkpoints" / "last.pt"
    assert capsys.readouterr().err.splitlines()[-1] == (  # after the progress bars
        f"segdec train: error: {last}: torch could not finish writing this checkpoint; the disk "
        "could not be written or read (a full or failing disk): free space on it, or choose "
        f"another disk, then run again; {last} holds epoch 1 of 2; continue with: segdec train "
        f"--out-dir {run} --resume")
    monkeypatch.undo()
    assert main(["train", "--out-dir", str(run), "--resume"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_ctrl_c_says_where_the_run_stopped_and_a_changed_image_stops_its_resumption(
        tiny_severstal, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_severstal, data)
    run = tmp_path / "run"
    epochs = []
    one_epoch_of = segdec.train.train_one_epoch

    def ctrl_c_in_the_second_epoch(*args, **kwargs):
        epochs.append(1)
        if len(epochs) == 2:
            raise KeyboardInterrupt
        return one_epoch_of(*args, **kwargs)

    monkeypatch.setattr(segdec.train, "train_one_epoch", ctrl_c_in_the_second_epoch)
    assert main(["train", "--config", str(config_file(data, run, epochs=2))]) == 130
    last = run / "checkpoints" / "last.pt"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"segdec train: interrupted: {last} holds epoch 1 of 2; continue with: segdec train "
        f"--out-dir {run} --resume")
    assert not (run / LOCK).exists()
    monkeypatch.undo()
    # the same name with other pixels is refused, as a removed image is
    split = pd.read_csv(run / "split.csv")
    changed = data / "train_images" / split.image[split.subset == "train"].iloc[0]
    original = changed.read_bytes()
    Image.fromarray(255 - np.array(Image.open(changed))).save(changed, format="JPEG")
    assert main(["train", "--out-dir", str(run), "--resume"]) == 2
    assert capsys.readouterr().err == (
        f"segdec train: error: image {changed} changed since {run / 'split.csv'} was written "
        "(its content differs from the SHA-1 kept there); a run must keep its images: restore "
        "them, or start a new run\n")
    # a run whose split.csv predates the hashes resumes as before, and gains them
    changed.write_bytes(original)
    split.drop(columns="sha1").to_csv(run / "split.csv", index=False)
    assert main(["train", "--out-dir", str(run), "--resume"]) == 0
    assert "sha1" in pd.read_csv(run / "split.csv").columns


def test_download_into_a_file_or_onto_a_full_disk_is_one_line(tiny_severstal, tmp_path,
                                                              monkeypatch, capsys):
    taken = tmp_path / "data.txt"
    taken.write_text("a file")
    assert main(["download", "ksdd", "--dest", str(taken)]) == 2
    assert capsys.readouterr().err == (
        f"segdec download: error: {taken} is a file, not a folder; give --dest a folder for the "
        "dataset\n")
    archive = tmp_path / "zips" / "severstal.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(tiny_severstal.rglob("*")):
            zipped.write(file, file.relative_to(tiny_severstal).as_posix())
        unpacked = sum(entry.file_size for entry in zipped.infolist())

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "extract", disk_full)
    dest = tmp_path / "disk" / "severstal"
    assert main(["download", "severstal", "--dest", str(dest), "--zip", str(archive),
                 "--expected-images", "40"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (  # after the progress bar
        f"segdec download: error: the disk holding {dest.parent} filled up while extracting "
        f"severstal.zip ({unpacked / 1e6:.1f} MB unpacked); nothing was kept: free that much "
        "space there, or choose a --dest on another disk, and run again")
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("command", ["predict", "export", "evaluate"])
def test_a_file_that_is_no_checkpoint_is_one_line(tiny_run, tiny_severstal, tmp_path, capsys,
                                                  command):
    run = run_copy(tiny_run, tmp_path)
    fake = run / "checkpoints" / "best.pt"
    fake.write_text("hello world\n")
    argv = {"predict": ["--checkpoint", str(fake), "--images",
                        str(tiny_severstal / "train_images"), "--out", str(tmp_path / "out")],
            "export": ["--checkpoint", str(fake), "--onnx", str(tmp_path / "model.onnx")],
            "evaluate": ["--run", str(run), "--device", "cpu"]}[command]
    assert main([command, *argv]) == 2
    assert capsys.readouterr().err == (
        f"segdec {command}: error: {fake} cannot be read as a checkpoint (KeyError): it is "
        "truncated, empty or not a segdec checkpoint. Use another copy, or last.pt/best.pt of "
        "the run\n")


def test_a_folder_given_as_checkpoint_is_named(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path), "--onnx",
                 str(tmp_path / "model.onnx")]) == 2
    assert capsys.readouterr().err == (
        f"segdec export: error: {tmp_path} is a folder, not a checkpoint; give a checkpoint "
        "file, such as RUN/checkpoints/best.pt\n")


# ---- 4. silent and unclear -----------------------------------------------------------------------
def test_resuming_with_another_data_folder_says_so(tiny_run, tmp_path):
    run = run_copy(tiny_run, tmp_path)
    other = synthesize(tmp_path / "other", 4, 4, seed=1, shape=(64, 128))
    config = RunConfig.from_file(run / "config.yaml").replace(data_root=str(other),
                                                               out_dir=str(run))
    trained_on = RunConfig.from_file(run / "config.yaml").data_root
    with pytest.raises(ConfigError) as refused:
        train(config, resume=True, progress=False)
    assert str(refused.value) == (
        f"cannot resume from {run / 'checkpoints' / 'last.pt'}: the data folder differs from the "
        f"run's (severstal at {other.resolve()} here, severstal at {Path(trained_on).resolve()} "
        "in the run); resume with the run's own data (without --config, the run's config.yaml), "
        "or start a new run in another out_dir")


def test_broken_links_are_reported_unreadable(tiny_run, tiny_severstal, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(next((tiny_severstal / "train_images").glob("*.jpg")), images / "good.jpg")
    (images / "gone.png").symlink_to(tmp_path / "moved" / "gone.png")
    out = tmp_path / "out"
    for spec in (images, images / "*"):
        assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                     "--images", str(spec), "--out", str(out), "--device", "cpu",
                     "--overwrite"]) == 0
        assert "1 unreadable skipped" in capsys.readouterr().out
        assert pd.read_csv(out / "skipped.csv").to_dict("records") == [
            {"image": str(images / "gone.png"),
             "error": f"image {images / 'gone.png'} is a symbolic link to "
                      f"{tmp_path / 'moved' / 'gone.png'}, which does not exist; restore its "
                      "target or remove the link"}]


def test_a_recursive_glob_leaves_out_predicts_own_results(tiny_run, tmp_path, capsys):
    parts = tmp_path / "parts"
    for name in ("one", "two"):
        image(parts / "line1" / f"{name}.png", shape=(64, 128))
    out = parts / "predicted"
    spec = f"{parts}/**/*.png"
    command = ["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"), "--images",
               spec, "--out", str(out), "--device", "cpu"]
    assert main(command) == 0
    capsys.readouterr()
    assert main([*command, "--overwrite"]) == 0
    assert (f"note: {spec} matches 4 files of predict's own results in {out / 'masks'} and "
            f"{out / 'overlays'}; they are left out") in capsys.readouterr().err
    assert pd.read_csv(out / "scores.csv").image.tolist() == [
        str(parts / "line1" / "one.png"), str(parts / "line1" / "two.png")]


def test_jpeg_masks_are_named_as_lossy_not_as_inverted(tmp_path):
    root = tmp_path / "parts"
    for name in ("clean", "defect"):
        image(root / "images" / f"{name}.png")
    (root / "masks").mkdir()
    faint = np.zeros((40, 24), np.uint8)
    faint[8:12, 8:12] = 40  # what compression leaves of an empty mask
    Image.fromarray(faint).save(root / "masks" / "clean.jpg", quality=75)
    large = np.zeros((40, 24), np.uint8)
    large[:30] = 255  # 75 % of the image: a defect as large as an inverted mask's background
    Image.fromarray(large).save(root / "masks" / "defect.jpg", quality=75)

    def faint_max(name: str) -> int:
        values = np.array(Image.open(root / "masks" / name))
        return int(values[(values > 0) & (values < 128)].max())

    check = check_samples(read_folder(root))
    assert check.problems == [
        f"clean.png: its mask {root / 'masks' / 'clean.jpg'} is a JPEG file, and its lossy "
        f"compression left faint pixels (values up to {faint_max('clean.jpg')} of 255) where no "
        "defect is drawn, which read as a defect; save masks losslessly (PNG, BMP or TIFF)"]
    assert check.warnings == [
        f"defect.png: its mask {root / 'masks' / 'defect.jpg'} is a JPEG file: lossy compression "
        f"left faint pixels (values up to {faint_max('defect.jpg')} of 255) around its defects, "
        "which read as defect too; save masks losslessly (PNG, BMP or TIFF)"]


def test_the_onnx_metadata_gives_the_input_size_as_width_x_height(tiny_run):
    state = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    assert state["input_size"] == [64, 128]
    assert onnx_metadata(state)["input_size"] == "128x64"


def test_a_verified_dataset_of_another_size_is_named_not_called_unverified(tiny_severstal,
                                                                           tmp_path):
    archive = tmp_path / "severstal.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(tiny_severstal.rglob("*")):
            zipped.write(file, file.relative_to(tiny_severstal).as_posix())
    dest = tmp_path / "severstal"
    download("severstal", dest, archive=archive, expected_images=40, expected_shape=(64, 128))
    with pytest.raises(DownloadError) as refused:
        download("severstal", dest, archive=archive)
    assert str(refused.value) == (
        f"{dest} already holds a verified dataset of 40 images ({MARKER}), not the 12568 asked "
        "for; pass --expected-images 40 to use it as it is, or choose another --dest")


def test_a_batch_naming_its_data_by_a_relative_path_finds_its_runs_unchanged(tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    run = load_batch(write_batch(tmp_path / "b.yaml", [{"name": "a"}], data_root="data",
                                 epochs=3)).runs[0]
    out_dir = Path(run.config.out_dir)
    out_dir.mkdir(parents=True)
    run.config.replace(data_root=str(tmp_path / "data")).save(out_dir / "config.yaml")
    (out_dir / "metrics.json").write_text("{}")
    assert run.changed_settings() == {} and run.status == "finished"
    run.config.replace(data_root=str(tmp_path / "elsewhere")).save(out_dir / "config.yaml")
    assert run.changed_settings() == {"data_root": (str((tmp_path / "elsewhere").resolve()),
                                                    str((tmp_path / "data").resolve()))}


def test_a_tiny_time_budget_says_its_real_numbers():
    measured = RunEstimate(epochs=2, steps=3, step_s=0.5, validations=1, validate_every=2,
                           val_images=4, test_images=8, image_s=0.01)
    plan = plan_budget(0.1, measured, (64, 128), None, np.zeros((0, 2)))
    assert duration(0.1) == "0.1 s" and plan.epochs == 2
    assert plan.line() == (
        "time budget 0.1 s is too small on this machine (128x64, 2 epochs ≈ 3 s): training the "
        "quickest plan allowed (all 2 configured epochs, as a budget cuts epochs only down to 5,"
        " the defects kept visible), 128x64, 2 epochs, ≈ 3 s; no pixel-labelled defects to judge "
        "their visibility by, so the input size is kept")
