"""Where and how a network runs: the device, its precision, repeatability, data-loading
workers and the process's allocator, resolved once per run into a ``Runtime``: its ``apply``
sets the process-wide switches (TF32 among them), and it says the autocast dtype and whether
the loss is scaled."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from segdec.errors import ConfigError

if TYPE_CHECKING:  # the run configuration, only to annotate Runtime.of_run
    from segdec.config import RunConfig

# The oldest torch segdec runs on (pyproject.toml declares the same): model.py calls
# torch.is_autocast_enabled(device_type), new in 2.4; Runtime.loss_scaler builds
# torch.amp.GradScaler(device), new in 2.3.
TORCH_FLOOR = (2, 4)


def check_torch(version: str) -> None:
    """Refuse an older torch at import, with what to do, instead of a TypeError mid-training."""
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < TORCH_FLOOR:
        floor = ".".join(map(str, TORCH_FLOOR))
        raise ImportError(f"segdec needs torch >= {floor}, but torch {version} is installed; "
                          f"upgrade it: pip install 'torch>={floor}'")


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
KEEP_FREED_MEMORY_ENV = "SEGDEC_KEEP_FREED_MEMORY"
# Resolved precisions: "tf32" is fp32 with TF32 matmuls and convolutions (Ampere GPUs and newer).
PRECISION_DTYPES = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
AMPERE = (8, 0)  # the compute capability with bf16 and TF32 in hardware
# cuBLAS repeats its sums only with a fixed workspace (CUDA's documented setting).
CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(name: str = "auto") -> torch.device:
    """The device of ``name`` ("auto", "cpu", "cuda", "cuda:N"); a GPU gets its index and becomes
    the current one, so that cuDNN, cuBLAS and the caching allocator open no context on GPU 0."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but CUDA is not available")
    index = torch.cuda.current_device() if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise ConfigError(
            f"device {name!r} was asked for but this process sees {count} GPU(s), cuda:0 to "
            f"cuda:{count - 1}" + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible else ""))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def gpu_capability(device: torch.device) -> tuple[int, int] | None:
    """The compute capability of a CUDA ``device`` (None elsewhere)."""
    return tuple(torch.cuda.get_device_capability(device)) if device.type == "cuda" else None


def can_compute(precision: str, device: torch.device) -> bool:
    """Whether ``device`` has a resolved precision: TF32 needs an Ampere GPU or newer, and so
    does bf16 on a GPU (older ones emulate it, although ``torch.cuda.is_bf16_supported()`` says
    yes there); fp32, fp16 and bf16 autocast run on any CPU."""
    if precision == "tf32" or (precision == "bf16" and device.type == "cuda"):
        capability = gpu_capability(device)
        return capability is not None and capability >= AMPERE
    return precision in PRECISION_DTYPES


def resolve_precision(precision: str, device: torch.device) -> str:
    """The resolved precision of a run configuration's ``precision`` on ``device``.

    "auto" is fp32, with TF32 matmuls and convolutions ("tf32") on GPUs of compute capability
    8.0 and newer, on the device actually used. Not bf16: on KolektorSDD bf16 kept the image APs
    within one seed's noise but cost the segmentation maps (benchmarks/ksdd_precision.md). TF32
    keeps fp32's range and accumulation and rounds only the products' inputs to 10 mantissa bits
    (bf16: 7); its cost is not measured here, so it is recorded in runtime.json, and "fp32"
    switches it off. Older GPUs (T4, V100) get fp32 too: fp16 (with loss scaling) is one setting
    away but unmeasured, and bf16 is emulated there.
    """
    if precision == "auto":
        return "tf32" if can_compute("tf32", device) else "fp32"
    if not can_compute(precision, device):
        capability = gpu_capability(device)
        where = (f"{device} has {capability[0]}.{capability[1]}, where it is emulated"
                 if capability else f"{device} is not a GPU")
        raise ConfigError(f"precision {precision} needs a GPU of compute capability 8.0 or newer; "
                         f"{where}: use precision fp16 (loss-scaled) or fp32")
    return precision


def scoring_precision(trained: str, device: torch.device) -> str:
    """The precision a network trained (and validated) in ``trained`` is scored in on
    ``device``: the same where the device has it, else fp32, which the others approximate."""
    return trained if can_compute(trained, device) else "fp32"


def set_deterministic(deterministic: bool, device: torch.device) -> None:
    """Repeatable kernels or fast ones. A GPU run repeats to the last digit only when
    deterministic: cuDNN's autotuner (``cudnn.benchmark``, on otherwise) may pick another
    algorithm in another process, and atomic-add kernels sum in arrival order. Deterministic
    mode fails, naming the operation, where torch has no deterministic kernel for it."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


def data_workers(num_workers: int | None, device: torch.device) -> int:
    """Data-loading processes: as set, else (None) up to 4 on a GPU, which a single process
    would starve, and none on a CPU, where decoding is many times faster than a training step
    (benchmarks/README.md) and workers would take the step's cores."""
    if num_workers is not None:
        return num_workers
    return min(4, os.cpu_count() or 1) if device.type == "cuda" else 0


def cpu_has_amx() -> bool:
    """AMX tiles (through oneDNN), which make bf16 convolutions several times faster than fp32;
    without them oneDNN's bf16 path is slower than fp32 (``segdec bench`` shows it)."""
    return torch.backends.mkldnn.is_available() and torch.cpu._is_amx_tile_supported()


def space_to_batch_pays() -> bool:
    """Whether the space-to-batch weight gradient beats oneDNN's dilated kernel on this CPU.

    Measured (``benchmarks/README.md``): with AVX2 kernels it is faster, with AVX-512 ones
    oneDNN's own is. Elsewhere, unmeasured, the framework's own.
    ``ATEN_CPU_CAPABILITY`` (with ``ONEDNN_MAX_CPU_ISA``) moves a machine between the two.
    """
    return torch.backends.cpu.get_cpu_capability() == "AVX2"


def takes_space_to_batch(atrous_gradient: str, device_type: str = "cpu") -> bool:
    """A run configuration's ``atrous_gradient`` ("auto", "space_to_batch", "dilated"). Off a
    CPU there is one path, the framework's dilated kernel: an explicit space_to_batch is ignored
    there, with a warning (runtime.json records the path taken)."""
    if device_type != "cpu":
        if atrous_gradient == "space_to_batch":
            warnings.warn(f"atrous_gradient: space_to_batch is a CPU path; on {device_type} the "
                          "dilated kernel computes the weight gradient", stacklevel=2)
        return False
    if atrous_gradient == "auto":
        return space_to_batch_pays()
    return atrous_gradient == "space_to_batch"


def cpu_has_bf16_instructions() -> bool:
    """bf16 dot products in hardware (``avx512_bf16`` or AMX) rather than emulated in fp32; only
    AMX (``cpu_has_amx``) also makes them faster than fp32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Runtime:
    """How one run computes, decided once at its start and handed to training, validation and
    the test: a single value, so that scoring cannot resolve another precision than training
    validated in. ``runtime.json`` records it (``describe``), the checkpoints its precision."""

    device: torch.device
    precision: str  # resolved: "fp32", "tf32", "bf16" or "fp16"
    deterministic: bool = False
    space_to_batch: bool = False  # the CPU's atrous weight gradient (``takes_space_to_batch``)
    num_workers: int = 0
    threads: int = field(default_factory=torch.get_num_threads)

    @classmethod
    def of_run(cls, config: RunConfig) -> Runtime:
        """The runtime of a run configuration: its device, precision, atrous gradient path,
        loader workers and deterministic mode resolved."""
        device = resolve_device(config.device)
        return cls(device, resolve_precision(config.precision, device), config.deterministic,
                   takes_space_to_batch(config.atrous_gradient, device.type),
                   data_workers(config.num_workers, device))

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype of the network's autocast regions (``None``: fp32, or TF32)."""
        return PRECISION_DTYPES[self.precision]

    def loss_scaler(self) -> torch.amp.GradScaler:
        """A new loss scaler for the optimiser's steps: fp16's gradients underflow without one;
        in the other precisions it is a no-op."""
        return torch.amp.GradScaler(self.device.type,
                                    enabled=self.autocast_dtype == torch.float16)

    def apply(self) -> None:
        """Set the process-wide switches it needs: TF32, deterministic kernels, the allocator."""
        keep_freed_memory()
        if self.device.type == "cuda":  # torch's default allows TF32 in cuDNN's convolutions,
            # so even "fp32" must switch it off: the one place segdec sets TF32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = (
                self.precision == "tf32")
        set_deterministic(self.deterministic, self.device)

    def describe(self, atrous_weight_gradient: str) -> dict[str, str | int | bool | None]:
        """A stretch of ``runtime.json``: what decides a run's numbers besides its configuration.
        A run repeats to the last digit only with the same device, precision, atrous gradient
        path (the one the network takes, ``model.atrous_weight_gradient``), CPU kind and thread
        count, and on a GPU only in deterministic mode, on the same GPU, CUDA and cuDNN."""
        info: dict[str, str | int | bool | None] = {
            "device": str(self.device),
            "precision": self.precision,
            "atrous_weight_gradient": atrous_weight_gradient,
            "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_native_bf16": cpu_has_bf16_instructions(),
            "torch_threads": self.threads,
            "torch": torch.__version__,
            "freed_memory_kept": keep_freed_memory(),
            "deterministic": self.deterministic,
            "num_workers": self.num_workers,
        }
        if self.device.type == "cuda":
            info.update({
                "gpu": torch.cuda.get_device_name(self.device),
                "gpu_capability": ".".join(map(str, gpu_capability(self.device))),
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                "cudnn_deterministic": torch.backends.cudnn.deterministic,
                "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            })
        return info


@functools.cache
def keep_freed_memory() -> bool:
    """Make freed memory reusable by the next allocation instead of returning it to the OS.

    glibc serves every allocation above 32 MiB (smaller ones too, until it adapts) by a fresh
    ``mmap`` and unmaps it on free, so each large activation and gradient of a training step
    faults its pages in again. At Božič's 1408x512 that was half the step of the paper's network
    (``benchmarks/results.md``). This keeps all allocations in the heap and never trims it: the
    resident memory stays at its peak. Numbers are unchanged. Returns whether it took effect; a
    no-op without glibc, or with ``SEGDEC_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl builds)
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
