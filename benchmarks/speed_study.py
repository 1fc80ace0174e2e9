"""The speed study behind ``benchmarks/results.md`` and ``results.csv``: every variant, its share
of the matmul peak, the data pipeline, the normalisation, a profile, and issue 11's targets.

    python benchmarks/speed_study.py [--quick] [--out DIR] [--batch-size N] [--compile]
                                      [--device DEVICE]

Times the original network in fp32 and the paper's network in every variant this device offers
(``variants``: fp32 on both atrous weight-gradient paths on a CPU, channels_last, the default
precision "auto" where it differs from fp32, bf16 where the hardware has it, compiled on
request) at DAGM's, KolektorSDD's and Severstal's input sizes (quarter sizes with ``--quick``),
built on ``segdec.bench``'s timing core. Each training-step repetition is paired with a
``torch.mm`` timed right after it, in the step's math mode, so that its share of the peak is a
ratio of two rates measured under the same load. Writes DIR/results.md and DIR/results.csv
(default DIR: benchmarks); ``SEGDEC_KEEP_FREED_MEMORY=0`` measures glibc's default allocator
(``benchmarks/glibc_default``). ``benchmarks/README.md`` records what these runs found.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from segdec.bench import (
    FULL_SIZES,
    QUICK_SIZES,
    Variant,
    command_line,
    machine_description,
    measure_once,
    median_seconds_within,
    runners,
    timer,
)
from segdec.config import RunConfig
from segdec.data.catalogue import load_samples
from segdec.data.dataset import DefectDataset, TargetOptions
from segdec.data.synthetic import synthesize
from segdec.io import atomic_write, write_text
from segdec.model import atrous_weight_gradient
from segdec.runtime import (
    PRECISION_DTYPES,
    can_compute,
    cpu_has_bf16_instructions,
    keep_freed_memory,
    resolve_device,
    resolve_precision,
    space_to_batch_pays,
)

CSV_COLUMNS = [
    "network", "dataset", "height", "width", "batch_size", "precision", "channels_last",
    "compiled", "atrous_gradient", "forward_s", "step_s", "forward_gflop", "step_gflop",
    "forward_gflops", "step_gflops", "step_share_of_peak", "peak", "train_images_per_s",
    "forward_peak_mib", "step_peak_mib",
]
PRODUCT_SECONDS = 0.05  # matrices grow until one product takes this long (or fill the memory)


@dataclass(frozen=True)
class StudySettings:
    """What one study times: sizes, batch size, repetitions, and the optional parts."""

    sizes: tuple[tuple[str, int, int], ...] = FULL_SIZES
    batch_size: int = 1
    repeats: int = 3  # training steps, each paired with a matmul peak
    max_run_time: float = 10.0  # seconds one forward timing may take
    loader_images: int = 40  # synthetic images the data pipeline decodes per measurement
    compile: bool = False  # also time torch.compile'd variants (slow to compile on a CPU)


QUICK = StudySettings(sizes=QUICK_SIZES, max_run_time=2.0, loader_images=16)


def variant_label(precision: str, channels_last: bool, compiled: bool,
                  atrous_gradient: str) -> str:
    """``fp32+dilated``: the precision, the options and the atrous weight gradient's path."""
    parts = [precision] + ["channels_last"] * channels_last + ["compiled"] * compiled
    return "+".join(parts + [atrous_gradient] * (atrous_gradient != "none"))


def _variant(row: pd.Series) -> str:
    return variant_label(row.precision, bool(row.channels_last), bool(row.compiled),
                         row.atrous_gradient)


# ---- the matmul peak ----------------------------------------------------------------------------
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


def matmul_peak_gflops(precision: str, device: torch.device, min_run_time: float | None = None,
                       max_n: int | None = None) -> float:
    """GFLOP/s of ``torch.mm`` in the math mode of a resolved ``precision`` (fp32 with TF32 off,
    tf32: fp32 tensors with TF32 matmuls, bf16, fp16), so that a step's share of peak compares
    like with like. Square matrices double from 256 until one product takes 50 ms or reaches
    ``largest_matmul``; each size is timed by ``Timer.blocked_autorange`` over ``min_run_time``
    (default 50 ms on a CPU, 0.3 s on a GPU, where a single product is launch and timer noise)."""
    if min_run_time is None:
        min_run_time = 0.3 if device.type == "cuda" else PRODUCT_SECONDS
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
            seconds = timer(lambda a=a, b=b: torch.mm(a, b)).blocked_autorange(
                min_run_time=min_run_time).median
            if seconds >= PRODUCT_SECONDS or n >= max_n:
                return 2 * n**3 / seconds / 1e9
            n *= 2
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed


# ---- the network --------------------------------------------------------------------------------
def bench_variant(network: str, dataset: str, height: int, width: int, variant: Variant,
                  settings: StudySettings, device: torch.device) -> dict:
    """Forward and training-step time, FLOPs, achieved rate, share of peak and peak memory of
    one variant."""
    model, forward, step = runners(network, height, width, variant, settings.batch_size, device)
    dtype = variant.runtime(device).autocast_dtype
    path = atrous_weight_gradient(model, device.type, dtype is not None)
    model.eval()
    forward_mib, forward_flops = measure_once(forward, device)
    forward_s = median_seconds_within(forward, settings.max_run_time)
    model.train()
    step_mib, step_flops = measure_once(step, device)  # also the steps' warm-up
    step_times, shares = [], []
    peak = resolve_precision(variant.precision, device)
    for _ in range(settings.repeats):
        step_times.append(timer(step).timeit(1).median)
        shares.append(step_flops / step_times[-1] / 1e9 / matmul_peak_gflops(peak, device))
    step_s = statistics.median(step_times)
    return {
        "network": network, "dataset": dataset, "height": height, "width": width,
        "batch_size": settings.batch_size, "precision": variant.precision,
        "channels_last": variant.channels_last, "compiled": variant.compiled,
        "atrous_gradient": path,
        "forward_s": forward_s, "step_s": step_s,
        "forward_gflop": forward_flops / 1e9, "step_gflop": step_flops / 1e9,
        "forward_gflops": forward_flops / forward_s / 1e9, "step_gflops": step_flops / step_s / 1e9,
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
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return profiler.key_averages(group_by_input_shape=True).table(
        sort_by=key, row_limit=rows, max_name_column_width=30, max_shapes_column_width=60
    )


def variants(device: torch.device, settings: StudySettings) -> dict[str, list[Variant]]:
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


def bench_loader(root: Path, height: int, width: int, settings: StudySettings) -> list[dict]:
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


def normalisation_ms(device: torch.device, settings: StudySettings, channels: int = 32,
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
        times[name] = 1e3 * median_seconds_within(lambda n=norm: n(x).backward(grad),
                                                  settings.max_run_time)
    return times


# ---- the whole study ----------------------------------------------------------------------------
@dataclass
class StudyResults:
    """Everything one study measured, with the ratios and the markdown made from it."""

    machine: dict[str, str]
    peaks: dict[str, float]
    networks: pd.DataFrame
    loader: pd.DataFrame
    norms: dict[str, float]
    profile: str
    settings: StudySettings
    seconds: float = 0.0

    def ratios(self) -> pd.DataFrame:
        """Issue 11's targets, each a ratio of two measurements of this run."""
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
            "# segdec speed study", "",
            f"Produced by `{command}` in {self.seconds:.0f} s; batch size "
            f"{self.settings.batch_size}; forward: medians of torch.utils.benchmark.Timer's "
            f"adaptive_autorange (at most {self.settings.max_run_time:g} s), step: median of "
            f"{self.settings.repeats} single steps after 1 warm-up. Ratios compare timings of "
            "this same run.", "",
            "## Machine", "", "| | |", "|---|---|", machine, "",
            "## Measured matrix-multiply peak (torch.mm)", "",
            "The best rate of square products seen in this run (measured before and after every "
            "size, as other work on a shared machine can slow a single measurement), in each "
            "precision's math mode: fp32 with TF32 off, tf32 (fp32 tensors, TF32 matmuls), bf16, "
            "fp16. Each size is timed by Timer's blocked_autorange over at least 50 ms of "
            "products on a CPU, 0.3 s on a GPU (synchronised).", "",
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
                  "understate; SEGDEC_KEEP_FREED_MEMORY=0 measures them."
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


def run_study(settings: StudySettings, device: torch.device,
              log: Callable[[str], None] = print) -> StudyResults:
    """Peaks, every variant at every size, the loader per size, normalisation, a profile."""
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
                    rows.append(bench_variant(network, dataset, height, width, variant, settings,
                                              device))
                    log(f"{dataset} {height}x{width} {network} {_variant(pd.Series(rows[-1]))}: "
                        f"forward {rows[-1]['forward_s']:.3f} s, step {rows[-1]['step_s']:.3f} s")
            loader_rows += bench_loader(root, height, width, settings)
            measure_peaks()
    norms = normalisation_ms(device, settings)
    _, height, width = settings.sizes[0]
    profiled = profile_table("paper", height, width, Variant(), settings.batch_size, device)
    return StudyResults(machine_description(device), peaks, pd.DataFrame(rows, columns=CSV_COLUMNS),
                        pd.DataFrame(loader_rows), norms, profiled, settings,
                        time.perf_counter() - started)


def write_results(results: StudyResults, out: str | Path, command: str) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.csv", lambda tmp: results.networks.to_csv(tmp, index=False))
    return write_text(out / "results.md", results.markdown(command))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="quarter-size inputs")
    parser.add_argument("--out", default="benchmarks", type=Path)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd runs")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    settings = replace(QUICK if args.quick else StudySettings(), batch_size=args.batch_size,
                       compile=args.compile)
    results = run_study(settings, resolve_device(args.device))
    path = write_results(results, args.out, command_line(["python", sys.argv[0], *argv]))
    print(results.ratios().to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nwritten: {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
