"""From a run configuration to the list of samples of its dataset."""

from __future__ import annotations

from collections.abc import Callable

from segdec.config import RunConfig
from segdec.data.dagm import read_dagm
from segdec.data.dataset import Sample
from segdec.data.folder import read_folder
from segdec.data.ksdd import read_ksdd
from segdec.data.ksdd2 import read_ksdd2
from segdec.data.severstal import read_severstal

READERS: dict[str, Callable[[RunConfig], list[Sample]]] = {
    "severstal": lambda config: read_severstal(config.data_root, config.classes),
    "ksdd": lambda config: read_ksdd(config.data_root, config.fold),
    "dagm": lambda config: read_dagm(config.data_root, config.dataset_class),
    "ksdd2": lambda config: read_ksdd2(config.data_root),
    "folder": lambda config: read_folder(config.data_root),
}

# Božič's input sizes (H, W) for datasets whose images differ in size; others keep their own.
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"ksdd": (1408, 512), "ksdd2": (640, 232)}


def load_samples(config: RunConfig) -> list[Sample]:
    if config.dataset not in READERS:
        raise NotImplementedError(f"no reader for dataset {config.dataset!r} yet")
    return READERS[config.dataset](config)
