"""What a trained network does, measured on an image: receptive fields, SE gates, decision inputs.

Everything here reads a network and changes nothing in it: where a measurement needs a changed
network (statistics held constant, attention switched off), it works on a copy.
"""

from __future__ import annotations

import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from segdec.evaluate import image_metrics, pixel_metrics
from segdec.model import DECISION_INPUTS, FeatureNorm, ReleasedNorm, SegDecNet, SqueezeExcite


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """An fp32 array of a tensor on any device and in any dtype (``.numpy()`` alone fails on a
    GPU tensor and on bf16 or fp16 ones)."""
    return tensor.detach().float().cpu().numpy()


class _HeldStatistics(nn.Module):
    """A per-image normalisation whose mean and spread are constants in the backward pass, so
    that the input gradient of one output unit stays on the pixels that unit sees."""

    def __init__(self, norm: nn.GroupNorm | ReleasedNorm) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        mean = x.mean(dim=(2, 3), keepdim=True)
        if isinstance(norm, ReleasedNorm):
            spread = (x.std(dim=(2, 3), keepdim=True) + norm.eps).sqrt()
        else:
            spread = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + norm.eps).sqrt()
        y = (x - mean.detach()) / spread.detach() * norm.weight.view(1, -1, 1, 1)
        return y if norm.bias is None else y + norm.bias.view(1, -1, 1, 1)


def held_statistics(model: SegDecNet) -> SegDecNet:
    """An evaluation copy of ``model`` whose per-image normalisations hold their statistics."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, FeatureNorm) and isinstance(module.norm, nn.GroupNorm | ReleasedNorm):
            module.norm = _HeldStatistics(module.norm)
    return model


def input_gradient(model: SegDecNet, image: torch.Tensor,
                   unit: tuple[int, int] | None = None) -> np.ndarray:
    """|d seg_logit[unit] / d image| summed over channels, [H, W]: the effective receptive field
    of one unit of the 1/8 segmentation map (Luo et al. 2016), by default the centre one."""
    model = held_statistics(model)
    x = image.detach().clone().requires_grad_(True)
    seg = model.forward_features(x)[1]
    row, col = unit if unit is not None else (seg.shape[2] // 2, seg.shape[3] // 2)
    seg[0, 0, row, col].backward()
    return _numpy(x.grad[0].abs().sum(0))


def field_extent(gradient: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels with a non-zero gradient."""
    rows, cols = np.nonzero(gradient)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def gridding_ratio(gradient: np.ndarray, centre: tuple[int, int], radius: int = 12) -> float:
    """Mean |difference| of the gradient between neighbouring pixels over that between pixels two
    apart, in a window around ``centre``. A smooth field gives less than 1; a field that
    alternates pixel by pixel, as stacked dilation-2 kernels leave it, gives more."""
    top, left = max(centre[0] - radius, 0), max(centre[1] - radius, 0)
    window = gradient[top:centre[0] + radius + 1, left:centre[1] + radius + 1]
    window = window / window.max()

    def steps(k: int) -> float:
        return float(np.abs(window[k:] - window[:-k]).mean()
                     + np.abs(window[:, k:] - window[:, :-k]).mean())

    return steps(1) / steps(2) if steps(2) else math.inf


def field_size(gradient: np.ndarray, centre: tuple[int, int], share: float = 0.9) -> int:
    """The side of the smallest square around ``centre`` that holds ``share`` of the gradient:
    how far the unit effectively looks, against its theoretical receptive field."""
    total, row, col = gradient.sum(), *centre
    for radius in range(max(gradient.shape)):
        inside = gradient[max(row - radius, 0):row + radius + 1,
                          max(col - radius, 0):col + radius + 1].sum()
        if inside >= share * total:
            return 2 * radius + 1
    return 2 * max(gradient.shape) + 1


def plot_effective_fields(image: np.ndarray, fields: dict[str, np.ndarray],
                          centre: tuple[int, int], radius: int = 12) -> Figure:
    """Per network: the input, the gradient map over it (log scale) and a crop around the unit
    at pixel scale, where the gridding of dilated kernels shows."""
    figure, axes = plt.subplots(len(fields), 3, figsize=(11, 3.6 * len(fields)), squeeze=False,
                                width_ratios=[1, 1, 1.3])
    row, col = centre
    for (left, middle, right), (title, gradient) in zip(axes, fields.items(), strict=True):
        left.imshow(image, cmap="gray")
        left.plot(col, row, "c+", markersize=12)
        left.set_title("input, the unit's centre (+)")
        log = np.log10(gradient + gradient.max() * 1e-6)
        middle.imshow(log, cmap="magma")
        middle.set_title(f"{title}: |gradient| (log)")
        crop = gradient[max(row - radius, 0):row + radius + 1,
                        max(col - radius, 0):col + radius + 1]
        right.imshow(crop / crop.max(), cmap="magma", interpolation="nearest")
        right.set_title(f"{2 * radius + 1} px around it; gridding ratio "
                        f"{gridding_ratio(gradient, centre, radius):.2f}")
        for axis in (left, middle, right):
            axis.set_axis_off()
    figure.tight_layout()
    return figure


def _squeeze_excite(model: nn.Module) -> list[SqueezeExcite]:
    modules = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    if not modules:
        raise ValueError("the model has no SE modules (build it with attention=True)")
    return modules


@torch.inference_mode()
def se_gates(model: SegDecNet, image: torch.Tensor) -> np.ndarray:
    """The channel weights of every SE module for one image, shape [modules, channels]."""
    gates: list[np.ndarray] = []
    hooks = [m.register_forward_hook(lambda m, inputs, _: gates.append(
        _numpy(m.gate(inputs[0])[0, :, 0, 0]))) for m in _squeeze_excite(model)]
    try:
        model.eval()(image)
    finally:
        for hook in hooks:
            hook.remove()
    return np.stack(gates)


@torch.inference_mode()
def attended_features(model: SegDecNet, image: torch.Tensor, module: int = -1) -> np.ndarray:
    """The output of one SE module (the reweighted feature maps) for one image, [C, h, w]."""
    kept: list[np.ndarray] = []
    hook = _squeeze_excite(model)[module].register_forward_hook(
        lambda _m, _i, output: kept.append(_numpy(output[0])))
    try:
        model.eval()(image)
    finally:
        hook.remove()
    return kept[0]


def gate_changes(defect: np.ndarray, clean: np.ndarray, module: int = -1,
                 k: int = 3) -> pd.DataFrame:
    """The ``k`` channels of one SE module that the defective image weights most above and most
    below the clean one: channel, both gates and their difference."""
    table = pd.DataFrame({"channel": np.arange(defect.shape[1]), "gate_defect": defect[module],
                          "gate_clean": clean[module]})
    table["change"] = table["gate_defect"] - table["gate_clean"]
    table = table.sort_values("change", ascending=False)
    return pd.concat([table.head(k), table.tail(k)]).reset_index(drop=True)


def plot_gates_side_by_side(images: dict[str, np.ndarray], gates: dict[str, np.ndarray]) -> Figure:
    """The input and its SE weights (module x channel) for each image, and their difference."""
    names = list(images)
    figure, axes = plt.subplots(2, len(names) + 1, figsize=(5 * (len(names) + 1), 6),
                                height_ratios=[1, 2])
    for column, name in enumerate(names):
        axes[0, column].imshow(images[name], cmap="gray")
        axes[0, column].set_title(name)
        shown = axes[1, column].imshow(gates[name], aspect="auto", cmap="viridis", vmin=0, vmax=1)
        axes[1, column].set(xlabel="channel", ylabel="SE module (convs 3-9)")
    figure.colorbar(shown, ax=axes[1, len(names) - 1])
    difference = gates[names[0]] - gates[names[1]]
    limit = max(float(np.abs(difference).max()), 1e-6)
    shown = axes[1, -1].imshow(difference, aspect="auto", cmap="coolwarm", vmin=-limit,
                               vmax=limit)
    axes[1, -1].set(xlabel="channel", title=f"{names[0]} minus {names[1]}")
    figure.colorbar(shown, ax=axes[1, -1])
    axes[0, -1].set_axis_off()
    for axis in axes[0, :-1]:
        axis.set_axis_off()
    figure.tight_layout()
    return figure


def plot_channels(image: np.ndarray, features: np.ndarray, changes: pd.DataFrame) -> Figure:
    """The feature maps (after the SE weights) of the channels in ``changes``, over the input."""
    figure, axes = plt.subplots(1, len(changes) + 1, figsize=(2.2 * (len(changes) + 1), 5))
    axes[0].imshow(image, cmap="gray", aspect="auto")
    axes[0].set_title("input")
    for axis, row in zip(axes[1:], changes.itertuples(), strict=True):
        axis.imshow(features[row.channel], cmap="magma", aspect="auto")
        axis.set_title(f"ch {row.channel}\ngate {row.gate_defect:.2f} ({row.change:+.2f})",
                       fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    figure.tight_layout()
    return figure


def without_attention(model: SegDecNet) -> SegDecNet:
    """An evaluation copy of ``model`` whose SE modules pass features through (every gate 1)."""
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, SqueezeExcite):
                setattr(parent, name, nn.Identity())
    return model


def plot_maps(image: np.ndarray, mask: np.ndarray, maps: dict[str, np.ndarray]) -> Figure:
    """The input with its true defect outlined, then each segmentation map (1/8, upsampled
    bilinearly to the input as the paper shows it)."""
    figure, axes = plt.subplots(1, len(maps) + 1, figsize=(2.6 * (len(maps) + 1), 5))
    axes[0].imshow(image, cmap="gray", aspect="auto")
    if mask.any():
        axes[0].contour(mask, levels=[0.5], colors="red", linewidths=0.8)
    axes[0].set_title("input, true defect")
    for axis, (title, seg) in zip(axes[1:], maps.items(), strict=True):
        axis.imshow(seg, cmap="jet", vmin=0, vmax=1, aspect="auto", interpolation="bilinear",
                    extent=(0, image.shape[1], image.shape[0], 0))
        axis.set_title(f"{title}\nmax {seg.max():.2f}", fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    figure.tight_layout()
    return figure


@torch.inference_mode()
def predict(model: SegDecNet, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(decision probabilities [N], segmentation probabilities [N, H/8, W/8])."""
    decision, seg = model.eval()(images)
    return _numpy(torch.sigmoid(decision)), _numpy(torch.sigmoid(seg[:, 0]))


def attention_effect(model: SegDecNet, images: torch.Tensor, labels: np.ndarray,
                     masks: np.ndarray) -> pd.DataFrame:
    """Image AP, and pixel AP on the defective images, with the SE gates as trained and with
    them switched off (every gate 1) at inference."""
    rows = {}
    for name, network in (("SE on", model), ("SE off (every gate 1)", without_attention(model))):
        scores, maps = predict(network, images)
        positive = np.flatnonzero(labels == 1)
        pixel = pixel_metrics([maps[i] for i in positive], [masks[i] for i in positive])
        rows[name] = {"image_ap": image_metrics(labels, scores)["ap"],
                      "pixel_ap_1_8": pixel["pixel_ap_1_8"], "pixel_ap": pixel["pixel_ap"]}
    return pd.DataFrame(rows).T.round(3)


@torch.inference_mode()
def decision_ablation(model: SegDecNet, images: torch.Tensor, names: list[str]) -> pd.DataFrame:
    """The decision probability of each image with all classifier inputs, and with each group of
    ``DECISION_INPUTS`` set to zero in turn (one row per image)."""
    model = model.eval()
    inputs = model.decision_inputs(*model.forward_features(images))
    columns = {"all inputs": _numpy(torch.sigmoid(model.classifier(inputs)[:, 0]))}
    for group, where in DECISION_INPUTS.items():
        ablated = inputs.clone()
        ablated[:, where] = 0
        columns[f"without {group}"] = _numpy(torch.sigmoid(model.classifier(ablated)[:, 0]))
    return pd.DataFrame(columns, index=pd.Index(names, name="image"))
