"""segdec.timing: the run-time arithmetic and its lines: the estimate, a run's and a batch's
progress."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np

from segdec import timing
from segdec.timing import (
    RunEstimate,
    batch_progress,
    duration,
    median_seconds_of,
    record_actual,
    record_estimate,
    run_progress,
    steps_per_epoch,
    validations,
)

SEVERSTAL = RunEstimate(epochs=25, steps=558, step_s=0.32, validations=5, validate_every=5,
                        val_images=1000, test_images=2400, image_s=0.036)


def test_durations_read_as_seconds_minutes_or_hours():
    assert [duration(s) for s in (40, 89, 90, 720, 5399, 5400, 11520)] == [
        "40 s", "89 s", "2 min", "12 min", "90 min", "1.5 h", "3.2 h"]


def test_validations_are_every_nth_epoch_and_the_last():
    assert validations(0, 25, 5) == 5
    assert validations(0, 10, 3) == 4  # epochs 3, 6, 9 and 10
    assert validations(7, 10, 3) == 2  # a resumed run: epochs 9 and 10
    assert validations(10, 10, 3) == 0


def test_the_estimate_adds_training_validation_and_test():
    assert SEVERSTAL.train_s == 25 * 558 * 0.32  # 4464 s
    assert SEVERSTAL.validation_s == 5 * 1000 * 0.036  # 180 s
    assert SEVERSTAL.total_s == 4464 + 180 + 2400 * 0.036
    assert SEVERSTAL.line("2 threads, cpu, fp32") == (
        "estimate: 25 epochs x 558 steps ≈ 74 min on this machine (2 threads, cpu, fp32); "
        "validation every 5 epochs ≈ 3 min; test ≈ 86 s; in all ≈ 79 min. At half the input "
        "area ≈ 39 min, assuming time scales with pixels (an assumption); fewer epochs or "
        "patience shorten it in proportion")


def test_a_runs_estimate_counts_the_epochs_steps_and_images_it_has_left():
    """An epoch trains every positive and as many negatives, in batches; a run resumed after 7
    of 10 epochs validates twice (every 3rd epoch and the last)."""
    labels = np.array([1, 1, 1] + [0] * 7)
    assert steps_per_epoch(labels, 2) == 3  # 3 + 3 images
    assert steps_per_epoch(np.array([1] * 8 + [0] * 2), 4) == 3  # 8 + the 2 negatives there are
    config = SimpleNamespace(epochs=10, batch_size=2, validate_every=3)
    data = SimpleNamespace(train=SimpleNamespace(labels=lambda: labels), val=[0] * 4,
                           test=[0] * 5)
    assert RunEstimate.of_run(config, data, 7, 0.5, 0.1) == RunEstimate(
        epochs=3, steps=3, step_s=0.5, validations=2, validate_every=3, val_images=4,
        test_images=5, image_s=0.1)


def test_the_step_time_is_the_median_after_the_warm_up(monkeypatch):
    clock = [0.0]
    durations = iter([100.0, 3.0, 1.0, 2.0])  # the warm-up's 100 s is not counted

    def work():
        clock[0] += next(durations)

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    assert median_seconds_of(work, 3) == 2.0


def test_a_run_s_progress_extrapolates_the_mean_epoch():
    assert run_progress([10.0, 20.0, 30.0], 10) == (
        "run: 3/10 epochs, 60 s elapsed, ≈ 2 min left")  # 7 epochs x 20 s = 140 s
    assert run_progress([30.0], 1) == "run: 1/1 epochs, 30 s elapsed, ≈ 0 s left"


def test_a_batch_s_progress_divides_the_remaining_runs_among_the_workers():
    # 5 runs x the median 200 s / 2 workers = 500 s
    assert batch_progress(600.0, [100.0, 300.0, 200.0], 5, 2) == (
        "batch: 10 min elapsed, ≈ 8 min left for 5 runs (2 at a time)")
    assert batch_progress(600.0, [80.0], 1, 1) == (
        "batch: 10 min elapsed, ≈ 80 s left for 1 run (1 at a time)")
    assert batch_progress(45.0, [45.0], 0, 2) == "batch: 45 s elapsed"


def test_timing_json_keeps_one_stretch_per_start_and_the_actual_time(tmp_path):
    record_estimate(tmp_path, 0, SEVERSTAL, 3.5)
    record_actual(tmp_path, 4800.0, None)
    resumed = dataclasses.replace(SEVERSTAL, epochs=10, validations=2)
    record_estimate(tmp_path, 15, resumed, 3.0)
    record_actual(tmp_path, 2000.0, {"stopped_epoch": 20, "stopped_reason": "why"})
    first, second = json.loads((tmp_path / "timing.json").read_text())
    assert (first["from_epoch"], first["estimated_s"], first["actual_s"]) == (
        0, SEVERSTAL.total_s, 4800.0)
    assert first["parts"]["train_s"] == 4464.0 and "stopped_epoch" not in first
    assert (second["from_epoch"], second["parts"]["epochs"], second["actual_s"]) == (15, 10, 2000.0)
    assert second["stopped"] == {"stopped_epoch": 20, "stopped_reason": "why"}
    record_estimate(tmp_path, 0, None, 0.0)  # a new run (here without an estimate) starts afresh
    assert json.loads((tmp_path / "timing.json").read_text()) == [
        {"from_epoch": 0, "estimated_s": None, "parts": None, "estimate_took_s": 0.0,
         "actual_s": None}]
