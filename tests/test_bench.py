"""The benchmark's helpers count and record the right things (no timing assertions)."""

import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from segdec.bench import (
    CSV_COLUMNS,
    BenchResults,
    BenchSettings,
    Variant,
    count_flops,
    runners,
    write_results,
)
from segdec.model import atrous_weight_gradient, build_model


def test_conv_flops_match_the_formula():
    conv = nn.Conv2d(16, 32, 5, padding=2, bias=False)
    x = torch.rand(2, 16, 40, 24)
    assert count_flops(lambda: conv(x)) == 2 * 2 * 16 * 32 * 5 * 5 * 40 * 24


def test_dilated_conv_counts_its_nine_taps_not_its_span():
    dilated = nn.Conv2d(8, 8, 3, padding=7, dilation=7, bias=False)
    assert count_flops(lambda: dilated(torch.rand(1, 8, 32, 32))) == 2 * 8 * 8 * 9 * 32 * 32


def test_the_paper_network_needs_about_six_times_fewer_flops():
    x = torch.rand(1, 1, 128, 128)
    original = count_flops(lambda: build_model("bozic")(x))
    paper = count_flops(lambda: build_model("paper")(x))
    assert 5 < original / paper < 8


def test_peak_memory_sees_a_large_allocation():
    """In a fresh process: once a test here has trained (segdec.runtime.keep_freed_memory), the
    freed heap stays resident and a new 64 MiB block reuses it without raising the peak."""
    probe = ("import torch\n"
             "from segdec.bench import peak_memory_mib\n"
             "def allocate():\n"
             "    torch.ones(64 * 2**20 // 4).sum()  # 64 MiB, written so that it is resident\n"
             "print(peak_memory_mib(allocate, torch.device('cpu')))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert float(out.split()[-1]) > 32


def fake_results() -> BenchResults:
    """One size, made-up timings with round ratios: what run_bench returns, without running it."""
    size = ("DAGM/4", 64, 96, 1)
    rows = [  # network, precision, channels_last, compiled, path; times and GFLOP; peak share
        ("original", "fp32", False, False, "none", 0.5, 3.0, 6.0, 18.0, 0.2),
        ("paper", "fp32", False, False, "space_to_batch", 0.1, 0.5, 1.0, 3.0, 0.5),
        ("paper", "fp32", False, False, "dilated", 0.1, 0.6, 1.0, 3.0, 0.4),
        ("paper", "fp32", True, False, "space_to_batch", 0.08, 0.4, 1.0, 3.0, 0.6),
    ]
    networks = pd.DataFrame(
        [(net, *size, precision, last, compiled, path, fwd, step, fwd_gflop, step_gflop,
          fwd_gflop / fwd, step_gflop / step, share, "fp32 torch.mm", 1 / step, 10.0, 20.0)
         for net, precision, last, compiled, path, fwd, step, fwd_gflop, step_gflop, share
         in rows], columns=CSV_COLUMNS)
    loader = pd.DataFrame({"height": 64, "width": 96, "workers": [0, 2, 2],
                           "cached": [False, False, True], "images_per_s": [1.0, 5.0, 3.0]})
    machine = {"cpu": "Fake CPU", "atrous gradient (auto)": "space_to_batch", "device": "cpu",
               "freed memory kept for reuse": "True"}
    return BenchResults(machine, {"fp32": 100.0, "bf16": 50.0}, networks, loader,
                        {"GroupNorm(C, C)": 1.5}, "op table", BenchSettings(sizes=(size[:3],)),
                        12.0)


def test_ratios_of_a_known_result_table():
    ratios = fake_results().ratios()
    assert (ratios["size"] == "DAGM/4 64x96").all()
    assert [(r, round(v, 3), t, met) for r, v, t, met in zip(
        ratios.ratio, ratios.value, ratios.target.fillna(-1), ratios.met, strict=True)] == [
        ("FLOP ratio original/paper (speed-up at equal efficiency)", 6.0, -1, ""),
        ("paper fp32 step speed-up over original fp32 step", 6.0, 5.5, "yes"),
        ("paper best step (fp32+channels_last+space_to_batch) speed-up over original fp32",
         7.5, -1, ""),
        ("paper best forward (fp32+channels_last+space_to_batch) speed-up over original fp32",
         6.25, -1, ""),
        ("original fp32 step: share of fp32 matmul peak", 0.2, -1, ""),
        ("paper fp32 step: share of fp32 matmul peak", 0.5, 0.65, "NO"),
        ("paper fp32 step: auto atrous gradient (space_to_batch) over dilated", 1.2, -1, ""),
        ("paper fp32 step (dilated): share of fp32 matmul peak", 0.4, -1, ""),
        ("loader (2 workers, decoding) over paper's best training rate", 2.0, 2.0, "yes"),
        ("loader (2 workers, cached) over paper's best training rate", 1.2, 2.0, "NO"),
    ]


def test_results_markdown_and_csv_of_a_known_result_table(tmp_path):
    results = fake_results()
    path = write_results(results, tmp_path, "segdec bench --test")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), results.networks)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# segdec bench", "", "Produced by `segdec bench --test` in 12 s; batch "
                         "size 1, medians of 3 repetitions after 1 warm-up. Ratios compare "
                         "timings of this same run."]
    assert [line for line in lines if line.startswith("## ")] == [
        "## Machine", "## Measured matrix-multiply peak (torch.mm)",
        "## Targets (ratios from this run)", "## Networks",
        "## Data pipeline (decode, resize, mask downsampling; synthetic 1600x256 JPEGs)",
        "## Normalisation (forward + backward, ms, [1, 32, 256, 256])",
        "## Profile: the paper's fp32 training step at DAGM/4 64x96"]
    for row in ("| cpu | Fake CPU |", "| fp32 | 100.0 |", "| GroupNorm(C, C) | 1.5 |",
                "op table"):
        assert row in lines
    table = [line.replace(" ", "") for line in lines if line.startswith("| paper")]
    assert table[2].startswith("|paper|DAGM/4|fp32+channels_last+space_to_batch|64|96|1|0.08|0.4|")
    assert "SEGDEC_KEEP_FREED_MEMORY=0 segdec bench measures them." in path.read_text()
    assert any("| paper fp32 step: share of fp32 matmul peak" in line and "| NO" in line
               for line in lines)


def test_targets_without_a_target_show_a_dash_not_nan(tmp_path):
    text = write_results(fake_results(), tmp_path, "segdec bench --test").read_text()
    assert "nan" not in text
    rows = [line.replace(" ", "") for line in text.splitlines() if "FLOP ratio" in line]
    assert rows == ["|DAGM/464x96|FLOPratiooriginal/paper(speed-upatequalefficiency)|6.00|-||"]


def fake_matmul(monkeypatch, seconds_per_product: float) -> list:
    """torch.mm replaced by one that advances bench's clock by ``seconds_per_product`` and records
    (n, dtype, TF32 matmuls allowed) per call; CUDA synchronisation and placement are no-ops."""
    from segdec import bench

    now, calls = [0.0], []

    def mm(a, b):
        calls.append((a.shape[0], a.dtype, torch.backends.cuda.matmul.allow_tf32))
        now[0] += seconds_per_product
        return a

    real_randn = torch.randn
    monkeypatch.setattr(torch, "mm", mm)
    monkeypatch.setattr(torch, "randn", lambda *size, device=None: real_randn(*size))
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(bench, "synchronize", lambda device: None)
    return calls


def test_the_peak_is_timed_over_enough_products_to_pass_the_floor(monkeypatch):
    """A fast device (2**-10 s per product, as a GPU's 4096s): sizes grow to the largest, then
    each of the 5 timings covers 256 products, the floor of 0.25 s, not one."""
    from segdec.bench import matmul_peak_gflops

    calls = fake_matmul(monkeypatch, 2**-10)
    rate = matmul_peak_gflops("fp32", torch.device("cpu"), min_seconds=0.25, max_n=512)
    assert [n for n, _, _ in calls].count(256) == 1 + 5  # warm-up + 5 single products
    assert [n for n, _, _ in calls].count(512) == 1 + 5 + 5 * 256
    assert rate == 2 * 512**3 / 2**-10 / 1e9


def test_the_cpu_peak_is_timed_as_before(monkeypatch):
    """On a CPU one product of >= 50 ms is the timing, as before: no repeated block."""
    from segdec.bench import matmul_peak_gflops

    calls = fake_matmul(monkeypatch, 0.0625)
    rate = matmul_peak_gflops("fp32", torch.device("cpu"))
    assert [n for n, _, _ in calls] == [256] * 6
    assert rate == 2 * 256**3 / 0.0625 / 1e9


@pytest.mark.parametrize(("precision", "dtype", "tf32"), [
    ("fp32", torch.float32, False), ("tf32", torch.float32, True),
    ("bf16", torch.bfloat16, False)])
def test_the_peak_on_a_gpu_is_timed_in_the_steps_math_mode(monkeypatch, precision, dtype, tf32):
    from segdec.bench import matmul_peak_gflops

    calls = fake_matmul(monkeypatch, 2**-10)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = not tf32  # the step's setting, the other way round
    try:
        matmul_peak_gflops(precision, torch.device("cuda"), max_n=256)
        assert torch.backends.cuda.matmul.allow_tf32 is (not tf32)  # restored for the step
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    assert set(calls) == {(256, dtype, tf32)}


def test_the_gpu_peak_is_timed_for_at_least_0_3_s_on_products_up_to_the_memory(monkeypatch):
    from segdec import bench

    calls = fake_matmul(monkeypatch, 2**-10)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2**31, 2**34))  # 2 GiB free
    assert bench.largest_matmul("fp32", torch.device("cuda")) == 8192  # 3 x 768 MiB > 1 GiB
    assert bench.largest_matmul("bf16", torch.device("cuda")) == 8192  # 3 x 512 MiB > 1 GiB
    assert bench.largest_matmul("fp32", torch.device("cpu")) == 4096
    monkeypatch.setattr(bench, "largest_matmul", lambda precision, device: 512)
    bench.matmul_peak_gflops("fp32", torch.device("cuda"))
    # 0.3 s of 2**-10 s products: 308 (ceil(307.2)) in each of the 5 timed blocks
    assert [n for n, _, _ in calls].count(512) == 1 + 5 + 5 * 308


def test_a_gpu_of_compute_capability_8_times_its_default_tf32_and_bf16(monkeypatch):
    from segdec import bench, runtime

    monkeypatch.setattr(runtime, "gpu_capability", lambda device: (8, 0))
    paper = bench.variants(torch.device("cuda"), BenchSettings())["paper"]
    assert [(v.precision, v.channels_last) for v in paper] == [
        ("fp32", False), ("fp32", True), ("tf32", False), ("tf32", True), ("bf16", False),
        ("bf16", True)]


@pytest.mark.parametrize(("network", "atrous_gradient", "path"), [
    ("paper", "space_to_batch", "space_to_batch"), ("paper", "dilated", "dilated"),
    ("original", "space_to_batch", "none")])
def test_each_variant_runs_on_its_atrous_gradient_path(network, atrous_gradient, path):
    model = runners(network, 64, 64, Variant(atrous_gradient=atrous_gradient), 1,
                    torch.device("cpu"))[0]
    assert atrous_weight_gradient(model, "cpu", autocast=False) == path


def test_bf16_is_timed_where_the_cpu_has_it_in_hardware(monkeypatch):
    from segdec import bench, runtime

    monkeypatch.setattr(runtime, "cpu_has_amx", lambda: False)  # "auto" is fp32 here
    cpu, settings = torch.device("cpu"), BenchSettings()
    for native, precisions in ((False, {"fp32"}), (True, {"fp32", "bf16"})):
        monkeypatch.setattr(bench, "cpu_has_bf16_instructions", lambda native=native: native)
        paper = bench.variants(cpu, settings)["paper"]
        assert {v.precision for v in paper} == precisions


def severstal_estimate(monkeypatch):
    """benchmarks/severstal_estimate.py, imported (it runs only as a script's ``__main__``)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "severstal_estimate.py"
    spec = importlib.util.spec_from_file_location("severstal_estimate", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # where its dataclass is looked up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("precision", "workers", "dtype"), [
    ("auto", None, None), ("bf16", 1, torch.bfloat16)])
def test_the_severstal_estimate_times_a_runs_loader_and_precision(tmp_path, monkeypatch,
                                                                  precision, workers, dtype):
    """Its epoch reads synthetic Severstal-layout images through the run's loader (the run's
    num_workers: none on a CPU by default) in the run's resolved precision ("auto" is fp32 on a
    CPU), and ends in the epoch's mean losses."""
    from torch.utils.data import DataLoader

    from segdec.config import RunConfig

    config = RunConfig(device="cpu", precision=precision, num_workers=workers, batch_size=2,
                       input_height=64, input_width=128)
    timer = severstal_estimate(monkeypatch).epoch_timer(config, tmp_path, steps=2)
    assert (timer.precision, timer.dtype) == (precision.replace("auto", "fp32"), dtype)
    assert isinstance(timer.loader, DataLoader)
    assert (timer.loader.num_workers, timer.loader.batch_size) == (workers or 0, 2)
    assert timer.images == len(timer.loader.sampler) == 4
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["train.csv", "train_images"]
    if workers is None:  # one epoch, in process: 2 steps of 2 images of 128x64
        seg, dec, total = timer.epoch()
        assert seg > 0 and dec > 0 and total > 0
