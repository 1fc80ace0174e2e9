"""Testing a trained network: image-level metrics (docs/paper.md, Metrics: AP, AUC, best F, its
threshold, FP and FN there), pixel-level metrics of the segmentation map (which the paper shows
but does not score), and a run's test evaluation into ``metrics.json``, ``predictions.csv`` and
``segmentation_maps.npz``, and the error gallery ``errors.png``."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, log_loss, precision_recall_curve, roc_auc_score
from torch.utils.data import DataLoader

from segdec.checkpoint import (
    best_checkpoint,
    check_belongs_to_run,
    check_trained_split,
    last_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    scoring_runtime,
)
from segdec.config import RunConfig
from segdec.data.dataset import DefectDataset
from segdec.data.images import DataError, image_shape, load_image, resize
from segdec.data.prepare import loader, prepare_data
from segdec.data.splits import split_digest
from segdec.gallery import error_gallery, error_indices
from segdec.io import atomic_write, write_json
from segdec.model import flat_map_warning, probabilities
from segdec.outputs import FolderLock
from segdec.plots import save_figure
from segdec.runtime import Runtime, resolve_device, resolve_precision

logger = logging.getLogger(__name__)


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
def predict_loader(
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
            decision, seg = probabilities(model, images)
        scores.append(decision.cpu().numpy())
        if len(maps) < keep_maps:
            maps.extend(seg[:, 0].cpu().numpy()[: keep_maps - len(maps)])
    return np.concatenate(scores) if scores else np.zeros(0), maps


@dataclass
class Evaluation:
    """A network's test evaluation as data (``evaluate_test``), which ``write_evaluation`` puts
    in the run directory."""

    metrics: dict
    scores: np.ndarray  # every test image's decision probability
    maps: list[np.ndarray]  # every test image's segmentation map, at 1/8
    saved: list[int]  # the test images whose maps segmentation_maps.npz keeps: positives first
    gallery: list[dict]  # the error gallery's entries (``gallery.error_gallery``)


def evaluate_test(model: torch.nn.Module, test: DefectDataset, config: RunConfig,
                  runtime: Runtime) -> Evaluation:
    """Predict every test image once; its image and pixel metrics, the maps to keep and the
    false positives and negatives to show."""
    labels = test.labels()
    scores, maps = predict_loader(model, loader(test, config, runtime.device), runtime.device,
                                  runtime.autocast_dtype, len(labels))
    metrics = image_metrics(labels, scores)
    positives = np.flatnonzero(labels == 1)
    metrics.update(pixel_metrics([maps[i] for i in positives],
                                 [input_mask(test, i) for i in positives]))
    # Figure 9 shows positives, and the pixel metrics score them: their maps are kept first.
    positives_first = np.argsort(-labels, kind="stable")
    saved = positives_first[:min(config.n_saved_maps, len(labels))].tolist()
    false_pos, false_neg = error_indices(labels, scores, metrics["threshold"])
    gallery = [{"image": input_image(test, i, channels=1), "mask": input_mask(test, i),
                "seg_map": maps[i], "score": float(scores[i]), "kind": kind,
                "name": test.samples[i].name}
               for kind, indices in (("false positive", false_pos), ("false negative", false_neg))
               for i in indices]
    return Evaluation(metrics, scores, maps, saved, gallery)


def write_evaluation(run_dir: Path, test: DefectDataset, evaluation: Evaluation) -> None:
    """``metrics.json``, ``predictions.csv``, ``segmentation_maps.npz`` and ``errors.png``."""
    write_json(run_dir / "metrics.json", evaluation.metrics)
    predictions = pd.DataFrame({"image": [s.name for s in test.samples],
                                "score": evaluation.scores, "label": test.labels()})
    atomic_write(run_dir / "predictions.csv", lambda tmp: predictions.to_csv(tmp, index=False))
    _save_maps(run_dir / "segmentation_maps.npz", test, evaluation.saved,
               [evaluation.maps[i] for i in evaluation.saved], evaluation.scores)
    figure = error_gallery(evaluation.gallery, evaluation.metrics["threshold"])
    save_figure(figure, run_dir, "errors", formats=("png",))


def evaluate_best(run_dir: Path, config: RunConfig, test: DefectDataset,
                  device: torch.device, precision: str | None = None,
                  stopped: dict | None = None, split: pd.DataFrame | None = None) -> dict:
    """Test the run's best checkpoint on ``test`` and write the results; in the precision it was
    trained in where ``device`` has it (or in ``precision``, to measure what another costs).
    ``stopped`` (where and why patience ended the run) is written with the metrics; ``split``,
    read from the run's split.csv, must be the one the checkpoint trained on."""
    checkpoint = best_checkpoint(run_dir)
    state = load_checkpoint(checkpoint, device)
    check_belongs_to_run(state, config, checkpoint)
    if split is not None:
        check_trained_split(state, split_digest(split), checkpoint, run_dir / "split.csv")
    runtime = scoring_runtime(state, device)
    if precision:
        runtime = dataclasses.replace(runtime, precision=resolve_precision(precision, device))
    runtime.apply()
    model = model_from_checkpoint(state, device)
    evaluation = evaluate_test(model, test, config, runtime)
    warning = flat_map_warning(model)
    if warning:
        logger.warning("%s: %s", run_dir, warning)
    evaluation = dataclasses.replace(
        evaluation, metrics={**evaluation.metrics, "checkpoint": checkpoint.name,
                             **(stopped or {}), **({"warning": warning} if warning else {})})
    write_evaluation(run_dir, test, evaluation)
    return evaluation.metrics


def evaluate_run(
    run_dir: str | Path,
    device: str | torch.device = "auto",
    config: RunConfig | None = None,
    precision: str | None = None,
) -> dict:
    """``evaluate_best`` of a finished run from its directory alone (its configuration, unless
    given, and its split), with the run's folder locked while it writes there."""
    run_dir = Path(run_dir)
    config = config or RunConfig.from_file(run_dir / "config.yaml")
    device = resolve_device(device) if isinstance(device, str) else device
    with FolderLock(run_dir, "evaluate", what="the run"):
        config, data = prepare_data(config, run_dir / "split.csv")
        last = last_checkpoint(run_dir)
        stopped = load_checkpoint(last, "cpu").get("stopped") if last.is_file() else None
        return evaluate_best(run_dir, config, data.test, device, precision, stopped, data.split)


def input_image(dataset: DefectDataset, index: int, channels: int | None = None) -> np.ndarray:
    """One image at the network's input size, read at the run's bit depth as the network read
    it (a figure by another scaling would show a dark image brighter than the network saw it);
    grey with ``channels=1``, else in the dataset's channels."""
    sample, options = dataset.samples[index], dataset.options
    image = load_image(sample.image, channels or options.channels, options.bit_depth)
    return resize(image, options.size)


def input_mask(dataset: DefectDataset, index: int) -> np.ndarray:
    """The undilated ground-truth mask of one image at the network's input size."""
    sample = dataset.samples[index]
    return resize(sample.mask(image_shape(sample.image)), dataset.options.size, mask=True)


def _save_maps(path: Path, dataset: DefectDataset, shown: list[int], maps: list[np.ndarray],
               scores: np.ndarray) -> None:
    """Images, ground-truth masks (input size) and predicted maps (1/8) of a few test images."""
    images = [input_image(dataset, i) for i in shown]
    masks = [input_mask(dataset, i) for i in shown]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                names=np.array([dataset.samples[i].name for i in shown], dtype=str),
                images=np.array(images, dtype=np.uint8),
                masks=np.array(masks, dtype=np.uint8),
                seg_maps=np.array(maps, dtype=np.float32),
                scores=scores[shown].astype(np.float32),
                labels=dataset.labels()[shown],
            )

    atomic_write(path, write)
