"""The teaching notebook ``00_concepts``'s figures that need no trained network (kernel taps,
the pixels stacked dilated kernels reach, layer table, balance schedules), its loss curves, and its
sliders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.signal import convolve2d
from torch import nn

from segdec.loss import loss_weights
from segdec.model import SegDecNet
from segdec.recipes import SEVERSTAL_SCHEDULE


def balance_schedules(epochs: int, beta: float) -> pd.DataFrame:
    """``w_seg`` and ``w_dec`` of every balance schedule per epoch, in long form."""
    rows = [
        {"epoch": epoch, "balance": balance, "w_seg": w_seg, "w_dec": w_dec}
        for balance in ("decay", "linear", "constant")
        for epoch in range(epochs)
        for w_seg, w_dec in [loss_weights(balance, epoch, epochs, beta)]
    ]
    return pd.DataFrame(rows)


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
        for (table4_epochs, table4_beta), style in zip(SEVERSTAL_SCHEDULE.values(),
                                                       (":", "-.", "--", (0, (1, 3))),
                                                       strict=True):
            curve = balance_schedules(table4_epochs, table4_beta)
            curve = curve[curve["balance"] == "decay"]
            axis.plot(curve["epoch"] / table4_epochs, scale * curve[weight], color="0.55",
                      linestyle=style, label=f"decay, Table 4: {table4_epochs} epochs, "
                      f"β {table4_beta:g}")
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


def kernel_taps(effective: int = 5, dilation: int = 2) -> dict[str, np.ndarray]:
    """Where a dense ``effective`` x ``effective`` kernel and the 3x3 kernel with ``dilation``
    (the same effective size) read their input: 1 on a tap, 0 elsewhere."""
    dense = np.ones((effective, effective), dtype=np.uint8)
    atrous = np.zeros_like(dense)
    atrous[::dilation, ::dilation] = 1
    return {f"dense {effective}x{effective}": dense,
            f"3x3, dilation {dilation}": atrous}


def plot_kernel_taps(taps: dict[str, np.ndarray]) -> Figure:
    """The taps of each kernel on the grid of input pixels they span."""
    figure, axes = plt.subplots(1, len(taps), figsize=(3 * len(taps), 3), squeeze=False)
    for axis, (title, grid) in zip(axes[0], taps.items(), strict=True):
        axis.imshow(grid, cmap="Blues", vmin=0, vmax=1.3)
        axis.set_xticks(np.arange(-0.5, grid.shape[1]), minor=True)
        axis.set_yticks(np.arange(-0.5, grid.shape[0]), minor=True)
        axis.grid(which="minor", color="grey", linewidth=0.5)
        axis.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        axis.set_title(f"{title}: {int(grid.sum())} weights")
    figure.tight_layout()
    return figure


def reachable_pixels(convolutions: int, pooled: bool, dilation: int = 2,
                     size: int = 3) -> tuple[np.ndarray, int]:
    """Which input pixels one output unit reads through ``convolutions`` stacked ``size`` x
    ``size`` kernels with ``dilation``, with a 2x2 max-pool (stride 2) between each two of them or
    with none: 1 where some path of taps reaches the pixel, over the square the taps span.

    Each layer adds one of its offsets, so the reachable set is the support of the layers' tap
    indicators convolved together: a kernel after p pools has its taps 2^p x ``dilation`` input
    pixels apart, and a pool adds 0 or the stride so far. Returns the grid and the index, in both
    axes, of the pixel under the unit (the offset 0).
    """
    grid, origin, stride = np.ones((1, 1), dtype=np.int64), 0, 1
    for layer in range(convolutions):
        if layer and pooled:
            pool = np.zeros(stride + 1, dtype=np.int64)
            pool[[0, -1]] = 1
            grid, stride = convolve2d(grid, np.outer(pool, pool)), 2 * stride
        step = stride * dilation
        taps = np.zeros(step * (size - 1) + 1, dtype=np.int64)
        taps[::step] = 1
        grid, origin = convolve2d(grid, np.outer(taps, taps)), origin + step * (size - 1) // 2
    return (grid > 0).astype(np.uint8), origin


def plot_reachable_pixels(dilation: int = 2) -> Figure:
    """The pixels one unit reaches through 2 and 3 stacked 3x3 kernels with ``dilation``, without
    and with the network's 2x2 max-pools between them; red: the pixel under the unit."""
    cases = [(n, pooled) for pooled in (False, True) for n in (2, 3)]
    figure, axes = plt.subplots(1, len(cases), figsize=(3.4 * len(cases), 3.9))
    for axis, (convolutions, pooled) in zip(axes, cases, strict=True):
        grid, origin = reachable_pixels(convolutions, pooled, dilation)
        axis.imshow(grid, cmap="Blues", vmin=0, vmax=1.3, interpolation="nearest")
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


def layer_table(model: SegDecNet, height: int = 512, width: int = 512) -> pd.DataFrame:
    """Every convolution of the segmentation subnetwork: its kernel, dilation and effective size,
    the receptive field it has grown to (in input pixels, analytically: each layer adds
    (effective - 1) x the stride so far, each 2x2 max-pool adds 1 x it), its parameters, and
    its FLOPs (2 per multiply-add) on a ``height`` x ``width`` input."""
    rows, field, stride, index = [], 1, 1, 0
    for module in model.segmentation.modules():
        if isinstance(module, nn.MaxPool2d):
            field += stride
            stride *= 2
        elif isinstance(module, nn.Conv2d) and module.kernel_size[0] > 1:
            index += 1
            size, dilation = module.kernel_size[0], module.dilation[0]
            effective = size + (size - 1) * (dilation - 1)
            field += (effective - 1) * stride
            out_pixels = (height // stride) * (width // stride)
            rows.append({"conv": index, "in": module.in_channels, "out": module.out_channels,
                         "kernel": f"{size}x{size}", "dilation": dilation,
                         "effective": f"{effective}x{effective}", "receptive_field": field,
                         "parameters": module.weight.numel(),
                         "gflop": 2 * module.weight.numel() * out_pixels / 1e9})
    return pd.DataFrame(rows)


def decision_learning_epoch(history: pd.DataFrame) -> int | None:
    """The first epoch whose mean decision loss is below half of ln 2 (chance), or None."""
    below = history.loc[history["loss_dec"] < math.log(2) / 2, "epoch"]
    return int(below.iloc[0]) if len(below) else None


def plot_loss_curves(histories: dict[str, pd.DataFrame]) -> Figure:
    """Each run's segmentation and decision losses per epoch (``history.csv``) and its w_seg;
    a dotted line marks the epoch where its decision loss falls below half of ln 2."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for (name, history), colour in zip(histories.items(), plt.cm.tab10.colors, strict=False):
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


def explore(plot: Callable[..., Figure], **sliders: tuple[float, float, float, float]) -> Figure:
    """Show ``plot(**values)`` at each slider's start as an ordinary figure output (what papermill
    and a static render keep), then, where ipywidgets is installed, sliders that redraw that
    output in a live notebook. A slider is ``name=(start, minimum, maximum, step)``; all-integer
    values give an integer slider. Returns the first figure (for saving)."""
    from IPython.display import display

    values = {name: spec[0] for name, spec in sliders.items()}
    figure = plot(**values)
    handle = display(figure, display_id=True)
    plt.close(figure)
    try:
        import ipywidgets
    except ImportError:
        return figure

    def redraw(_change: object) -> None:
        drawn = plot(**{name: control.value for name, control in controls.items()})
        handle.update(drawn)
        plt.close(drawn)

    controls = {}
    for name, (start, low, high, step) in sliders.items():
        whole = all(float(v).is_integer() for v in (start, low, high, step))
        kind = ipywidgets.IntSlider if whole else ipywidgets.FloatSlider
        controls[name] = kind(value=start, min=low, max=high, step=step, description=name,
                              continuous_update=False)
        controls[name].observe(redraw, names="value")
    display(ipywidgets.HBox(list(controls.values())))
    return figure


def save_figures(figures: dict[str, Figure], folder: str | Path | None) -> list[Path]:
    """Write each figure as ``folder/NAME.png`` (nothing when ``folder`` is None)."""
    if folder is None:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        paths.append(folder / f"{name}.png")
        figure.savefig(paths[-1], dpi=110, bbox_inches="tight")
    return paths
