"""Wall time of one KSDD batch run, alone on the machine, under one speed setting.

    python benchmarks/ksdd_run_wall_time.py RUN SETTING [EPOCHS]

RUN is a record under figures/ksdd/runs (e.g. fold0/FS-A+T+W); SETTING is one of
  plain   the plain oneDNN dilated convolution, glibc's default allocator
  fast    the space-to-batch atrous weight gradient, glibc's default allocator
  kept    the space-to-batch atrous weight gradient, freed memory kept for reuse
  dilated the plain oneDNN dilated convolution, freed memory kept for reuse
  bf16    kept, trained under bf16 autocast (precision: bf16; oneDNN's own dilated convolution)
  compiled  dilated, the network torch.compile'd (compile: true; inductor's on-disk cache is
          warm from the second run on)
The atrous path is the run configuration's atrous_gradient (recorded in the run's runtime.json).
EPOCHS shortens the run (default: the record's). Run from the project root with the real
KolektorSDD at ../shared/data/ksdd; prints the wall time, the test AP and the epochs' mean time.
"""
import json
import os
import shutil
import sys
import time
from pathlib import Path

RUN, SETTING = sys.argv[1], sys.argv[2]
os.environ["SEGDEC_KEEP_FREED_MEMORY"] = "0" if SETTING in ("plain", "fast") else "1"

from segdec.config import RunConfig  # noqa: E402  (after the allocator setting)
from segdec.train import train  # noqa: E402

config = RunConfig.from_file(f"figures/ksdd/runs/{RUN}/config.yaml").replace(
    data_root="../shared/data/ksdd", precision="bf16" if SETTING == "bf16" else "fp32",
    atrous_gradient="dilated" if SETTING in ("plain", "dilated", "compiled") else "space_to_batch",
    compile=SETTING == "compiled")
if len(sys.argv) > 3:
    config = config.replace(epochs=int(sys.argv[3]))
config = config.replace(out_dir=f"/tmp/walltime/{RUN}/{SETTING}-{config.epochs}")
shutil.rmtree(config.out_dir, ignore_errors=True)  # a scratch run: timed afresh each time
started = time.perf_counter()
metrics = train(config, progress=False)
seconds = time.perf_counter() - started
import pandas as pd  # noqa: E402

epoch_s = pd.read_csv(f"{config.out_dir}/history.csv").seconds.mean()
(runtime,) = json.loads(Path(config.out_dir, "runtime.json").read_text())
print(f"{RUN} {SETTING} ({config.epochs} epochs): {seconds:.0f} s, test AP {metrics['ap']:.4f}, "
      f"pixel AP 1/8 {metrics['pixel_ap_1_8']:.3f}, {epoch_s:.1f} s per epoch; "
      f"{runtime['precision']}, atrous gradient {runtime['atrous_weight_gradient']}", flush=True)
