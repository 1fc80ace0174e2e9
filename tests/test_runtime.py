"""The process-level runtime settings: freed memory kept for reuse (glibc only), the atrous
gradient path by CPU."""

import os
import subprocess
import sys

import pytest

# Allocates and frees 256 MiB, then prints whether the setting took effect and how much of the
# freed block the process still holds (MiB of resident memory above the start).
PROBE = """
import torch
from segdec.runtime import keep_freed_memory

def resident_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

kept = keep_freed_memory()
before = resident_mib()
block = torch.ones(64 * 2**20)  # 256 MiB, every page touched
del block
print(kept, round(resident_mib() - before))
"""


def probe(setting: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "SEGDEC_KEEP_FREED_MEMORY"}
    if setting is not None:
        env["SEGDEC_KEEP_FREED_MEMORY"] = setting
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[-2], int(out[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_kept_for_reuse_by_default():
    kept, held = probe(None)
    assert kept == "True"
    assert held >= 250  # the freed 256 MiB stay in the heap for the next allocation


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_goes_back_to_the_os_when_switched_off():
    kept, held = probe("0")
    assert kept == "False"
    assert held < 10  # glibc unmapped the block on free


@pytest.mark.parametrize(("capability", "auto"), [("AVX2", True), ("AVX512", False),
                                                  ("DEFAULT", False)])
def test_atrous_gradient_auto_takes_space_to_batch_only_where_it_was_measured_faster(
        monkeypatch, capability, auto):
    import torch

    from segdec import runtime

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert runtime.takes_space_to_batch("auto") is auto
    assert runtime.takes_space_to_batch("space_to_batch") is True
    assert runtime.takes_space_to_batch("dilated") is False
