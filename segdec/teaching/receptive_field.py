"""How far one unit of the 1/8 segmentation map sees: counted from the layers (kernel taps, the
pixels stacked dilated kernels reach, the receptive field layer by layer) and measured on a trained
network (the input gradient of one unit, its extent, its effective size and its gridding).

The measurements read a network and change nothing in it: holding the normalisations' statistics
works on a copy.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
from scipy.signal import convolve2d
from torch import nn

from segdec.model import FeatureNorm, ReleasedNorm, SegDecNet
from segdec.teaching.outputs import as_array


def kernel_taps(effective: int = 5, dilation: int = 2) -> dict[str, np.ndarray]:
    """Where a dense ``effective`` x ``effective`` kernel and the 3x3 kernel with ``dilation``
    (the same effective size) read their input: 1 on a tap, 0 elsewhere."""
    dense = np.ones((effective, effective), dtype=np.uint8)
    atrous = np.zeros_like(dense)
    atrous[::dilation, ::dilation] = 1
    return {f"dense {effective}x{effective}": dense,
            f"3x3, dilation {dilation}": atrous}


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
    return as_array(x.grad[0].abs().sum(0))


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
