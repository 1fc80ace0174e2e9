"""segdec.runtime: the process-level settings: freed memory kept for reuse (glibc only), the atrous
gradient path by CPU."""

import os
import subprocess
import sys

import pytest

from segdec.config import RunConfig
from segdec.errors import ConfigError

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


@pytest.fixture
def gpu_switches(monkeypatch):
    """Restore the process-wide switches these tests set (TF32, cuDNN, determinism)."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) = saved[:4]
    torch.use_deterministic_algorithms(saved[4])


def fake_gpu(monkeypatch, capability, name="NVIDIA GPU", count=1):
    """CUDA as a GPU of this compute capability would show it; bf16 is "supported" everywhere,
    as torch.cuda.is_bf16_supported() says where it can be emulated."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    return torch.device("cuda", 0)


@pytest.mark.parametrize(("capability", "auto"), [((7, 0), "fp32"), ((7, 5), "fp32"),
                                                  ((8, 0), "tf32"), ((9, 0), "tf32")])
def test_auto_precision_is_fp32_with_tf32_from_ampere_on(monkeypatch, gpu_switches, capability,
                                                        auto):
    """V100 (7.0) and T4 (7.5) emulate bf16; A100 (8.0) and H100 (9.0) have it, and TF32. "auto"
    is never bf16: it cost KolektorSDD's maps 0.06 pixel AP (benchmarks/ksdd_precision.md)."""
    import torch

    from segdec import runtime

    gpu = fake_gpu(monkeypatch, capability)
    assert runtime.resolve_precision("auto", gpu) == auto
    resolved = runtime.Runtime(gpu, runtime.resolve_precision("auto", gpu))
    resolved.apply()
    assert resolved.autocast_dtype is None
    assert torch.backends.cuda.matmul.allow_tf32 is torch.backends.cudnn.allow_tf32 is (
        auto == "tf32")
    assert runtime.resolve_precision("fp16", gpu) == "fp16"
    if capability >= (8, 0):
        assert runtime.Runtime(gpu, runtime.resolve_precision("bf16", gpu)).autocast_dtype is (
            torch.bfloat16)
    else:
        with pytest.raises(ValueError, match=f"compute capability 8.0 or newer; cuda:0 has "
                                             f"{capability[0]}.{capability[1]}, where it is "
                                             "emulated: use precision fp16"):
            runtime.resolve_precision("bf16", gpu)


def test_the_cpu_bf16_probes_say_which_hardware_they_find():
    """Two probes with distinct names: AMX (bf16 faster than fp32) and any bf16 instruction
    (bf16 computed rather than emulated, not necessarily faster)."""
    import torch

    from segdec import runtime

    amx = torch.cpu._is_amx_tile_supported()
    assert runtime.cpu_has_amx() == (torch.backends.mkldnn.is_available() and amx)
    assert runtime.cpu_has_bf16_instructions() == (torch.cpu._is_avx512_bf16_supported() or amx)


def test_auto_precision_is_fp32_on_every_cpu(monkeypatch):
    import torch

    from segdec import runtime

    monkeypatch.setattr(runtime, "cpu_has_amx", lambda: True)
    assert runtime.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ValueError, match="cpu is not a GPU"):
        runtime.resolve_precision("tf32", torch.device("cpu"))


def test_fp32_switches_off_the_tf32_convolutions_torch_allows_by_default(monkeypatch,
                                                                       gpu_switches):
    import torch

    from segdec import runtime

    gpu = fake_gpu(monkeypatch, (8, 0))
    torch.backends.cudnn.allow_tf32 = True  # torch's default
    runtime.Runtime(gpu, "fp32").apply()
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize(("trained", "capability", "scored"), [
    ("tf32", None, "fp32"), ("tf32", (7, 5), "fp32"), ("tf32", (8, 0), "tf32"),
    ("bf16", (7, 5), "fp32"), ("bf16", (8, 6), "bf16"), ("bf16", None, "bf16"),
    ("fp16", (7, 5), "fp16"), ("fp32", (9, 0), "fp32")])
def test_scoring_keeps_the_trained_precision_where_the_device_has_it(monkeypatch, trained,
                                                                    capability, scored):
    import torch

    from segdec import runtime

    device = torch.device("cpu") if capability is None else fake_gpu(monkeypatch, capability)
    assert runtime.scoring_precision(trained, device) == scored


def test_a_numbered_gpu_becomes_the_current_one(monkeypatch):
    """Without set_device, cuDNN, cuBLAS and the allocator open a context on GPU 0 as well."""
    import torch

    from segdec import runtime

    fake_gpu(monkeypatch, (8, 0), count=4)
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert runtime.resolve_device("cuda:2") == torch.device("cuda", 2)
    assert runtime.resolve_device("cuda") == torch.device("cuda", 0)
    assert runtime.resolve_device("auto") == torch.device("cuda", 0)
    assert chosen == [2, 0, 0]
    with pytest.raises(ConfigError, match=r"sees 4 GPU\(s\), cuda:0 to cuda:3 "
                                           r"\(CUDA_VISIBLE_DEVICES=4,5,6,7\)"):
        runtime.resolve_device("cuda:4")


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_deterministic_mode_and_cudnn_autotuning(gpu_switches, device_type):
    import torch

    from segdec import runtime

    device = torch.device(device_type)
    runtime.set_deterministic(True, device)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    runtime.set_deterministic(False, device)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic
    assert torch.backends.cudnn.benchmark is (device_type == "cuda")


def test_runtime_json_records_the_gpu_settings_that_decide_its_numbers(monkeypatch,
                                                                       gpu_switches):
    import torch

    from segdec import runtime

    gpu = fake_gpu(monkeypatch, (7, 5), name="Tesla T4")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    resolved = runtime.Runtime.of_run(RunConfig(deterministic=True))
    assert resolved.device == gpu
    resolved.apply()
    info = resolved.describe("dilated")
    assert {k: info[k] for k in ("device", "precision", "gpu", "gpu_capability", "cuda", "cudnn",
                                 "tf32_matmul", "tf32_cudnn", "cudnn_benchmark",
                                 "cudnn_deterministic", "deterministic",
                                 "cublas_workspace_config", "num_workers")} == {
        "device": "cuda:0", "precision": "fp32", "gpu": "Tesla T4", "gpu_capability": "7.5",
        "cuda": "12.4", "cudnn": 90100, "tf32_matmul": False, "tf32_cudnn": False,
        "cudnn_benchmark": False, "cudnn_deterministic": True, "deterministic": True,
        "cublas_workspace_config": ":4096:8", "num_workers": min(4, os.cpu_count())}
    assert "gpu" not in runtime.Runtime(torch.device("cpu"), "fp32").describe("dilated")


def test_a_runs_runtime_is_resolved_once_from_its_configuration(monkeypatch):
    """Device, precision, atrous path, workers and threads, decided before the run starts, in
    one value that cannot change afterwards."""
    import dataclasses

    import torch

    from segdec.runtime import Runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = Runtime.of_run(RunConfig(atrous_gradient="space_to_batch", precision="bf16"))
    assert cpu == Runtime(torch.device("cpu"), "bf16", deterministic=False, space_to_batch=True,
                          num_workers=0, threads=torch.get_num_threads())
    assert cpu.autocast_dtype is torch.bfloat16
    assert Runtime.of_run(RunConfig(atrous_gradient="dilated", num_workers=2)) == Runtime(
        torch.device("cpu"), "fp32", num_workers=2)
    assert Runtime.of_run(RunConfig()).autocast_dtype is None
    # the loss scaler scales fp16's gradients only
    assert [Runtime(torch.device("cpu"), precision).loss_scaler().is_enabled()
            for precision in ("fp32", "bf16", "fp16")] == [False, False, True]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cpu.precision = "fp32"


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # more than this machine's
@pytest.mark.parametrize(("cores", "workers"), [(16, 4), (2, 2), (1, 1)])
def test_loaders_take_several_workers_on_a_gpu_and_none_on_a_cpu(monkeypatch, cores, workers):
    import torch

    from segdec.config import RunConfig
    from segdec.data.dataset import DefectDataset, TargetOptions
    from segdec.data.prepare import loader

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    dataset = DefectDataset([], [], TargetOptions(size=(32, 32)))
    assert RunConfig().num_workers is None
    gpu = loader(dataset, RunConfig(), torch.device("cuda"))
    assert gpu.num_workers == workers and gpu.pin_memory and gpu.persistent_workers
    assert loader(dataset, RunConfig(), torch.device("cpu")).num_workers == 0
    assert loader(dataset, RunConfig(num_workers=3), torch.device("cuda")).num_workers == 3


def test_space_to_batch_asked_for_on_a_gpu_is_ignored_with_a_warning():
    from segdec import runtime

    with pytest.warns(UserWarning, match="space_to_batch is a CPU path; on cuda the dilated"):
        assert runtime.takes_space_to_batch("space_to_batch", "cuda") is False
    assert runtime.takes_space_to_batch("space_to_batch", "cpu") is True


def test_the_declared_torch_floor_is_the_one_checked_and_has_the_apis_used():
    """pyproject.toml's torch floor is runtime.TORCH_FLOOR, and what segdec calls exists there:
    torch.is_autocast_enabled(device_type) (2.4) and torch.amp.GradScaler(device) (2.3)."""
    import re
    from pathlib import Path

    import torch

    from segdec.runtime import TORCH_FLOOR

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    (floor,) = re.findall(r'"torch>=(\d+)\.(\d+)"', pyproject)
    assert tuple(map(int, floor)) == TORCH_FLOOR == (2, 4)
    assert torch.is_autocast_enabled("cpu") is False
    assert torch.amp.GradScaler("cpu", enabled=False).state_dict() == {}


@pytest.mark.parametrize("version", ["2.3.1+cu121", "2.2.0", "1.13.1"])
def test_an_older_torch_is_refused_at_import_with_what_to_do(version):
    importing = f"import torch; torch.__version__ = {version!r}; import segdec.model"
    result = subprocess.run([sys.executable, "-c", importing], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"ImportError: segdec needs torch >= 2.4, but torch {version} is installed; upgrade it: "
        "pip install 'torch>=2.4'")


def test_newer_and_prerelease_torch_versions_pass():
    from segdec.runtime import check_torch

    for version in ("2.4.0", "2.4.0a0+git1234", "2.13.0+cpu", "3.0.0"):
        check_torch(version)
