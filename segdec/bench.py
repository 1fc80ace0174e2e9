"""``segdec bench``: the paper's network against the original, on this machine, in one run.

Every speed-up is a ratio of two timings taken in the same run (medians of several repetitions
after warm-up), so a busy machine slows both sides alike. FLOPs are counted by
``torch.utils.flop_counter`` (a multiply-add is two FLOPs); "share of peak" divides the achieved
rate by the rate of a large ``torch.mm`` in the step's precision (TF32 against TF32, strict fp32
against strict fp32), measured by the benchmark itself.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from segdec.config import RunConfig
from segdec.data.catalogue import load_samples
from segdec.data.dataset import DefectDataset, TargetOptions
from segdec.data.synthetic import DEMO_IMAGES, DEMO_SHAPE, synthesize
from segdec.demo import demo_config, ensure_synthetic
from segdec.evaluate import evaluate_run
from segdec.io import atomic_write, write_text
from segdec.loss import SegDecLoss
from segdec.model import SegDecNet, atrous_weight_gradient, build_model, use_space_to_batch
from segdec.runtime import (
    PRECISION_DTYPES,
    autocast_dtype,
    can_compute,
    cpu_has_amx,
    cpu_has_bf16_instructions,
    cpu_name,
    keep_freed_memory,
    resolve_precision,
    space_to_batch_pays,
    takes_space_to_batch,
)
from segdec.train import train, training_step

ACCURACY_RUN = {"n_seg": 3, "epochs": 4}  # MS, short: an AP below 1 that a precision loss moves
NETWORKS = {"original": "bozic", "paper": "paper"}  # the names of segdec.model.build_model
# (name, height, width): DAGM, KolektorSDD (1408 high, 512 wide) and Severstal input sizes.
FULL_SIZES = (("DAGM", 512, 512), ("KolektorSDD", 1408, 512), ("Severstal", 256, 1600))
QUICK_SIZES = (("DAGM/4", 128, 128), ("KolektorSDD/4", 352, 128), ("Severstal/4", 64, 400))
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
CSV_COLUMNS = [
    "network", "dataset", "height", "width", "batch_size", "precision", "channels_last",
    "compiled", "atrous_gradient", "forward_s", "step_s", "forward_gflop", "step_gflop",
    "forward_gflops", "step_gflops", "step_share_of_peak", "peak", "train_images_per_s",
    "forward_peak_mib", "step_peak_mib",
]


@dataclass(frozen=True)
class BenchSettings:
    sizes: tuple[tuple[str, int, int], ...] = FULL_SIZES
    batch_size: int = 1
    warmup: int = 1
    repeats: int = 3
    loader_images: int = 40  # synthetic images the data pipeline decodes per measurement
    compile: bool = False  # also time torch.compile'd variants (slow to compile on a CPU)


QUICK = BenchSettings(sizes=QUICK_SIZES, warmup=1, repeats=3, loader_images=16)


@dataclass(frozen=True)
class Variant:
    """How one network is run: the fp32 baseline or an optimised path."""

    precision: str = "fp32"  # a RunConfig precision: fp32, bf16 or fp16
    channels_last: bool = False
    compiled: bool = False
    atrous_gradient: str = "auto"  # a RunConfig atrous_gradient: auto, space_to_batch, dilated


def variant_label(precision: str, channels_last: bool, compiled: bool,
                  atrous_gradient: str) -> str:
    """``fp32+dilated``: the precision, the options and the atrous weight gradient's path."""
    parts = [precision] + ["channels_last"] * channels_last + ["compiled"] * compiled
    return "+".join(parts + [atrous_gradient] * (atrous_gradient != "none"))


# ---- measuring helpers --------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, warmup: int,
                   repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(max(warmup, 0)):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
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


def largest_matmul(precision: str, device: torch.device) -> int:
    """The largest square product the peak is measured on: 4096 on a CPU (where one already
    takes >= 50 ms); on a GPU 16384 (an H100 multiplies 4096s in a fraction of a millisecond),
    halved until its three matrices take at most half the free memory."""
    if device.type != "cuda":
        return 4096
    free, _ = torch.cuda.mem_get_info(device)
    size = torch.tensor([], dtype=PRECISION_DTYPES[precision] or torch.float32).element_size()
    n = 16384
    while n > 256 and 3 * n * n * size > free / 2:
        n //= 2
    return n


def matmul_peak_gflops(precision: str, device: torch.device, repeats: int = 5,
                       min_seconds: float | None = None, max_n: int | None = None) -> float:
    """GFLOP/s of ``torch.mm`` in the math mode of a resolved ``precision`` (fp32 with TF32 off,
    tf32: fp32 tensors with TF32 matmuls, bf16, fp16), so that a step's share of peak compares
    like with like. Square matrices grow until one product takes >= 50 ms or reach
    ``largest_matmul``; then each timing (median of ``repeats``, synchronised on a GPU) covers
    enough products for at least ``min_seconds`` (default: one product's 50 ms on a CPU, as
    before; 0.3 s on a GPU, where a single product is launch and timer noise)."""
    if min_seconds is None:
        min_seconds = 0.3 if device.type == "cuda" else 0.05
    max_n = max_n or largest_matmul(precision, device)
    dtype = PRECISION_DTYPES[precision] or torch.float32
    allowed = torch.backends.cuda.matmul.allow_tf32
    if device.type == "cuda":  # restored below: the step timed next keeps its own setting
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        n = 256
        while True:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            seconds = median_seconds(lambda a=a, b=b: torch.mm(a, b), device, 1, repeats)
            if seconds >= 0.05 or n >= max_n:
                break
            n *= 2
        products = 1
        while seconds < min_seconds:
            products = math.ceil(products * min_seconds / max(seconds, 1e-9))

            def block(a=a, b=b, products=products) -> None:
                for _ in range(products):
                    torch.mm(a, b)

            seconds = median_seconds(block, device, 0, repeats)
        return 2 * n**3 * products / seconds / 1e9
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed


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
    """(model, forward, training step) of one network and variant on a synthetic batch."""
    torch.manual_seed(0)
    model = use_space_to_batch(build_model(NETWORKS[network]).to(device),
                               takes_space_to_batch(variant.atrous_gradient))
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
    run = torch.compile(model) if variant.compiled else model
    batch = synthetic_batch(batch_size, height, width)
    batch = {key: value.to(device) for key, value in batch.items()}
    images = batch["image"].contiguous(
        memory_format=torch.channels_last if variant.channels_last else torch.contiguous_format
    )
    dtype = autocast_dtype(variant.precision, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    criterion = SegDecLoss("bce")

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            run(images)

    def step() -> None:
        training_step(run, optimizer, scaler, criterion, batch, (0.5, 0.5), device, dtype,
                      variant.channels_last)

    return model, forward, step


def bench_network(network: str, dataset: str, height: int, width: int, variant: Variant,
                  settings: BenchSettings, device: torch.device) -> dict:
    """Forward and training-step time, FLOPs, achieved rate and peak memory of one variant."""
    model, forward, step = runners(network, height, width, variant, settings.batch_size, device)
    dtype = autocast_dtype(variant.precision, device)
    path = atrous_weight_gradient(model, device.type, dtype is not None)
    # The first call of each (FLOPs counted, peak memory taken) is also its warm-up.
    model.eval()
    forward_mib, forward_flops = measure_once(forward, device)
    forward_s = median_seconds(forward, device, settings.warmup - 1, settings.repeats)
    model.train()
    step_mib, step_flops = measure_once(step, device)
    for _ in range(settings.warmup - 1):
        step()
    # Each repetition is paired with a torch.mm timed right after it: on a shared machine the
    # share of peak is a ratio of two rates measured under the same load, in the step's math mode.
    step_times, shares = [], []
    peak = resolve_precision(variant.precision, device)
    for _ in range(settings.repeats):
        step_times.append(median_seconds(step, device, 0, 1))
        shares.append(step_flops / step_times[-1] / 1e9 / matmul_peak_gflops(peak, device, 1))
    step_s = statistics.median(step_times)
    step_gflops = step_flops / step_s / 1e9
    return {
        "network": network, "dataset": dataset, "height": height, "width": width,
        "batch_size": settings.batch_size, "precision": variant.precision,
        "channels_last": variant.channels_last, "compiled": variant.compiled,
        "atrous_gradient": path,
        "forward_s": forward_s, "step_s": step_s,
        "forward_gflop": forward_flops / 1e9, "step_gflop": step_flops / 1e9,
        "forward_gflops": forward_flops / forward_s / 1e9, "step_gflops": step_gflops,
        "step_share_of_peak": statistics.median(shares), "peak": f"{peak} torch.mm",
        "train_images_per_s": settings.batch_size / step_s,
        "forward_peak_mib": forward_mib, "step_peak_mib": step_mib,
    }


def profile_table(network: str, height: int, width: int, variant: Variant, batch_size: int,
                  device: torch.device, rows: int = 15) -> str:
    """torch.profiler's top operators (by self time, grouped by input shape) of one step."""
    _, _, step = runners(network, height, width, variant, batch_size, device)
    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    with profile(activities=activities, record_shapes=True) as profiler:
        step()
        synchronize(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages(group_by_input_shape=True).table(
        sort_by=key, row_limit=rows, max_name_column_width=30, max_shapes_column_width=60
    )


def variants(device: torch.device, settings: BenchSettings) -> dict[str, list[Variant]]:
    """The original runs as the fp32 baseline; the paper's network in fp32 (with this CPU's
    default atrous weight gradient and with the other one), channels_last, and with and without
    channels_last the default "auto" precision where that differs from fp32 (tf32 on a GPU of
    compute capability 8.0 and newer) and bf16 where the device has it in hardware (plus
    compiled, on request)."""
    paper = [Variant(), Variant(channels_last=True)]
    if device.type == "cpu":  # elsewhere there is one path, cuDNN's dilated kernel
        paper.insert(1, Variant(atrous_gradient="dilated" if space_to_batch_pays()
                                else "space_to_batch"))
    native_bf16 = (cpu_has_bf16_instructions() if device.type == "cpu"
                   else can_compute("bf16", device))
    for fast in [resolve_precision("auto", device)] + ["bf16"] * native_bf16:
        if fast != "fp32":
            paper += [Variant(fast), Variant(fast, channels_last=True)]
    if settings.compile:
        paper += [replace(v, compiled=True) for v in list(paper)]
    return {"original": [Variant()], "paper": paper}


# ---- the data pipeline --------------------------------------------------------------------------
def loader_images_per_s(dataset: DefectDataset, workers: int, batch_size: int) -> float:
    """Images per second through a DataLoader (worker start-up included, as in an epoch)."""
    started = time.perf_counter()
    for _ in DataLoader(dataset, batch_size=batch_size, num_workers=workers):
        pass
    return len(dataset) / (time.perf_counter() - started)


def bench_loader(root: Path, height: int, width: int, settings: BenchSettings) -> list[dict]:
    """Decode + resize + mask downsampling (uncached) and cached reads, with 0 and 2 workers."""
    samples = load_samples(RunConfig(data_root=str(root)))
    rows = []
    for workers in (0, 2):
        for cached in (False, True):
            dataset = DefectDataset(samples, [True] * len(samples),
                                    TargetOptions(size=(height, width)), cache=cached)
            if cached:  # fill the cache as the first epoch would
                for i in range(len(dataset)):
                    dataset[i]
            rows.append({"height": height, "width": width, "workers": workers, "cached": cached,
                         "images_per_s": loader_images_per_s(dataset, workers,
                                                             settings.batch_size)})
    return rows


def normalisation_ms(device: torch.device, settings: BenchSettings, channels: int = 32,
                     size: int = 256) -> dict[str, float]:
    """Forward+backward of the network's per-image normalisation: GroupNorm(C, C) (in use)
    against InstanceNorm2d (the same function); ms at [1, C, size, size]."""
    x = torch.randn(1, channels, size, size, device=device, requires_grad=True)
    grad = torch.randn_like(x)
    norms = {"GroupNorm(C, C)": torch.nn.GroupNorm(channels, channels),
             "InstanceNorm2d(affine)": torch.nn.InstanceNorm2d(channels, affine=True)}
    times = {}
    for name, norm in norms.items():
        norm.to(device)
        times[name] = 1e3 * median_seconds(lambda n=norm: n(x).backward(grad), device,
                                           settings.warmup, settings.repeats + 2)
    return times


# ---- the whole run ------------------------------------------------------------------------------
@dataclass
class BenchResults:
    machine: dict[str, str]
    peaks: dict[str, float]
    networks: pd.DataFrame
    loader: pd.DataFrame
    norms: dict[str, float]
    profile: str
    settings: BenchSettings
    seconds: float = 0.0

    def ratios(self) -> pd.DataFrame:
        """The issue's targets, each a ratio of two measurements of this run."""
        rows = []
        frame = self.networks
        base = frame[(frame.network == "original") & (frame.precision == "fp32")]
        paper = frame[frame.network == "paper"]
        for _, ref in base.iterrows():
            same = paper[(paper.height == ref.height) & (paper.width == ref.width)]
            default = (same.precision == "fp32") & ~same.channels_last & ~same.compiled
            auto = self.machine["atrous gradient (auto)"]
            fp32 = same[default & (same.atrous_gradient == auto)].iloc[0]
            others = same[default & (same.atrous_gradient != auto)]
            best_step = same.loc[same.step_s.idxmin()]
            best_fwd = same.loc[same.forward_s.idxmin()]
            where = f"{ref.dataset} {ref.height}x{ref.width}"
            rows += [
                (where, "FLOP ratio original/paper (speed-up at equal efficiency)",
                 ref.step_gflop / fp32.step_gflop, None),
                (where, "paper fp32 step speed-up over original fp32 step",
                 ref.step_s / fp32.step_s, 5.5 if ref.dataset.startswith("DAGM") else None),
                (where, f"paper best step ({_variant(best_step)}) speed-up over original fp32",
                 ref.step_s / best_step.step_s, None),
                (where, f"paper best forward ({_variant(best_fwd)}) speed-up over original fp32",
                 ref.forward_s / best_fwd.forward_s, None),
                (where, "original fp32 step: share of fp32 matmul peak",
                 ref.step_share_of_peak, None),
                (where, "paper fp32 step: share of fp32 matmul peak",
                 fp32.step_share_of_peak, 0.65),
            ]
            for _, other in others.iterrows():
                rows += [
                    (where, f"paper fp32 step: auto atrous gradient ({auto}) over "
                     f"{other.atrous_gradient}", other.step_s / fp32.step_s, None),
                    (where, f"paper fp32 step ({other.atrous_gradient}): share of fp32 matmul "
                     "peak", other.step_share_of_peak, None),
                ]
            loaded = self.loader[(self.loader.height == ref.height)
                                 & (self.loader.width == ref.width) & (self.loader.workers == 2)]
            for _, row in loaded.iterrows():
                kind = "cached" if row.cached else "decoding"
                rows.append((where, f"loader (2 workers, {kind}) over paper's best training rate",
                             row.images_per_s / best_step.train_images_per_s, 2.0))
        table = pd.DataFrame(rows, columns=["size", "ratio", "value", "target"])
        table["met"] = [("" if pd.isna(t) else ("yes" if v >= t else "NO"))
                        for v, t in zip(table.value, table.target, strict=True)]
        return table

    def markdown(self, command: str) -> str:
        machine = "\n".join(f"| {k} | {v} |" for k, v in self.machine.items())
        peaks = "\n".join(f"| {k} | {v:.1f} |" for k, v in self.peaks.items())
        norms = "\n".join(f"| {k} | {v:.1f} |" for k, v in self.norms.items())
        targets = self.ratios()
        targets["target"] = ["-" if pd.isna(t) else f"{t:.2f}" for t in targets.target]
        shown = self.networks.copy()
        shown.insert(2, "variant", [_variant(r) for _, r in shown.iterrows()])
        shown = shown.drop(columns=["precision", "channels_last", "compiled", "atrous_gradient"])
        return "\n".join([
            "# segdec bench", "",
            f"Produced by `{command}` in {self.seconds:.0f} s; batch size "
            f"{self.settings.batch_size}, medians of {self.settings.repeats} repetitions after "
            f"{self.settings.warmup} warm-up. Ratios compare timings of this same run.", "",
            "## Machine", "", "| | |", "|---|---|", machine, "",
            "## Measured matrix-multiply peak (torch.mm)", "",
            "The best rate of square products seen in this run (measured before and after every "
            "size, as other work on a shared machine can slow a single measurement), in each "
            "precision's math mode: fp32 with TF32 off, tf32 (fp32 tensors, TF32 matmuls), bf16, "
            "fp16. Each timing covers at least 50 ms of products on a CPU, 0.3 s on a GPU "
            "(synchronised).", "",
            "| precision | GFLOP/s |", "|---|---|",
            peaks, "",
            "## Targets (ratios from this run)", "",
            targets.to_markdown(index=False, floatfmt=".2f"), "",
            "## Networks", "",
            "Times in seconds per batch; GFLOP counted by torch.utils.flop_counter (2 per "
            "multiply-add); step = forward + loss + backward + SGD step; share of peak = achieved "
            "GFLOP/s over the rate of a torch.mm in the step's precision (column peak: TF32 "
            "steps against a TF32 product, fp32 against one with TF32 off) timed right after each "
            "repetition (median of the per-repetition ratios). Peak memory: "
            + ("CUDA allocator peak." if self.machine["device"].startswith("cuda") else
               "growth of the process's resident-set high-water mark (VmHWM, reset before each "
               "call) -- an approximation, as the allocator may reuse memory freed earlier"
               + (": with freed memory kept for reuse it reuses nearly all of it, so these "
                  "understate; SEGDEC_KEEP_FREED_MEMORY=0 segdec bench measures them."
                  if self.machine.get("freed memory kept for reuse") == "True" else ".")),
            "", shown.to_markdown(index=False, floatfmt=".3g"), "",
            "## Data pipeline (decode, resize, mask downsampling; synthetic 1600x256 JPEGs)", "",
            self.loader.to_markdown(index=False, floatfmt=".1f"), "",
            "## Normalisation (forward + backward, ms, [1, 32, 256, 256])", "",
            "| module | ms |", "|---|---|", norms, "",
            f"## Profile: the paper's fp32 training step at {self.profile_size}", "",
            "torch.profiler, top operators by self time, grouped by input shape:", "",
            "```", self.profile.strip(), "```", "",
        ])

    @property
    def profile_size(self) -> str:
        name, height, width = self.settings.sizes[0]
        return f"{name} {height}x{width}"


def _variant(row: pd.Series) -> str:
    return variant_label(row.precision, bool(row.channels_last), bool(row.compiled),
                         row.atrous_gradient)


def run_bench(settings: BenchSettings, device: torch.device,
              log: Callable[[str], None] = print) -> BenchResults:
    started = time.perf_counter()
    keep_freed_memory()  # before the first measurement: the whole run measures one allocator
    modes = ["fp32", "tf32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    peaks = {mode: 0.0 for mode in modes if mode == "fp16" or can_compute(mode, device)}

    def measure_peaks() -> None:
        """On a shared machine the peak is the best rate seen: measured before and after every
        size, the maximum kept."""
        for mode, best in peaks.items():
            peaks[mode] = max(best, matmul_peak_gflops(mode, device))
        log("torch.mm peak GFLOP/s so far: " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()))

    measure_peaks()
    rows, loader_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        half = settings.loader_images // 2
        root = synthesize(Path(tmp) / "data", half, settings.loader_images - half, seed=0,
                          shape=(256, 1600))
        for dataset, height, width in settings.sizes:
            for network, kinds in variants(device, settings).items():
                for variant in kinds:
                    rows.append(bench_network(network, dataset, height, width, variant, settings,
                                              device))
                    log(f"{dataset} {height}x{width} {network} {_variant(pd.Series(rows[-1]))}: "
                        f"forward {rows[-1]['forward_s']:.3f} s, step {rows[-1]['step_s']:.3f} s")
            loader_rows += bench_loader(root, height, width, settings)
            measure_peaks()
    norms = normalisation_ms(device, settings)
    _, height, width = settings.sizes[0]
    profiled = profile_table("paper", height, width, Variant(), settings.batch_size, device)
    return BenchResults(machine_description(device), peaks, pd.DataFrame(rows, columns=CSV_COLUMNS),
                        pd.DataFrame(loader_rows), norms, profiled, settings,
                        time.perf_counter() - started)


def accuracy_check(device: torch.device, work_dir: str | Path) -> pd.DataFrame:
    """Synthetic test AP of a short mixed-supervision run (unsaturated, so that a precision loss
    shows) in plain fp32 and in the default precision "auto"; where "auto" is fp32 the two are
    one computation and are trained once. The fp32 run's checkpoint is also evaluated under
    bf16 autocast, to show what bf16 inference costs."""
    base = demo_config(work_dir, device=str(device), precision="fp32",
                       out_dir=str(Path(work_dir) / "fp32"), **ACCURACY_RUN)
    ensure_synthetic(base, DEMO_IMAGES, DEMO_IMAGES, shape=DEMO_SHAPE)
    fp32_ap = train(base, progress=False)["ap"]
    auto = autocast_dtype("auto", device)
    auto_ap = fp32_ap if auto is None else train(
        base.replace(precision="auto", out_dir=str(Path(work_dir) / "auto")), progress=False
    )["ap"]
    bf16_eval_ap = evaluate_run(base.out_dir, device, config=base, precision="bf16")["ap"]
    rows = [("train + test in fp32", "fp32", fp32_ap),
            ('train + test in the default "auto"', DTYPE_NAMES.get(auto, "fp32"), auto_ap),
            ("fp32-trained, tested under bf16 autocast", "bf16", bf16_eval_ap)]
    frame = pd.DataFrame(rows, columns=["run", "precision", "ap"])
    frame["ap_difference"] = (frame.ap - fp32_ap).abs()
    frame["within_0.005"] = frame.ap_difference <= 0.005
    return frame


def write_accuracy(frame: pd.DataFrame, out: str | Path, command: str) -> Path:
    text = "\n".join([
        "# Accuracy of the fast path", "",
        f"Produced by `{command}`: a short MS run of the demo setting (segdec.demo.demo_config "
        f"with {ACCURACY_RUN}, synthetic {DEMO_SHAPE[1]}x{DEMO_SHAPE[0]} images, "
        f"{DEMO_IMAGES} defective + {DEMO_IMAGES} clean), test-set AP, unsaturated so "
        "that a precision loss would show.", "",
        frame.to_markdown(index=False, floatfmt=".4f"), "",
    ])
    return write_text(Path(out) / "accuracy.md", text)


def write_results(results: BenchResults, out: str | Path, command: str) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.csv", lambda tmp: results.networks.to_csv(tmp, index=False))
    return write_text(out / "results.md", results.markdown(command))
