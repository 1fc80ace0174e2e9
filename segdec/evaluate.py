"""Image-level metrics (PAPER.md): AP, AUC, best F-measure, its threshold, FP and FN there."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from torch.utils.data import DataLoader

from segdec.data.images import DataError


def image_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float | int]:
    """Metrics of decision ``scores`` (probabilities) against binary ``labels``."""
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)
    if labels.size == 0:
        raise DataError("cannot evaluate an empty split")
    if labels.min() == labels.max():
        raise DataError("the evaluated split holds only one class; AP and AUC need both")
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = int(np.argmax(f))
    threshold = float(thresholds[best])
    predicted = scores >= threshold
    return {
        "ap": float(average_precision_score(labels, scores)),
        "auc": float(roc_auc_score(labels, scores)),
        "f_measure": float(f[best]),
        "threshold": threshold,
        "fp": int(np.sum(predicted & (labels == 0))),
        "fn": int(np.sum(~predicted & (labels == 1))),
        "n_test": int(labels.size),
    }


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    keep_maps: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Decision probabilities for every image of ``loader`` and the first ``keep_maps`` seg maps."""
    model.eval()
    scores, maps = [], []
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            decision, seg = model(images)
        scores.append(torch.sigmoid(decision.float()).cpu().numpy())
        if len(maps) < keep_maps:
            maps.extend(torch.sigmoid(seg.float())[:, 0].cpu().numpy()[: keep_maps - len(maps)])
    return np.concatenate(scores) if scores else np.zeros(0), maps
