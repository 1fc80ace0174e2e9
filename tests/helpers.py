"""Helpers the tests import (the fixtures stay in conftest.py): the optional shared data beside
the checkout, and a one-epoch run's configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from segdec.config import RunConfig
from segdec.demo import demo_config

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"
# The data folder of batches and notebooks (segdec.paths.data_home): the shared data beside the
# checkout, as the committed records name it (relative to the repository root, the tests' and
# the notebooks' working folder), unless the environment names another.
if SHARED_DATA.is_dir():
    os.environ.setdefault("SEGDEC_DATA", os.path.relpath(SHARED_DATA, REPOSITORY))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is only beside the project in development)")
    return path


def one_epoch(tiny_severstal, out: Path, **changes) -> RunConfig:
    """A one-epoch demo run of ``tiny_severstal`` into ``out``, with ``changes`` to its settings."""
    values = {"data_root": str(tiny_severstal), "epochs": 1, "n_seg": 3, "out_dir": str(out),
              **changes}
    return demo_config(out.parent, **values)
