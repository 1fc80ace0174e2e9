"""The teaching measurements (segdec.explain, segdec.concepts, segdec.teaching) on small networks
and hand-made arrays whose answers are worked out by hand."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

from segdec.concepts import decision_learning_epoch, explore, plot_loss_curves, save_figures
from segdec.config import RunConfig
from segdec.explain import (
    attended_features,
    attention_effect,
    decision_ablation,
    field_extent,
    field_size,
    gate_changes,
    gridding_ratio,
    held_statistics,
    input_gradient,
    se_gates,
    without_attention,
)
from segdec.model import SqueezeExcite, build_model
from segdec.teaching import NETWORKS, teaching_configs, teaching_data, train_or_load


def open_gates(model):
    """Make every SE gate 1 (a large bias before the sigmoid), so that SE is a pass-through."""
    for module in model.modules():
        if isinstance(module, SqueezeExcite):
            torch.nn.init.constant_(module.fc2.bias, 30.0)
    return model


def test_held_statistics_change_the_gradient_not_the_output():
    """The same segmentation map; the input gradient of one unit, which the per-image statistics
    spread over every pixel, stays on the 216 pixels wide field that unit sees (without SE, whose
    pooled gates would spread it too)."""
    torch.manual_seed(0)
    model, image = build_model(attention=False), torch.rand(1, 1, 64, 320)
    held_model = held_statistics(model)

    def unit_gradient(network):
        x = image.clone().requires_grad_(True)
        seg = network.forward_features(x)[1]
        seg[0, 0, 4, 20].backward()
        return seg.detach(), x.grad[0, 0].abs().numpy()

    held, held_gradient = unit_gradient(held_model)
    plain, plain_gradient = unit_gradient(model.eval())
    torch.testing.assert_close(held, plain, rtol=0, atol=1e-4)
    assert np.count_nonzero(plain_gradient) == 64 * 320  # the statistics reach every pixel
    assert field_extent(held_gradient) == (0, 63, 56, 271)  # 216 columns: 8 x 20 + 3.5 +- 107.5
    assert not any(isinstance(m, type(held_model.segmentation[0][1].norm))
                   for m in model.modules())  # the original is untouched


def test_gridding_ratio_and_field_size_by_hand():
    ramp = np.tile(1.0 + np.arange(5), (5, 1))  # smooth: neighbours differ half as much
    assert gridding_ratio(ramp, (2, 2), radius=2) == pytest.approx(0.5)
    lattice = np.zeros((5, 5))
    lattice[::2, ::2] = 1.0  # the taps of one 3x3 dilation-2 kernel
    assert gridding_ratio(lattice, (2, 2), radius=2) == math.inf
    assert field_size(np.ones((5, 5)), (2, 2), share=0.9) == 5  # 9 / 25 inside 3 x 3
    assert field_size(lattice, (2, 2), share=0.1) == 1  # 1 of 9 taps at the centre
    assert field_size(lattice, (2, 2), share=0.2) == 5  # 3 x 3 adds no tap


def test_se_gates_their_changes_and_the_features_after_them():
    torch.manual_seed(0)
    model, image = build_model(), torch.rand(1, 1, 64, 128)
    gates = se_gates(model, image)
    assert gates.shape == (7, 64) and ((gates > 0) & (gates < 1)).all()
    with pytest.raises(ValueError, match="no SE modules"):
        se_gates(build_model(attention=False), image)
    assert attended_features(model, image).shape == (64, 16, 32)  # the last SE module, at 1/4
    defect = np.full((2, 4), 0.5)
    defect[-1] = [0.9, 0.5, 0.2, 0.6]
    changes = gate_changes(defect, np.full((2, 4), 0.5), k=1)
    assert list(changes["channel"]) == [0, 2]
    assert list(changes["change"]) == pytest.approx([0.4, -0.3])


def test_attention_off_is_every_gate_one():
    torch.manual_seed(0)
    model, images = build_model().eval(), torch.rand(4, 1, 64, 128)
    opened = open_gates(copy.deepcopy(model)).eval()  # an independent network, gates at 1
    with torch.no_grad():
        trained = model(images)[1]
        off = without_attention(model)
        assert not any(isinstance(m, SqueezeExcite) for m in off.modules())
        assert torch.allclose(off(images)[1], opened(images)[1], atol=1e-5)
        assert not torch.allclose(off(images)[1], trained, atol=1e-2)
        assert torch.equal(model(images)[1], trained)  # the model itself keeps its gates
    labels = np.array([1, 0, 1, 0])
    masks = np.zeros((4, 64, 128), dtype=bool)
    masks[0, 8:40, 16:64] = masks[2, 24:56, 64:120] = True
    effect = attention_effect(model, images, labels, masks)
    assert list(effect.index) == ["SE on", "SE off (every gate 1)"]
    assert effect.loc["SE off (every gate 1)"].equals(
        attention_effect(opened, images, labels, masks).loc["SE on"])
    assert not effect.loc["SE on"].equals(effect.loc["SE off (every gate 1)"])


def test_decision_ablation_zeroes_one_group_of_the_classifier_inputs():
    torch.manual_seed(0)
    model, images = build_model().eval(), torch.rand(2, 1, 64, 128)
    table = decision_ablation(model, images, ["a", "b"])
    with torch.no_grad():
        assert table["all inputs"].to_numpy() == pytest.approx(
            torch.sigmoid(model(images)[0]).numpy(), abs=1e-6)
        inputs = model.decision_inputs(*model.forward_features(images))
        logits = model.classifier(inputs)[:, 0]
        without_seg_max = logits - model.classifier.weight[0, 64] * inputs[:, 64]
    assert table["without max of segmentation map"].to_numpy() == pytest.approx(
        torch.sigmoid(without_seg_max).numpy(), abs=1e-6)
    assert list(table.columns) == ["all inputs", "without max of decision features",
                                   "without mean of decision features",
                                   "without max of segmentation map",
                                   "without mean of segmentation map"]


def test_decision_learning_epoch_and_its_mark_on_the_loss_curves():
    history = pd.DataFrame({"epoch": [0, 1, 2, 3], "loss_dec": [0.9, math.log(2) / 2, 0.3, 0.1],
                            "loss_seg": [0.5, 0.4, 0.3, 0.2], "w_seg": [1.0, 0.8, 0.6, 0.4]})
    assert decision_learning_epoch(history) == 2  # first strictly below ln 2 / 2 = 0.347
    assert decision_learning_epoch(history.iloc[:2]) is None
    figure = plot_loss_curves({"run": history})
    marks = [[line.get_xdata()[0] for line in axis.lines if line.get_linestyle() == ":"]
             for axis in figure.axes]
    assert marks == [[2], [2], []]  # on both loss panels, not on w_seg
    plt.close(figure)


def test_explore_shows_the_first_figure_and_redraws_on_a_slider(monkeypatch):
    import IPython.display
    import ipywidgets

    shown, updates, calls = [], [], []

    class Handle:
        def update(self, figure):
            updates.append(figure)

    def display(item, display_id=False):
        shown.append(item)
        return Handle()

    def plot(dilation, beta):
        calls.append((dilation, beta))
        return Figure()

    monkeypatch.setattr(IPython.display, "display", display)
    figure = explore(plot, dilation=(2, 1, 7, 1), beta=(0.04, 0.005, 0.2, 0.005))
    assert calls == [(2, 0.04)] and shown[0] is figure
    dilation, beta = shown[1].children
    assert isinstance(dilation, ipywidgets.IntSlider) and isinstance(beta, ipywidgets.FloatSlider)
    assert (dilation.min, dilation.max, beta.step) == (1, 7, 0.005)
    dilation.value = 5
    assert calls[-1] == (5, 0.04) and len(updates) == 1


def test_saved_figures_are_pngs_at_110_dpi(tmp_path):
    figure = Figure(figsize=(2, 1))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.imshow(np.zeros((1, 2)))  # fills the figure: no text whose size depends on fonts
    axis.set_axis_off()
    assert save_figures({"a": figure}, None) == []
    assert save_figures({"a": figure}, tmp_path / "f") == [tmp_path / "f" / "a.png"]
    with Image.open(tmp_path / "f" / "a.png") as saved:
        assert saved.format == "PNG" and saved.info["dpi"] == pytest.approx((110, 110), abs=0.01)
        assert saved.size == (242, 132)  # (2 x 1 inches + 0.1 inch padding around) x 110 dpi


def test_teaching_runs_use_the_folder_recipe_on_real_images(tmp_path):
    configs = teaching_configs("folder", tmp_path / "parts", tmp_path / "runs", 96, 264, 15)
    assert list(configs) == list(NETWORKS)
    assert [c.out_dir for c in configs.values()] == [
        str(tmp_path / "runs" / name) for name in ("paper", "paper-linear-balance", "bozic")]
    paper, linear, bozic = configs.values()
    assert (paper.learning_rate, paper.batch_size, paper.delta, paper.validate_every) == (
        1.0, 1, 0.01, 5)
    assert (paper.balance, linear.balance, bozic.atrous, bozic.attention) == (
        "decay", "linear", False, False)
    synthetic = teaching_configs("severstal", tmp_path, tmp_path / "runs", 64, 64, 6)
    assert synthetic["paper (A+T+W)"].momentum == 0.9
    with pytest.raises(FileNotFoundError, match="data_root .*nowhere does not exist"):
        teaching_data(tmp_path / "nowhere", tmp_path)
    assert teaching_data("synthetic", tmp_path / "runs", (64, 64)) == (
        "severstal", tmp_path / "runs" / "synthetic")
    assert (tmp_path / "runs" / "synthetic" / "train.csv").is_file()


def test_a_finished_teaching_run_with_other_settings_is_not_loaded(tmp_path):
    run = tmp_path / "paper"
    run.mkdir()
    RunConfig(dataset="folder", epochs=10, out_dir=str(run)).save(run / "config.yaml")
    (run / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match=r"trained with other settings \(epochs, "
                                         r"validate_every\); choose another runs_dir"):
        train_or_load(RunConfig(dataset="folder", epochs=15, validate_every=3, out_dir=str(run)))


def test_measurements_come_back_as_fp32_arrays_from_a_half_precision_network():
    """Each measurement copies to the host in fp32 (``.numpy()`` alone fails on a GPU tensor,
    which a CPU cannot make, and on a bf16 one, which it can)."""
    torch.manual_seed(0)
    model, images = build_model().to(torch.bfloat16), torch.rand(2, 1, 64, 128).bfloat16()
    gates = se_gates(model, images[:1])
    assert gates.dtype == np.float32 and gates.shape == (7, 64)
    assert attended_features(model, images[:1]).dtype == np.float32
    table = decision_ablation(model, images, ["a", "b"])
    assert table.dtypes.eq(np.float32).all() and table.shape == (2, 5)
    assert input_gradient(model, images[:1]).dtype == np.float32
