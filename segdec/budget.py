"""The time budget: which input size, epochs and balance beta fit a run into a given time on this
machine, from step times measured at the configured size and the sizes of the training defects.

The expected time of a plan scales the measured step and scoring times by the input's pixels
(convolutions cost in proportion to them; an assumption, which the run's own estimate at the
chosen size then checks). The needed cut is shared evenly between pixels and epochs, within two
floors: the median defect must stay ``VISIBLE_PX`` pixels wide at 1/8 of the input (the
segmentation map's resolution), and at least ``MIN_EPOCHS`` epochs are trained.

A run plans from its estimate on the datasets it prepared (``plan_run``) and keeps those datasets
where the plan keeps their input size (``at_input_size``): they are read and prepared once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from segdec.data.dataset import DefectDataset
from segdec.data.images import image_shape
from segdec.model import SegDecNet
from segdec.recipes import beta_for_epochs
from segdec.timing import RunEstimate, duration, validations

if TYPE_CHECKING:  # only to annotate plan_run and at_input_size
    from segdec.config import RunConfig
    from segdec.data.prepare import RunData

MIN_EPOCHS = 5
VISIBLE_PX = 2.0  # the median defect's smaller bounding-box side on the 1/8 map


def defect_extents(dataset: DefectDataset) -> np.ndarray:
    """Each pixel-labelled defect's bounding box (8-connected pieces of the masks) as fractions
    of its image's height and width, shape [n, 2]: what any input size scales alike."""
    extents = []
    for sample, labelled in zip(dataset.samples, dataset.has_pixel_label, strict=True):
        if sample.label and labelled:
            shape = image_shape(sample.image)
            pieces, _ = ndimage.label(sample.mask(shape), structure=np.ones((3, 3)))
            extents += [((rows.stop - rows.start) / shape[0], (cols.stop - cols.start) / shape[1])
                        for rows, cols in ndimage.find_objects(pieces)]
    return np.array(extents, dtype=float).reshape(-1, 2)


def median_defect_px(extents: np.ndarray, size: tuple[int, int]) -> float | None:
    """The median defect's smaller bounding-box side on the 1/8 map of an input of ``size``
    (H, W); None without pixel-labelled defects."""
    if not len(extents):
        return None
    sides = np.minimum(extents[:, 0] * size[0], extents[:, 1] * size[1])
    return float(np.median(sides)) / SegDecNet.output_stride


def candidate_sizes(size: tuple[int, int]) -> list[tuple[int, int]]:
    """``size`` (H, W) and its smaller versions of about the same aspect ratio, multiples of the
    output stride and within the network's minimum, largest first."""
    longest, stride = max(size), SegDecNet.output_stride
    sizes: list[tuple[int, int]] = []
    for side in range(longest, 0, -stride):
        smaller = tuple(round(length * side / longest / stride) * stride for length in size)
        if min(smaller) < SegDecNet.min_size:
            break
        if smaller not in sizes:
            sizes.append(smaller)
    return sizes


def scaled(measured: RunEstimate, size: tuple[int, int], at: tuple[int, int],
           epochs: int) -> RunEstimate:
    """The expected duration of ``epochs`` at input ``at`` from one measured at ``size``."""
    ratio = at[0] * at[1] / (size[0] * size[1])
    return replace(measured, epochs=epochs, step_s=measured.step_s * ratio,
                   image_s=measured.image_s * ratio,
                   validations=validations(0, epochs, measured.validate_every))


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


@dataclass(frozen=True)
class BudgetPlan:
    """What a time budget chose, against what the configuration asked for."""

    budget_s: float
    configured: RunEstimate  # the configured run at the configured size
    configured_size: tuple[int, int]  # (H, W), where the steps were timed
    configured_beta: float | None  # None: not a decay balance, no beta to keep
    estimate: RunEstimate  # the chosen plan's
    size: tuple[int, int]
    beta: float | None
    defect_px: float | None  # the median defect at 1/8 of the chosen size
    configured_defect_px: float | None

    @property
    def epochs(self) -> int:
        return self.estimate.epochs

    @property
    def fits(self) -> bool:
        return self.estimate.total_s <= self.budget_s

    def fields(self) -> dict:
        """The run-configuration values the plan sets."""
        return {"input_height": self.size[0], "input_width": self.size[1],
                "epochs": self.epochs, **({"beta": self.beta} if self.beta is not None else {})}

    def _chosen(self) -> str:
        beta = f" (β {self.beta:g})" if self.beta is not None and self.beta != \
            self.configured_beta else ""
        return f"{_size_text(self.size)}, {self.epochs} epochs{beta}"

    def _why_size(self) -> str:
        if self.configured_defect_px is None:
            return ("no pixel-labelled defects to judge their visibility by, so the input size "
                    "is kept")
        if self.configured_defect_px < VISIBLE_PX:
            return (f"the median defect is {self.configured_defect_px:.1f} px at 1/8 already at "
                    f"{_size_text(self.configured_size)}, so the input size is kept")
        return (f"the median defect stays {self.defect_px:.1f} px at 1/8 (at least "
                f"{VISIBLE_PX:g} kept)")

    def _epoch_floor(self) -> str:
        """The fewest epochs a plan may train, in the run's own numbers."""
        configured = self.configured.epochs
        if configured > MIN_EPOCHS:
            return f"at least {MIN_EPOCHS} epochs"
        return (f"all {configured} configured epoch{'s' * (configured != 1)}, as a budget cuts "
                f"epochs only down to {MIN_EPOCHS}")

    def line(self) -> str:
        """What was chosen and why, in one line."""
        budget = f"time budget {duration(self.budget_s)}"
        configured = (f"{_size_text(self.configured_size)}, {self.configured.epochs} epochs ≈ "
                      f"{duration(self.configured.total_s)}")
        unchanged = self.size == self.configured_size and self.epochs == self.configured.epochs
        if unchanged and self.fits:
            return f"{budget}: the configured {configured} fits; nothing changed"
        scaling = (f"; step times measured at {_size_text(self.configured_size)} and scaled by "
                   "pixels" if self.size != self.configured_size else "")
        if not self.fits:
            return (f"{budget} is too small on this machine ({configured}): training the "
                    f"quickest plan allowed ({self._epoch_floor()}, the defects kept "
                    f"visible), {self._chosen()}, ≈ {duration(self.estimate.total_s)}; "
                    f"{self._why_size()}{scaling}")
        return (f"{budget}: {self._chosen()}, ≈ {duration(self.estimate.total_s)} instead of "
                f"{configured}; {self._why_size()}{scaling}")

    def record(self) -> dict:
        """The plan as ``timing.json`` keeps it."""
        return {"budget_s": self.budget_s, **self.fields(), "planned_s": self.estimate.total_s,
                "fits": self.fits, "median_defect_px": self.defect_px,
                "configured": {"input_height": self.configured_size[0],
                               "input_width": self.configured_size[1],
                               "epochs": self.configured.epochs, "beta": self.configured_beta,
                               "planned_s": self.configured.total_s,
                               "median_defect_px": self.configured_defect_px,
                               "step_s": self.configured.step_s,
                               "image_s": self.configured.image_s},
                "line": self.line()}


def plan_budget(budget_s: float, measured: RunEstimate, size: tuple[int, int],
                beta: float | None, extents: np.ndarray) -> BudgetPlan:
    """The plan that fits ``budget_s``: of the input sizes (from ``size`` down) that keep the
    median defect ``VISIBLE_PX`` wide on the 1/8 map and the epochs from ``MIN_EPOCHS`` to the
    configured ones, the one whose smaller share of the configured pixels and epochs is largest
    (an even cut), then the larger input (fewer epochs rather than smaller defects). Where none
    fits, the quickest of them, flagged. ``measured`` is the configured run timed at ``size``;
    ``beta`` the decay balance's (None: another balance)."""
    epochs = measured.epochs
    visible = [s for s in candidate_sizes(size)
               if (px := median_defect_px(extents, s)) is not None and px >= VISIBLE_PX]
    plans = [(at, scaled(measured, size, at, n)) for at in visible or [size]
             for n in range(min(MIN_EPOCHS, epochs), epochs + 1)]
    fitting = [plan for plan in plans if plan[1].total_s <= budget_s]

    def even_cut(plan: tuple[tuple[int, int], RunEstimate]) -> tuple[float, float, float]:
        pixels = plan[0][0] * plan[0][1] / (size[0] * size[1])
        return min(pixels, plan[1].epochs / epochs), pixels, plan[1].total_s

    at, estimate = (max(fitting, key=even_cut) if fitting
                    else min(plans, key=lambda plan: plan[1].total_s))
    return BudgetPlan(
        budget_s=budget_s, configured=scaled(measured, size, size, epochs), configured_size=size,
        configured_beta=beta, estimate=estimate, size=at,
        beta=None if beta is None else beta_for_epochs(estimate.epochs, epochs, beta),
        defect_px=median_defect_px(extents, at),
        configured_defect_px=median_defect_px(extents, size))


def plan_run(config: RunConfig, data: RunData, measured: RunEstimate) -> BudgetPlan:
    """The plan that fits ``config.time_budget`` for a run of ``data``: ``measured`` is the
    configured run as its estimate times it, at the configured input size."""
    return plan_budget(config.time_budget, measured, (config.input_height, config.input_width),
                       config.beta if config.balance == "decay" else None,
                       defect_extents(data.train))


def at_input_size(data: RunData, config: RunConfig) -> RunData:
    """The run's datasets at the configuration's input size (a budget's plan, or the one a
    resumed run started with): ``data`` itself where that is its size, with the images the
    plan's timed steps decoded kept in its cache; else its samples read at the new size."""
    size = (config.input_height, config.input_width)
    parts = {"train": data.train, "val": data.val, "test": data.test}
    if all(part.options.size == size for part in parts.values()):
        return data
    return replace(data, **{
        name: DefectDataset(part.samples, part.has_pixel_label, replace(part.options, size=size))
        for name, part in parts.items()})
