"""Where and in which precision a network runs: the device and the autocast dtype."""

from __future__ import annotations

import torch


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
