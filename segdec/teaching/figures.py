"""The teaching notebook's figures: kernel taps, reachable pixels, effective receptive fields, SE
gates and channels, segmentation maps with the gates changed, balance schedules and loss curves;
the banner of a figure of synthetic images; the sliders that redraw a figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from segdec.model import SegDecNet
from segdec.plots import (
    DIFFERENCE,
    IMAGE,
    LINE_COLOURS,
    MAP,
    TAPS,
    TRUE_DEFECT,
    WEIGHTS,
    colourbar,
    styled,
)
from segdec.recipes import SEVERSTAL_SCHEDULE
from segdec.teaching.balance import balance_schedules, decision_learning_epoch
from segdec.teaching.receptive_field import (
    gridding_ratio,
    kernel_taps,
    reachable_pixels,
    unit_centre,
)


def mark_synthetic(figure: Figure, dataset: str) -> Figure:
    """``figure``, titled as drawn from synthetic images when ``dataset`` is the synthetic set's
    format (see ``describe_data``)."""
    if dataset == "severstal":
        figure.suptitle("SYNTHETIC images, not KolektorSDD", color="red", fontweight="bold",
                        y=1.0, va="bottom")
    return figure


@styled
def plot_kernel_taps(dilations: tuple[int, ...] = (1, 2, 3)) -> Figure:
    """Small multiples, one row per dilation: where a dense kernel of the same effective size
    and the 3x3 kernel with that dilation read their input (the taps)."""
    figure, axes = plt.subplots(len(dilations), 2, figsize=(6, 3 * len(dilations)),
                                squeeze=False)
    for row, dilation in zip(axes, dilations, strict=True):
        taps = kernel_taps(2 * dilation + 1, dilation)
        for axis, (title, grid) in zip(row, taps.items(), strict=True):
            axis.imshow(grid, cmap=TAPS, vmin=0, vmax=1.3)
            axis.set_xticks(np.arange(-0.5, grid.shape[1]), minor=True)
            axis.set_yticks(np.arange(-0.5, grid.shape[0]), minor=True)
            axis.grid(which="minor", color="grey", linewidth=0.5)
            axis.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
            axis.set_title(f"{title}: {int(grid.sum())} weights")
    figure.tight_layout()
    return figure


@styled
def plot_reachable_pixels(dilations: tuple[int, ...] = (1, 2, 3)) -> Figure:
    """Small multiples, one row per dilation: the pixels one unit reaches through 2 and 3
    stacked 3x3 kernels with that dilation, without and with the network's 2x2 max-pools
    between them; red: the pixel under the unit."""
    cases = [(n, pooled) for pooled in (False, True) for n in (2, 3)]
    figure, axes = plt.subplots(len(dilations), len(cases),
                                figsize=(3.4 * len(cases), 3.9 * len(dilations)), squeeze=False)
    for row, dilation in zip(axes, dilations, strict=True):
        for axis, (convolutions, pooled) in zip(row, cases, strict=True):
            grid, origin = reachable_pixels(convolutions, pooled, dilation)
            axis.imshow(grid, cmap=TAPS, vmin=0, vmax=1.3, interpolation="nearest")
            if grid.shape[0] <= 20:  # pixel borders where they stay readable
                axis.set_xticks(np.arange(-0.5, grid.shape[1]), minor=True)
                axis.set_yticks(np.arange(-0.5, grid.shape[0]), minor=True)
                axis.grid(which="minor", color="grey", linewidth=0.5)
            axis.plot(origin, origin, "s", color="red", markersize=4)
            axis.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
            between = "a 2x2 max-pool between each" if pooled else "no pooling"
            axis.set_title(f"{convolutions} convs 3x3, dilation {dilation},\n{between}:\n"
                           f"{int(grid.sum())} of {grid.size} px reached", fontsize=9)
    figure.tight_layout()
    return figure


@styled
def plot_effective_fields(image: np.ndarray, fields: dict[str, np.ndarray], unit: tuple[int, int],
                          field: int, radius: int = 12) -> Figure:
    """Per network: the input, the |gradient| over it and a crop around the unit at pixel scale,
    where the gridding of dilated kernels shows. The gradient is divided by its maximum and drawn
    on one linear scale with one colour bar; the dashed square around it is the unit's theoretical
    field, ``field`` pixels wide, centred on the unit (the middle of its 8 x 8 pixels)."""
    figure, axes = plt.subplots(len(fields), 3, figsize=(11, 3.8 * len(fields)), squeeze=False,
                                width_ratios=[1, 1, 1.3], layout="constrained")
    row, col = unit_centre(unit)
    middle = [SegDecNet.output_stride * i + (SegDecNet.output_stride - 1) / 2 for i in unit]
    for (left, centre, right), (title, gradient) in zip(axes, fields.items(), strict=True):
        left.imshow(image, cmap=IMAGE)
        left.set_title("input, the unit (+)")
        shown = centre.imshow(gradient / gradient.max(), cmap=MAP, vmin=0, vmax=1)
        centre.set_title(f"{title}: |gradient|")
        for axis in (left, centre):
            axis.plot(col, row, "c+", markersize=12)
        centre.add_patch(plt.Rectangle((middle[1] - field / 2, middle[0] - field / 2), field,
                                       field, fill=False, edgecolor="cyan", linestyle="--"))
        crop = gradient[max(row - radius, 0):row + radius + 1,
                        max(col - radius, 0):col + radius + 1]
        right.imshow(crop / gradient.max(), cmap=MAP, vmin=0, vmax=1,
                     interpolation="nearest")
        right.set_title(f"{2 * radius + 1} px around it; gridding ratio "
                        f"{gridding_ratio(gradient, (row, col), radius):.2f}")
        for axis in (left, centre, right):
            axis.set_axis_off()
    colourbar(figure, shown, axes[:, 1:],
              f"|gradient| / its maximum (dashed: the theoretical {field} px field)", shrink=0.6)
    return figure


@styled
def plot_gates_side_by_side(images: dict[str, np.ndarray], gates: dict[str, np.ndarray]) -> Figure:
    """The input and its SE weights (module x channel) for each image, and their difference."""
    names = list(images)
    figure, axes = plt.subplots(2, len(names) + 1, figsize=(5 * (len(names) + 1), 6),
                                height_ratios=[1, 2])
    for column, name in enumerate(names):
        axes[0, column].imshow(images[name], cmap=IMAGE)
        axes[0, column].set_title(name)
        shown = axes[1, column].imshow(gates[name], aspect="auto", cmap=WEIGHTS, vmin=0, vmax=1)
        axes[1, column].set(xlabel="channel", ylabel="SE module (convs 3-9)")
    colourbar(figure, shown, axes[1, len(names) - 1], shrink=1.0)
    difference = gates[names[0]] - gates[names[1]]
    limit = max(float(np.abs(difference).max()), 1e-6)
    shown = axes[1, -1].imshow(difference, aspect="auto", cmap=DIFFERENCE, vmin=-limit,
                               vmax=limit)
    axes[1, -1].set(xlabel="channel", title=f"{names[0]} minus {names[1]}")
    colourbar(figure, shown, axes[1, -1], shrink=1.0)
    axes[0, -1].set_axis_off()
    for axis in axes[0, :-1]:
        axis.set_axis_off()
    figure.tight_layout()
    return figure


@styled
def plot_channels(image: np.ndarray, features: np.ndarray, changes: pd.DataFrame) -> Figure:
    """The feature maps (after the SE weights) of the channels in ``changes``, over the input,
    on one scale (one colour bar), each titled with its gate on the defective image and the
    gate's change from the clean image, to three decimals: the changes are small."""
    figure, axes = plt.subplots(1, len(changes) + 1, figsize=(2.2 * (len(changes) + 1) + 0.8, 5),
                                layout="constrained")
    axes[0].imshow(image, cmap=IMAGE, aspect="auto")
    axes[0].set_title("input")
    top = max(float(features[row.channel].max()) for row in changes.itertuples())
    for axis, row in zip(axes[1:], changes.itertuples(), strict=True):
        shown = axis.imshow(features[row.channel], cmap=MAP, vmin=0, vmax=top, aspect="auto")
        axis.set_title(f"ch {row.channel}\ngate {row.gate_defect:.3f}\n({row.change:+.3f} "
                       "vs clean)", fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    colourbar(figure, shown, axes[1:], "feature value after the SE gate")
    return figure


@styled
def plot_maps(image: np.ndarray, mask: np.ndarray, maps: dict[str, np.ndarray]) -> Figure:
    """The input with its true defect outlined, then each segmentation map (1/8, upsampled
    bilinearly to the input as the paper shows it), all on one scale from 0 to the largest
    probability shown, with one colour bar."""
    figure, axes = plt.subplots(1, len(maps) + 1, figsize=(2.6 * (len(maps) + 1) + 0.8, 5),
                                layout="constrained")
    axes[0].imshow(image, cmap=IMAGE, aspect="auto")
    if mask.any():
        axes[0].contour(mask, levels=[0.5], colors=TRUE_DEFECT, linewidths=0.8)
    axes[0].set_title("input, true defect")
    top = max(float(seg.max()) for seg in maps.values())
    for axis, (title, seg) in zip(axes[1:], maps.items(), strict=True):
        shown = axis.imshow(seg, cmap=MAP, vmin=0, vmax=top, aspect="auto",
                            interpolation="bilinear", extent=(0, image.shape[1], image.shape[0], 0))
        axis.set_title(f"{title}\nmax {seg.max():.2f}", fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    colourbar(figure, shown, axes[1:], "defect probability")
    return figure


def same_decay(settings) -> list[list[tuple[int, float]]]:
    """Table 4's (epochs, beta) settings grouped by the decay curve they draw over the fraction
    of training: the decay depends on epochs x beta alone, so 90 x 0.01 and 60 x 0.015 draw
    one curve (drawn twice, one would hide the other)."""
    groups: dict[float, list[tuple[int, float]]] = {}
    for epochs, beta in settings:
        groups.setdefault(round(epochs * beta, 9), []).append((epochs, beta))
    return list(groups.values())


@styled
def plot_balance_schedules(schedules: pd.DataFrame, delta: float = 0.1) -> Figure:
    """The two loss weights over training, each as the learning-rate multiplier it is.

    With gradient adjustment on, the decision loss does not reach the segmentation subnetwork,
    so the two losses train disjoint weights: the segmentation subnetwork learns at lr x w_seg,
    the decision subnetwork at lr x delta x w_dec. The decay schedules of Table 4's four
    (epochs, beta) settings are drawn over the fraction of training, beside this schedule's
    decay, Božič's linear balance and constant weights (both 1: not w_dec = 1 - w_seg).
    """
    epochs = int(schedules["epoch"].max()) + 1
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    multipliers = (("w_seg", 1.0, "segmentation subnetwork: lr x w_seg"),
                   ("w_dec", delta, f"decision subnetwork: lr x δ x w_dec (δ = {delta:g})"))
    for axis, (weight, scale, title) in zip(axes, multipliers, strict=True):
        for settings, style in zip(same_decay(SEVERSTAL_SCHEDULE.values()),
                                   (":", "--", "-.", (0, (1, 3))), strict=False):
            table4_epochs, table4_beta = settings[0]
            curve = balance_schedules(table4_epochs, table4_beta)
            curve = curve[curve["balance"] == "decay"]
            named = " and ".join(f"{e} epochs, β {b:g}" for e, b in settings)
            axis.plot(curve["epoch"] / table4_epochs, scale * curve[weight], color="0.55",
                      linestyle=style, label=f"decay, Table 4: {named}"
                      + (" (one curve)" if len(settings) > 1 else ""))
        names = {"decay": "decay (W), this run", "linear": "linear (Božič, FS/MS)",
                 "constant": "constant: both 1 (Božič, WS)"}
        for balance, rows in schedules.groupby("balance", sort=False):
            axis.plot(rows["epoch"] / epochs, scale * rows[weight], linewidth=2,
                      label=names[balance])
        axis.set(xlabel=f"fraction of training (this run: {epochs} epochs)",
                 ylabel="learning-rate multiplier", title=title, ylim=(0, 1.05 * scale))
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize="x-small", loc="upper left")
    figure.tight_layout()
    return figure


@styled
def plot_loss_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Each run's segmentation and decision losses per epoch (``history.csv``) and its w_seg;
    a dotted line marks the epoch where its decision loss falls below half of ln 2."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for (name, history), colour in zip(histories.items(), LINE_COLOURS, strict=False):
        axes[0].plot(history["epoch"], history["loss_seg"], color=colour, label=name)
        axes[1].plot(history["epoch"], history["loss_dec"], color=colour, label=name)
        axes[2].plot(history["epoch"], history["w_seg"], color=colour, label=name)
        learned = decision_learning_epoch(history)
        if learned is not None:
            for axis in axes[:2]:
                axis.axvline(learned, color=colour, linestyle=":")
    axes[0].set(title="segmentation loss", xlabel="epoch", yscale="log")
    axes[1].axhline(math.log(2), color="grey", linewidth=0.8)
    axes[1].set(title="decision loss", xlabel="epoch")
    axes[2].set(title="w_seg (w_dec = 1 - w_seg)", xlabel="epoch", ylim=(0, 1.05))
    handles, _ = axes[0].get_legend_handles_labels()
    handles += [Line2D([], [], color="grey", linewidth=0.8, label="ln 2: a decision by chance"),
                Line2D([], [], color="black", linestyle=":",
                       label="the epoch the decision loss falls below ln 2 / 2")]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                  frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return figure
