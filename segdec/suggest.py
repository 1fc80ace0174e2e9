"""Which weakly labelled defective images to give pixel masks next (beyond the paper).

Candidates are the run's training positives with only an image label (``split.csv``: subset
train, label 1, has_pixel_label False). Each is known to hold a defect, so a model that has
learnt what defects look like should find one in it. The run's best checkpoint scores each
candidate with three components in [0, 1]:

- ``seg_miss = 1 - max(seg map)``: the segmentation subnetwork does not find the defect that
  the image label says is there;
- ``disagreement = |decision probability - max(seg map)|``: the two subnetworks disagree, so
  the decision rests on evidence the segmentation map does not show;
- ``seg_entropy``: the mean binary entropy of the segmentation map (bits), i.e. how unsure the
  map is overall.

``score`` is their mean; the highest-scoring images are where a mask should teach the most.
Images are ranked by score (ties by name). ``notebooks/07_label_budget.ipynb`` tests the advice
(mixed supervision with the top-K masks against K random ones, over several seeds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import xlogy

from segdec.checkpoint import (
    best_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    scoring_runtime,
)
from segdec.config import RunConfig
from segdec.data.prepare import loader, prepare_data
from segdec.errors import ConfigError, DataError
from segdec.evaluate import predict_loader
from segdec.io import atomic_write
from segdec.runtime import resolve_device

COMPONENTS = ["seg_miss", "disagreement", "seg_entropy"]
RANKING_COLUMNS = ["rank", "image", "score", "decision_prob", "seg_max", *COMPONENTS]


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(p), 0 at p in {0, 1}."""
    return -(xlogy(p, p) + xlogy(1 - p, 1 - p)) / np.log(2)


def rank_candidates(run_dir: str | Path, device: str = "auto") -> pd.DataFrame:
    """Every weakly labelled training positive of a run, best candidate for a mask first."""
    run_dir = Path(run_dir)
    config = RunConfig.from_file(run_dir / "config.yaml")
    config, data = prepare_data(config, run_dir / "split.csv")
    train_set = data.train
    candidates = [i for i, sample in enumerate(train_set.samples)
                  if sample.label and not train_set.has_pixel_label[i]]
    if not candidates:
        raise DataError(f"{run_dir}/split.csv has no training positive without a pixel label; "
                        "every defective training image already has a mask")
    torch_device = resolve_device(device)
    state = load_checkpoint(best_checkpoint(run_dir))
    runtime = scoring_runtime(state, torch_device)
    runtime.apply()
    model = model_from_checkpoint(state, torch_device)
    scores, maps = predict_loader(model, loader(train_set, config, torch_device, candidates),
                                  torch_device, runtime.autocast_dtype, keep_maps=len(candidates))
    seg_max = np.array([m.max() for m in maps], dtype=np.float64)
    table = pd.DataFrame({
        "image": [train_set.samples[i].name for i in candidates],
        "decision_prob": scores,
        "seg_max": seg_max,
        "seg_miss": 1.0 - seg_max,
        "disagreement": np.abs(scores - seg_max),
        "seg_entropy": [float(binary_entropy(m.astype(np.float64)).mean()) for m in maps],
    })
    table["score"] = table[COMPONENTS].mean(axis=1)
    table = table.sort_values(["score", "image"], ascending=[False, True], ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[RANKING_COLUMNS]


def suggest_labels(run_dir: str | Path, budget: int, out: str | Path | None = None,
                   device: str = "auto") -> pd.DataFrame:
    """The ``budget`` best candidates, written to ``out`` (default RUN/label_suggestions.csv)."""
    if budget < 1:
        raise ConfigError(f"budget={budget} must be at least 1")
    top = rank_candidates(run_dir, device).head(budget)
    out = Path(out) if out else Path(run_dir) / "label_suggestions.csv"
    atomic_write(out, lambda tmp: top.to_csv(tmp, index=False))
    return top
