"""Checking a dataset before training: every image and mask read once, every problem listed
together, and a summary an engineer can read (``segdec check-data``, and ``train`` before its
first epoch)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from segdec.data.dataset import Sample
from segdec.data.images import DataError, load_image

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F", "P")


@dataclass
class DataCheck:
    """What ``check_samples`` found: one row per readable image, and every problem."""

    images: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Counts per label, sizes, mask coverage, grey versus colour, and the problems."""
        frame = self.images
        lines = [f"{len(frame) + len(self.problems)} images checked, {len(self.problems)} with "
                 "problems"]
        if len(frame):
            counts = frame.groupby("label").agg(images=("image", "size"),
                                                with_mask=("has_mask", "sum"))
            lines += ["", "per label (0 good, 1 defective):", counts.to_string()]
            sizes = frame.groupby(["width", "height"]).size().sort_values(ascending=False)
            lines += ["", f"image sizes (W x H): {len(sizes)} distinct; most common "
                      + ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.head(3).items())]
            coverage = frame.loc[frame.has_mask & (frame.label == 1), "coverage"]
            if len(coverage):
                lines.append(f"mask coverage of defective images: median {coverage.median():.2%}"
                             f", min {coverage.min():.2%}, max {coverage.max():.2%}")
            lines.append(f"grey {int((~frame.colour).sum())}, colour {int(frame.colour.sum())}")
        if self.problems:
            lines += ["", "problems:", *(f"  {problem}" for problem in self.problems)]
        return "\n".join(lines)

    def raise_for_problems(self, what: str = "the dataset") -> None:
        if self.problems:
            raise DataError(
                f"{len(self.problems)} problems in {what}:\n"
                + "\n".join(f"  {p}" for p in self.problems)
                + "\nfix or replace these files; a run that has started must keep its images, "
                "so to drop some, remove them from the dataset and start a new run"
            )


def check_samples(samples: Iterable[Sample]) -> DataCheck:
    """Decode every image and mask of ``samples``; collect problems instead of stopping."""
    rows, problems = [], []
    for sample in samples:
        try:
            pixels = load_image(sample.image)
            with Image.open(sample.image) as opened:
                colour = opened.mode not in GREY_MODES
            mask = sample.mask(pixels.shape) if sample.has_mask else None
        except DataError as err:
            problems.append(f"{sample.name}: {err}")
            continue
        if mask is not None and int(mask.any()) != sample.label:
            problems.append(f"{sample.name}: labelled {sample.label} but its mask "
                            f"{'has defect pixels' if mask.any() else 'is empty'} "
                            f"({sample.source or sample.mask_path})")
            continue
        rows.append({"image": sample.name, "label": sample.label, "has_mask": mask is not None,
                     "height": pixels.shape[0], "width": pixels.shape[1], "colour": colour,
                     "coverage": float(mask.mean()) if mask is not None else np.nan})
    columns = ["image", "label", "has_mask", "height", "width", "colour", "coverage"]
    return DataCheck(pd.DataFrame(rows, columns=columns), problems)
