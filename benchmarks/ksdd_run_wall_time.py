"""Wall time of one KSDD batch run (fold0/FS-A+T+W) with and without the fast atrous gradient:
``python benchmarks/ksdd_run_wall_time.py plain|fast`` from the project root."""
import sys
import time

from segdec.config import RunConfig
from segdec.model import AtrousConv2d
from segdec.train import train

variant = sys.argv[1]
AtrousConv2d.space_to_batch_gradient = variant == "fast"
config = RunConfig.from_file("figures/ksdd/runs/fold0/FS-A+T+W/config.yaml").replace(
    out_dir=f"/tmp/walltime/{variant}")
started = time.perf_counter()
metrics = train(config, progress=False)
print(f"{variant}: {time.perf_counter() - started:.0f} s, test AP {metrics['ap']:.4f}", flush=True)
