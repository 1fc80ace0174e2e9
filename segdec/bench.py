"""``segdec bench``: the paper's network against Božič's original on this machine, timed in the
runtime a run would take here (precision and atrous weight gradient both "auto").

Times are medians of ``torch.utils.benchmark.Timer`` measurements (``adaptive_autorange``: its
block-size estimate is the warm-up, then at least four blocks until their spread is within 10 %
or the time limit is spent), run with this process's torch thread count (Timer's own default is
one thread) and synchronised on a GPU. FLOPs are counted by ``torch.utils.flop_counter`` (a
multiply-add is two FLOPs). Each speed-up is a ratio of two timings of the same run, so a busy
machine slows both sides alike. The studies built on this core (variants, matmul peaks, the data
pipeline, the issue's targets, accuracy) are scripts under ``benchmarks/``.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from segdec.io import atomic_write, write_text
from segdec.loss import SegDecLoss
from segdec.model import SegDecNet, atrous_weight_gradient, build_model, use_space_to_batch
from segdec.runtime import (
    KEEP_FREED_MEMORY_ENV,
    Runtime,
    cpu_has_amx,
    cpu_has_bf16_instructions,
    cpu_name,
    keep_freed_memory,
    resolve_precision,
    takes_space_to_batch,
)
from segdec.train import training_step

logger = logging.getLogger(__name__)

NETWORKS = {"original": "bozic", "paper": "paper"}  # the names of segdec.model.build_model
# (name, height, width): DAGM, KolektorSDD (1408 high, 512 wide) and Severstal input sizes.
FULL_SIZES = (("DAGM", 512, 512), ("KolektorSDD", 1408, 512), ("Severstal", 256, 1600))
QUICK_SIZES = (("DAGM/4", 128, 128), ("KolektorSDD/4", 352, 128), ("Severstal/4", 64, 400))
COLUMNS = [
    "network", "dataset", "height", "width", "batch_size", "precision", "atrous_gradient",
    "forward_s", "step_s", "forward_gflop", "step_gflop", "forward_gflops", "step_gflops",
    "train_images_per_s", "forward_peak_mib", "step_peak_mib",
]


@dataclass(frozen=True)
class BenchSettings:
    """What one ``segdec bench`` times: input sizes, batch size and how long a timing may run."""

    sizes: tuple[tuple[str, int, int], ...] = FULL_SIZES
    batch_size: int = 1
    max_run_time: float = 10.0  # seconds one timing may take; a small spread ends it sooner


QUICK = BenchSettings(sizes=QUICK_SIZES, max_run_time=2.0)


@dataclass(frozen=True)
class Variant:
    """How one network is run: the fp32 baseline or an optimised path."""

    precision: str = "fp32"  # a RunConfig precision: auto, fp32, bf16 or fp16
    channels_last: bool = False
    compiled: bool = False
    atrous_gradient: str = "auto"  # a RunConfig atrous_gradient: auto, space_to_batch, dilated

    def runtime(self, device: torch.device) -> Runtime:
        """The runtime a run with this precision and atrous gradient takes on ``device``."""
        return Runtime(device, resolve_precision(self.precision, device),
                       space_to_batch=takes_space_to_batch(self.atrous_gradient))


RUN_DEFAULT = Variant(precision="auto")  # what a run takes when precision and path are unset


def command_line(argv: list[str]) -> str:
    """The command that made a record: the allocator setting changes what is measured."""
    setting = os.environ.get(KEEP_FREED_MEMORY_ENV)
    return (f"{KEEP_FREED_MEMORY_ENV}={setting} " if setting is not None else "") + " ".join(argv)


# ---- measuring helpers --------------------------------------------------------------------------
def timer(fn: Callable[[], object]) -> Timer:
    """A Timer of ``fn`` on as many threads as a run uses (Timer would use one)."""
    return Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())


def median_seconds_within(fn: Callable[[], object], max_run_time: float) -> float:
    """Median seconds per call of ``fn``, by ``Timer.adaptive_autorange``, which repeats it until
    the spread is small or ``max_run_time`` seconds are spent."""
    return timer(fn).adaptive_autorange(max_run_time=max_run_time).median


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (convolutions and matrix products; 2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _resident_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory one call of ``fn`` adds: CUDA allocator peak on GPU; on CPU the growth of the
    resident-set high-water mark (VmHWM reset through /proc/self/clear_refs, else the growth of
    ``ru_maxrss``, which misses peaks below an earlier one)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _resident_kib("VmRSS")
        fn()
        after = _resident_kib("VmHWM")
        if before is not None and after is not None:
            return (after - before) / 1024
    except OSError:
        pass
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def measure_once(fn: Callable[[], object], device: torch.device) -> tuple[float, int]:
    """(peak memory in MiB, FLOPs) of one call of ``fn``."""
    flops = 0

    def counted() -> None:
        nonlocal flops
        flops = count_flops(fn)

    return peak_memory_mib(counted, device), flops


def machine_description(device: torch.device) -> dict[str, str]:
    info = {
        "cpu": cpu_name(),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "AMX (fast bf16 on CPU)": str(cpu_has_amx()),
        "bf16 in hardware (avx512_bf16 or AMX)": str(cpu_has_bf16_instructions()),
        # segdec.runtime.space_to_batch_pays: the path a run's atrous_gradient "auto" takes
        "atrous gradient (auto)": ("space_to_batch" if device.type == "cpu"
                                   and takes_space_to_batch("auto") else "dilated"),
        "device": str(device),
        # segdec.runtime.keep_freed_memory; SEGDEC_KEEP_FREED_MEMORY=0 measures glibc's default
        "freed memory kept for reuse": str(keep_freed_memory()),
        # other work on the machine slows absolute timings; ratios of this run stay comparable
        "load average (1, 5, 15 min) at the end": ", ".join(f"{v:.1f}" for v in os.getloadavg()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ---- the network --------------------------------------------------------------------------------
def synthetic_batch(batch_size: int, height: int, width: int) -> dict[str, torch.Tensor]:
    """A batch in ``DefectDataset``'s format: half defective, all pixel-labelled."""
    generator = torch.Generator().manual_seed(0)
    h, w = height // SegDecNet.output_stride, width // SegDecNet.output_stride
    labels = (torch.arange(batch_size) % 2 == 0).float()
    return {
        "image": torch.rand(batch_size, 1, height, width, generator=generator),
        "seg_target": (torch.rand(batch_size, 1, h, w, generator=generator) > 0.9).float()
        * labels[:, None, None, None],
        "seg_weight": torch.ones(batch_size, 1, h, w),
        "label": labels,
        "has_pixel_label": torch.ones(batch_size, dtype=torch.bool),
    }


def runners(network: str, height: int, width: int, variant: Variant, batch_size: int,
            device: torch.device) -> tuple[nn.Module, Callable[[], None], Callable[[], None]]:
    """(model, forward, training step) of one network and variant on a synthetic batch, with
    the variant's runtime applied (its TF32 switches too)."""
    runtime = variant.runtime(device)
    runtime.apply()
    torch.manual_seed(0)
    model = use_space_to_batch(build_model(NETWORKS[network]).to(device), runtime.space_to_batch)
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
    run = torch.compile(model) if variant.compiled else model
    batch = synthetic_batch(batch_size, height, width)
    batch = {key: value.to(device) for key, value in batch.items()}
    images = batch["image"].contiguous(
        memory_format=torch.channels_last if variant.channels_last else torch.contiguous_format
    )
    dtype = runtime.autocast_dtype
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = runtime.loss_scaler()
    criterion = SegDecLoss("bce")

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            run(images)

    def step() -> None:
        training_step(run, optimizer, scaler, criterion, batch, (0.5, 0.5), device, dtype,
                      variant.channels_last)

    return model, forward, step


def bench_network(network: str, dataset: str, height: int, width: int,
                  settings: BenchSettings, device: torch.device) -> dict:
    """Forward and training-step time, FLOPs, achieved rate and peak memory of one network in
    the run's default runtime."""
    model, forward, step = runners(network, height, width, RUN_DEFAULT, settings.batch_size,
                                   device)
    runtime = RUN_DEFAULT.runtime(device)
    model.eval()
    forward_mib, forward_flops = measure_once(forward, device)
    forward_s = median_seconds_within(forward, settings.max_run_time)
    model.train()
    step_mib, step_flops = measure_once(step, device)
    step_s = median_seconds_within(step, settings.max_run_time)
    return {
        "network": network, "dataset": dataset, "height": height, "width": width,
        "batch_size": settings.batch_size, "precision": runtime.precision,
        "atrous_gradient": atrous_weight_gradient(model, device.type,
                                                  runtime.autocast_dtype is not None),
        "forward_s": forward_s, "step_s": step_s,
        "forward_gflop": forward_flops / 1e9, "step_gflop": step_flops / 1e9,
        "forward_gflops": forward_flops / forward_s / 1e9, "step_gflops": step_flops / step_s / 1e9,
        "train_images_per_s": settings.batch_size / step_s,
        "forward_peak_mib": forward_mib, "step_peak_mib": step_mib,
    }


# ---- the whole run ------------------------------------------------------------------------------
@dataclass
class BenchResults:
    """One run's machine and per-network rows, as printed and written."""

    machine: dict[str, str]
    networks: pd.DataFrame
    settings: BenchSettings
    seconds: float = 0.0

    def speedups(self) -> pd.DataFrame:
        """Per size, the original's time and FLOPs over the paper network's."""
        frame = self.networks.set_index(["dataset", "height", "width", "network"])
        original = frame.xs("original", level="network")
        paper = frame.xs("paper", level="network")
        ratios = pd.DataFrame({"step": original.step_s / paper.step_s,
                               "forward": original.forward_s / paper.forward_s,
                               "FLOP": original.step_gflop / paper.step_gflop})
        return ratios.reset_index()

    def markdown(self, command: str) -> str:
        machine = "\n".join(f"| {k} | {v} |" for k, v in self.machine.items())
        memory = ("CUDA allocator peak" if self.machine["device"].startswith("cuda") else
                  "growth of the process's resident-set high-water mark (VmHWM, reset before "
                  "each call), an approximation: the allocator may reuse memory freed earlier")
        return "\n".join([
            "# segdec bench", "",
            f"Produced by `{command}` in {self.seconds:.0f} s; batch size "
            f"{self.settings.batch_size}; medians of torch.utils.benchmark.Timer's "
            f"adaptive_autorange (at most {self.settings.max_run_time:g} s per timing).", "",
            "## Machine", "", "| | |", "|---|---|", machine, "",
            "## The paper's network over the original (speed-up, FLOP ratio)", "",
            self.speedups().to_markdown(index=False, floatfmt=".2f"), "",
            "## Networks", "",
            "Seconds per batch; GFLOP counted by torch.utils.flop_counter (2 per multiply-add); "
            f"step = forward + loss + backward + SGD step; peak memory: {memory}.", "",
            self.networks.to_markdown(index=False, floatfmt=".3g"), "",
        ])


def run_bench(settings: BenchSettings, device: torch.device) -> BenchResults:
    """Both networks at every size of ``settings``, one line logged per network."""
    started = time.perf_counter()
    keep_freed_memory()  # before the first measurement: the whole run measures one allocator
    rows = []
    for dataset, height, width in settings.sizes:
        for network in NETWORKS:
            rows.append(bench_network(network, dataset, height, width, settings, device))
            logger.info("%s %dx%d %s: forward %.3f s, step %.3f s", dataset, height, width,
                        network, rows[-1]["forward_s"], rows[-1]["step_s"])
    return BenchResults(machine_description(device), pd.DataFrame(rows, columns=COLUMNS),
                        settings, time.perf_counter() - started)


def write_bench(results: BenchResults, out: str | Path, command: str) -> Path:
    """``bench.md`` and ``bench.csv`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "bench.csv", lambda tmp: results.networks.to_csv(tmp, index=False))
    return write_text(out / "bench.md", results.markdown(command))
