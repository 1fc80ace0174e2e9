"""``segdec quick-demo``: synthetic Severstal-format data, weak / mixed / full supervision on CPU,
and the CPU-sized configuration the tests and the bench share. (``make demo`` is the 10-run demo
batch, papermill_runs/demo.yaml.)

The paper's optimiser (SGD, lr 0.1, no momentum, 40-90 epochs over thousands of images) needs far
more steps than a CPU demo can afford; the demo keeps the network, loss and schedules and takes
fewer, larger-momentum steps (lr 0.01, momentum 0.9) so that ten short epochs suffice.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segdec.config import RunConfig
from segdec.data.synthetic import DEMO_IMAGES, DEMO_SHAPE, synthesize
from segdec.train import train

DEMO_MODES = {"WS": 0, "MS": 10, "FS": None}  # pixel-labelled positives (None: all)


def demo_config(root: str | Path = "runs/demo", **overrides) -> RunConfig:
    """The CPU-sized base configuration the demo and the tests share."""
    root = Path(root)
    values = dict(
        data_root=str(root / "data"), n_all=None, n_seg=None, epochs=10, validate_every=2,
        learning_rate=0.01, momentum=0.9, beta=0.05, out_dir=str(root / "runs" / "FS"),
    )
    values.update(overrides)
    return RunConfig(**values)


def ensure_synthetic(config: RunConfig, n_pos: int, n_neg: int, *, shape: tuple[int, int],
                     seed: int = 0) -> None:
    """Write a synthetic set of ``shape`` (height, width) at the config's data root unless one is
    there (``shape`` by keyword, so that a (width, height) pair cannot slip in by position)."""
    if not (Path(config.data_root) / "train.csv").is_file():
        synthesize(config.data_root, n_pos, n_neg, seed=seed, shape=shape)


def run_quick_demo(
    root: str | Path = "runs/demo",
    n_pos: int = DEMO_IMAGES,
    n_neg: int = DEMO_IMAGES,
    shape: tuple[int, int] = DEMO_SHAPE,
    progress: bool = True,
    **overrides,
) -> pd.DataFrame:
    """Train the three supervision modes and return one row of test metrics per mode."""
    root = Path(root)
    base = demo_config(root, **overrides)
    ensure_synthetic(base, n_pos, n_neg, shape=shape)
    rows = []
    for mode, n_seg in DEMO_MODES.items():
        config = base.replace(n_seg=n_seg, out_dir=str(root / "runs" / mode))
        metrics = train(config, resume=True, progress=progress)
        rows.append({"mode": mode, "n_seg": "all" if n_seg is None else n_seg, **metrics})
    table = pd.DataFrame(rows).drop(columns=["checkpoint"])
    table.to_csv(root / "demo_metrics.csv", index=False)
    return table
