"""segdec.train end to end: a tiny model must learn, resume exactly, and leave a complete run
directory; new runs, refused resumes and split files."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from segdec.checkpoint import load_checkpoint
from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.prepare import loader, prepare_data
from segdec.data.synthetic import synthesize
from segdec.demo import demo_config
from segdec.errors import DataError
from segdec.evaluate import evaluate_run
from segdec.sampling import EpochOrder, NegativeSampler
from segdec.train import _check_resumable, train
from tests.helpers import one_epoch

RUN_FILES = ["config.yaml", "split.csv", "history.csv", "metrics.json", "predictions.csv",
             "errors.png", "segmentation_maps.npz", "checkpoints/best.pt", "checkpoints/last.pt",
             "runtime.json"]


@pytest.fixture(scope="module")
def learnable_data(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("learn") / "data", 80, 80, seed=3, shape=(64, 128))


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
def test_the_test_after_training_is_the_standalone_evaluation(tiny_severstal, tmp_path,
                                                              monkeypatch):
    """Training prepares the data once and tests its best checkpoint on it, on the device it
    resolved at the start; ``segdec evaluate --run`` on the finished directory writes the same
    bytes (a channels-last run too, whose validation network is in another memory format than
    the one the checkpoint rebuilds)."""
    import shutil

    import segdec.evaluate
    import segdec.train

    prepared, prepare = [], segdec.train.prepare_data
    for module in (segdec.train, segdec.evaluate):
        monkeypatch.setattr(module, "prepare_data",
                            lambda *args: prepared.append(args) or prepare(*args))
    run = tmp_path / "run"
    train(demo_config(tmp_path, data_root=str(tiny_severstal), epochs=2, n_seg=3,
                      channels_last=True, out_dir=str(run)), progress=False)
    assert len(prepared) == 1
    monkeypatch.undo()
    again = tmp_path / "again"
    shutil.copytree(run, again)
    for name in ("metrics.json", "predictions.csv", "segmentation_maps.npz", "errors.png"):
        (again / name).unlink()
    assert main(["evaluate", "--run", str(again), "--device", "cpu"]) == 0
    for name in ("metrics.json", "predictions.csv"):
        assert (again / name).read_bytes() == (run / name).read_bytes(), name
    trained, standalone = np.load(run / "segmentation_maps.npz"), np.load(
        again / "segmentation_maps.npz")
    assert trained.files == standalone.files
    for key in trained.files:
        np.testing.assert_array_equal(standalone[key], trained[key], err_msg=key)


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
    # the resumed stretch estimates its 2 remaining epochs (and validations), and both record
    # how long they took
    timings = json.loads((tmp_path / "interrupted" / "timing.json").read_text())
    assert [(t["from_epoch"], t["parts"]["epochs"], t["parts"]["validations"])
            for t in timings] == [(0, 4, 4), (2, 2, 2)]
    assert timings[0]["actual_s"] is None and timings[1]["actual_s"] > 0  # the first was killed
    a = pd.read_csv(tmp_path / "straight" / "history.csv").drop(columns="seconds")
    b = pd.read_csv(tmp_path / "interrupted" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="differs in epochs"):
        train(interrupted.replace(epochs=6), resume=True, progress=False)


def test_negative_sampler_probabilities_are_bozic_s():
    """p = 1 - f / max f; p = p - median(p) + 1; p = p ** (4 ln N); normalised
    (docs/paper.md, Božič's reference implementation)."""
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


def test_epoch_losses_reach_the_host_once_per_epoch():
    """Building the per-step weights from a Python list copied them to the device, a sync with
    the GPU every step; the epoch's three means are its one sync."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    from segdec.loss import SegDecLoss
    from segdec.train import train_one_epoch

    class CountOps(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            seg = self.conv(x)
            return seg.mean(dim=(1, 2, 3)), seg

    torch.manual_seed(0)
    model = Tiny()
    batches = [{"image": torch.rand(n, 1, 8, 8), "label": torch.tensor([0.0, 1.0, 1.0][:n]),
                "seg_target": torch.rand(n, 1, 8, 8), "seg_weight": torch.ones(n, 1, 8, 8),
                "has_pixel_label": torch.tensor([True, True, False][:n])} for n in (3, 3, 2)]
    with CountOps() as counted:
        means = train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                torch.amp.GradScaler("cpu", enabled=False),
                                SegDecLoss("bce", 1.0), batches, (0.5, 0.5),
                                torch.device("cpu"), None)
    assert counted.ops["aten.lift_fresh"] == 0  # no tensor from Python data inside the loop
    assert means == pytest.approx([0.698355, 0.686533, 0.605517], abs=1e-6)


def _edit_checkpoint(path, **changes):
    state = torch.load(path, weights_only=True)
    state.update(changes)
    torch.save(state, path)


@pytest.mark.slow
def test_resuming_keeps_the_loss_scale_and_the_precision_the_run_started_in(tiny_severstal,
                                                                            tmp_path):
    config = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=2, validate_every=1,
                         precision="fp16", n_all=4, n_test=8, n_val=8,
                         out_dir=str(tmp_path / "run"))

    def stop(epoch, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[stop], progress=False)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    assert state["precision"] == "fp16" and load_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.pt")["precision"] == "fp16"
    assert set(state["scaler"]) == {"scale", "growth_factor", "backoff_factor",
                                    "growth_interval", "_growth_tracker"}
    # A run started in TF32 (auto on an A100) cannot continue on this CPU; nothing is written.
    _edit_checkpoint(last, precision="tf32")
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=f"cannot resume from {last} on cpu: the run trained in "
                                         "tf32, which this device cannot compute"):
        train(config, resume=True, progress=False)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # The loss scale goes on from where it was (8.0 here; 13 halvings below GradScaler's
    # initial 65536, so not reached afresh in one epoch).
    _edit_checkpoint(last, precision="fp16", scaler={**state["scaler"], "scale": 8.0})
    train(config, resume=True, progress=False)
    assert load_checkpoint(last)["scaler"]["scale"] == 8.0
    stretches = json.loads((tmp_path / "run" / "runtime.json").read_text())
    assert [(s["from_epoch"], s["precision"]) for s in stretches] == [(0, "fp16"), (1, "fp16")]


def test_a_resumed_run_keeps_its_precision_on_a_device_that_has_it(monkeypatch, tmp_path):
    """Started in fp32 on a CPU, resumed on an A100 where "auto" is TF32: it stays fp32. A
    checkpoint written before the precision was recorded counts as fp32."""
    from segdec.train import _resumed_precision

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    a100 = torch.device("cuda", 0)
    assert _resumed_precision({"precision": "fp32"}, "tf32", a100, tmp_path) == "fp32"
    assert _resumed_precision({}, "tf32", a100, tmp_path) == "fp32"
    assert _resumed_precision({"precision": "tf32"}, "tf32", a100, tmp_path) == "tf32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(ValueError, match="trained in bf16, which this device cannot compute"):
        _resumed_precision({"precision": "bf16"}, "fp32", a100, tmp_path)


@pytest.mark.slow
def test_scoring_takes_the_precision_the_network_trained_in(tiny_run, tmp_path):
    """predict and evaluate score in the checkpoint's recorded precision, not in the run's
    "auto" (or bf16) resolved afresh; a checkpoint without the record counts as fp32."""
    import shutil

    from segdec.predict import predict_images

    images = tmp_path / "images"
    images.mkdir()
    state = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=True)
    assert state["precision"] == "fp32"
    for name in pd.read_csv(tiny_run / "predictions.csv")["image"][:4]:
        shutil.copy(Path(state["run_config"]["data_root"]) / "train_images" / name, images)

    def scores(**changes):
        edited = {**state, "run_config": {**state["run_config"], "precision": "bf16"}, **changes}
        path = tmp_path / f"{len(list(tmp_path.glob('*.pt')))}.pt"
        torch.save(edited, path)
        table, _ = predict_images(path, images, tmp_path / path.stem, device="cpu",
                                  progress=False)
        return table.score.tolist()

    fp32 = scores()
    older = dict(state, run_config={**state["run_config"], "precision": "bf16"})
    del older["precision"]
    torch.save(older, tmp_path / "older.pt")
    table, _ = predict_images(tmp_path / "older.pt", images, tmp_path / "older", device="cpu",
                              progress=False)
    assert table.score.tolist() == fp32
    assert scores(precision="bf16") != fp32  # what bf16 scoring would have given

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = RunConfig.from_file(run / "config.yaml")
    config.replace(precision="bf16").save(run / "config.yaml")
    torch.save({**state, "run_config": {**state["run_config"], "precision": "bf16"}},
               run / "checkpoints" / "best.pt")  # the same run, set to bf16 (trained in fp32)
    evaluate_run(run, device="cpu")
    pd.testing.assert_frame_equal(pd.read_csv(run / "predictions.csv"),
                                  pd.read_csv(tiny_run / "predictions.csv"))


@pytest.mark.slow
def test_the_estimate_leaves_the_run_as_it_would_be_without(tiny_severstal, tmp_path):
    """The timed steps run on copies of the network, optimiser and loss scaler, with the
    random-number state restored: every loss, validation and test number is the same to the
    last digit, and so are the weights and the random state the run saves."""
    base = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=2, validate_every=1,
                       n_all=6, n_test=8, n_val=8)
    estimated = train(base.replace(out_dir=str(tmp_path / "with")), progress=False)
    plain = train(base.replace(out_dir=str(tmp_path / "without"), estimate=False),
                  progress=False)
    assert estimated == plain
    a, b = (pd.read_csv(tmp_path / run / "history.csv").drop(columns="seconds")
            for run in ("with", "without"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    last_a, last_b = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")
                      for run in ("with", "without"))
    assert torch.equal(last_a["torch_rng"], last_b["torch_rng"])
    assert all(torch.equal(last_a["model"][k], last_b["model"][k]) for k in last_a["model"])
    (timed,) = json.loads((tmp_path / "with" / "timing.json").read_text())
    assert timed["parts"]["epochs"] == 2 and timed["parts"]["validations"] == 2
    assert timed["estimated_s"] > 0 and timed["actual_s"] > 0
    (untimed,) = json.loads((tmp_path / "without" / "timing.json").read_text())
    assert untimed["estimated_s"] is None and untimed["actual_s"] > 0


def test_patience_counts_stale_validations_from_half_the_epochs():
    from segdec.train import _stale_validations

    nan = float("nan")
    aps = [nan, 0.8, nan, 0.7, nan, 0.7, nan, 0.8, nan, 0.6]  # validated every 2nd epoch
    history = [{"epoch": e, "val_ap": ap} for e, ap in enumerate(aps)]
    # best at epoch 1; epochs 5, 7 and 9 count, epoch 3 (before half of 10) does not
    assert _stale_validations(history, 1, 10) == 3
    assert _stale_validations(history, 7, 10) == 1
    assert _stale_validations(history[:5], 1, 10) == 0


@pytest.mark.slow
def test_patience_ends_a_plateaued_run_and_resuming_it_changes_nothing(tiny_severstal, tmp_path,
                                                                       monkeypatch):
    """Validation APs 0.5, 0.6, 0.7, 0.7, ... (faked): the best is epoch 3, epochs 4 and 5 (in
    the second half of 6) do not improve on it, so patience 2 ends the run after epoch 5."""
    from segdec import train as train_module

    aps = iter([0.5, 0.6, 0.7, 0.7, 0.7, 0.7])
    monkeypatch.setattr(train_module, "image_metrics",
                        lambda labels, scores: {"ap": next(aps), "log_loss": 0.5,
                                                "threshold": 0.5})
    config = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=6, validate_every=1,
                         n_all=4, n_test=8, n_val=8, patience=2, estimate=False,
                         out_dir=str(tmp_path / "run"))
    metrics = train(config, progress=False)
    run = tmp_path / "run"
    reason = "validation AP not improved for 2 validations since epoch 3 (AP 0.7000)"
    assert (metrics["stopped_epoch"], metrics["stopped_reason"]) == (4, reason)
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert pd.read_csv(run / "history.csv").epoch.tolist() == [0, 1, 2, 3, 4]
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == 2
    assert load_checkpoint(run / "checkpoints" / "last.pt")["stopped"]["stopped_epoch"] == 4
    (timed,) = json.loads((run / "timing.json").read_text())
    assert timed["stopped"] == {"stopped_epoch": 4, "stopped_reason": reason}
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert train(config, resume=True, progress=False) == metrics
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    # Scored again on its own, the run still says where and why it stopped.
    assert evaluate_run(run) == metrics == json.loads((run / "metrics.json").read_text())


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
