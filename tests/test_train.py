"""End to end: a tiny model must learn, resume exactly, and leave a complete run directory."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from segdec.checkpoint import load_checkpoint, model_from_checkpoint
from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.prepare import loader, prepare_data
from segdec.data.synthetic import synthesize
from segdec.demo import demo_config
from segdec.evaluate import evaluate_run
from segdec.sampling import EpochOrder, NegativeSampler
from segdec.train import train

RUN_FILES = ["config.yaml", "split.csv", "history.csv", "metrics.json", "predictions.csv",
             "errors.png", "segmentation_maps.npz", "checkpoints/best.pt", "checkpoints/last.pt",
             "runtime.json"]


@pytest.fixture(scope="module")
def learnable_data(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("learn") / "data", 80, 80, seed=3, size=(128, 64))


@pytest.mark.slow
def test_tiny_model_learns(learnable_data, tmp_path):
    config = demo_config(tmp_path, data_root=str(learnable_data), n_test=40, n_val=20,
                         epochs=10, out_dir=str(tmp_path / "run"))
    metrics = train(config, progress=False)
    assert metrics["ap"] >= 0.9, metrics
    for name in RUN_FILES:
        assert (tmp_path / "run" / name).is_file(), name
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(saved) >= {"ap", "auc", "f_measure", "threshold", "fp", "fn", "n_test",
                          "pixel_ap", "pixel_f", "pixel_iou", "pixel_ap_1_8", "pixel_f_1_8",
                          "pixel_iou_1_8"}
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(predictions.columns) == ["image", "score", "label"] and len(predictions) == 40
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 10 and history.w_dec.iloc[0] == 0 and history.val_ap.notna().sum() == 5
    resolved = RunConfig.from_file(tmp_path / "run" / "config.yaml")
    assert (resolved.input_height, resolved.input_width) == (64, 128)
    maps = np.load(tmp_path / "run" / "segmentation_maps.npz")
    assert maps["seg_maps"].shape[1:] == (8, 16) and maps["labels"].all()
    # evaluating again from the run directory alone gives the same numbers
    assert evaluate_run(tmp_path / "run", device="cpu")["ap"] == pytest.approx(metrics["ap"])


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_result(tiny_severstal, tmp_path):
    base = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=4, validate_every=1,
                       n_seg=4)
    straight = train(base.replace(out_dir=str(tmp_path / "straight")), progress=False)

    def kill_after_second_epoch(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    interrupted = base.replace(out_dir=str(tmp_path / "interrupted"))
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, callbacks=[kill_after_second_epoch], progress=False)
    assert not (tmp_path / "interrupted" / "metrics.json").exists()
    with pytest.raises(FileExistsError, match="resume"):
        train(interrupted, progress=False)
    resumed = train(interrupted, resume=True, progress=False)
    assert resumed == straight
    stretches = json.loads((tmp_path / "interrupted" / "runtime.json").read_text())
    assert [s["from_epoch"] for s in stretches] == [0, 2]
    assert stretches[1]["precision"] == "fp32" and stretches[1]["device"] == "cpu"
    assert stretches[1]["torch_threads"] == torch.get_num_threads()
    a = pd.read_csv(tmp_path / "straight" / "history.csv").drop(columns="seconds")
    b = pd.read_csv(tmp_path / "interrupted" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="differs in epochs"):
        train(interrupted.replace(epochs=6), resume=True, progress=False)


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


def test_negative_sampler_probabilities_are_bozic_s():
    """p = 1 - f / max f; p = p - median(p) + 1; p = p ** (4 ln N); normalised (PAPER.md)."""
    sampler = NegativeSampler(5, seed=0)
    assert sampler.probabilities().tolist() == [0.2] * 5  # nothing used yet
    sampler.counts = np.array([0, 1, 2, 3, 4])
    np.testing.assert_allclose(sampler.probabilities(),
                               [0.716792, 0.221638, 0.052694, 0.008269, 0.000608], atol=1e-6)
    sampler = NegativeSampler(4, seed=0)
    sampler.counts = np.array([2, 2, 2, 0])
    np.testing.assert_allclose(sampler.probabilities(), [0.020123] * 3 + [0.939631], atol=1e-6)


def test_negative_sampler_prefers_least_used():
    sampler = NegativeSampler(10, seed=0)
    for _ in range(20):
        chosen = sampler.draw(3)
        assert len(set(chosen.tolist())) == 3
    assert sampler.counts.max() - sampler.counts.min() <= 2  # balanced use
    state = sampler.state_dict()
    follow = NegativeSampler(10, seed=5)
    follow.load_state_dict(state)
    np.testing.assert_array_equal(follow.draw(3), sampler.draw(3))


def test_negative_sampler_draws_uniformly_when_too_few_probabilities_are_left():
    """With 1000 negatives the exponent 4 ln N = 27.6 takes the used ones' floor 1e-12 to 0:
    600 unused are fewer than 700 asked for, so all 1000 are drawn from uniformly."""
    sampler = NegativeSampler(1000, seed=0)
    sampler.counts = np.array([0] * 600 + [1] * 400)
    assert np.count_nonzero(sampler.probabilities()) == 600
    chosen = sampler.draw(700)
    assert len(set(chosen.tolist())) == 700 and chosen[:5].tolist() == [636, 269, 40, 16, 813]
    assert int((chosen >= 600).sum()) == 282  # used ones too, about 700 x 400 / 1000 of them
    assert np.bincount(sampler.counts).tolist() == [182, 536, 282]


def test_cli_reports_bad_data_without_traceback(tmp_path, capsys):
    code = main(["train", "--data-root", str(tmp_path / "missing"), "--out-dir",
                 str(tmp_path / "run")])
    assert code == 2
    assert "train_images does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_train_and_evaluate(tiny_severstal, tmp_path, capsys):
    config = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=1)
    config.save(tmp_path / "base.yaml")
    assert main(["train", "--config", str(tmp_path / "base.yaml"), "--n-seg", "0",
                 "--out-dir", str(tmp_path / "run")]) == 0
    assert RunConfig.from_file(tmp_path / "run" / "config.yaml").supervision == "WS"
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert "ap=" in capsys.readouterr().out
    # resuming needs only the run directory: its saved configuration is the base
    assert main(["train", "--out-dir", str(tmp_path / "run"), "--resume"]) == 0


def test_one_loader_follows_each_epochs_order_with_persistent_workers(tiny_severstal, tmp_path):
    config = demo_config(tmp_path, data_root=str(tiny_severstal), num_workers=2, batch_size=4)
    _, data = prepare_data(config)
    order = EpochOrder()
    batches = loader(data.train, config, torch.device("cpu"), order)
    for epoch_order in ([3, 1, 2, 0, 5], [4, 0, 2]):
        order.order = epoch_order
        seen = torch.cat([batch["index"] for batch in batches]).tolist()
        assert seen == epoch_order


def test_equal_validation_aps_keep_the_first_or_the_lowest_loss():
    """A 4-positive validation split often gives AP 1.0 at several epochs (KolektorSDD through
    the folder format: epochs 5-25); the folder recipe keeps the best-calibrated of them."""
    from segdec.train import _improves

    best = {"ap": 1.0, "loss": 0.42, "epoch": 4}
    assert not _improves({"ap": 1.0, "log_loss": 0.16}, best, "first")
    assert _improves({"ap": 1.0, "log_loss": 0.16}, best, "loss")
    assert not _improves({"ap": 1.0, "log_loss": 0.5}, best, "loss")
    assert not _improves({"ap": 0.99, "log_loss": 0.01}, best, "loss")
    assert _improves({"ap": 0.5, "log_loss": 2.0}, {"ap": -1.0, "epoch": -1}, "first")


@pytest.mark.parametrize("path", ["space_to_batch", "dilated"])
def test_the_atrous_gradient_path_is_the_configured_one_and_recorded(tiny_severstal, tmp_path,
                                                                     monkeypatch, path):
    """Whichever path this CPU's "auto" would take. runtime.json records the path of the network
    as built; the run stops where the first loader is made, so that nothing is trained."""
    from segdec import train as train_module

    def stop(*args, **kwargs):
        raise InterruptedError

    monkeypatch.setattr(train_module, "loader", stop)
    config = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=1, atrous_gradient=path,
                         out_dir=str(tmp_path / "run"))
    with pytest.raises(InterruptedError):
        train(config, progress=False)
    (stretch,) = json.loads((tmp_path / "run" / "runtime.json").read_text())
    assert stretch["atrous_weight_gradient"] == path and stretch["from_epoch"] == 0
    assert RunConfig.from_file(tmp_path / "run" / "config.yaml").atrous_gradient == path
