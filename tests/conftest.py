"""Shared fixtures: a tiny synthetic Severstal-format dataset and a one-epoch run of it (the
helpers the tests import are in helpers.py, which also points the data folder at ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tests.helpers  # noqa: F401  (sets SEGDEC_DATA before any test runs)
from segdec.data.synthetic import synthesize
from segdec.demo import demo_config

torch.set_num_threads(1)  # pytest-xdist runs one worker per core


@pytest.fixture(scope="session")
def tiny_severstal(tmp_path_factory) -> Path:
    """40 small synthetic images (20 defective) in Severstal's exact on-disk layout."""
    return synthesize(tmp_path_factory.mktemp("data") / "severstal", 20, 20, seed=0,
                      shape=(64, 128))


@pytest.fixture(scope="session")
def tiny_run(tiny_severstal, tmp_path_factory) -> Path:
    """A one-epoch mixed-supervision run (3 masks) on ``tiny_severstal``: a checkpoint to use."""
    from segdec.train import train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    train(demo_config(out, data_root=str(tiny_severstal), epochs=1, n_seg=3, out_dir=str(out)),
          progress=False)
    return out
