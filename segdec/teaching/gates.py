"""What a trained network does, measured on an image: receptive fields, SE gates, decision inputs.

Everything here reads a network and changes nothing in it: where a measurement needs a changed
network (statistics held constant, SE gates held fixed), it works on a copy.
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


def unit_centre(unit: tuple[int, int]) -> tuple[int, int]:
    """The input pixel at the centre of a unit of the 1/8 segmentation map, which covers 8 x 8
    pixels from 8 x its index (the lower right of the middle four)."""
    stride = SegDecNet.output_stride
    return stride * unit[0] + stride // 2, stride * unit[1] + stride // 2


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
        left.imshow(image, cmap="gray")
        left.set_title("input, the unit (+)")
        shown = centre.imshow(gradient / gradient.max(), cmap="magma", vmin=0, vmax=1)
        centre.set_title(f"{title}: |gradient|")
        for axis in (left, centre):
            axis.plot(col, row, "c+", markersize=12)
        centre.add_patch(plt.Rectangle((middle[1] - field / 2, middle[0] - field / 2), field,
                                       field, fill=False, edgecolor="cyan", linestyle="--"))
        crop = gradient[max(row - radius, 0):row + radius + 1,
                        max(col - radius, 0):col + radius + 1]
        right.imshow(crop / gradient.max(), cmap="magma", vmin=0, vmax=1,
                     interpolation="nearest")
        right.set_title(f"{2 * radius + 1} px around it; gridding ratio "
                        f"{gridding_ratio(gradient, (row, col), radius):.2f}")
        for axis in (left, centre, right):
            axis.set_axis_off()
    figure.colorbar(shown, ax=axes[:, 1:], shrink=0.6,
                    label=f"|gradient| / its maximum (dashed: the theoretical {field} px field)")
    return figure


def _squeeze_excite(model: nn.Module) -> list[SqueezeExcite]:
    modules = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    if not modules:
        raise ValueError("the model has no SE modules (build it with attention=True)")
    return modules


@torch.inference_mode()
def squeeze_statistics(model: SegDecNet, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """What every SE module squeezes its input to (the channel means) and the channel weights it
    computes from them, for each image: two arrays [images, modules, channels]."""
    means: list[torch.Tensor] = []
    gates: list[torch.Tensor] = []

    def keep(module: SqueezeExcite, inputs: tuple[torch.Tensor], _output: torch.Tensor) -> None:
        means.append(inputs[0].mean(dim=(2, 3)))
        gates.append(module.gate(inputs[0])[:, :, 0, 0])

    hooks = [m.register_forward_hook(keep) for m in _squeeze_excite(model)]
    try:
        model.eval()(images)
    finally:
        for hook in hooks:
            hook.remove()
    return _numpy(torch.stack(means, 1)), _numpy(torch.stack(gates, 1))


def se_gates(model: SegDecNet, image: torch.Tensor) -> np.ndarray:
    """The channel weights of every SE module for one image, shape [modules, channels]."""
    return squeeze_statistics(model, image)[1][0]


def squeeze_spread(means: np.ndarray) -> np.ndarray:
    """Per SE module, how much the squeezed channel means vary between images: the median over
    the channels of their standard deviation over their mean across the images (channels that
    are zero on every image left out). ``means`` is [images, modules, channels]."""
    average = means.mean(0)
    spread = np.divide(means.std(0), average, out=np.full_like(average, np.nan),
                       where=average > 0)
    return np.nanmedian(spread, axis=1)


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


class _FixedGate(nn.Module):
    """In place of an SE module: the same channel weights on every image."""

    def __init__(self, gate: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("gate", gate.reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate


def _fixed_gates(model: SegDecNet, gates: list[torch.Tensor]) -> SegDecNet:
    """An evaluation copy of ``model`` whose SE modules, in order, weight by ``gates``."""
    model, gates = copy.deepcopy(model).eval(), iter(gates)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, SqueezeExcite):
                setattr(parent, name, _FixedGate(next(gates)))
    return model


def without_attention(model: SegDecNet) -> SegDecNet:
    """An evaluation copy of ``model`` whose SE modules pass features through (every gate 1)."""
    return _fixed_gates(model, [torch.ones(m.fc2.out_channels)
                                for m in _squeeze_excite(model)])


def gates_at_mean(model: SegDecNet, images: torch.Tensor) -> SegDecNet:
    """An evaluation copy of ``model`` whose every SE gate is held at its mean over ``images``:
    the learned average weighting of the channels, without adapting it to each image."""
    return _fixed_gates(model, list(torch.from_numpy(squeeze_statistics(model, images)[1].mean(0))))


def plot_maps(image: np.ndarray, mask: np.ndarray, maps: dict[str, np.ndarray]) -> Figure:
    """The input with its true defect outlined, then each segmentation map (1/8, upsampled
    bilinearly to the input as the paper shows it), all on one scale from 0 to the largest
    probability shown, with one colour bar."""
    figure, axes = plt.subplots(1, len(maps) + 1, figsize=(2.6 * (len(maps) + 1) + 0.8, 5),
                                layout="constrained")
    axes[0].imshow(image, cmap="gray", aspect="auto")
    if mask.any():
        axes[0].contour(mask, levels=[0.5], colors="red", linewidths=0.8)
    axes[0].set_title("input, true defect")
    top = max(float(seg.max()) for seg in maps.values())
    for axis, (title, seg) in zip(axes[1:], maps.items(), strict=True):
        shown = axis.imshow(seg, cmap="magma", vmin=0, vmax=top, aspect="auto",
                            interpolation="bilinear", extent=(0, image.shape[1], image.shape[0], 0))
        axis.set_title(f"{title}\nmax {seg.max():.2f}", fontsize=9)
    for axis in axes:
        axis.set_axis_off()
    figure.colorbar(shown, ax=axes[1:], shrink=0.8, label="defect probability")
    return figure


@torch.inference_mode()
def predict(model: SegDecNet, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(decision probabilities [N], segmentation probabilities [N, H/8, W/8])."""
    decision, seg = model.eval()(images)
    return _numpy(torch.sigmoid(decision)), _numpy(torch.sigmoid(seg[:, 0]))


def attention_effect(model: SegDecNet, images: torch.Tensor, labels: np.ndarray,
                     masks: np.ndarray) -> pd.DataFrame:
    """Image AP, and pixel AP on the defective images, with the SE gates as trained, with every
    gate held at its mean over ``images`` (what adapting the gates to each image adds) and with
    every gate 1 (what the learned channel weights add at all), at inference."""
    rows = {}
    for name, network in (("SE on", model),
                          ("gates held at their mean", gates_at_mean(model, images)),
                          ("SE off (every gate 1)", without_attention(model))):
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
