"""segdec bench's timing core and the studies under benchmarks/ count, time and record the right
things (no assertion on a real timing)."""

import functools
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.benchmark import Timer

from segdec import bench
from segdec.bench import BenchResults, BenchSettings, Variant, count_flops, runners
from segdec.cli import main
from segdec.model import atrous_weight_gradient, build_model

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def benchmark_script(name: str, monkeypatch):
    """benchmarks/NAME.py, imported (it runs only as a script's ``__main__``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # where its dataclasses are looked up
    spec.loader.exec_module(module)
    return module


def fake_clock(monkeypatch) -> list[float]:
    """segdec.bench's Timers read a clock that only the test advances (now[0], in seconds)."""
    now = [0.0]
    monkeypatch.setattr(bench, "Timer", functools.partial(Timer, timer=lambda: now[0]))
    return now


# ---- the timing core ----------------------------------------------------------------------------
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


@pytest.mark.parametrize(("durations", "max_run_time", "calls", "median"), [
    ([0.5, 3.0, 3.0, 3.0, 3.0, 3.0], 20.0, 5, 3.0),  # steady: 4 blocks after the warm-up suffice
    ([0.5] + [1.0, 2.0] * 10, 6.0, 6, 1.0),  # a 2x spread: blocks until 6 s are spent
    ([0.5, 4.0, 4.0, 4.0], 6.0, 3, 4.0),  # slow: the limit ends it before 4 blocks
])
def test_median_seconds_within_is_timers_adaptive_median_on_the_runs_threads(
        monkeypatch, durations, max_run_time, calls, median):
    """The first call is Timer's block-size estimate (the warm-up), not timed; every call runs on
    this process's threads (Timer's default is one)."""
    now = fake_clock(monkeypatch)
    pending, threads = iter(durations), []

    def work() -> None:
        threads.append(torch.get_num_threads())
        now[0] += next(pending)

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert bench.median_seconds_within(work, max_run_time) == median
    finally:
        torch.set_num_threads(before)
    assert threads == [3] * calls


@pytest.mark.parametrize(("network", "atrous_gradient", "path"), [
    ("paper", "space_to_batch", "space_to_batch"), ("paper", "dilated", "dilated"),
    ("original", "space_to_batch", "none")])
def test_each_variant_runs_on_its_atrous_gradient_path(network, atrous_gradient, path):
    model = runners(network, 64, 64, Variant(atrous_gradient=atrous_gradient), 1,
                    torch.device("cpu"))[0]
    assert atrous_weight_gradient(model, "cpu", autocast=False) == path


def test_segdec_bench_times_both_networks_in_the_runs_default_and_writes_them(monkeypatch,
                                                                              tmp_path, capsys):
    """``segdec bench --quick --out DIR`` at the smallest input (64x64, its quick sizes replaced):
    both networks in the runtime a run takes here (fp32 and this CPU's atrous path on a CPU), the
    FLOPs torch counts, and bench.md / bench.csv with what it printed."""
    from segdec.runtime import takes_space_to_batch

    monkeypatch.setattr(bench, "QUICK", BenchSettings(sizes=(("tiny", 64, 64),),
                                                      max_run_time=0.01))
    assert main(["bench", "--quick", "--out", str(tmp_path), "--device", "cpu"]) == 0
    frame = pd.read_csv(tmp_path / "bench.csv")
    assert frame.columns.tolist() == bench.COLUMNS
    auto_path = "space_to_batch" if takes_space_to_batch("auto") else "dilated"
    assert frame[["network", "dataset", "height", "width", "precision",
                  "atrous_gradient"]].values.tolist() == [
        ["original", "tiny", 64, 64, "fp32", "none"], ["paper", "tiny", 64, 64, "fp32", auto_path]]
    assert frame.forward_gflop.tolist() == [2.844451204, 0.420113796]
    assert frame.step_gflop.tolist() == [8.513577612, 1.253222028]
    pd.testing.assert_series_equal(frame.train_images_per_s, 1 / frame.step_s,
                                   check_names=False)
    text = (tmp_path / "bench.md").read_text()
    assert text.splitlines()[2].startswith(
        f"Produced by `segdec bench --quick --out {tmp_path} --device cpu` in ")
    assert text in capsys.readouterr().out


def fake_bench() -> BenchResults:
    """Two networks at one size with made-up round timings, as run_bench returns them."""
    rows = [("original", 0.5, 3.0, 6.0, 18.0), ("paper", 0.1, 0.5, 1.0, 3.0)]
    networks = pd.DataFrame(
        [(net, "DAGM/4", 64, 96, 1, "fp32", "none" if net == "original" else "dilated", fwd, step,
          fwd_gflop, step_gflop, fwd_gflop / fwd, step_gflop / step, 1 / step, 10.0, 20.0)
         for net, fwd, step, fwd_gflop, step_gflop in rows], columns=bench.COLUMNS)
    machine = {"cpu": "Fake CPU", "device": "cpu"}
    return BenchResults(machine, networks, BenchSettings(max_run_time=2.5), 12.0)


def test_bench_markdown_of_a_known_result_table():
    lines = fake_bench().markdown("segdec bench --test").splitlines()
    assert lines[:3] == ["# segdec bench", "", "Produced by `segdec bench --test` in 12 s; batch "
                         "size 1; medians of torch.utils.benchmark.Timer's adaptive_autorange (at "
                         "most 2.5 s per timing)."]
    assert [line for line in lines if line.startswith("## ")] == [
        "## Machine", "## The paper's network over the original (speed-up, FLOP ratio)",
        "## Networks"]
    assert "| cpu | Fake CPU |" in lines
    speedups = [line.replace(" ", "") for line in lines if line.startswith("| DAGM/4")]
    assert speedups == ["|DAGM/4|64|96|6.00|5.00|6.00|"]
    table = [line.replace(" ", "") for line in lines if line.startswith("| paper")]
    assert table == ["|paper|DAGM/4|64|96|1|fp32|dilated|0.1|0.5|1|3|10|6|2|10|20|"]


# ---- the speed study (benchmarks/speed_study.py) ------------------------------------------------
@pytest.fixture
def study(monkeypatch):
    return benchmark_script("speed_study", monkeypatch)


def fake_results(study):
    """One size, made-up timings with round ratios: what run_study returns, without running it."""
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
         in rows], columns=study.CSV_COLUMNS)
    loader = pd.DataFrame({"height": 64, "width": 96, "workers": [0, 2, 2],
                           "cached": [False, False, True], "images_per_s": [1.0, 5.0, 3.0]})
    machine = {"cpu": "Fake CPU", "atrous gradient (auto)": "space_to_batch", "device": "cpu",
               "freed memory kept for reuse": "True"}
    return study.StudyResults(machine, {"fp32": 100.0, "bf16": 50.0}, networks, loader,
                              {"GroupNorm(C, C)": 1.5}, "op table",
                              study.StudySettings(sizes=(size[:3],)), 12.0)


def test_ratios_of_a_known_result_table(study):
    ratios = fake_results(study).ratios()
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


def test_results_markdown_and_csv_of_a_known_result_table(study, tmp_path):
    results = fake_results(study)
    path = study.write_results(results, tmp_path, "python benchmarks/speed_study.py --test")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), results.networks)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# segdec speed study", "", "Produced by `python benchmarks/speed_study"
                         ".py --test` in 12 s; batch size 1; forward: medians of torch.utils."
                         "benchmark.Timer's adaptive_autorange (at most 10 s), step: median of 3 "
                         "single steps after 1 warm-up. Ratios compare timings of this same run."]
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
    assert "SEGDEC_KEEP_FREED_MEMORY=0 measures them." in path.read_text()
    assert any("| paper fp32 step: share of fp32 matmul peak" in line and "| NO" in line
               for line in lines)


def test_targets_without_a_target_show_a_dash_not_nan(study, tmp_path):
    text = study.write_results(fake_results(study), tmp_path, "test").read_text()
    assert "nan" not in text
    rows = [line.replace(" ", "") for line in text.splitlines() if "FLOP ratio" in line]
    assert rows == ["|DAGM/464x96|FLOPratiooriginal/paper(speed-upatequalefficiency)|6.00|-||"]


def fake_matmul(monkeypatch, seconds_per_product: float) -> list:
    """torch.mm replaced by one that advances the Timers' clock by ``seconds_per_product`` and
    records (n, dtype, TF32 matmuls allowed) per call; placement on a device is a no-op."""
    now, calls = fake_clock(monkeypatch), []

    def mm(a, b):
        calls.append((a.shape[0], a.dtype, torch.backends.cuda.matmul.allow_tf32))
        now[0] += seconds_per_product
        return a

    real_randn = torch.randn
    monkeypatch.setattr(torch, "mm", mm)
    monkeypatch.setattr(torch, "randn", lambda *size, device=None: real_randn(*size))
    return calls


def test_the_peak_is_timed_over_enough_products_to_pass_the_floor(study, monkeypatch):
    """A fast device (2**-10 s per product, as a GPU's 4096s): sizes grow to the largest, each
    timed by blocked_autorange over 0.25 s: one product to size the blocks, then 256 blocks."""
    calls = fake_matmul(monkeypatch, 2**-10)
    rate = study.matmul_peak_gflops("fp32", torch.device("cpu"), min_run_time=0.25, max_n=512)
    assert [n for n, _, _ in calls] == [256] * (1 + 256) + [512] * (1 + 256)
    assert rate == 2 * 512**3 / 2**-10 / 1e9


def test_the_cpu_peak_stops_growing_at_a_50_ms_product(study, monkeypatch):
    """On a CPU a product of >= 50 ms is both the block-size estimate and the one timed block."""
    calls = fake_matmul(monkeypatch, 0.0625)
    rate = study.matmul_peak_gflops("fp32", torch.device("cpu"))
    assert [n for n, _, _ in calls] == [256] * 2
    assert rate == 2 * 256**3 / 0.0625 / 1e9


@pytest.mark.parametrize(("precision", "dtype", "tf32"), [
    ("fp32", torch.float32, False), ("tf32", torch.float32, True),
    ("bf16", torch.bfloat16, False)])
def test_the_peak_on_a_gpu_is_timed_in_the_steps_math_mode(study, monkeypatch, precision, dtype,
                                                           tf32):
    calls = fake_matmul(monkeypatch, 2**-10)
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = not tf32  # the step's setting, the other way round
    try:
        study.matmul_peak_gflops(precision, torch.device("cuda"), max_n=256)
        assert torch.backends.cuda.matmul.allow_tf32 is (not tf32)  # restored for the step
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    assert set(calls) == {(256, dtype, tf32)}


def test_the_gpu_peak_is_timed_for_at_least_0_3_s_on_products_up_to_the_memory(study,
                                                                                 monkeypatch):
    calls = fake_matmul(monkeypatch, 2**-10)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (2**31, 2**34))  # 2 GiB free
    assert study.largest_matmul("fp32", torch.device("cuda")) == 8192  # 3 x 768 MiB > 1 GiB
    assert study.largest_matmul("bf16", torch.device("cuda")) == 8192  # 3 x 512 MiB > 1 GiB
    assert study.largest_matmul("fp32", torch.device("cpu")) == 4096
    monkeypatch.setattr(study, "largest_matmul", lambda precision, device: 512)
    study.matmul_peak_gflops("fp32", torch.device("cuda"))
    # 0.3 s of 2**-10 s products: 308 (ceil(307.2)) blocks of one, after the one that sizes them
    assert [n for n, _, _ in calls].count(512) == 1 + 308


def test_a_gpu_of_compute_capability_8_times_its_default_tf32_and_bf16(study, monkeypatch):
    from segdec import runtime

    monkeypatch.setattr(runtime, "gpu_capability", lambda device: (8, 0))
    paper = study.variants(torch.device("cuda"), study.StudySettings())["paper"]
    assert [(v.precision, v.channels_last) for v in paper] == [
        ("fp32", False), ("fp32", True), ("tf32", False), ("tf32", True), ("bf16", False),
        ("bf16", True)]


def test_bf16_is_timed_where_the_cpu_has_it_in_hardware(study, monkeypatch):
    from segdec import runtime

    monkeypatch.setattr(runtime, "cpu_has_amx", lambda: False)  # "auto" is fp32 here
    cpu, settings = torch.device("cpu"), study.StudySettings()
    for native, precisions in ((False, {"fp32"}), (True, {"fp32", "bf16"})):
        monkeypatch.setattr(study, "cpu_has_bf16_instructions", lambda native=native: native)
        paper = study.variants(cpu, settings)["paper"]
        assert {v.precision for v in paper} == precisions


# ---- the Severstal estimate (benchmarks/severstal_estimate.py) ----------------------------------
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
    estimate = benchmark_script("severstal_estimate", monkeypatch)
    timer = estimate.epoch_timer(config, tmp_path, steps=2)
    assert (timer.precision, timer.dtype) == (precision.replace("auto", "fp32"), dtype)
    assert isinstance(timer.loader, DataLoader)
    assert (timer.loader.num_workers, timer.loader.batch_size) == (workers or 0, 2)
    assert timer.images == len(timer.loader.sampler) == 4
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["train.csv", "train_images"]
    if workers is None:  # one epoch, in process: 2 steps of 2 images of 128x64
        seg, dec, total = timer.epoch()
        assert seg > 0 and dec > 0 and total > 0


# ---- the banded set (benchmarks/tile_set.py) ---------------------------------------------------
def test_a_set_cut_into_bands_keeps_its_items_and_labels_each_band_by_its_mask(tmp_path,
                                                                               monkeypatch):
    """KolektorSDD's layout (40x24 images, the defect on rows 10-19) in 3 bands of 13, 13 and 14
    rows: the two defective images give 4 defective bands, each in its item's folder (which the
    folder format keeps in one split where an item is at most a tenth of the set)."""
    from layouts import DEFECT, write_layout

    from segdec.data.folder import read_folder
    from segdec.data.images import load_mask

    tiles = benchmark_script("tile_set", monkeypatch)
    assert tiles.band_rows(40, 3) == [(0, 13), (13, 26), (26, 40)]
    write_layout("ksdd", tmp_path / "ksdd")
    counts = tiles.cut(tmp_path / "ksdd", tmp_path / "bands", 3)
    assert counts == {"images": 18, "defective": 4}
    samples = {s.name: s for s in read_folder(tmp_path / "bands")}
    assert len(samples) == 18 and not (tmp_path / "bands.partial").exists()
    assert {n for n, s in samples.items() if s.label} == {
        "kos01/Part0_b0.png", "kos01/Part0_b1.png", "kos03/Part1_b0.png", "kos03/Part1_b1.png"}
    band1 = load_mask(samples["kos01/Part0_b1.png"].mask_path, (13, 24))
    assert band1.sum() == 7 * 5 and band1[:7, DEFECT[1]].all()  # rows 13-19 of the defect


def test_a_set_is_not_cut_over_an_existing_folder_or_without_masks(tmp_path, monkeypatch):
    from layouts import write_layout

    tiles = benchmark_script("tile_set", monkeypatch)
    write_layout("ksdd", tmp_path / "ksdd")
    (tmp_path / "bands").mkdir()
    with pytest.raises(SystemExit, match="bands exists; remove it"):
        tiles.cut(tmp_path / "ksdd", tmp_path / "bands", 3)
    write_layout("masks-beside", tmp_path / "beside")
    with pytest.raises(SystemExit, match=r"4 image\(s\) without a mask .*band's label cannot"):
        tiles.cut(tmp_path / "beside", tmp_path / "new", 3)
    assert not (tmp_path / "new").exists() and not (tmp_path / "new.partial").exists()


# ---- the time-budget table (benchmarks/time_budget.py) -----------------------------------------
def _budget_record(root: Path, name: str, seed: int, budget: float | None, ap: float,
                   stretches: int = 1) -> None:
    import json

    import yaml

    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({
        "data_root": "bands", "seed": seed, "time_budget": budget, "input_width": 96,
        "input_height": 64, "epochs": 25 if budget is None else 12}))
    (run / "metrics.json").write_text(json.dumps({"ap": ap, "auc": 0.9, "fp": 0, "fn": 1,
                                                  "pixel_ap_1_8": 0.5}))
    (run / "timing.json").write_text(json.dumps(
        [{"estimated_s": 660.0, "actual_s": 600.0 if budget else 1200.0,
          "budget": {"configured": {"planned_s": 1320.0}} if budget else None}] * stretches))


def test_the_budget_table_pairs_each_budget_run_with_the_default_of_its_seed(tmp_path):
    """The 20-minute verdict is the mean of the seeds' paired differences (-0.030 and +0.000:
    -0.015, within 0.02), not one seed's, and each row's AP - default is against its own seed's
    default."""
    for seed, default_ap, budget_ap in ((0, 0.80, 0.77), (1, 0.75, 0.75)):
        _budget_record(tmp_path, f"default-{seed}", seed, None, default_ap)
        _budget_record(tmp_path, f"20m-{seed}", seed, 1200.0, budget_ap)
    done = subprocess.run([sys.executable, str(BENCHMARKS / "time_budget.py"), str(tmp_path)],
                          capture_output=True, text=True, check=True).stdout
    assert ("| 20m-0 | 0 | 20.0 min | 96x64 | 12 | 0.770 | 0.900 | 0, 1 | 0.500 | 10.0 min "
            "| +10 % | -0.030 |") in done
    assert "| 20m-1 | 1 | 20.0 min | 96x64 | 12 | 0.750 |" in done and "| +0.000 |" in done
    assert ("- bands: the 20 min budget is -0.015 AP from the default, the mean of 2 seeds' "
            "paired differences (-0.030, +0.000) (meets the target of 0.02).") in done
    assert "- Estimates: 2 of 4 within 20 % of the time taken." in done
    assert ("as the budget runs planned it before training: 22.0 min, 22.0 min; it took "
            "20.0 min, 20.0 min.") in done


def test_the_budget_table_refuses_a_resumed_run(tmp_path):
    _budget_record(tmp_path, "resumed", 0, None, 0.8, stretches=2)
    refused = subprocess.run([sys.executable, str(BENCHMARKS / "time_budget.py"), str(tmp_path)],
                             capture_output=True, text=True)
    assert refused.returncode == 1
    assert "resumed/timing.json: a resumed or unfinished run (2 stretches)" in refused.stderr
