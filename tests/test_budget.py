"""segdec.budget: the time budget: durations as typed, the planner on a fake machine, and one
budgeted run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from segdec.batch import load_batch
from segdec.budget import (
    candidate_sizes,
    defect_extents,
    median_defect_px,
    plan_budget,
)
from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.dataset import DefectDataset, Sample, TargetOptions
from segdec.demo import demo_config
from segdec.errors import ConfigError
from segdec.recipes import beta_for_epochs
from segdec.timing import RunEstimate, parse_duration, validations
from segdec.train import train

SIZE = (344, 296)  # (H, W) the configured input, where the fake machine's steps are "timed"
STEP_S_PER_PIXEL, IMAGE_S_PER_PIXEL = 3e-6, 1e-6
MEASURED = RunEstimate(epochs=25, steps=558, step_s=STEP_S_PER_PIXEL * SIZE[0] * SIZE[1],
                       validations=validations(0, 25, 5), validate_every=5, val_images=100,
                       test_images=257, image_s=IMAGE_S_PER_PIXEL * SIZE[0] * SIZE[1])
# Defect bounding boxes as fractions of image height and width; the median's smaller side at
# 1/8 of SIZE is 3.7 px (large), 2.5 px (small: the 2 px floor binds first) and 0.7 px (tiny).
LARGE = np.array([[0.05, 0.2], [0.1, 0.1], [0.15, 0.1], [0.3, 0.2], [0.4, 0.5]])
SMALL, TINY, NONE = LARGE * 0.68, LARGE * 0.2, np.zeros((0, 2))
BETA = 0.0375  # the folder recipe's for 25 epochs


def test_durations_are_read_with_their_units(capsys):
    assert [parse_duration(text) for text in ("90s", "20m", "1.5h", "300", " 2 M ")] == [
        90.0, 1200.0, 5400.0, 300.0, 120.0]
    assert RunConfig.from_dict({"time_budget": "20m"}).time_budget == 1200.0  # YAML, notebook
    assert RunConfig.from_dict({"time_budget": 90}).time_budget == 90.0
    assert RunConfig.from_dict({"time_budget": "none"}).time_budget is None
    with pytest.raises(ConfigError, match="greater than 0 seconds"):
        RunConfig.from_dict({"time_budget": "0m"})
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--time-budget DURATION" in capsys.readouterr().out
    assert main(["train", "--time-budget", "20 minutes", "--out-dir", "unused"]) == 2
    assert capsys.readouterr().err == (
        "segdec train: error: time_budget: '20 minutes' is not a duration: give a number with "
        "s, m or h (90s, 20m, 1.5h) or a number of seconds\n")


def test_beta_is_recomputed_so_the_balance_ends_where_the_recipe_puts_it():
    # (1 - beta)^11 = (1 - 0.036)^24 = 0.4148: theta's last value after 12 epochs instead of 25
    assert beta_for_epochs(12, 25, 0.036) == 0.0769
    assert (1 - beta_for_epochs(12, 25, 0.036)) ** 11 == pytest.approx(0.964 ** 24, abs=2e-4)
    assert beta_for_epochs(25, 25, 0.036) == 0.036  # not rounded when nothing changes


def test_candidate_sizes_keep_the_aspect_ratio_in_multiples_of_8_down_to_the_network_minimum():
    sizes = candidate_sizes(SIZE)
    assert sizes[:4] == [(344, 296), (336, 288), (328, 280), (320, 272)]
    assert sizes[-1] == (72, 64) and len(sizes) == 35
    assert median_defect_px(LARGE, SIZE) == pytest.approx(3.7)
    assert median_defect_px(NONE, SIZE) is None


def test_defect_extents_are_the_pixel_labelled_defects_bounding_boxes(tmp_path):
    """Two defects in one 80x40 mask (a 10x4 box, and two diagonal pixels that are one
    8-connected piece); a weakly labelled positive's and a negative's masks are not read."""
    mask = np.zeros((40, 80), np.uint8)
    mask[5:9, 10:20] = 255
    mask[20, 40] = mask[21, 41] = 255
    Image.fromarray(np.zeros((40, 80), np.uint8)).save(tmp_path / "image.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(np.zeros((40, 80), np.uint8)).save(tmp_path / "empty.png")
    samples = [Sample.from_mask(name, tmp_path / "image.png", tmp_path / mask_file)
               for name, mask_file in (("a", "mask.png"), ("b", "mask.png"), ("c", "empty.png"))]
    dataset = DefectDataset(samples, [True, False, True], TargetOptions(size=(40, 80)))
    assert defect_extents(dataset).tolist() == [[0.1, 0.125], [0.05, 0.025]]
    # at 80x320 the smaller sides are 8 and 8 px, 4 and 8 px: 1 and 0.5 px at 1/8, median 0.75
    assert median_defect_px(defect_extents(dataset), (80, 320)) == 0.75


@pytest.mark.parametrize(("budget_s", "size", "epochs", "beta", "planned_s"), [
    (3 * 3600, (344, 296), 25, 0.0375, 4338.4),  # fits as configured: nothing changes
    (1200, (248, 216), 13, 0.0736, 1195.6),  # pixels 0.53 and epochs 0.52 of the configured
    (600, (208, 176), 9, 0.1083, 568.3),
])
def test_the_plan_shares_the_cut_between_pixels_and_epochs(budget_s, size, epochs, beta,
                                                           planned_s):
    plan = plan_budget(budget_s, MEASURED, SIZE, BETA, LARGE)
    assert (plan.size, plan.epochs, plan.beta, plan.fits) == (size, epochs, beta, True)
    assert plan.estimate.total_s == pytest.approx(planned_s, abs=0.05)
    assert plan.configured.total_s == pytest.approx(4338.4, abs=0.05)


def test_the_plan_line_says_what_was_chosen_and_why():
    assert plan_budget(3 * 3600, MEASURED, SIZE, BETA, LARGE).line() == (
        "time budget 3.0 h: the configured 296x344, 25 epochs ≈ 72 min fits; nothing changed")
    plan = plan_budget(1200, MEASURED, SIZE, BETA, LARGE)
    assert plan.line() == (
        "time budget 20 min: 216x248, 13 epochs (β 0.0736), ≈ 20 min instead of 296x344, 25 "
        "epochs ≈ 72 min; the median defect stays 2.7 px at 1/8 (at least 2 kept); step times "
        "measured at 296x344 and scaled by pixels")
    assert plan.fields() == {"input_height": 248, "input_width": 216, "epochs": 13,
                             "beta": 0.0736}
    record = plan.record()
    assert (record["budget_s"], record["planned_s"], record["configured"]["epochs"]) == (
        1200, plan.estimate.total_s, 25)


def test_the_input_never_shrinks_the_median_defect_below_2_px_at_one_eighth():
    plan = plan_budget(1200, MEASURED, SIZE, BETA, SMALL)
    # 240x280 keeps the median defect at 2.04 px; the next smaller size would take it under 2,
    # so the rest of the cut comes from the epochs (10, where large defects allow 13)
    assert (plan.size, plan.epochs, plan.beta) == ((280, 240), 10, 0.0969)
    assert plan.defect_px == pytest.approx(2.04)
    sizes = candidate_sizes(SIZE)
    assert median_defect_px(SMALL, sizes[sizes.index(plan.size) + 1]) < 2
    # defects under 2 px already at the configured size, or no masks to judge them: the size
    # stays, only the epochs are cut
    for extents, why in ((TINY, "the median defect is 0.7 px at 1/8 already at 296x344, so "
                                "the input size is kept"),
                         (NONE, "no pixel-labelled defects to judge their visibility by, so the "
                                "input size is kept")):
        kept = plan_budget(1200, MEASURED, SIZE, BETA, extents)
        assert (kept.size, kept.epochs, kept.beta) == (SIZE, 6, 0.1676)
        assert kept.line().endswith(why)


def test_a_budget_too_small_trains_the_quickest_plan_allowed_and_says_so():
    plan = plan_budget(60, MEASURED, SIZE, BETA, LARGE)
    assert (plan.size, plan.epochs, plan.beta, plan.fits) == ((184, 160), 5, 0.2049, False)
    assert plan.line() == (
        "time budget 60 s is too small on this machine (296x344, 25 epochs ≈ 72 min): training "
        "the quickest plan allowed (at least 5 epochs, the defects kept visible), 160x184, 5 "
        "epochs (β 0.2049), ≈ 4 min; the median defect stays 2.0 px at 1/8 (at least 2 kept); "
        "step times measured at 296x344 and scaled by pixels")


def test_a_balance_without_beta_keeps_its_beta():
    plan = plan_budget(1200, MEASURED, SIZE, None, LARGE)
    assert (plan.size, plan.epochs, plan.beta) == ((248, 216), 13, None)
    assert "beta" not in plan.fields() and "β" not in plan.line()


def test_a_budgeted_batch_run_is_not_stale_for_the_values_its_budget_chose(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({
        "batch": "b", "runs_dir": str(tmp_path / "runs"), "defaults": {"time_budget": "20m"},
        "runs": [{"name": "a", "epochs": 25, "beta": BETA}]}))
    (run,) = load_batch(path).runs
    assert run.config.time_budget == 1200.0 and run.parameters()["time_budget"] == 1200.0
    saved = {**run.config.to_dict(), "input_height": 248, "input_width": 216, "epochs": 13,
             "beta": 0.0736}
    RunConfig.from_dict(saved).save(Path(run.config.out_dir) / "config.yaml")
    (Path(run.config.out_dir) / "metrics.json").write_text("{}")
    assert run.status == "finished"
    assert set(run.config.replace(time_budget=None).differences(saved)) == {
        "epochs", "beta", "time_budget"}


@pytest.mark.slow
def test_a_budgeted_run_prepares_its_data_once(tiny_severstal, tmp_path, monkeypatch):
    """The plan's timed steps, the estimate's and the training read the datasets the run read
    and prepared once: where the plan keeps the input size (the synthetic defects are under 2 px
    at 1/8), none is built again, and the images decoded for the plan stay decoded."""
    import segdec.train

    prepared, read = [], []
    prepare, build = segdec.train.prepare_data, segdec.train.loader

    def preparing(*args):
        config, data = prepare(*args)
        prepared.append(data)
        return config, data

    monkeypatch.setattr(segdec.train, "prepare_data", preparing)
    monkeypatch.setattr(segdec.train, "loader",
                        lambda dataset, *args: read.append(dataset) or build(dataset, *args))
    demo_config(tmp_path, data_root=str(tiny_severstal), epochs=1, n_all=4, n_test=8, n_val=8,
                batch_size=2, estimate=True).save(tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--time-budget", "1s",
                 "--out-dir", str(tmp_path / "run")]) == 0
    (data,) = prepared
    # the plan's timed steps and scoring, the estimate's, the epochs' and the validations'
    assert len(read) == 6
    assert all(any(dataset is part for part in (data.train, data.val, data.test))
               for dataset in read)


@pytest.mark.slow
def test_train_with_a_budget_applies_and_records_its_plan(tiny_severstal, tmp_path, capsys):
    """A budget of 1 s cannot be met on any machine: the quickest plan allowed is trained, 5
    epochs instead of 6 (the synthetic defects are under 2 px at 1/8, so 128x64 stays), with
    beta recomputed; the run is the one those values give without a budget."""
    base = demo_config(tmp_path, data_root=str(tiny_severstal), epochs=6, validate_every=2,
                       n_all=4, n_test=8, n_val=8, batch_size=2, estimate=False)
    base.save(tmp_path / "base.yaml")
    run = tmp_path / "budget"
    assert main(["train", "--config", str(tmp_path / "base.yaml"), "--time-budget", "1s",
                 "--out-dir", str(run)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("time budget"))
    assert line.startswith("time budget 1 s is too small on this machine (128x64, 6 epochs")
    assert line.endswith("at 128x64, so the input size is kept")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    planned = {"input_height": 64, "input_width": 128, "epochs": 5, "beta": 0.0621}
    assert {k: saved[k] for k in planned} == planned and saved["time_budget"] == 1.0
    (timing,) = json.loads((run / "timing.json").read_text())
    assert {k: timing["budget"][k] for k in ("budget_s", *planned, "fits")} == {
        "budget_s": 1.0, **planned, "fits": False}
    assert timing["budget"]["configured"]["epochs"] == 6 and timing["actual_s"] > 0
    # resuming with the configuration as first given keeps the plan (the run is finished)
    budgeted = base.replace(time_budget=1.0, out_dir=str(run))
    metrics = train(budgeted, resume=True, progress=False)
    plain = train(base.replace(**planned, out_dir=str(tmp_path / "plain")), progress=False)
    assert metrics == plain
    a, b = (pd.read_csv(tmp_path / name / "history.csv").drop(columns="seconds")
            for name in ("budget", "plain"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
