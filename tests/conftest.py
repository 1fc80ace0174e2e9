"""Shared fixtures: a tiny synthetic Severstal-format dataset and the optional ../shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segdec.config import RunConfig
from segdec.data.synthetic import synthesize
from segdec.demo import demo_config

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

torch.set_num_threads(1)  # pytest-xdist runs one worker per core


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is only beside the project in development)")
    return path


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


def one_epoch(tiny_severstal, out: Path, **changes) -> RunConfig:
    """A one-epoch demo run of ``tiny_severstal`` into ``out``, with ``changes`` to its settings."""
    values = {"data_root": str(tiny_severstal), "epochs": 1, "n_seg": 3, "out_dir": str(out),
              **changes}
    return demo_config(out.parent, **values)
