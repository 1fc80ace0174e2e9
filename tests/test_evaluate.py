"""segdec.evaluate: image- and pixel-level metrics, pinned on cases worked out by hand;
a run's evaluation uses that run's network only."""

import shutil

import numpy as np
import pandas as pd
import pytest

from segdec.checkpoint import save_checkpoint
from segdec.cli import main
from segdec.config import RunConfig
from segdec.metrics import image_metrics, pixel_metrics
from segdec.model import SegDecNet


def test_image_metrics_by_hand():
    # Scores in order: 0.9 (defect), 0.8 (clean), 0.3 (defect), 0.1 (clean).
    metrics = image_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1]))
    assert metrics["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics["auc"] == pytest.approx(0.75)
    assert metrics["f_measure"] == pytest.approx(0.8) and metrics["threshold"] == 0.3
    assert (metrics["fp"], metrics["fn"]) == (1, 0)


def two_defect_mask() -> np.ndarray:
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[2, 3] = mask[12, 5] = 1  # one pixel in cell (0, 0), one in cell (1, 0) of the 8x8 grid
    return mask


def test_pixel_metrics_at_one_eighth_by_hand():
    """Cells 0.9 (defect), 0.8, 0.3 (defect), 0.1: the image example above, on cells."""
    prob = np.array([[0.9, 0.8], [0.3, 0.1]], dtype=np.float32)
    metrics = pixel_metrics([prob], [two_defect_mask()])
    assert metrics["pixel_ap_1_8"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics["pixel_f_1_8"] == pytest.approx(0.8)
    assert metrics["pixel_iou_1_8"] == pytest.approx(2 / 3)  # 3 cells called, 2 of them right


def test_pixel_metrics_of_an_uninformative_map_are_the_prevalence():
    metrics = pixel_metrics([np.full((2, 2), 0.5, np.float32)], [two_defect_mask()])
    assert metrics["pixel_ap"] == pytest.approx(2 / 256)
    assert metrics["pixel_ap_1_8"] == pytest.approx(2 / 4)
    assert metrics["pixel_iou"] == pytest.approx(2 / 256)


def test_pixel_metrics_pool_images_and_need_defects():
    prob = np.array([[0.9, 0.1], [0.9, 0.1]], dtype=np.float32)
    pooled = pixel_metrics([prob, prob], [two_defect_mask(), two_defect_mask()])
    assert pooled["pixel_ap_1_8"] == 1.0 and pooled["pixel_iou_1_8"] == 1.0
    assert pixel_metrics([], []) == {}
    assert pixel_metrics([prob], [np.zeros((16, 16), np.uint8)]) == {}


def test_error_gallery_picks_the_worst_mistakes_and_draws_them(tmp_path):
    from segdec.gallery import error_gallery, error_indices

    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.9, 0.6, 0.1, 0.2, 0.7, 0.05])
    assert error_indices(labels, scores, 0.5) == ([0, 1], [5, 3])  # most wrong first
    entry = {"image": np.zeros((40, 24), np.uint8), "mask": np.zeros((40, 24), np.uint8),
             "seg_map": np.full((5, 3), 0.8, np.float32), "score": 0.9,
             "kind": "false positive", "name": "a.png"}
    empty_map = {**entry, "kind": "false negative", "score": 0.05,
                 "seg_map": np.full((5, 3), 0.02, np.float32)}
    figure = error_gallery([entry, empty_map, entry, entry, entry], 0.5)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles[:2] == ["false positive\na.png\np = 0.900",
                          "false negative\na.png\np = 0.050\nmap empty (max 0.02)"]
    assert len(figure.axes) == 5  # two rows of four columns, but no blank panels
    assert figure._suptitle.get_text().startswith("Test errors at threshold 0.500: predicted map")
    figure.savefig(tmp_path / "errors.png")
    assert (tmp_path / "errors.png").stat().st_size > 1000
    only_empty = error_gallery([empty_map], 0.5)._suptitle.get_text()
    assert "every predicted map empty" in only_empty and "orange" not in only_empty
    assert "No test errors" in error_gallery([], 0.5)._suptitle.get_text()
    assert figure._supxlabel is None  # synthetic images: no credit
    credited = error_gallery([entry], 0.5, dataset="ksdd")._supxlabel.get_text()
    assert credited == ("Images: KolektorSDD (Tabernik et al., 2019; ViCoS, University of "
                        "Ljubljana, and Kolektor), CC BY-NC-SA 4.0: attribution, non-commercial, "
                        "share-alike")


def test_a_checkpoint_of_another_run_is_refused_before_metrics_are_overwritten(
        tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = RunConfig.from_file(run / "config.yaml")
    other = config.replace(attention=False, input_height=2 * config.input_height)
    save_checkpoint(run / "checkpoints" / "best.pt", SegDecNet(other.model_config()), other)
    before = {p: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 2
    assert (f"{run / 'checkpoints' / 'best.pt'} is not this run's network: it has attention "
            "False (the run: True), input_size "
            f"[{other.input_height}, {config.input_width}] (the run: "
            f"[{config.input_height}, {config.input_width}])") in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_the_same_network_trained_as_another_run_is_refused(tiny_run, tmp_path, capsys):
    """Same architecture and size, another seed: still not this run's model."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = RunConfig.from_file(run / "config.yaml")
    other = config.replace(seed=config.seed + 7)
    save_checkpoint(run / "checkpoints" / "best.pt", SegDecNet(other.model_config()), other)
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 2
    assert (f"is not this run's network: it has seed {config.seed + 7} (the run: "
            f"{config.seed})") in capsys.readouterr().err


def test_a_released_network_whose_map_scale_collapsed_is_reported_loudly(tiny_run, tmp_path,
                                                                          caplog):
    """Its AP is no result of the network: metrics.json carries the warning and it is logged."""
    import json
    import logging

    import torch

    from segdec.evaluate import evaluate_run

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    released = RunConfig.from_file(run / "config.yaml").replace(
        attention=False, atrous=False, architecture="released")
    released.save(run / "config.yaml")
    model = SegDecNet(released.model_config())
    with torch.no_grad():
        model.seg_norm.weight.fill_(0.0004)
    save_checkpoint(run / "checkpoints" / "best.pt", model, released)
    caplog.set_level(logging.WARNING, logger="segdec")
    metrics = evaluate_run(run, device="cpu")
    assert metrics["warning"].startswith("the learnt scale of the segmentation map's "
                                         "normalisation collapsed to 0.0004")
    assert json.loads((run / "metrics.json").read_text())["warning"] == metrics["warning"]
    assert f"{run}: the learnt scale" in caplog.text


def test_saved_maps_show_images_at_the_runs_bit_depth(tmp_path):
    """Figure 9's images were read by each image's own depth: a 12-bit run's dark image (largest
    value 900) was shown 4x brighter (224) than the network saw it (56)."""
    from segdec.data import DefectDataset, Sample, TargetOptions
    from segdec.evaluate import _save_maps
    from tests.layouts import camera_image

    dark = camera_image(tmp_path / "dark.png", low=100, high=900)
    dataset = DefectDataset([Sample("dark.png", str(dark), 0)], [True],
                            TargetOptions(size=(40, 24), bit_depth=12))
    _save_maps(tmp_path / "maps.npz", dataset, [0], [np.zeros((1, 5, 3), np.float32)],
               np.array([0.5]))
    image = np.load(tmp_path / "maps.npz")["images"][0]
    assert (image[0, 0], image[1, 0], image[-1, -1]) == (6, 31, 56)
    np.testing.assert_array_equal(image, (dataset[0]["image"][0] * 255).round().byte().numpy())


def test_a_run_is_tested_in_one_pass_over_its_test_set(tiny_run, tmp_path, monkeypatch):
    """Scores, the saved maps, the pixel metrics and the error gallery come from one prediction
    of every test image; what is written is what ``evaluate_test`` computed."""
    from segdec import evaluate

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    passes, predict_loader = [], evaluate.predict_loader

    def counted(model, loader, *args, **kwargs):
        passes.append(len(loader.dataset))
        return predict_loader(model, loader, *args, **kwargs)

    monkeypatch.setattr(evaluate, "predict_loader", counted)
    tested = []
    monkeypatch.setattr(evaluate, "write_evaluation",
                        lambda run_dir, test, found, dataset: tested.append(found))
    metrics = evaluate.evaluate_run(run, device="cpu")
    (found,) = tested
    labels = pd.read_csv(tiny_run / "predictions.csv")["label"].to_numpy()
    assert passes == [len(labels)]
    assert metrics == {**found.metrics, "checkpoint": "best.pt"}
    assert len(found.maps) == len(labels)  # every map kept; positives first (n_saved_maps: all)
    assert found.saved == [*np.flatnonzero(labels == 1), *np.flatnonzero(labels == 0)]
    errors = {entry["name"] for entry in found.gallery}
    assert len(errors) == found.metrics["fp"] + found.metrics["fn"]
