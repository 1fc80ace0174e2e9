"""What a trained network outputs, as arrays: its decision and map probabilities, and its decision
with each group of the classifier's inputs removed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from segdec.model import DECISION_INPUTS, SegDecNet, probabilities


def as_array(tensor: torch.Tensor) -> np.ndarray:
    """An fp32 array of a tensor on any device and in any dtype (``.numpy()`` alone fails on a
    GPU tensor and on bf16 or fp16 ones)."""
    return tensor.detach().float().cpu().numpy()


@torch.inference_mode()
def predict(model: SegDecNet, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(decision probabilities [N], segmentation probabilities [N, H/8, W/8])."""
    decision, seg = probabilities(model.eval(), images)
    return as_array(decision), as_array(seg[:, 0])


@torch.inference_mode()
def decision_ablation(model: SegDecNet, images: torch.Tensor, names: list[str]) -> pd.DataFrame:
    """The decision probability of each image with all classifier inputs, and with each group of
    ``DECISION_INPUTS`` set to zero in turn (one row per image)."""
    model = model.eval()
    inputs = model.decision_inputs(*model.forward_features(images))
    columns = {"all inputs": as_array(torch.sigmoid(model.classifier(inputs)[:, 0]))}
    for group, where in DECISION_INPUTS.items():
        ablated = inputs.clone()
        ablated[:, where] = 0
        columns[f"without {group}"] = as_array(torch.sigmoid(model.classifier(ablated)[:, 0]))
    return pd.DataFrame(columns, index=pd.Index(names, name="image"))
