"""Image-level metrics (PAPER.md): AP, AUC, best F-measure, its threshold, FP and FN there; and
pixel-level metrics of the segmentation map, which the paper shows but does not score."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
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
    f_measure, threshold = best_f_measure(labels, scores)
    predicted = scores >= threshold
    return {
        "ap": float(average_precision_score(labels, scores)),
        "auc": float(roc_auc_score(labels, scores)),
        "f_measure": f_measure,
        "threshold": threshold,
        "fp": int(np.sum(predicted & (labels == 0))),
        "fn": int(np.sum(~predicted & (labels == 1))),
        "n_test": int(labels.size),
    }


def best_f_measure(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The highest F-measure on the precision-recall curve and the threshold that gives it."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = int(np.argmax(f))
    return float(f[best]), float(thresholds[best])


def pixel_metrics(maps: list[np.ndarray], masks: list[np.ndarray]) -> dict[str, float]:
    """AP, best F and IoU (at that F's threshold) of segmentation maps, pooled over the pixels of
    all given images; at the map's 1/8 resolution (a cell is a defect when it holds any defect
    pixel) and with the map upsampled bilinearly to the mask's size, as the paper displays it.

    ``maps`` are probabilities at 1/8, ``masks`` binary ground truth at input size (undilated).
    """
    if not maps:
        return {}
    stride = masks[0].shape[0] // maps[0].shape[0]
    coarse_truth, full_truth, coarse_prob, full_prob = [], [], [], []
    for prob, mask in zip(maps, masks, strict=True):
        truth = torch.from_numpy(np.asarray(mask > 0, dtype=np.float32))[None, None]
        prob = torch.from_numpy(np.asarray(prob, dtype=np.float32))[None, None]
        coarse_truth.append(F.max_pool2d(truth, stride).ravel())
        coarse_prob.append(prob.ravel())
        full_truth.append(truth.ravel())
        full_prob.append(F.interpolate(prob, size=mask.shape, mode="bilinear",
                                       align_corners=False).ravel())
    result = {}
    for suffix, truths, probs in (("_1_8", coarse_truth, coarse_prob),
                                  ("", full_truth, full_prob)):
        truth, prob = torch.cat(truths).numpy().astype(bool), torch.cat(probs).numpy()
        if not truth.any():
            continue
        f_measure, threshold = best_f_measure(truth, prob)
        predicted = prob >= threshold
        result[f"pixel_ap{suffix}"] = float(average_precision_score(truth, prob))
        result[f"pixel_f{suffix}"] = f_measure
        result[f"pixel_iou{suffix}"] = float((predicted & truth).sum() / (predicted | truth).sum())
    return result


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
