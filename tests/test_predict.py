"""segdec.predict: scores, masks and overlays for any folder; bad files are skipped, not
fatal."""

import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from segdec.checkpoint import load_checkpoint
from segdec.cli import main
from segdec.errors import DataError
from segdec.predict import find_images, predict_images
from tests.helpers import shared_path


def _image_folder(source, tmp_path, n=3):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(source.glob("*.jpg"))[:n]:
        shutil.copy(path, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image: ignored by suffix")
    return folder


def test_predict_cli_writes_scores_masks_overlays_and_skips_a_corrupt_file(
        tiny_run, tiny_severstal, tmp_path, capsys):
    folder = _image_folder(tiny_severstal / "train_images", tmp_path)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 200, 3), dtype=np.uint8)).save(folder / "rgb.png")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--images", str(folder), "--out", str(out), "--threshold", "0.5",
                 "--batch-size", "2", "--device", "cpu"]) == 0
    assert "broken.jpg" in capsys.readouterr().err
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["image", "score", "decision"] and len(scores) == 4
    assert scores.score.between(0, 1).all()
    assert (scores.decision == (scores.score >= 0.5)).all()
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped.image.tolist() == [str(folder / "broken.jpg")]
    assert "cannot read image" in skipped.error[0]
    for image in scores.image:
        name = image.rsplit("/", 1)[1].rsplit(".", 1)[0] + ".png"
        with Image.open(image) as original:
            size = original.size
        with Image.open(out / "masks" / name) as mask, Image.open(out / "overlays" / name) as ov:
            assert mask.size == size and mask.mode == "L"
            assert set(np.unique(np.asarray(mask))) <= {0, 255}
            assert ov.size == size and ov.mode == "RGB"
    assert not list(out.rglob("*.tmp"))


def test_predicted_scores_equal_the_run_evaluation(tiny_run, tiny_severstal, tmp_path):
    """Same preprocessing as training: predict reproduces predictions.csv of the test split."""
    scores, skipped = predict_images(tiny_run / "checkpoints" / "best.pt",
                                     tiny_severstal / "train_images", tmp_path, "best",
                                     device="cpu", progress=False)
    assert skipped.empty
    expected = pd.read_csv(tiny_run / "predictions.csv")
    scores["image"] = scores.image.str.rsplit("/", n=1).str[1]
    joined = expected.merge(scores, on="image", suffixes=("_run", "_predict"))
    assert len(joined) == len(expected)
    np.testing.assert_allclose(joined.score_predict, joined.score_run, atol=1e-5)
    threshold = load_checkpoint(tiny_run / "checkpoints" / "best.pt")["threshold"]
    assert (scores.decision == (scores.score >= threshold)).all()


def test_threshold_choices_are_checked(tiny_run, tiny_severstal, tmp_path):
    images = str(tiny_severstal / "train_images" / "0000*.jpg")
    with pytest.raises(ValueError, match="only best.pt"):
        predict_images(tiny_run / "checkpoints" / "last.pt", images, tmp_path, "best",
                       progress=False)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        predict_images(tiny_run / "checkpoints" / "best.pt", images, tmp_path, "1.5",
                       progress=False)
    scores, _ = predict_images(tiny_run / "checkpoints" / "last.pt", images, tmp_path, 0.0,
                               progress=False)
    assert len(scores) == 1 and scores.decision.all()


def test_find_images_refuses_empty_and_clashing_inputs(tmp_path):
    with pytest.raises(DataError, match="no image files"):
        find_images(tmp_path / "*.png")
    for name in ("a.png", "a.jpg"):
        Image.new("L", (64, 64)).save(tmp_path / name)
    with pytest.raises(DataError, match="same mask name a.png"):
        find_images(tmp_path)


def test_16_bit_images_are_predicted_as_trained(tiny_run, tmp_path):
    """predict read a 12-bit camera's 16-bit PNG as all white, as training did."""
    from segdec.export import onnx_metadata
    from segdec.predict import ImageFiles
    from tests.layouts import camera_image

    loaded = ImageFiles([camera_image(tmp_path / "c.png")], (40, 24), 1)[0]
    assert (loaded.native[0, 0], loaded.native[1, 0], loaded.native[-1, -1]) == (19, 137, 255)
    assert loaded.pixels[0, 0, 0].item() == pytest.approx(19 / 255)
    metadata = onnx_metadata(load_checkpoint(tiny_run / "checkpoints" / "best.pt"))
    assert metadata["bit_depth"] == "8"  # tiny_run: 8-bit JPEGs


def test_predict_reads_images_at_the_checkpoints_bit_depth(tiny_run, tmp_path, caplog):
    """predict scaled each image by its own maximum's depth: a dark image of a 12-bit run
    (largest value 900) reached the network 4x brighter (900 -> 224) than in training (56)."""
    from segdec.checkpoint import model_from_checkpoint
    from segdec.data import DefectDataset, Sample, TargetOptions
    from segdec.predict import ImageFiles, Scorer
    from tests.layouts import camera_image

    state = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    torch.save(dict(state, bit_depth=12), tmp_path / "12.pt")
    twelve = load_checkpoint(tmp_path / "12.pt")
    size = tuple(twelve["input_size"])  # 64x128: no resizing
    dark = camera_image(tmp_path / "images" / "dark.png", size, low=100, high=900)
    deep = camera_image(tmp_path / "images" / "deep.png", size)  # up to 4095
    trained = DefectDataset([Sample("dark.png", str(dark), 0)], [True],
                            TargetOptions(size=size, bit_depth=12))[0]["image"]
    loaded = ImageFiles.for_checkpoint([dark], twelve)[0]
    assert loaded.native[-1, -1] == 56 and torch.equal(loaded.pixels, trained)
    caplog.set_level(logging.INFO, logger="segdec")
    scores, skipped = predict_images(tmp_path / "12.pt", tmp_path / "images", tmp_path / "out",
                                     0.5, device="cpu", progress=False)
    with torch.inference_mode():
        expected = Scorer(model_from_checkpoint(twelve))(trained[None])[0].item()
    assert scores.image.tolist() == [str(dark), str(deep)] and skipped.empty
    # predict scores both images in one batch, the expectation one alone: oneDNN's kernels for
    # the two batch sizes differ in the last float digits (1.5e-6 with AVX2), a 4x brighter
    # input by far more
    assert scores.score[0] == pytest.approx(expected, abs=1e-5)
    # a 10-bit run's network never saw values above 1023: deep.png is skipped, by name
    torch.save(dict(state, bit_depth=10), tmp_path / "10.pt")
    scores, skipped = predict_images(tmp_path / "10.pt", tmp_path / "images", tmp_path / "out",
                                     0.5, device="cpu", progress=False, overwrite=True)
    assert scores.image.tolist() == [str(dark)] and skipped.image.tolist() == [str(deep)]
    assert f"image {deep} holds pixel values up to 4095, deeper than the run's bit_depth 10" in \
        skipped.error[0]
    assert not any("predates bit_depth" in message for message in caplog.messages)


def test_a_checkpoint_older_than_bit_depth_reads_each_image_by_its_own(tiny_run, tmp_path,
                                                                        caplog):
    """As it was trained; it resumes as bit_depth 8, what its per-image rule is on 8-bit data."""
    from segdec.config import RunConfig
    from segdec.predict import ImageFiles
    from segdec.train import _check_resumable
    from tests.layouts import camera_image

    state = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    run_config = {k: v for k, v in state["run_config"].items() if k != "bit_depth"}
    older = {**{k: v for k, v in state.items() if k != "bit_depth"}, "run_config": run_config}
    torch.save(older, tmp_path / "older.pt")
    loaded = load_checkpoint(tmp_path / "older.pt")
    assert "bit_depth" not in loaded and loaded["run_config"]["bit_depth"] == 8
    _check_resumable(loaded["run_config"], RunConfig.from_dict(state["run_config"]),
                     tmp_path / "older.pt")
    dark = camera_image(tmp_path / "images" / "dark.png", (64, 128), low=100, high=900)
    caplog.set_level(logging.INFO, logger="segdec")
    predict_images(tmp_path / "older.pt", tmp_path / "images", tmp_path / "out", 0.5,
                   device="cpu", progress=False)
    assert any("older.pt predates bit_depth" in message for message in caplog.messages)
    assert ImageFiles.for_checkpoint([dark], loaded)[0].native[-1, -1] == 224  # 900 of 1023


def test_checkpoint_with_other_preprocessing_is_refused(tiny_run, tmp_path):
    state = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    torch.save(dict(state, preprocessing={"resize": "pad", "scale": 1.0}), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="prepared as"):
        load_checkpoint(tmp_path / "other.pt")
    older = {k: v for k, v in state.items() if k != "preprocessing"}  # before the key existed
    torch.save(older, tmp_path / "older.pt")
    assert load_checkpoint(tmp_path / "older.pt")["format"] == 1


def test_predict_on_real_severstal_images(tiny_run, tmp_path, capsys):
    folder = _image_folder(shared_path("severstal", "train_images"), tmp_path, n=12)
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--images", str(folder), "--out", str(out), "--device", "cpu",
                 "--batch-size", "1"]) == 0  # one batch holds only the broken file
    assert "broken.jpg" in capsys.readouterr().err
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 12 and len(pd.read_csv(out / "skipped.csv")) == 1
    with Image.open(out / "masks" / (scores.image[0].rsplit("/", 1)[1][:-4] + ".png")) as mask:
        assert mask.size == (1600, 256)
    assert len(list((out / "overlays").glob("*.png"))) == 12


def test_a_used_output_folder_is_refused_unless_overwrite(tiny_run, tiny_severstal, tmp_path,
                                                          capsys):
    best = str(tiny_run / "checkpoints" / "best.pt")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    images = sorted((tiny_severstal / "train_images").glob("*.jpg"))
    shutil.copy(images[0], first)
    shutil.copy(images[1], second)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # not predict's: a folder may hold other files
    command = ["predict", "--checkpoint", best, "--out", str(out), "--device", "cpu"]
    assert main([*command, "--images", str(first)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main([*command, "--images", str(second)]) == 2
    assert (f"{out} already holds the results of a prediction (scores.csv, skipped.csv, masks, "
            "overlays); replace them with --overwrite") in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main([*command, "--images", str(second), "--overwrite"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".segdec-predict.json", f"masks/{images[1].stem}.png", "notes.txt",
        f"overlays/{images[1].stem}.png", "scores.csv", "skipped.csv"]


def test_an_output_that_cannot_be_a_folder_fails_before_any_work(tiny_run, tiny_severstal,
                                                                  tmp_path, capsys):
    taken = tmp_path / "results.csv"
    taken.write_text("a file")
    command = ["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
               "--images", str(tiny_severstal / "train_images")]
    for out in (taken, taken / "inside"):
        assert main([*command, "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"segdec predict: error: {taken} is a file, not a "
                                           "folder; give a folder for the results\n")
    assert taken.read_text() == "a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_output_folder_fails_before_any_work(tiny_run, tiny_severstal, tmp_path,
                                                         capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--images", str(tiny_severstal / "train_images"), "--out",
                 str(locked / "out")]) == 2
    assert f"cannot write in {locked} (permission denied)" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--threshold", "abc", "argument --threshold: 'abc' is neither 'best' nor a probability"),
    ("--batch-size", "0", "argument --batch-size: 0 must be at least 1"),
    ("--num-workers", "-1", "argument --num-workers: -1 must be at least 0"),
])
def test_predict_options_are_checked_by_the_parser(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--checkpoint", "best.pt", "--images", "x", "--out", str(tmp_path),
              option, value])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_the_mask_threshold_is_a_probability(tiny_run, tiny_severstal, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--images", str(tiny_severstal / "train_images"), "--out", str(out),
                 "--mask-threshold", "7"]) == 2
    assert "mask threshold 7.0 must lie in [0, 1]" in capsys.readouterr().err
    assert not out.exists()


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
