"""The teaching package (segdec.teaching) on small networks and hand-made arrays whose answers
are worked out by hand."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from segdec.config import RunConfig
from segdec.model import SqueezeExcite, build_model
from segdec.recipes import SEVERSTAL_SCHEDULE
from segdec.teaching.balance import balance_schedules, decision_learning_epoch
from segdec.teaching.figures import (
    mark_synthetic,
    plot_balance_schedules,
    plot_channels,
    plot_effective_fields,
    plot_kernel_taps,
    plot_loss_curves,
    plot_maps,
    plot_reachable_pixels,
    same_decay,
)
from segdec.teaching.gates import (
    attended_features,
    attention_effect,
    gate_changes,
    gates_at_mean,
    se_gates,
    squeeze_spread,
    squeeze_statistics,
    without_attention,
)
from segdec.teaching.networks import (
    NETWORKS,
    describe_data,
    kolektorsdd,
    teaching_configs,
    teaching_data,
    train_or_load,
)
from segdec.teaching.outputs import decision_ablation
from segdec.teaching.receptive_field import (
    field_extent,
    field_size,
    gridding_ratio,
    held_statistics,
    input_gradient,
    reachable_pixels,
    unit_centre,
)


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
    assert list(effect.index) == ["SE on", "gates held at their mean", "SE off (every gate 1)"]
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


def test_table4_decays_that_draw_one_curve_are_drawn_once():
    """90 epochs at beta 0.01 and 60 at 0.015 decay alike over the fraction of training (as do
    80 x 0.01 and 40 x 0.02): drawn twice, one line would hide the other."""
    assert same_decay(SEVERSTAL_SCHEDULE.values()) == [[(90, 0.01), (60, 0.015)],
                                                       [(80, 0.01), (40, 0.02)]]
    decays = [balance_schedules(e, b) for e, b in ((90, 0.01), (60, 0.015))]
    ends = [d.loc[d["balance"] == "decay", "w_seg"].iloc[-1] for d in decays]
    assert ends[0] == pytest.approx(ends[1], abs=0.01)
    figure = plot_balance_schedules(balance_schedules(15, 0.036))
    labels = [line.get_label() for line in figure.axes[1].get_lines()]
    assert labels[:2] == ["decay, Table 4: 90 epochs, β 0.01 and 60 epochs, β 0.015 (one curve)",
                          "decay, Table 4: 80 epochs, β 0.01 and 40 epochs, β 0.02 (one curve)"]
    plt.close(figure)


def test_channel_panels_show_small_gate_changes_and_one_scale():
    changes = pd.DataFrame({"channel": [0, 1], "gate_defect": [0.5012, 0.4987],
                            "change": [0.0012, -0.0013]})
    features = np.stack([np.full((4, 4), 2.0), np.full((4, 4), 1.0)])
    figure = plot_channels(np.zeros((8, 8)), features, changes)
    assert [axis.get_title() for axis in figure.axes[1:3]] == [
        "ch 0\ngate 0.501\n(+0.001 vs clean)", "ch 1\ngate 0.499\n(-0.001 vs clean)"]
    assert figure.axes[-1].get_ylabel() == "feature value after the SE gate"  # the colour bar
    assert figure.axes[2].images[0].get_clim() == (0, 2.0)
    plt.close(figure)


def test_teaching_runs_use_the_folder_recipe_on_real_images(tmp_path):
    configs = teaching_configs("folder", tmp_path / "parts", tmp_path / "runs", 96, 264, 15)
    assert list(configs) == list(NETWORKS)
    assert [c.out_dir for c in configs.values()] == [
        str(tmp_path / "runs" / name)
        for name in ("paper", "paper-linear-balance", "bozic", "atrous")]
    paper, linear, bozic, atrous = configs.values()
    assert (paper.learning_rate, paper.batch_size, paper.delta, paper.validate_every) == (
        1.0, 1, 0.01, 5)
    assert (paper.balance, linear.balance, bozic.atrous, bozic.attention) == (
        "decay", "linear", False, False)
    # the effective receptive field's pair differs in the kernels alone
    assert {k for k, v in atrous.to_dict().items() if bozic.to_dict()[k] != v} == {
        "atrous", "out_dir"}
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
    # beta follows the epochs, so it differs too
    with pytest.raises(ValueError, match=r"trained with other settings \(beta, epochs, "
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


def test_reachable_pixels_of_stacked_dilated_kernels_counted_by_hand():
    """Two 3x3 dilation-2 kernels reach the even offsets -4..4 in each axis: 5 x 5 of the 9 x 9
    they span; three, -6..6: 7 x 7 of 13 x 13. A 2x2 pool between them adds 0 or 1 to the first
    kernel's offsets {-2, 0, 2} before the second's, now 4 apart: {-4, 0, 4} + {0, 1} + {-2, 0, 2}
    is every offset -6..7 (14 x 14 of 14 x 14); with a second pool and a third kernel, -14..17."""
    cases = {(2, False): (9, 25, 4), (3, False): (13, 49, 6),
             (2, True): (14, 196, 6), (3, True): (32, 1024, 14)}
    for (convolutions, pooled), (span, reached, origin) in cases.items():
        grid, at = reachable_pixels(convolutions, pooled)
        assert (grid.shape, int(grid.sum()), at) == ((span, span), reached, origin)
        # the same set from a real stack: all-ones kernels and average pools (which pass the
        # gradient to every pixel of the window a max-pool may take) leave no cancellation
        layers = []
        for layer in range(convolutions):
            if layer and pooled:
                layers.append(torch.nn.AvgPool2d(2))
            layers.append(torch.nn.Conv2d(1, 1, 3, padding=2, dilation=2, bias=False))
            torch.nn.init.ones_(layers[-1].weight)
        x = torch.zeros(1, 1, 64, 64, requires_grad=True)
        out = torch.nn.Sequential(*layers)(x)
        unit = out.shape[-1] // 2
        out[0, 0, unit, unit].backward()
        expected = np.zeros((64, 64), dtype=np.uint8)
        top = unit * 2 ** (convolutions - 1 if pooled else 0) - origin
        expected[top:top + span, top:top + span] = grid
        assert np.array_equal(x.grad[0, 0].numpy() > 0, expected > 0)
    assert int(reachable_pixels(2, False, dilation=3)[0].sum()) == 25  # 3 x 3 taps, 3 apart
    assert reachable_pixels(2, False, dilation=3)[0].shape == (13, 13)
    figure = plot_reachable_pixels((2,))
    assert [axis.get_title() for axis in figure.axes] == [
        "2 convs 3x3, dilation 2,\nno pooling:\n25 of 81 px reached",
        "3 convs 3x3, dilation 2,\nno pooling:\n49 of 169 px reached",
        "2 convs 3x3, dilation 2,\na 2x2 max-pool between each:\n196 of 196 px reached",
        "3 convs 3x3, dilation 2,\na 2x2 max-pool between each:\n1024 of 1024 px reached"]
    plt.close(figure)


def test_effective_fields_on_one_linear_scale_with_the_theoretical_field():
    assert unit_centre((2, 3)) == (20, 28)
    gradient = np.arange(64 * 48, dtype=float).reshape(64, 48)
    figure = plot_effective_fields(np.zeros((64, 48)), {"T": gradient, "none": 2 * gradient},
                                   unit=(2, 3), field=216, radius=4)
    assert len(figure.axes) == 7  # two rows of three panels and one colour bar
    assert figure.axes[-1].get_ylabel() == (
        "|gradient| / its maximum (dashed: the theoretical 216 px field)")
    for row in (0, 3):
        whole, crop = figure.axes[row + 1].images[0], figure.axes[row + 2].images[0]
        assert whole.get_clim() == crop.get_clim() == (0, 1)
        assert np.array_equal(whole.get_array(), gradient / gradient.max())
        assert crop.get_array()[4, 4] == gradient[20, 28] / gradient.max()  # the unit's pixel
        (square,) = figure.axes[row + 1].patches  # centred between pixels 16..23 and 24..31
        assert (square.get_xy(), square.get_width(), square.get_height()) == (
            (27.5 - 108, 19.5 - 108), 216, 216)
    plt.close(figure)


def test_squeezed_means_and_their_spread_between_images():
    torch.manual_seed(0)
    model, images = build_model(), torch.rand(3, 1, 64, 128)
    means, gates = squeeze_statistics(model, images)
    assert means.shape == gates.shape == (3, 7, 64)
    assert np.allclose(gates[1], se_gates(model, images[1:2]), atol=1e-6)
    kept = []
    hook = model.segmentation[3][3].register_forward_hook(  # the first SE module
        lambda _m, inputs, _o: kept.append(inputs[0].mean(dim=(2, 3))))
    with torch.no_grad():
        model(images)
    hook.remove()
    assert np.allclose(means[:, 0], kept[0].numpy(), atol=1e-6)
    by_hand = np.array([[[1.0, 2.0, 0.0, 4.0]], [[3.0, 2.0, 0.0, 4.0]]])
    # std over mean per channel: 1 / 2, 0, left out (zero on every image), 0 -> median 0
    assert squeeze_spread(by_hand) == pytest.approx([0.0])
    assert squeeze_spread(by_hand[:, :, :2]) == pytest.approx([0.25])


def test_gates_held_at_their_mean_weight_every_image_alike():
    torch.manual_seed(0)
    model, images = build_model().eval(), torch.rand(4, 1, 64, 128)
    mean = np.mean([se_gates(model, images[i:i + 1]) for i in range(4)], axis=0)
    held = gates_at_mean(model, images)
    assert not any(isinstance(m, SqueezeExcite) for m in held.modules())
    assert np.allclose(np.stack([m.gate.flatten().numpy() for m in held.modules()
                                 if isinstance(getattr(m, "gate", None), torch.Tensor)]),
                       mean, atol=1e-6)
    constant = copy_with_constant_gates(model, mean)  # independent: SE reading nothing
    labels = np.array([1, 0, 1, 0])
    masks = np.zeros((4, 64, 128), dtype=bool)
    masks[0, 8:40, 16:64] = masks[2, 24:56, 64:120] = True
    with torch.no_grad():
        assert torch.allclose(held(images)[1], constant(images)[1], atol=1e-5)
        assert not torch.allclose(held(images)[1], model(images)[1], atol=1e-3)
        own = gates_at_mean(model, images[:1])  # one image: its mean gate is its gate
        assert torch.allclose(own(images[:1])[1], model(images[:1])[1], atol=1e-5)
    effect = attention_effect(model, images, labels, masks)
    assert list(effect.index) == ["SE on", "gates held at their mean", "SE off (every gate 1)"]
    assert effect.loc["gates held at their mean"].to_numpy() == pytest.approx(
        attention_effect(constant, images, labels, masks).loc["SE on"].to_numpy())


def copy_with_constant_gates(model, gates):
    """A copy whose every SE module outputs ``gates`` whatever it reads: zero weights before the
    last sigmoid, its bias the gates' logit."""
    model = copy.deepcopy(model)
    for module, gate in zip([m for m in model.modules() if isinstance(m, SqueezeExcite)], gates,
                            strict=True):
        torch.nn.init.zeros_(module.fc2.weight)
        module.fc2.bias.data = torch.logit(torch.from_numpy(gate).double()).float()
    return model.eval()


def test_segmentation_maps_share_one_perceptual_scale_and_colour_bar():
    maps = {"SE on": np.full((8, 6), 0.2), "held": np.linspace(0, 0.8, 48).reshape(8, 6)}
    mask = np.zeros((64, 48), dtype=bool)
    mask[10:20, 5:30] = True
    figure = plot_maps(np.zeros((64, 48)), mask, maps)
    assert len(figure.axes) == 4  # input, two maps, one colour bar
    assert [(a.images[0].get_clim(), a.images[0].get_cmap().name) for a in figure.axes[1:3]] == [
        ((0, 0.8), "magma")] * 2
    assert figure.axes[-1].get_ylabel() == "defect probability"
    plt.close(figure)


def test_loss_curves_legend_names_the_runs_and_both_marks():
    history = pd.DataFrame({"epoch": [0, 1], "loss_dec": [0.9, 0.3], "loss_seg": [0.5, 0.4],
                            "w_seg": [1.0, 0.5]})
    figure = plot_loss_curves({"decay": history, "linear": history})
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "decay", "linear", "ln 2: a decision by chance",
        "the epoch the decision loss falls below ln 2 / 2"]
    plt.close(figure)


def test_synthetic_data_is_said_loudly_and_in_every_figure_title(tmp_path, monkeypatch):
    assert describe_data(None, "folder", tmp_path) == f"Real images: {tmp_path} (folder format)."
    monkeypatch.setenv("SEGDEC_DATA", str(tmp_path / "datasets"))
    assert kolektorsdd() == tmp_path / "datasets" / "ksdd"  # ksdd under the data folder
    banner = describe_data(None, "severstal", tmp_path).splitlines()
    assert banner[0] == banner[-1] == "!" * 79
    assert banner[1] == (f"SYNTHETIC DATA (no data_root given and no KolektorSDD at "
                         f"{tmp_path / 'datasets' / 'ksdd'}): these networks learn made-up "
                         f"images, {tmp_path}, and")
    assert "https://www.vicos.si/resources/kolektorsdd/ (CC BY-NC-SA 4.0)" in banner[2]
    assert describe_data("synthetic", "severstal", tmp_path).splitlines()[1].startswith(
        "SYNTHETIC DATA (data_root is 'synthetic'):")
    assert mark_synthetic(Figure(), "severstal").get_suptitle() == (
        "SYNTHETIC images, not KolektorSDD")
    assert mark_synthetic(Figure(), "folder").get_suptitle() == ""


def test_kernel_taps_as_small_multiples_one_row_per_dilation():
    figure = plot_kernel_taps((1, 2, 3))
    assert [axis.get_title() for axis in figure.axes] == [
        "dense 3x3: 9 weights", "3x3, dilation 1: 9 weights",
        "dense 5x5: 25 weights", "3x3, dilation 2: 9 weights",
        "dense 7x7: 49 weights", "3x3, dilation 3: 9 weights"]
    plt.close(figure)
