"""The error gallery of a run: its test false positives and false negatives as pictures, so an
engineer sees what the model gets wrong (``errors.png`` in every run directory)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no window, no global state, any backend

MAX_SHOWN = 6  # of each kind


def error_indices(labels: np.ndarray, scores: np.ndarray, threshold: float
                  ) -> tuple[list[int], list[int]]:
    """(false positives, most confident first; false negatives, most missed first)."""
    predicted = scores >= threshold
    false_pos = np.flatnonzero(predicted & (labels == 0))
    false_neg = np.flatnonzero(~predicted & (labels == 1))
    return (false_pos[np.argsort(-scores[false_pos])][:MAX_SHOWN].tolist(),
            false_neg[np.argsort(scores[false_neg])][:MAX_SHOWN].tolist())


def error_gallery(entries: list[dict], threshold: float) -> Figure:
    """One panel per error: the image, its ground-truth mask (cyan contour) and the predicted
    map (upsampled), titled with kind, name and score. ``entries`` hold ``image``, ``mask``,
    ``seg_map``, ``score``, ``kind`` ("false positive"/"false negative") and ``name``."""
    columns = max(1, min(len(entries), 4))
    rows = max(1, -(-len(entries) // columns))
    height, width = entries[0]["image"].shape[:2] if entries else (64, 64)
    figure = Figure(figsize=(3.2 * columns, rows * (3.2 * height / width + 0.6) + 0.4))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, entry in zip(axes.flat, entries, strict=False):
        axis.imshow(entry["image"], cmap="gray")
        axis.imshow(entry["seg_map"], cmap="autumn", vmin=0, vmax=1, interpolation="bilinear",
                    alpha=0.7 * np.clip(entry["seg_map"], 0, 1),
                    extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        if entry["mask"].any():
            axis.contour(entry["mask"], levels=[0.5], colors="cyan", linewidths=0.7)
        axis.set_title(f"{entry['kind']}\n{entry['name']}\np = {entry['score']:.3f}",
                       fontsize="x-small")
    title = (f"Test errors at threshold {threshold:.3f}: predicted map in orange, true defect "
             "in cyan" if entries else "No test errors at the best-F threshold")
    figure.suptitle(title, fontsize="small")
    figure.set_layout_engine("constrained")
    return figure
