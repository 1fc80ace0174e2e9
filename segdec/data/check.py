"""Checking a dataset before training: every image and mask read once, every problem listed
together, and a summary an engineer can read (``segdec check-data``, and ``train`` before its
first epoch)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segdec.data.dataset import Sample
from segdec.data.images import MAX_BIT_DEPTH, decode_image, read_mask
from segdec.errors import DataError

logger = logging.getLogger(__name__)

# A mask marking more of its image than this is more likely a white or coloured background (an
# inverted mask, a palette whose index 0 is white) than a defect.
MAX_PLAUSIBLE_COVERAGE = 0.5


@dataclass
class DataCheck:
    """What ``check_samples`` found: one row per readable image, every problem (the data cannot
    be used) and every warning (it can, but probably not as meant)."""

    images: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bit_depth: int | None = None  # the configured one, which every image was read at

    def summary(self) -> str:
        """Counts per label, sizes, mask coverage, grey versus colour, bit depths, the warnings
        and the problems."""
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
            lines.append("bit depth: " + ", ".join(
                f"{depth} ({n} image{'s' * (n != 1)})"
                for depth, n in sorted(frame.bit_depth.value_counts().items(),
                                       key=lambda item: _depth_order(item[0]))))
            lines.append(f"  {self.run_bit_depth()}")
        if self.warnings:
            lines += ["", "warnings:", *(f"  {warning}" for warning in self.warnings)]
        if self.problems:
            lines += ["", "problems:", *(f"  {problem}" for problem in self.problems)]
        return "\n".join(lines)

    def run_bit_depth(self) -> str:
        """Which bit depth a run would scale these images by, and why."""
        if self.bit_depth is not None:
            depth, origin = self.bit_depth, "set in the configuration"
        else:
            depths = [int(d) for d in self.images.bit_depth if d.isdigit()]
            depth = min(max(depths, default=8), MAX_BIT_DEPTH)
            origin = "the deepest here; a run takes its training images' deepest unless set"
        deep = set(self.images.bit_depth) - {"1", "8"}
        what = "scales grey images deeper than 8 bits by" if deep else "reads them at"
        return f"a run {what} bit_depth {depth} ({origin})"

    def raise_for_problems(self, what: str = "the dataset") -> None:
        """Log the warnings, then refuse the data if there are problems (training's check)."""
        for warning in self.warnings:
            logger.warning(warning)
        if self.problems:
            raise DataError(
                f"{len(self.problems)} problems in {what}:\n"
                + "\n".join(f"  {p}" for p in self.problems)
                + "\nfix or replace these files; a run that has started must keep its images, "
                "so to drop some, remove them from the dataset and start a new run"
            )


def _depth_order(depth: str) -> tuple[bool, int, str]:
    """Bit depths in numeric order ("8" before "12"), "float 0-1" last."""
    return not depth.isdigit(), int(depth) if depth.isdigit() else 0, depth


def check_samples(samples: Iterable[Sample], bit_depth: int | None = None) -> DataCheck:
    """Decode every image and mask of ``samples`` (at the run's ``bit_depth`` where it is set,
    so an image deeper than it is a problem); collect problems instead of stopping."""
    rows, problems, warnings = [], [], []
    for sample in samples:
        try:
            decoded = decode_image(sample.image, bit_depth=bit_depth)
            shape = decoded.pixels.shape
            if sample.mask_path is not None:
                mask, noise = read_mask(sample.mask_path, shape)
            else:
                mask, noise = (sample.mask(shape) if sample.has_mask else None), None
        except DataError as err:
            problems.append(f"{sample.name}: {err}")
            continue
        if decoded.bit_depth.isdigit() and int(decoded.bit_depth) > MAX_BIT_DEPTH:
            problems.append(f"{sample.name}: image {sample.image} is {decoded.bit_depth}-bit, "
                            f"deeper than the {MAX_BIT_DEPTH} bits segdec reads; convert it")
            continue
        where = sample.source or sample.mask_path
        if noise is not None and noise.only_faint:
            problems.append(
                f"{sample.name}: its mask {sample.mask_path} is a {noise.file_format} file, and "
                f"its lossy compression left faint pixels (values up to {noise.faint_max} of "
                "255) where no defect is drawn, which read as a defect; save masks losslessly "
                "(PNG, BMP or TIFF)")
            continue
        if noise is not None:
            warnings.append(
                f"{sample.name}: its mask {sample.mask_path} is a {noise.file_format} file: lossy "
                f"compression left faint pixels (values up to {noise.faint_max} of 255) around "
                "its defects, which read as defect too; save masks losslessly (PNG, BMP or TIFF)")
        if mask is not None and int(mask.any()) != sample.label:
            problems.append(f"{sample.name}: labelled {sample.label} but its mask "
                            f"{'has defect pixels' if mask.any() else 'is empty'} ({where})")
            continue
        coverage = float(mask.mean()) if mask is not None else np.nan
        if coverage > MAX_PLAUSIBLE_COVERAGE and noise is None:  # noise: said above
            warnings.append(
                f"{sample.name}: its mask ({where}) marks {coverage:.1%} of the image as defect; "
                "a white or coloured background (an inverted mask, a palette whose index 0 is "
                "white) reads as defect: masks must be black (0) or transparent outside defects")
        rows.append({"image": sample.name, "label": sample.label, "has_mask": mask is not None,
                     "height": shape[0], "width": shape[1], "colour": decoded.colour,
                     "bit_depth": decoded.bit_depth, "coverage": coverage})
    columns = ["image", "label", "has_mask", "height", "width", "colour", "bit_depth", "coverage"]
    frame = pd.DataFrame(rows, columns=columns)
    return DataCheck(frame, problems, warnings, bit_depth)
