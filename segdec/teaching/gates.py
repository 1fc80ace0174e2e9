"""What the SE gates of a trained network do: the channel weights each image gets, how much the
squeezed means vary between images, and what the segmentation and decision lose when the gates are
held at their mean or opened.

Everything here reads a network and changes nothing in it: a network with fixed gates is a copy.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
from torch import nn

from segdec.metrics import image_metrics, pixel_metrics
from segdec.model import SegDecNet, SqueezeExcite
from segdec.teaching.outputs import as_array, predict


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
    return as_array(torch.stack(means, 1)), as_array(torch.stack(gates, 1))


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
        lambda _m, _i, output: kept.append(as_array(output[0])))
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
