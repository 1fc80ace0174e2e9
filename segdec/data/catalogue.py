"""From a run configuration to the list of samples of its dataset."""

from __future__ import annotations

from collections.abc import Callable

from segdec.config import RunConfig
from segdec.data.dataset import Sample
from segdec.data.severstal import read_severstal

READERS: dict[str, Callable[[RunConfig], list[Sample]]] = {
    "severstal": lambda config: read_severstal(config.data_root, config.classes),
}


def load_samples(config: RunConfig) -> list[Sample]:
    if config.dataset not in READERS:
        raise NotImplementedError(f"no reader for dataset {config.dataset!r} yet")
    return READERS[config.dataset](config)
