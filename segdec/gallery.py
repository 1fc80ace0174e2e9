"""The error gallery of a run: its test false positives and false negatives as pictures, so an
engineer sees what the model gets wrong (``errors.png`` in every run directory)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no window, no global state, any backend

from segdec.plots import IMAGE, OVERLAY, TRUE_DEFECT, credit_images, styled

MAX_SHOWN = 6  # of each kind


def error_indices(labels: np.ndarray, scores: np.ndarray, threshold: float
                  ) -> tuple[list[int], list[int]]:
    """(false positives, most confident first; false negatives, most missed first)."""
    predicted = scores >= threshold
    false_pos = np.flatnonzero(predicted & (labels == 0))
    false_neg = np.flatnonzero(~predicted & (labels == 1))
    return (false_pos[np.argsort(-scores[false_pos])][:MAX_SHOWN].tolist(),
            false_neg[np.argsort(scores[false_neg])][:MAX_SHOWN].tolist())


EMPTY_MAP = 0.5  # a map whose every cell stays below this marks no defect anywhere


@styled
def error_gallery(entries: list[dict], threshold: float, dataset: str = "") -> Figure:
    """One panel per error: the image, its ground-truth mask (cyan contour) and the predicted
    map (upsampled), titled with kind, name and score, and "map empty" where the map marks no
    cell (WS maps often stay empty: an orange overlay is then absent, not hidden). ``entries``
    hold ``image``, ``mask``, ``seg_map``, ``score``, ``kind`` ("false positive"/"false
    negative") and ``name``. Only as many panels as errors: none is left blank. The images'
    ``dataset`` is credited with its licence (``plots.credit_images``)."""
    if not entries:
        figure = Figure(figsize=(4, 1))
        figure.suptitle(f"No test errors at the best-F threshold {threshold:.3f}",
                        fontsize="small")
        return figure
    columns = min(len(entries), 4)
    rows = -(-len(entries) // columns)
    height, width = entries[0]["image"].shape[:2]
    figure = Figure(figsize=(3.2 * columns, rows * (3.2 * height / width + 0.7) + 0.5))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat[len(entries):]:
        figure.delaxes(axis)
    empty = 0
    for axis, entry in zip(axes.flat, entries, strict=False):
        axis.set_axis_off()
        axis.imshow(entry["image"], cmap=IMAGE)
        peak = float(np.max(entry["seg_map"]))
        if peak >= EMPTY_MAP:
            axis.imshow(entry["seg_map"], cmap=OVERLAY, vmin=0, vmax=1,
                        interpolation="bilinear", alpha=0.7 * np.clip(entry["seg_map"], 0, 1),
                        extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        else:
            empty += 1
        if entry["mask"].any():
            axis.contour(entry["mask"], levels=[0.5], colors=TRUE_DEFECT, linewidths=0.7)
        state = "" if peak >= EMPTY_MAP else f"\nmap empty (max {peak:.2f})"
        axis.set_title(f"{entry['kind']}\n{entry['name']}\np = {entry['score']:.3f}{state}",
                       fontsize="x-small")
    shown = ("predicted map in orange, " if empty < len(entries) else
             "every predicted map empty (no cell above 0.5), ")
    figure.suptitle(f"Test errors at threshold {threshold:.3f}: {shown}true defect in cyan",
                    fontsize="small")
    figure.set_layout_engine("constrained")
    return credit_images(figure, dataset)
