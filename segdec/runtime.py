"""Where and how a network runs: the device, the autocast dtype and the process's allocator."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from pathlib import Path

import torch

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
KEEP_FREED_MEMORY_ENV = "SEGDEC_KEEP_FREED_MEMORY"


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available")
    return device


def cpu_has_fast_bf16() -> bool:
    """AMX tiles make bf16 convolutions several times faster than fp32; without them (AVX2, plain
    AVX-512) oneDNN's bf16 path is emulated and far slower than fp32 (``segdec bench`` shows it)."""
    return torch.backends.mkldnn.is_available() and torch.cpu._is_amx_tile_supported()


def space_to_batch_pays() -> bool:
    """Whether the space-to-batch weight gradient beats oneDNN's dilated kernel on this CPU.

    Measured (``benchmarks/results.md``): with AVX2 kernels it is faster (1.07-1.74x per step),
    with AVX-512 ones oneDNN's own is (1.08-1.23x). Elsewhere, unmeasured, the framework's own.
    ``ATEN_CPU_CAPABILITY`` (with ``ONEDNN_MAX_CPU_ISA``) moves a machine between the two.
    """
    return torch.backends.cpu.get_cpu_capability() == "AVX2"


def takes_space_to_batch(atrous_gradient: str) -> bool:
    """A run configuration's ``atrous_gradient`` ("auto", "space_to_batch", "dilated")."""
    if atrous_gradient == "auto":
        return space_to_batch_pays()
    return atrous_gradient == "space_to_batch"


def cpu_has_native_bf16() -> bool:
    """bf16 dot products in hardware (``avx512_bf16`` or AMX) rather than emulated in fp32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_runtime(device: torch.device, dtype: torch.dtype | None,
                     atrous_weight_gradient: str) -> dict[str, str | int | bool]:
    """What decides a run's numbers besides its configuration: a run repeats to the last digit
    only with the same device, precision, atrous gradient path, CPU kind and thread count."""
    info: dict[str, str | int | bool] = {
        "device": str(device),
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
        "atrous_weight_gradient": atrous_weight_gradient,
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "freed_memory_kept": keep_freed_memory(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision setting; ``None`` runs in fp32.

    "auto" is the fastest precision that keeps accuracy (``benchmarks/results.md``): bf16 on
    CUDA where supported (else fp16) and on CPUs with AMX, fp32 elsewhere.
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


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
