"""How long the paper's Severstal experiments would train on this machine, from a measured step.

    python benchmarks/severstal_estimate.py [BATCH_FILE]

Times the paper's training step (fp32, the default path; on a GPU where there is one, batch 10 as
in the paper's Table 4) at Severstal's 256x1600 (median of 4 after 2 warm-up steps), then
multiplies: an epoch shows every training positive and as many sampled negatives (2 N_all images),
for each run's epochs in BATCH_FILE (default papermill_runs/table5.yaml). Training steps only:
validation and test passes are left out. ``SEGDEC_KEEP_FREED_MEMORY=0`` measures it with glibc's
default allocator.
"""
import statistics
import sys

import torch

from segdec.batch import load_batch
from segdec.bench import Variant, median_seconds, runners
from segdec.data.rle import SEVERSTAL_SHAPE
from segdec.runtime import keep_freed_memory, resolve_device

BATCH_FILE = sys.argv[1] if len(sys.argv) > 1 else "papermill_runs/table5.yaml"
keep_freed_memory()
batch = load_batch(BATCH_FILE)
# Unset sizes are the images' own (resolved from the data at training time): Severstal's.
size = {(r.config.input_height or SEVERSTAL_SHAPE[0], r.config.input_width or SEVERSTAL_SHAPE[1])
        for r in batch.runs}
batch_size = {r.config.batch_size for r in batch.runs}
assert len(size) == 1 and len(batch_size) == 1, "one input size and batch size per batch file"
(height, width), (images_per_step,) = size.pop(), batch_size
device = resolve_device("auto")
_, _, step = runners("paper", height, width, Variant(), images_per_step, device)
for _ in range(2):  # warm-up: the heap grows to its working size
    step()
times = [median_seconds(step, device, 0, 1) for _ in range(4)]  # synchronised on a GPU
per_image = statistics.median(times) / images_per_step
print(f"{BATCH_FILE}: freed memory kept for reuse: {keep_freed_memory()}")
print(f"{BATCH_FILE}: the paper's step at {height}x{width}, batch {images_per_step}, "
      f"{device}, {torch.get_num_threads()} CPU threads: {statistics.median(times):.2f} s "
      f"(of {', '.join(f'{t:.2f}' for t in times)}), {per_image:.3f} s per image")
total = 0.0
for n_all in sorted({r.config.n_all for r in batch.runs}):
    runs = [r for r in batch.runs if r.config.n_all == n_all]
    epoch_h = 2 * n_all * per_image / 3600
    hours = sum(epoch_h * r.config.epochs for r in runs)
    total += hours
    print(f"N_all {n_all}: one epoch {epoch_h * 60:.0f} min; {len(runs)} runs x "
          f"{runs[0].config.epochs} epochs = {hours:.0f} h")
print(f"all {len(batch.runs)} runs: {total:.0f} h = {total / 24:.1f} days of training steps")
