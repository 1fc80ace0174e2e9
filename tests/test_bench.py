"""The benchmark's helpers count and record the right things (no timing assertions)."""

import pandas as pd
import torch
from torch import nn

from segdec.bench import (
    CSV_COLUMNS,
    BenchSettings,
    count_flops,
    peak_memory_mib,
    run_bench,
    write_results,
)
from segdec.model import build_model


def test_conv_flops_match_the_formula():
    conv = nn.Conv2d(16, 32, 5, padding=2, bias=False)
    x = torch.rand(2, 16, 40, 24)
    assert count_flops(lambda: conv(x)) == 2 * 2 * 16 * 32 * 5 * 5 * 40 * 24


def test_dilated_conv_counts_its_nine_taps_not_its_span():
    dilated = nn.Conv2d(8, 8, 3, padding=7, dilation=7, bias=False)
    assert count_flops(lambda: dilated(torch.rand(1, 8, 32, 32))) == 2 * 8 * 8 * 9 * 32 * 32


def test_the_paper_network_needs_about_six_times_fewer_flops():
    x = torch.rand(1, 1, 128, 128)
    original = count_flops(lambda: build_model(False, False)(x))
    paper = count_flops(lambda: build_model(True, True)(x))
    assert 5 < original / paper < 8


def test_peak_memory_sees_a_large_allocation():
    def allocate():
        torch.ones(64 * 2**20 // 4).sum()  # 64 MiB, written so that it is resident

    assert peak_memory_mib(allocate, torch.device("cpu")) > 32


def test_tiny_bench_writes_csv_and_markdown(tmp_path):
    settings = BenchSettings(sizes=(("Severstal/16", 64, 96),), warmup=0, repeats=1,
                             loader_images=4)
    results = run_bench(settings, torch.device("cpu"), log=lambda line: None)
    path = write_results(results, tmp_path, "segdec bench --test")
    frame = pd.read_csv(tmp_path / "results.csv")
    assert list(frame.columns) == CSV_COLUMNS
    assert set(frame.network) == {"original", "paper"}
    assert set(frame.atrous_gradient[frame.network == "paper"]) == {"space_to_batch", "dilated"}
    assert set(frame.atrous_gradient[frame.network == "original"]) == {"none"}
    assert (frame.forward_gflop > 0).all() and (frame.step_gflop > frame.forward_gflop).all()
    ratios = results.ratios()
    assert ratios["size"].eq("Severstal/16 64x96").all() and ratios.value.gt(0).all()
    auto = results.machine["atrous gradient (auto)"]
    other = {"space_to_batch": "dilated", "dilated": "space_to_batch"}[auto]
    assert f"paper fp32 step: auto atrous gradient ({auto}) over {other}" in set(ratios.ratio)
    text = path.read_text()
    for heading in ("## Machine", "## Targets", "## Networks", "## Data pipeline", "torch.mm",
                    "## Profile", "convolution"):
        assert heading in text


def test_bf16_is_timed_where_the_cpu_has_it_in_hardware(monkeypatch):
    from segdec import bench, runtime

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)  # "auto" is fp32 here
    cpu, settings = torch.device("cpu"), BenchSettings()
    for native, precisions in ((False, {"fp32"}), (True, {"fp32", "bf16"})):
        monkeypatch.setattr(bench, "cpu_has_native_bf16", lambda native=native: native)
        paper = bench.variants(cpu, settings)["paper"]
        assert {v.precision for v in paper} == precisions
