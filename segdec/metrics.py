"""The scores of a network's outputs against the truth, as pure functions of arrays (numpy and
scikit-learn only): image-level metrics (docs/paper.md, Metrics: AP, AUC, best F, its threshold,
FP and FN there) and pixel-level metrics of segmentation maps, which the paper shows but does not
score. Evaluation, reports, the teaching figures and ``suggest`` all score through here."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, precision_recall_curve, roc_auc_score

from segdec.errors import DataError


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
        "log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7))),
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
        truth = np.asarray(mask) > 0
        prob = np.asarray(prob, dtype=np.float32)
        coarse_truth.append(any_in_cells(truth, stride).ravel())
        coarse_prob.append(prob.ravel())
        full_truth.append(truth.ravel())
        full_prob.append(upsample_bilinear(prob, truth.shape).ravel())
    result = {}
    for suffix, truths, probs in (("_1_8", coarse_truth, coarse_prob),
                                  ("", full_truth, full_prob)):
        truth, prob = np.concatenate(truths), np.concatenate(probs)
        if not truth.any():
            continue
        f_measure, threshold = best_f_measure(truth, prob)
        predicted = prob >= threshold
        result[f"pixel_ap{suffix}"] = float(average_precision_score(truth, prob))
        result[f"pixel_f{suffix}"] = f_measure
        result[f"pixel_iou{suffix}"] = float((predicted & truth).sum() / (predicted | truth).sum())
    return result


def any_in_cells(truth: np.ndarray, stride: int) -> np.ndarray:
    """Whether each ``stride`` x ``stride`` cell holds a true pixel (a max pooling without
    padding: rows and columns past the last whole cell are left out, as the network's map has
    no cell for them)."""
    rows, cols = truth.shape[0] // stride, truth.shape[1] // stride
    cells = truth[:rows * stride, :cols * stride].reshape(rows, stride, cols, stride)
    return cells.any(axis=(1, 3))


def upsample_bilinear(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` resampled bilinearly to ``shape`` by the half-pixel rule (pixel centres at
    +0.5, edges held; torch's ``interpolate(mode="bilinear", align_corners=False)``), in
    float32 as the network's maps are, so that the scores equal those computed by torch."""
    rows = _bilinear_taps(image.shape[0], shape[0])
    cols = _bilinear_taps(image.shape[1], shape[1])
    image = np.asarray(image, dtype=np.float32)
    (r0, r1, rw), (c0, c1, cw) = rows, cols
    top = image[r0][:, c0] * (1 - cw) + image[r0][:, c1] * cw
    bottom = image[r1][:, c0] * (1 - cw) + image[r1][:, c1] * cw
    return (top * (1 - rw)[:, None] + bottom * rw[:, None]).astype(np.float32)


def _bilinear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index along one axis: the two input indices it reads and the weight of
    the second."""
    scale = np.float32(size_in) / np.float32(size_out)
    source = np.maximum((np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale
                        - np.float32(0.5), np.float32(0))
    first = np.minimum(source.astype(np.int64), size_in - 1)
    second = np.minimum(first + 1, size_in - 1)
    return first, second, (source - first).astype(np.float32)
