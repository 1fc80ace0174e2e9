"""Measurements behind the teaching notebook ``00_concepts``: receptive field, SE gates, schedules.

The receptive field is measured, not computed from layer sizes: the gradient of one unit of the
segmentation map with respect to the input is non-zero exactly on the pixels that unit sees.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from segdec.data.images import load_image
from segdec.data.severstal import read_severstal
from segdec.data.synthetic import synthesize
from segdec.loss import loss_weights
from segdec.model import FeatureNorm, SegDecNet, SqueezeExcite


def receptive_field(model: SegDecNet, size: int = 384) -> tuple[np.ndarray, tuple[int, ...]]:
    """|d centre unit / d input| on a ``size`` x ``size`` input and its (top, bottom, left, right).

    Per-image normalisation couples every pixel with every other through its statistics, so a
    copy of the model with the normalisation replaced by identity is measured.
    """
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, FeatureNorm):
            module.norm = nn.Identity()
    x = torch.rand(1, model.config.in_channels, size, size, requires_grad=True)  # zeros stop ReLUs
    seg = model.forward_features(x)[1]
    seg[0, 0, seg.shape[2] // 2, seg.shape[3] // 2].backward()
    gradient = x.grad[0].abs().sum(0).numpy()
    rows, cols = np.nonzero(gradient)
    return gradient, (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()))


def plot_receptive_fields(fields: dict[str, tuple[np.ndarray, tuple[int, ...]]]) -> Figure:
    """One panel per network: where the centre unit looks (log scale) and its extent."""
    figure, axes = plt.subplots(1, len(fields), figsize=(5 * len(fields), 5), squeeze=False)
    for axis, (title, (gradient, (top, bottom, left, right))) in zip(axes[0], fields.items(),
                                                                      strict=True):
        axis.imshow(np.log10(gradient + 1e-12), cmap="magma", vmin=np.log10(gradient.max()) - 6)
        axis.add_patch(plt.Rectangle((left, top), right - left, bottom - top, fill=False,
                                     edgecolor="cyan"))
        axis.set_title(f"{title}: {bottom - top + 1} x {right - left + 1} pixels")
        axis.set_axis_off()
    figure.tight_layout()
    return figure


@torch.inference_mode()
def se_gates(model: SegDecNet, image: torch.Tensor) -> np.ndarray:
    """The channel weights of every SE module for one image, shape [modules, channels]."""
    gates: list[np.ndarray] = []
    hooks = [m.register_forward_hook(lambda m, inputs, _: gates.append(
        m.gate(inputs[0])[0, :, 0, 0].numpy())) for m in model.modules()
        if isinstance(m, SqueezeExcite)]
    try:
        model.eval()(image)
    finally:
        for hook in hooks:
            hook.remove()
    if not gates:
        raise ValueError("the model has no SE modules (build it with attention=True)")
    return np.stack(gates)


def plot_se_gates(image: np.ndarray, gates: np.ndarray) -> Figure:
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), height_ratios=[1, 2])
    top.imshow(image, cmap="gray")
    top.set_title("input")
    top.set_axis_off()
    shown = bottom.imshow(gates, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    bottom.set(xlabel="channel", ylabel="SE module (convs 3-9)",
               title="squeeze-and-excitation channel weights")
    figure.colorbar(shown, ax=bottom)
    figure.tight_layout()
    return figure


def balance_schedules(epochs: int, beta: float) -> pd.DataFrame:
    """``w_seg`` and ``w_dec`` of every balance schedule per epoch, in long form."""
    rows = [
        {"epoch": epoch, "balance": balance, "w_seg": w_seg, "w_dec": w_dec}
        for balance in ("decay", "linear", "constant")
        for epoch in range(epochs)
        for w_seg, w_dec in [loss_weights(balance, epoch, epochs, beta)]
    ]
    return pd.DataFrame(rows)


def plot_balance_schedules(schedules: pd.DataFrame) -> Figure:
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for axis, weight in zip(axes, ("w_seg", "w_dec"), strict=True):
        for balance, rows in schedules.groupby("balance"):
            axis.plot(rows["epoch"], rows[weight], label=balance)
        axis.set(xlabel="epoch", title=weight)
    axes[0].legend()
    figure.tight_layout()
    return figure


def example_defect(size: tuple[int, int] = (320, 64), seed: int = 0) -> tuple[np.ndarray, ...]:
    """(image uint8 [H, W], mask, network input [1, 1, H, W]) of one synthetic defective image."""
    with tempfile.TemporaryDirectory() as folder:
        root = synthesize(Path(folder) / "data", n_pos=1, n_neg=0, seed=seed, size=size)
        sample = read_severstal(root)[0]
        image = load_image(sample.image)
        mask = sample.mask(image.shape)
    return image, mask, torch.from_numpy(image).float().div(255.0)[None, None]


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
