"""Testing a trained network: a run's test evaluation, scored by ``segdec.metrics``, into
``metrics.json``, ``predictions.csv``, ``segmentation_maps.npz`` and the error gallery
``errors.png``."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
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
from segdec.data.prepare import loader, prepare_data
from segdec.data.splits import split_digest
from segdec.gallery import error_gallery, error_indices
from segdec.io import atomic_write, write_json
from segdec.metrics import image_metrics, pixel_metrics
from segdec.model import flat_map_warning, probabilities
from segdec.outputs import FolderLock
from segdec.plots import save_figure
from segdec.runtime import Runtime, resolve_device, resolve_precision

logger = logging.getLogger(__name__)


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
                                 [test.input_mask(i) for i in positives]))
    # Figure 9 shows positives, and the pixel metrics score them: their maps are kept first.
    positives_first = np.argsort(-labels, kind="stable")
    saved = positives_first[:min(config.n_saved_maps, len(labels))].tolist()
    false_pos, false_neg = error_indices(labels, scores, metrics["threshold"])
    gallery = [{"image": test.input_image(i, channels=1), "mask": test.input_mask(i),
                "seg_map": maps[i], "score": float(scores[i]), "kind": kind,
                "name": test.samples[i].name}
               for kind, indices in (("false positive", false_pos), ("false negative", false_neg))
               for i in indices]
    return Evaluation(metrics, scores, maps, saved, gallery)


def write_evaluation(run_dir: Path, test: DefectDataset, evaluation: Evaluation,
                     dataset: str = "") -> None:
    """``metrics.json``, ``predictions.csv``, ``segmentation_maps.npz`` and ``errors.png`` (which
    credits the images of ``dataset``)."""
    write_json(run_dir / "metrics.json", evaluation.metrics)
    predictions = pd.DataFrame({"image": [s.name for s in test.samples],
                                "score": evaluation.scores, "label": test.labels()})
    atomic_write(run_dir / "predictions.csv", lambda tmp: predictions.to_csv(tmp, index=False))
    _save_maps(run_dir / "segmentation_maps.npz", test, evaluation.saved,
               [evaluation.maps[i] for i in evaluation.saved], evaluation.scores)
    figure = error_gallery(evaluation.gallery, evaluation.metrics["threshold"], dataset)
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
    write_evaluation(run_dir, test, evaluation, config.dataset)
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


def _save_maps(path: Path, dataset: DefectDataset, shown: list[int], maps: list[np.ndarray],
               scores: np.ndarray) -> None:
    """Images, ground-truth masks (input size) and predicted maps (1/8) of a few test images."""
    images = [dataset.input_image(i) for i in shown]
    masks = [dataset.input_mask(i) for i in shown]

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
