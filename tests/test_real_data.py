"""End to end (segdec.cli, segdec.train) on the real images in ../shared/data: KolektorSDD and
Severstal train on CPU."""

import json

import pandas as pd
import pytest

from segdec.cli import main
from segdec.config import RunConfig
from tests.helpers import shared_path

TINY_RUN = ["--epochs", "1", "--batch-size", "4", "--learning-rate", "0.01", "--device", "cpu",
            "--n-saved-maps", "2"]


@pytest.mark.slow
def test_ksdd_trains_and_its_split_csv_reproduces_the_run(tmp_path, capsys):
    ksdd = shared_path("ksdd")
    common = ["train", "--dataset", "ksdd", "--data", str(ksdd), "--input-height", "352",
              "--input-width", "128", "--dilate-masks", "7", "--n-all", "4", "--n-seg", "2",
              "--n-train-negatives", "4", *TINY_RUN]
    first = tmp_path / "first"
    assert main([*common, "--n-test", "6", "--n-val", "0", "--out-dir", str(first)]) == 0
    split = pd.read_csv(first / "split.csv")
    assert split.subset.value_counts().to_dict() == {"train": 8, "test": 6, "val": 6}
    items = split.image.str.split("/").str[0]
    assert not set(items[split.subset == "train"]) & set(items[split.subset == "test"])
    assert RunConfig.from_file(first / "config.yaml").input_height == 352
    # The same configuration with another n_test would draw another test set; the split CSV wins.
    again = tmp_path / "again"
    assert main([*common, "--n-test", "12", "--n-val", "0", "--split-csv",
                 str(first / "split.csv"), "--out-dir", str(again)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(again / "split.csv"), split)
    assert json.loads((again / "metrics.json").read_text())["ap"] == pytest.approx(
        json.loads((first / "metrics.json").read_text())["ap"])
    assert "ap=" in capsys.readouterr().out


@pytest.mark.slow
def test_real_severstal_trains_and_evaluates(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "severstal", "--data-root", str(shared_path("severstal")),
                 "--input-height", "128", "--input-width", "800", "--n-all", "none",
                 "--n-test", "2", "--n-val", "2", *TINY_RUN, "--out-dir", str(run)]) == 0
    split = pd.read_csv(run / "split.csv")
    assert len(split) == 12 and sorted(split.query("subset == 'test'").label) == [0, 1]
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_test"] == 2 and {"ap", "auc", "fp", "fn", "pixel_ap"} <= set(metrics)
    assert "ap=" in capsys.readouterr().out
