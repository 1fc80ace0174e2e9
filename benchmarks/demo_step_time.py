"""What the demo batch's input size costs per training step, for the two networks it trains.

    python benchmarks/demo_step_time.py                                  # this CPU's own kernels
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/demo_step_time.py

One thread (a demo worker's), batch 10 (the demo's), forward and backward with the optimiser
step, on a synthetic batch (segdec.bench.runners), at the previous demo's 64x128 and today's
64x64; prints a markdown table with the machine, and each network's time ratio between the sizes:
what `make demo` on another CPU kind can be scaled by (papermill_runs/demo.yaml).
"""
import os

import torch

from segdec.bench import RUN_DEFAULT, machine_description, median_seconds_within, runners

torch.set_num_threads(1)
device = torch.device("cpu")
sizes = ((64, 128), (64, 64))
print(f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; "
      + "; ".join(f"{k}: {v}" for k, v in machine_description(device).items()) + "\n")
print("| network | " + " | ".join(f"{h}x{w} step (s)" for h, w in sizes)
      + " | ratio 64x64 / 64x128 |")
print("| --- |" + " --- |" * (len(sizes) + 1))
for network in ("paper", "original"):
    seconds = [median_seconds_within(runners(network, h, w, RUN_DEFAULT, 10, device)[2], 5.0)
               for h, w in sizes]
    print(f"| {network} | " + " | ".join(f"{s:.3f}" for s in seconds)
          + f" | {seconds[1] / seconds[0]:.2f} |")
