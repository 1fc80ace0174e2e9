"""From a run configuration to its split, datasets and loaders (what training and evaluation
read), with the input size resolved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from segdec.config import RunConfig
from segdec.data.catalogue import DEFAULT_SIZES, load_samples
from segdec.data.dataset import DefectDataset, TargetOptions
from segdec.data.images import DataError, image_shape
from segdec.data.splits import load_split, make_split, subset
from segdec.model import SegDecNet


@dataclass
class RunData:
    """A run's split and its three datasets."""

    split: pd.DataFrame
    train: DefectDataset
    val: DefectDataset
    test: DefectDataset


def input_size(config: RunConfig, first_image: str) -> tuple[int, int]:
    """(H, W): the configured size, else the dataset's usual one (KolektorSDD: Božič's), else the
    first image's size rounded down to a multiple of 8."""
    height, width = config.input_height, config.input_width
    if not (height and width):
        usual = DEFAULT_SIZES.get(config.dataset)
        native = usual or tuple(side // 8 * 8 for side in image_shape(first_image))
        height, width = height or native[0], width or native[1]
    if min(height, width) < SegDecNet.min_size:
        raise DataError(f"input size {width}x{height} (from {first_image} or the configuration) is "
                        f"below the network's {SegDecNet.min_size}x{SegDecNet.min_size}; set "
                        "input_height/input_width")
    return height, width


def prepare_data(config: RunConfig, run_split: Path | None = None) -> tuple[RunConfig, RunData]:
    """Read the dataset, take the split (a run's own ``run_split``, else ``config.split_csv``,
    else a new one), and resolve the input size into the config. Writes nothing."""
    samples = load_samples(config)
    if run_split is not None:
        split = load_split(run_split, samples)
    elif config.split_csv:
        split = load_split(config.split_csv, samples)
    else:
        split = make_split(samples, config.n_all, config.n_seg, config.seed, config.n_test,
                           config.n_val, config.n_train_negatives)
    if config.split_csv:
        config = _counts_of_split(split, config, run_split or config.split_csv)
    parts = {name: subset(split, samples, name) for name in ("train", "val", "test")}
    height, width = input_size(config, parts["train"][0][0].image)
    config = config.replace(input_height=height, input_width=width)
    options = TargetOptions(
        size=(height, width), channels=config.in_channels, dilate=config.dilate_masks,
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
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=order,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=config.num_workers > 0,
    )
