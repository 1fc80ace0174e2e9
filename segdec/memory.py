"""Whether a training run's activations can fit in the memory of its device, checked before the
run writes anything (a 16384x16384 input would otherwise be accepted and fail on memory later).

The estimate counts the tensors a training step keeps for its backward pass, which grow with
the pixels of a batch; the weights (a few MiB) and the optimiser are left out. It is a lower
bound, so it refuses only runs that cannot fit.
"""

from __future__ import annotations

import os

import torch

from segdec.config import RunConfig
from segdec.errors import ConfigError

# Bytes kept for backward per input pixel of one image (every distinct storage that
# torch.autograd.graph.saved_tensors_hooks sees in a forward of the default network of each
# architecture at 256x256, batch 2; 128x128 and 256x512 gave within 6%), in fp32 and under
# bf16/fp16 autocast (where normalisations and sigmoids still keep fp32 tensors).
SAVED_BYTES_PER_PIXEL = {("described", False): 1613, ("described", True): 859,
                         ("released", False): 2253, ("released", True): 1475}


def training_bytes(config: RunConfig, half_precision: bool) -> int:
    """A lower bound on the memory one training step of ``config`` needs for activations."""
    pixels = config.input_height * config.input_width * config.batch_size
    return pixels * SAVED_BYTES_PER_PIXEL[config.architecture, half_precision]


def device_memory(device: torch.device) -> int | None:
    """The memory of ``device`` in bytes: the GPU's, or the machine's physical memory for a
    CPU; None where the system does not say."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system that reports it
        return None


def check_training_memory(config: RunConfig, device: torch.device,
                          dtype: torch.dtype | None) -> None:
    """Refuse a run whose activations alone exceed the memory of ``device``."""
    needed, available = training_bytes(config, dtype is not None), device_memory(device)
    if available is not None and needed > available:
        raise ConfigError(
            f"training at {config.input_width}x{config.input_height} with batch_size="
            f"{config.batch_size} needs at least {needed / 2**30:.1f} GiB for activations, more "
            f"than the {available / 2**30:.1f} GiB of memory of {device}; lower input_height and "
            "input_width or batch_size")
