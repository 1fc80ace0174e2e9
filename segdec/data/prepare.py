"""From a run configuration to its split, datasets and loaders (what training and evaluation
read), with the input size and bit depth resolved."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from segdec.config import RunConfig
from segdec.data.bozic import bozic_split
from segdec.data.catalogue import DEFAULT_SIZES, load_samples
from segdec.data.dataset import DefectDataset, Sample, TargetOptions
from segdec.data.images import (
    MAX_BIT_DEPTH,
    deeper_than_run,
    image_shape,
    implied_depth,
    largest_deep_value,
)
from segdec.data.splits import load_split, make_split, subset
from segdec.errors import DataError
from segdec.model import SegDecNet
from segdec.runtime import data_workers

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """A run's split and its three datasets."""

    split: pd.DataFrame
    train: DefectDataset
    val: DefectDataset
    test: DefectDataset


def common_size(shapes: list[tuple[int, int]]) -> tuple[tuple[int, int], str]:
    """One (H, W), multiples of the output stride, for images of these sizes, and why it was chosen.

    Equal sizes keep their size. Varied sizes get the median aspect ratio at the median area,
    so that no image is stretched far from its shape and the typical image keeps its detail.
    """
    heights, widths = np.array(shapes, dtype=float).T
    stride = SegDecNet.output_stride
    if len(set(shapes)) == 1:
        height, width = shapes[0]
        return ((int(height) // stride * stride, int(width) // stride * stride),
                f"every image is {width}x{height}")
    aspect, area = np.median(heights / widths), np.median(heights * widths)
    height = max(SegDecNet.min_size, int(round(np.sqrt(area * aspect) / stride)) * stride)
    width = max(SegDecNet.min_size, int(round(np.sqrt(area / aspect) / stride)) * stride)
    why = (f"sizes vary (widths {widths.min():.0f}-{widths.max():.0f}, heights "
           f"{heights.min():.0f}-{heights.max():.0f}): the median aspect ratio (H/W "
           f"{aspect:.2f}) at the median area")
    return (height, width), why


def size_spread_warning(shapes: list[tuple[int, int]]) -> str | None:
    """A warning when one input size must distort some images a lot (aspect ratios more than
    1.5x apart, or areas more than 4x apart)."""
    heights, widths = np.array(shapes, dtype=float).T
    aspects, areas = heights / widths, heights * widths
    if aspects.max() / aspects.min() > 1.5 or areas.max() / areas.min() > 4:
        return (f"image sizes spread widely (aspect ratios {aspects.min():.2f}-"
                f"{aspects.max():.2f}, areas {areas.min():.0f}-{areas.max():.0f} pixels); every "
                "image is resized to one input size, so some are distorted: crop them to similar "
                "shapes, or train groups of similar images separately")
    return None


def _readable_shape(path: str) -> tuple[int, int] | None:
    """An image's (H, W), or None where it cannot be read (the data check reports those)."""
    try:
        return image_shape(path)
    except DataError:
        return None


def input_size(config: RunConfig, images: list[str]) -> tuple[int, int]:
    """(H, W): the configured size, else the dataset's usual one (KolektorSDD: Božič's), else
    ``common_size`` of the training ``images``; a derived size is logged with its reason."""
    height, width = config.input_height, config.input_width
    if not (height and width):
        usual = DEFAULT_SIZES.get(config.dataset)
        if usual:
            native = usual
        else:
            shapes = [shape for shape in map(_readable_shape, images) if shape]
            if not shapes:
                raise DataError("no training image could be read to choose the input size; "
                                "run segdec check-data")
            native, why = common_size(shapes)
            logger.info("input size %dx%d (W x H): %s; set input_width and input_height to "
                        "choose another", native[1], native[0], why)
            warning = size_spread_warning(shapes)
            if warning:
                logger.warning(warning)
        height, width = height or native[0], width or native[1]
    if min(height, width) < SegDecNet.min_size:
        raise DataError(f"input size {width}x{height} (from the images or the configuration) is "
                        f"below the network's {SegDecNet.min_size}x{SegDecNet.min_size}; set "
                        "input_height/input_width")
    return height, width


def _readable_largest(path: str) -> float | None:
    """``largest_deep_value``, or None where the image cannot be read (the data check reports
    those)."""
    try:
        return largest_deep_value(path)
    except DataError:
        return None


def run_bit_depth(config: RunConfig, parts: dict[str, list[Sample]]) -> int:
    """The one bit depth every grey image of the run is scaled by: the configured one, else the
    deepest any training image's largest value implies (8 for 8-bit data, whose files are not
    decoded for it). Scaling each image by its own depth would brighten a dark image of a 12-bit
    camera whose values stay under 1024 four times over its neighbours. An image of the split
    deeper than the run's depth is refused here, before anything is written, not clipped."""
    images = sorted({sample.image for samples in parts.values() for sample in samples})
    largest = {path: top for path in images if (top := _readable_largest(path)) is not None}
    depth, origin = config.bit_depth, "set in the configuration"
    if depth is None:
        deepest = max((int(implied_depth(largest[s.image])) for s in parts["train"]
                       if s.image in largest), default=8)
        depth, origin = min(deepest, MAX_BIT_DEPTH), "the deepest of the training images"
        if depth > 8:
            logger.info("bit depth %d: %s; set bit_depth to choose another", depth, origin)
    too_deep = [path for path, top in largest.items() if top > 2**depth - 1]
    if too_deep:
        more = f" ({len(too_deep) - 1} more images of the split too)" if len(too_deep) > 1 else ""
        raise DataError(f"{deeper_than_run(too_deep[0], largest[too_deep[0]], depth)}{more}; "
                        f"the run's bit_depth is {origin}")
    return depth


def prepare_data(config: RunConfig, run_split: Path | None = None) -> tuple[RunConfig, RunData]:
    """Read the dataset, take the split (a run's own ``run_split``, else ``config.split_csv``,
    else Božič's published one with ``splits: bozic``, else a new one), and resolve the input
    size and bit depth into the config. Writes nothing."""
    samples = load_samples(config)
    if run_split is not None:
        split = load_split(run_split, samples)
    elif config.split_csv:
        split = load_split(config.split_csv, samples)
    elif config.splits == "bozic":
        split = bozic_split(config.dataset, samples, config.splits_root, fold=config.fold,
                            n_all=config.n_all, n_seg=config.n_seg, n_val=config.n_val)
    else:
        split = make_split(samples, config.n_all, config.n_seg, config.effective_split_seed,
                           config.n_test, config.n_val, config.n_train_negatives)
    if config.split_csv:
        config = _counts_of_split(split, config, run_split or config.split_csv)
    parts = {name: subset(split, samples, name) for name in ("train", "val", "test")}
    height, width = input_size(config, [sample.image for sample in parts["train"][0]])
    depth = run_bit_depth(config, {name: samples for name, (samples, _) in parts.items()})
    config = config.replace(input_height=height, input_width=width, bit_depth=depth)
    options = TargetOptions(
        size=(height, width), channels=config.in_channels, bit_depth=config.bit_depth,
        dilate=config.dilate_masks,
        distance_transform=config.distance_transform, dt_power=config.dt_power,
        dt_max_weight=config.dt_max_weight,
    )
    datasets = {name: DefectDataset(s, flags, options) for name, (s, flags) in parts.items()}
    return config, RunData(split=split, **datasets)


def _counts_of_split(split: pd.DataFrame, config: RunConfig, path: str | Path) -> RunConfig:
    """A given split must hold the n_all and n_seg that config.yaml will record: those left
    null are resolved from it, explicit ones must agree."""
    train = split[split["subset"] == "train"]
    positives = train[train["label"].astype(bool)]
    counts = {"n_all": len(positives), "n_seg": int(positives["has_pixel_label"].sum())}
    for name, count in counts.items():
        wanted = getattr(config, name)
        if wanted is not None and wanted != count:
            raise DataError(
                f"split file {path} has {count} training positives"
                f"{' with pixel labels' if name == 'n_seg' else ''}, but {name}={wanted}; set "
                f"{name} to {count} (or to null) to train on that split, or drop split_csv"
            )
    return config.replace(**counts)


def loader(dataset: DefectDataset, config: RunConfig, device: torch.device,
           order: Sequence[int] | Sampler[int] | None = None) -> DataLoader:
    workers = data_workers(config.num_workers, device)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=order,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
