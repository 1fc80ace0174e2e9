"""How long the paper's Severstal experiments would train on this machine, from measured epochs.

    python benchmarks/severstal_estimate.py [BATCH_FILE] [--steps N]

Times what a run of BATCH_FILE (default papermill_runs/table5.yaml) does in training: its
resolved precision (``precision: auto`` is fp32, with TF32 on GPUs of compute capability 8.0 and
newer), the run's DataLoader (its ``num_workers``: up to 4 on a GPU, none on a CPU) decoding
synthetic Severstal-layout JPEGs at the run's input size (1600x256), batch 10 as in the paper's
Table 4, and the training loop's one host sync per epoch (``segdec.train.train_one_epoch``). The
median of 3 epochs of N steps after one warm-up epoch (which starts the workers and, on a GPU,
cuDNN's autotuner) gives a time per image, which is multiplied by the images the runs show: an
epoch is every training positive and as many sampled negatives (2 N_all images), for each run's
epochs. Training steps only: validation and test passes are left out. ``SEGDEC_KEEP_FREED_MEMORY=0``
measures it with glibc's default allocator.

Until issue 23 this script timed one step on a fixed synthetic batch in strict fp32 (median
of 4 after 2 warm-up steps), without the loader; ``severstal_estimate.md`` holds that CPU
measurement. On a CPU the two stay comparable: the precision is fp32 in both, and the loader
(no workers there) adds the decoding, 21-49x faster than a step.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from segdec.batch import load_batch
from segdec.config import RunConfig
from segdec.data.prepare import loader, prepare_data
from segdec.data.rle import SEVERSTAL_SHAPE
from segdec.data.synthetic import synthesize
from segdec.loss import loss_weights
from segdec.runtime import Runtime, data_workers, keep_freed_memory
from segdec.sampling import EpochOrder
from segdec.train import train_one_epoch, training_parts

SYNTHETIC_IMAGES = 24  # decoded afresh each time (a run's workers do not cache): a few suffice
STEPS = {"cuda": 60, "cpu": 2}  # a GPU epoch as long as Table 5's shortest (2 x 300 images)


@dataclass
class EpochTimer:
    """One training epoch of a run, set up as the run sets it up."""

    device: torch.device
    precision: str  # resolved: fp32, tf32, bf16 or fp16
    dtype: torch.dtype | None
    loader: DataLoader
    images: int  # per epoch
    epoch: Callable[[], list[float]]  # ends in the epoch's one host sync (its mean losses)


def epoch_timer(config: RunConfig, work_dir: Path, steps: int | None = None) -> EpochTimer:
    """The run of ``config`` on synthetic Severstal-layout images written to ``work_dir``: its
    device, resolved precision, loader, model, optimiser and loss, with an epoch of ``steps``
    batches (default: ``STEPS`` for the device) cycling over the training images."""
    runtime = Runtime.of_run(config)
    runtime.apply()
    device, precision, dtype = runtime.device, runtime.precision, runtime.autocast_dtype
    height = config.input_height or SEVERSTAL_SHAPE[0]
    width = config.input_width or SEVERSTAL_SHAPE[1]
    half = SYNTHETIC_IMAGES // 2
    root = synthesize(work_dir / "data", half, half, seed=0, shape=(height, width))
    config, data = prepare_data(config.replace(
        dataset="severstal", data_root=str(root), split_csv=None, n_all=None, n_seg=None,
        n_test=2, n_val=2, n_train_negatives=None, input_height=height, input_width=width))
    model, optimizer, criterion = training_parts(config, runtime)
    runnable = torch.compile(model) if config.compile else model
    scaler = runtime.loss_scaler()
    weights = loss_weights(config.balance, 0, config.epochs, config.beta)
    order = EpochOrder()
    images = (steps or STEPS.get(device.type, STEPS["cpu"])) * config.batch_size
    order.order = [i % len(data.train) for i in range(images)]
    batches = loader(data.train, config, device, order)

    def epoch() -> list[float]:
        return train_one_epoch(runnable, optimizer, scaler, criterion, batches, weights, device,
                               dtype, config.channels_last)

    return EpochTimer(device, precision, dtype, batches, images, epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("batch_file", nargs="?", default="papermill_runs/table5.yaml")
    parser.add_argument("--steps", type=int, help="steps per timed epoch (default: 60 on a GPU, "
                        "2 on a CPU)")
    args = parser.parse_args()
    keep_freed_memory()
    batch = load_batch(args.batch_file)
    timed = {(r.config.input_height, r.config.input_width, r.config.batch_size,
              r.config.precision, r.config.num_workers) for r in batch.runs}
    assert len(timed) == 1, "one input size, batch size, precision and num_workers per batch file"
    with tempfile.TemporaryDirectory() as tmp:
        timer = epoch_timer(batch.runs[0].config, Path(tmp), args.steps)
        timer.epoch()  # warm-up: workers start, cuDNN autotunes, the heap grows to its size
        times = []
        for _ in range(3):
            started = time.perf_counter()
            timer.epoch()
            times.append(time.perf_counter() - started)
    per_image = statistics.median(times) / timer.images
    config = batch.runs[0].config
    print(f"{args.batch_file}: freed memory kept for reuse: {keep_freed_memory()}")
    print(f"{args.batch_file}: the paper's training epochs as a run trains them (loader with "
          f"{data_workers(config.num_workers, timer.device)} workers, precision "
          f"{timer.precision}, one host sync per epoch; until issue 23: one fp32 step on a "
          f"fixed batch) at {config.input_height or SEVERSTAL_SHAPE[0]}x"
          f"{config.input_width or SEVERSTAL_SHAPE[1]}, batch {config.batch_size}, "
          f"{timer.device}, {torch.get_num_threads()} CPU threads: an epoch of {timer.images} "
          f"images {statistics.median(times):.2f} s (of {', '.join(f'{t:.2f}' for t in times)})"
          f", {per_image:.4f} s per image")
    total = 0.0
    for n_all in sorted({r.config.n_all for r in batch.runs}):
        runs = [r for r in batch.runs if r.config.n_all == n_all]
        epoch_h = 2 * n_all * per_image / 3600
        hours = sum(epoch_h * r.config.epochs for r in runs)
        total += hours
        print(f"N_all {n_all}: one epoch {epoch_h * 60:.1f} min; {len(runs)} runs x "
              f"{runs[0].config.epochs} epochs = {hours:.1f} h")
    print(f"all {len(batch.runs)} runs: {total:.1f} h = {total / 24:.2f} days of training steps")


if __name__ == "__main__":
    main()
