"""segdec.report: tables and figures from run directories, on hand-made runs (no training
needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segdec import figures, narrative, paper, tables
from segdec.model import build_model
from segdec.plots import save_figure
from segdec.runs import BASELINE, IMPROVED, RELEASED, Network, collect_runs, join_folds, read_run
from segdec.teaching.balance import balance_schedules
from tests.layouts import fake_run


def test_read_run_counts_settings_from_the_split(tmp_path):
    fake_run(tmp_path, "ms", 10, 3, 0.9, attention=False, balance="linear", tags={"row": 2})
    row = read_run(tmp_path / "ms")
    assert (row["mode"], row["n_all"], row["l_p"], row["network"], row["row"]) == (
        "MS", 10, 3, Network(False, True, False), 2)
    assert str(row["network"]) == "T"


def test_collect_runs_filters_by_tag_and_marks_unfinished(tmp_path):
    fake_run(tmp_path, "a", 4, 0, 0.8, tags={"table5": True})
    fake_run(tmp_path / "nested", "b", 4, 4, 0.9, finished=False)
    runs = collect_runs(tmp_path)
    assert sorted(runs["run"]) == ["a", "b"]
    assert runs.set_index("run")["finished"].to_dict() == {"a": True, "b": False}
    assert list(collect_runs(tmp_path, "table5")["run"]) == ["a"]
    assert collect_runs(tmp_path, "missing").empty
    with pytest.raises(ValueError, match="no finished runs"):
        tables.table5(collect_runs(tmp_path, "missing"))


def test_table5_sits_beside_the_paper_with_differences(tmp_path):
    fake_run(tmp_path, "ws", 300, 0, 0.95)
    fake_run(tmp_path, "baseline", 300, 0, 0.5, attention=False, atrous=False, balance="linear")
    table = tables.table5(collect_runs(tmp_path))
    assert len(table) == 26  # every paper row, ours where run
    ws = table[(table["mode"] == "WS") & (table["n_all"] == 300)].iloc[0]
    assert ws["ap paper"] == 0.932 and ws["ap diff"] == pytest.approx(0.95 - 0.932)
    assert table["ap"].notna().sum() == 1  # the baseline network is not the paper's method
    alone = tables.table5(collect_runs(tmp_path), compare_with_paper=False)
    assert list(alone["ap"]) == [0.95]


def test_table6_orders_like_the_paper(tmp_path):
    for mode, l_p in (("WS", 0), ("FS", 8)):
        for attention, atrous, decay in paper.ABLATION_SWITCHES:
            fake_run(tmp_path, f"{mode}-{attention}{atrous}{decay}", 8, l_p, 0.9,
                     attention, atrous, "decay" if decay else "linear")
    table = tables.shown(tables.table6(collect_runs(tmp_path), "severstal"))
    assert len(table) == 21 and table["ap"].notna().sum() == 14
    first = table.iloc[0]
    assert (first["mode"], first["A"], first["T"], first["W"]) == ("WS", "", "", "")
    assert first["ap"] == pytest.approx(90.0) and first["ap paper"] == 90.27
    assert list(table["mode"].unique()) == ["WS", "MS", "FS"]


def test_figures_render_and_save(tmp_path):
    runs_root = tmp_path / "runs"
    fake_run(runs_root, "fs", 8, 8, 0.99)
    fake_run(runs_root, "fs-baseline", 8, 8, 0.9, attention=False, atrous=False,
             balance="linear")
    runs = collect_runs(runs_root)
    figure8 = figures.figure8(runs)
    labels = [t.get_text() for t in figure8.axes[0].get_xticklabels()]
    assert "8-8" in labels and "300-300" in labels
    assert figure8.axes[0].get_ylim() == (0, 1.0)  # bars from 0: heights compare as ratios
    metrics = json.loads((runs_root / "fs" / "metrics.json").read_text())
    (runs_root / "fs" / "metrics.json").write_text(json.dumps({**metrics, "threshold": 0.85}))
    figure9 = figures.figure9(runs, "FS", n_images=4)
    titles = [axis.get_title() for axis in figure9.axes]
    assert "paper's network (A+T+W)\np = 0.900, threshold 0.850: hit; map max 0.99" in titles
    assert "paper's network (A+T+W)\np = 0.800, threshold 0.850: miss; map max 1.00" in titles
    assert "Božič's network as described\np = 0.900, threshold 0.500: hit; map max 0.99" in titles
    assert len(figure9.axes) == 2 * 3 + 1  # two positives, and one shared colourbar
    assert figure9.axes[-1].get_ylabel().startswith("segmentation map: defect probability")
    assert "Segmentation of positive test images, FS" in figure9._suptitle.get_text()
    assert figure9._supxlabel.get_text() == ("Images: Severstal: Steel Defect Detection "
                                             "(Kaggle), under the competition's terms")
    saved = save_figure(figure9, tmp_path / "out", "figure9")
    assert [p.suffix for p in saved] == [".png", ".pdf"] and all(p.stat().st_size for p in saved)
    with pytest.raises(ValueError, match="without the improvements"):
        figures.figure9(runs, "WS")


def test_figure9_in_numbers_counts_the_whole_test_fold_of_both_runs(tmp_path):
    """The narrative counts hits and false positives over each run's predictions at its own
    threshold (not the shown images) and gives the maps' pixel AP and their difference."""
    for name, attention, scores, pixel_ap in (("fs-none", False, [0.9, 0.4, 0.7, 0.2], 0.30),
                                              ("fs", True, [0.9, 0.8, 0.1, 0.2], 0.455)):
        run_dir = fake_run(tmp_path, name, 8, 8, 0.9, attention=attention, atrous=attention,
                           balance="decay" if attention else "linear", input_width=128,
                           input_height=64)
        pd.DataFrame({"image": list("abcd"), "score": scores, "label": [1, 1, 0, 0]}).to_csv(
            run_dir / "predictions.csv", index=False)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        (run_dir / "metrics.json").write_text(json.dumps({**metrics, "pixel_ap_1_8": pixel_ap}))
    columns = figures.figure9_runs(collect_runs(tmp_path), "FS")
    assert list(columns) == [BASELINE, IMPROVED]
    text = narrative.describe_figure9(columns, "FS")
    assert ("**Božič's network as described:** 1 of 2 positive test images detected at its "
            "threshold 0.500, 1 false positive among 2 negatives (AP 90.0); pixel AP of its "
            "maps at their 1/8 resolution 30.0 %.") in text
    assert "**Paper's network (A+T+W):** 2 of 2 positive test images detected" in text
    assert "0 false positives among 2 negatives" in text
    assert "pixel AP is 15.5 points above Božič's on this fold and seed" in text
    assert "fold 0, seed 0, 128x64" in text and "normalises its map" not in text


def test_save_table_writes_csv_and_markdown(tmp_path):
    csv, markdown = tables.save_table(pd.DataFrame({"ap": [0.91234], "per_seed": ["86.1"]}),
                                      tmp_path, "t")
    assert pd.read_csv(csv)["ap"].iloc[0] == 0.91234
    assert "| 0.912 | 86.1 " in markdown.read_text()


def test_a_title_note_is_said_in_every_figure_and_table_title(tmp_path):
    size = {"input_width": 128, "input_height": 64}
    fake_run(tmp_path, "fs", 8, 8, 0.99, **size)
    fake_run(tmp_path, "fs-baseline", 8, 8, 0.9, attention=False, atrous=False,
             balance="linear", **size)
    runs = collect_runs(tmp_path)
    note = "synthetic smoke test"
    assert figures.figure8(runs, False, title_note=note).axes[0].get_title() == (
        "Figure 8: AP per setting (synthetic smoke test)")
    assert figures.figure9(runs, title_note=note)._suptitle.get_text() == (
        "Segmentation of positive test images, FS on severstal (128x64, fold 0, seed 0) "
        "(synthetic smoke test)")
    _, markdown = tables.save_table(pd.DataFrame({"ap": [0.5]}), tmp_path, "t5", note)
    assert markdown.read_text().startswith("# t5 (synthetic smoke test)\n\n| ")
    _, plain = tables.save_table(pd.DataFrame({"ap": [0.5]}), tmp_path, "plain")
    assert plain.read_text().startswith("|")


def test_balance_schedules():
    schedules = balance_schedules(90, 0.01).set_index(["balance", "epoch"])
    assert schedules.loc[("decay", 89), "w_seg"] == pytest.approx(0.99 ** 89)
    assert schedules.loc[("linear", 0), "w_dec"] == 0.0
    assert schedules.loc[("constant", 50), "w_dec"] == 1.0


def test_ksdd_folds_are_joined_as_bozic_reports_them(tmp_path):
    """Joined AP from all folds' predictions together, beside the per-fold mean and spread."""
    fold_predictions = {0: [0.9, 0.1], 1: [0.6, 0.7], 2: [0.8, 0.2]}  # (defect, clean) scores
    for fold, scores in fold_predictions.items():
        run_dir = fake_run(tmp_path, f"fold{fold}", 8, 8, 1.0 if fold != 1 else 0.5,
                           dataset="ksdd", fold=fold, n_val=0)
        pd.DataFrame({"image": [f"kos{fold}/Part0.jpg", f"kos{fold}/Part1.jpg"],
                      "score": scores, "label": [1, 0]}).to_csv(run_dir / "predictions.csv")
    fake_run(tmp_path, "released", 8, 8, 0.7, attention=False, atrous=False, balance="linear",
             dataset="ksdd", fold=0, n_val=0, architecture="released")
    joined = join_folds(collect_runs(tmp_path)).set_index("network")
    paper_net = joined.loc[IMPROVED]
    # 0.9 (defect), 0.8 (defect), 0.7, 0.6 (defect), 0.2, 0.1: precision 1, 1, 3/4 at the defects
    assert paper_net["ap"] == pytest.approx((1 + 1 + 0.75) / 3)
    assert paper_net["ap_fold_mean"] == pytest.approx(2.5 / 3)
    assert paper_net["ap_fold_std"] == pytest.approx(np.sqrt(6 / 108))
    assert (paper_net["folds"], paper_net["validation"]) == ("0,1,2", "test set")
    assert (paper_net["fp"], paper_net["fn"]) == (1, 0)  # threshold 0.6 lets 0.7 through
    assert joined.loc[RELEASED, "ap"] == 0.7 and joined.loc[RELEASED, "folds"] == "0"
    table = tables.shown(tables.table6(collect_runs(tmp_path), "ksdd")).set_index(["mode", "A"])
    fs_paper = table.loc[("FS", "x")].query("T == 'x' and W == 'x'").iloc[0]
    assert fs_paper["ap"] == pytest.approx(100 * 2.75 / 3) and fs_paper["ap paper"] == 100.0
    released = table[table["architecture"] == "released"].iloc[0]
    assert released["ap paper"] == 99.46  # beside the paper's FS "none" row


def test_runs_without_gradient_adjustment_are_rows_of_their_own(tmp_path):
    fake_run(tmp_path, "ga", 8, 8, 0.9, dataset="ksdd", fold=0, n_val=0)
    fake_run(tmp_path, "no-ga", 8, 8, 0.8, dataset="ksdd", fold=0, n_val=0,
             gradient_adjustment=False)
    runs = collect_runs(tmp_path)
    assert sorted(map(str, runs["network"])) == ["A+T+W", "A+T+W, no GA"]
    table = tables.shown(tables.table6(runs, "ksdd"))
    rows = table[table["ap"].notna()]
    assert rows[["GA", "ap", "ap paper"]].values.tolist() == [["x", 90.0, 100.0], ["", 80.0, 100.0]]


def test_layer_table_grows_the_same_receptive_field_with_fewer_weights():
    from segdec.teaching.receptive_field import kernel_taps, layer_table

    dense = layer_table(build_model("bozic"))
    atrous = layer_table(build_model("bozic", atrous=True))
    # 9 after convs 1-2; each 2x2 pool adds the stride so far, each 5x5-equivalent conv 4 x the
    # stride; conv 10 adds 14 x 8: 216 input pixels for one unit of the 1/8 map.
    assert list(dense.receptive_field) == [5, 9, 18, 26, 34, 52, 68, 84, 100, 216]
    assert list(atrous.receptive_field) == list(dense.receptive_field)
    assert list(atrous.dilation) == [2] * 9 + [7] and atrous.effective.iloc[-1] == "15x15"
    assert dense.parameters.iloc[-1] == 64 * 1024 * 15 * 15
    assert atrous.parameters.iloc[-1] == 64 * 1024 * 9
    # 512x512: every dense kernel has 25 (conv 10: 225) taps where the atrous one has 9
    assert (dense.gflop.sum(), atrous.gflop.sum()) == pytest.approx((181.61, 26.73), abs=0.01)
    taps = kernel_taps()
    assert [int(t.sum()) for t in taps.values()] == [25, 9]
    assert taps["3x3, dilation 2"][::2, ::2].all() and not taps["3x3, dilation 2"][1::2].any()


@pytest.mark.parametrize(("name", "render"), [
    ("table6_ksdd", lambda runs: tables.table6(runs, "ksdd", folds=[0, 1, 2])),
    ("table6_ksdd_fold0", lambda runs: tables.table6(runs, "ksdd", folds=[0])),
    ("table6_ksdd_paired", tables.paired_comparisons),
])
def test_the_committed_ksdd_tables_come_from_the_committed_run_records(name, render):
    """figures/ksdd's tables are what the image-free records in figures/ksdd/runs give."""
    from pathlib import Path

    figures = Path(__file__).resolve().parents[1] / "figures" / "ksdd"
    rendered = tables.shown(render(collect_runs(figures / "runs")))
    committed = pd.read_csv(figures / f"{name}.csv", keep_default_na=False, na_values=[""])
    assert list(committed.columns) == list(rendered.columns)
    assert len(committed) == len(rendered) >= 6
    numbers = [c for c in rendered.columns if pd.api.types.is_float_dtype(rendered[c])]
    assert {"mean_diff", "ap"} & set(numbers)
    for column in numbers:
        np.testing.assert_allclose(committed[column].astype(float),
                                   rendered[column].astype(float), atol=1e-9)


def test_runs_table_lists_every_finished_run_with_its_tags_and_history(tmp_path):
    for name, ap, losses in (("fold1/MS5-prob", 0.76, [0.9, 0.7]), ("fold2/MS5", 0.45, [1.2, 3.3])):
        run_dir = fake_run(tmp_path, name, 10, 5, ap, tags={"change": name.split("-")[-1]},
                           dataset="ksdd", fold=int(name[4]), n_val=0)
        pd.DataFrame({"epoch": [0, 1], "loss_dec": losses, "val_ap": [np.nan, 0.5],
                      "seconds": [10.4, 20.3]}).to_csv(run_dir / "history.csv", index=False)
    fake_run(tmp_path, "unfinished", 10, 5, 0.1, finished=False)
    table = tables.runs_table(tmp_path).set_index("run")
    assert list(table.index) == ["fold1/MS5-prob", "fold2/MS5"]
    assert table.loc["fold1/MS5-prob", "change"] == "prob"
    assert table.loc["fold2/MS5", ["mode", "fold", "validation", "ap", "fp", "fn"]].tolist() == [
        "MS", 2, "test set", 0.45, 3, 4]
    assert table.loc["fold2/MS5", ["best_epoch", "last_decision_loss", "train_s"]].tolist() == [
        2, 3.3, 31]


def test_summary_command_prints_and_saves_the_runs_table(tmp_path, capsys):
    from segdec.cli import main

    run_dir = fake_run(tmp_path / "runs", "ws", 4, 0, 0.8)
    pd.DataFrame({"epoch": [0], "loss_dec": [0.6], "val_ap": [0.7], "seconds": [5.0]}).to_csv(
        run_dir / "history.csv", index=False)
    assert main(["summary", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "out")]) == 0
    assert "ws" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out" / "runs.csv")["ap"].tolist() == [0.8]


def _seeded_ksdd_runs(root):
    """Two networks on 3 folds with 2 seeds: the paper's network scores each fold's defect
    0.9 - 0.1 * seed and its clean image 0.2; the released one 0.3 + 0.3 * fold and 0.5."""
    for fold in range(3):
        for seed in (0, 1):
            for network, defect, clean, extra in (
                    ("paper", 0.9 - 0.1 * seed, 0.2, {}),
                    ("released", 0.3 + 0.3 * fold, 0.5,
                     dict(attention=False, atrous=False, balance="linear",
                          architecture="released"))):
                ap = 1.0 if defect > clean else 0.5
                run_dir = fake_run(root, f"f{fold}/{network}-s{seed}", 8, 0, ap, dataset="ksdd",
                                   fold=fold, n_val=0, seed=seed, split_seed=0,
                                   input_width=96, input_height=264, **extra)
                pd.DataFrame({"image": [f"kos{fold}/Part0.jpg", f"kos{fold}/Part1.jpg"],
                              "score": [defect, clean], "label": [1, 0]}).to_csv(
                    run_dir / "predictions.csv")


def test_seeds_are_joined_per_seed_and_summarised_over_seeds(tmp_path):
    _seeded_ksdd_runs(tmp_path)
    runs = collect_runs(tmp_path)
    joined = join_folds(runs)
    assert sorted(joined["seed"]) == [0, 0, 1, 1] and set(joined["folds"]) == {"0,1,2"}
    table = tables.table6(runs, "ksdd", folds=[0, 1, 2]).set_index("architecture")
    assert list(table.index) == ["released", "described"]  # only the settings we ran
    paper_net = table.loc["described"]
    assert (paper_net["ap"], paper_net["seeds"], paper_net["ap_per_seed"]) == (
        100.0, 2, "100.0, 100.0")
    # released, either seed: defects 0.9, 0.6 above the clean 0.5 x 3, then 0.3: 1, 1, 3/6
    released_ap = 100 * (1 + 1 + 0.5) / 3
    assert table.loc["released", "ap"] == pytest.approx(released_ap)
    assert table.loc["released", "ap_sd"] == 0.0
    assert table.loc["released", "ap paper"] == 92.65
    fold0 = tables.table6(runs, "ksdd", folds=[0])
    assert set(fold0["folds"]) == {"0"} and list(fold0["ap"]) == [50.0, 100.0]


def test_paired_comparisons_count_the_pairs_of_fold_and_seed(tmp_path):
    _seeded_ksdd_runs(tmp_path)
    pairs = tables.paired_comparisons(collect_runs(tmp_path))
    row = pairs.iloc[0]  # the paper's network against the released one (no GA runs here)
    assert len(pairs) == 1 and (row["a"], row["b"], row["mode"]) == (IMPROVED, RELEASED,
                                                                     "WS")
    # per fold: 1.0 - 0.5 on fold 0 (0.3 < 0.5), 1.0 - 1.0 on folds 1 and 2; both seeds
    assert row[["pairs", "a_better", "b_better", "ties"]].tolist() == [6, 2, 0, 4]
    assert row["mean_diff"] == pytest.approx(100 * 1.0 / 6)
    assert row["sign_test_p"] == pytest.approx(0.5)
    difference = 100 * (1 - (1 + 1 + 0.5) / 3)
    assert row["joined_diff_per_seed"] == f"+{difference:.1f}, +{difference:.1f}"
    text = narrative.describe_pairs(pairs)
    assert "2 for, 0 against, 4 tied" in text and "not separated" in text
    assert narrative.describe_pairs(pairs.iloc[:0]).startswith("No two networks compared")
    assert narrative.headline_pairs(pairs).splitlines()[1] == (
        "- paper's network (A+T+W) against Božič's network as released: WS 2 of 6, 4 tied "
        "(p = 0.500, not separated from noise).")
    assert narrative.headline_pairs(pairs.iloc[:0]) == ""


def test_narratives_say_what_the_tables_hold(tmp_path):
    _seeded_ksdd_runs(tmp_path)
    runs = collect_runs(tmp_path)
    text = narrative.describe_table6(tables.table6(runs, "ksdd", folds=[0, 1, 2]))
    assert text == (
        "- **weak supervision (WS):** Božič's network as released 83.3 ± 0.0 over 2 seeds "
        "against the paper's 92.65 (-9.3); the paper's network (A+T+W) 100.0 ± 0.0 over 2 "
        "seeds against the paper's 93.41 (+6.6).")
    curve = narrative.describe_pixel_label_curve(tables.pixel_label_table(runs))
    assert curve.splitlines()[0] == (
        "- **paper's network (A+T+W)** (AP %, 2 seeds, mean ± sd): L_p 0: 100.0 ± 0.0.")
    facts = narrative.provenance(runs)
    assert "- **Runs:** 12 finished (2 seed(s): 0, 1)." in facts
    assert "input 96x264 (W x H) where Božič trains ksdd at 512x1408, 28x the pixels" in facts
    assert "best epoch chosen on the test set" \
        in facts
    assert "did not learn to segment" not in facts
    collapsed = tmp_path / "f1" / "released-s1" / "metrics.json"
    collapsed.write_text(json.dumps({**json.loads(collapsed.read_text()), "warning": "why"}))
    warned = collect_runs(tmp_path)
    assert ("- **Runs that did not learn to segment** (1; their `metrics.json` says why, they "
            "count above as outcomes of their recipe): f1/released-s1.") in narrative.provenance(
        warned)
    assert narrative.headline(warned).endswith(
        " 1 of the runs did not learn to segment (their `metrics.json` says why; they count in "
        "their columns): f1/released-s1.")


def test_figure8_against_pixel_labels_starts_at_zero_with_the_paper_values(tmp_path):
    _seeded_ksdd_runs(tmp_path)
    figure = figures.figure8_pixel_labels(collect_runs(tmp_path))
    axis = figure.axes[0]
    assert axis.get_ylim() == (0, 1.02)
    labels = [t.get_text() for t in axis.get_legend().get_texts()]
    assert "paper's network (A+T+W): mean ± sd of 2 seeds" in labels
    assert any(label.startswith("paper, A+T+W (Table 6") for label in labels)
    with pytest.raises(ValueError, match="run on all 3 folds"):
        figures.figure8_pixel_labels(collect_runs(tmp_path / "f0"))


def test_balance_figure_draws_learning_rate_multipliers_with_delta_and_table_4():
    from segdec.teaching.figures import plot_balance_schedules

    figure = plot_balance_schedules(balance_schedules(25, 0.036), delta=0.01)
    seg, dec = figure.axes
    assert seg.get_ylabel() == dec.get_ylabel() == "learning-rate multiplier"
    assert "δ = 0.01" in dec.get_title() and dec.get_ylim()[1] == pytest.approx(0.0105)
    labels = [line.get_label() for line in dec.get_lines()]
    assert labels[:2] == [  # Table 4's four settings draw two curves (epochs x beta 0.9, 0.8)
        "decay, Table 4: 90 epochs, β 0.01 and 60 epochs, β 0.015 (one curve)",
        "decay, Table 4: 80 epochs, β 0.01 and 40 epochs, β 0.02 (one curve)"]
    constant = dec.get_lines()[labels.index("constant: both 1 (Božič, WS)")]
    assert set(constant.get_ydata()) == {0.01}  # delta x 1, not delta x (1 - w_seg)


def test_sizes_are_rows_of_their_own_and_ksdd_ms_is_table6s_l_p(tmp_path):
    """A resolution row (another input size) and Figure 8's other L_p never join Table 6's
    cells: each size is a row, and KolektorSDD's MS row is L_p = 5 alone."""
    ksdd = {"dataset": "ksdd", "fold": 0, "n_val": 0}
    fake_run(tmp_path, "ms5", 12, 5, 0.9, input_width=96, input_height=264, **ksdd)
    fake_run(tmp_path, "ms10", 12, 10, 0.5, input_width=96, input_height=264, **ksdd)
    fake_run(tmp_path, "ms5-large", 12, 5, 0.7, input_width=192, input_height=528, **ksdd)
    runs = collect_runs(tmp_path)
    table = tables.table6(runs, "ksdd")
    rows = table[table["ap"].notna()]
    assert rows[["n_seg", "input_size", "ap"]].values.tolist() == [
        [5, "96x264", 90.0], [5, "192x528", 70.0]]
    text = narrative.describe_table6(table)
    assert "the paper's network (A+T+W) at 192x528 70.0 (one seed)" in text


def test_figure9_reads_images_again_for_maps_kept_without_pixels(tiny_run, tmp_path):
    """A committed record keeps the maps without the images (licences); Figure 9 reads the
    images and masks from the dataset exactly as the run saved them."""
    from segdec.records import copy_records

    copy_records(tiny_run.parent, tmp_path)
    record = tmp_path / tiny_run.name
    assert not (record / "segmentation_maps.npz").exists()
    again = figures.saved_maps(record)
    with np.load(tiny_run / "segmentation_maps.npz") as original:
        for key in original.files:
            np.testing.assert_array_equal(again[key], original[key])


def test_the_pixel_label_curve_says_when_weak_supervision_already_matches_full():
    """The obvious alternative first: WS within a point of FS means no mask count "reaches" FS."""
    def curve(ws_ap):
        return pd.DataFrame({"network": IMPROVED, "input_size": "96x264",
                             "mode": ["WS", "MS", "FS"], "l_p": [0, 10, 35],
                             "ap": [ws_ap, 93.0, 93.7], "ap_sd": 1.0, "seeds": 3})
    assert narrative.describe_pixel_label_curve(curve(93.7)) == (
        "- **paper's network (A+T+W)** (AP %, 3 seeds, mean ± sd): L_p 0: 93.7 ± 1.0, L_p 10: "
        "93.0 ± 1.0, L_p 35: 93.7 ± 1.0. Weak supervision, with no mask at all (93.7), already "
        "comes within one point of full supervision (93.7): at this setting the masks' value is "
        "not shown, so no fraction of masks can be compared with the paper's 45 %.")
    assert narrative.describe_pixel_label_curve(curve(80.0)).endswith(
        "Mixed supervision comes within one point of full supervision with 10 of 35 masks (29 %; "
        "the paper reports about 45 % on Severstal).")


def test_the_headline_marks_failed_runs_in_their_cells_and_pairs(tmp_path):
    """A win over a network that did not learn is said to be one, and its cell gives the mean of
    the seeds that learnt."""
    _seeded_ksdd_runs(tmp_path)
    collapsed = tmp_path / "f1" / "released-s1" / "metrics.json"
    collapsed.write_text(json.dumps({**json.loads(collapsed.read_text()), "warning": "why"}))
    text = narrative.headline(collect_runs(tmp_path))
    ws = next(line for line in text.splitlines() if line.startswith("| WS"))
    # the released network's fold-0 runs rank at chance in both seeds (AUC 0.49), and seed 1's
    # fold-1 run collapsed: every seed failed somewhere
    assert ws.endswith("| 100.0 ± 0.0 (2 seeds) | - | 83.3 ± 0.0 (2 seeds) †2 failed, none "
                       "without |")
    assert ("- paper's network (A+T+W) against Božič's network as released: WS 2 of 6, 4 tied "
            "(p = 0.500, not separated from noise; Božič's network as released failed in 2 "
            "seeds).") in text
    for run in ("f0/released-s0", "f0/released-s1"):  # now only the collapsed run fails
        path = tmp_path / run / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "auc": 0.9}))
    text = narrative.headline(collect_runs(tmp_path))
    assert "| 83.3 ± 0.0 (2 seeds) †1 failed, 83.3 without |" in text


def test_figure8_joins_only_neighbouring_settings():
    """A network run at L_p 0, 5 and 35 of a sweep 0-35 gets a line from 0 to 5 and none
    through the 10-20 it never ran."""
    sweep = [0, 5, 10, 15, 20, 35]
    assert figures.unbroken([0, 5, 35], sweep) == [[0, 5]]
    assert figures.unbroken(sweep, sweep) == [sweep]
    assert figures.unbroken([0, 10, 35], sweep) == []


def test_figure9_never_shows_a_run_that_failed(tmp_path):
    """A collapsed baseline is a failure, not Božič's network: Figure 9 refuses to show it."""
    fake_run(tmp_path, "fs", 8, 8, 0.99)
    baseline = fake_run(tmp_path, "fs-baseline", 8, 8, 0.9, attention=False, atrous=False,
                        balance="linear")
    assert list(figures.figure9_runs(collect_runs(tmp_path), "FS")) == [BASELINE, IMPROVED]
    metrics = json.loads((baseline / "metrics.json").read_text())
    (baseline / "metrics.json").write_text(json.dumps({**metrics, "warning": "flat map"}))
    runs = collect_runs(tmp_path)
    assert runs.set_index("run").loc["fs-baseline", "failure"] == "collapsed"
    with pytest.raises(ValueError, match="that learnt"):
        figures.figure9_runs(runs, "FS")


def test_a_readable_table_rounds_to_one_unit_and_says_what_each_column_is():
    table = pd.DataFrame({"network": [IMPROVED, RELEASED], "attention": [True, False],
                          "ap": [93.7234, np.nan], "auc": [0.98765, 0.5],
                          "sign_test_p": [0.0039, 1.0], "unshown": [1, 2]})
    text = tables.readable(table, "Pairs", ["network", "A", "ap", "auc", "sign_test_p"],
                           percent=("auc",), csv="figures/ksdd/pairs.csv")
    assert text == (
        "### Pairs\n\n"
        "| network         | A   | ap   | auc   | sign_test_p   |\n"
        "|:----------------|:----|:-----|:------|:--------------|\n"
        "| A+T+W           | x   | 93.7 | 98.8  | 0.004         |\n"
        "| none (released) |     | -    | 50.0  | 1.000         |\n\n"
        "**network** A+T+W the paper's network, none Božič's; (released) as his code builds it, "
        "no GA gradient adjustment off; **A** attention; **ap** average precision % "
        "(KolektorSDD: the folds' test predictions joined), mean over seeds; **auc** area under "
        "the ROC curve %; **sign_test_p** sign test p. All columns: "
        "[pairs.csv](../figures/ksdd/pairs.csv).")


def test_a_rerun_says_whether_it_repeats_its_record_and_why_not(tmp_path):
    """Notebook 02's run beside the README's record: equal, or different with the machines."""
    record = fake_run(tmp_path, "record", 8, 8, 0.9)
    rerun = fake_run(tmp_path, "rerun", 8, 8, 0.9)
    runtime = [{"cpu": "AMD EPYC", "cpu_capability": "AVX2", "device": "cpu",
                "torch_threads": 1, "precision": "fp32"}]
    (rerun / "runtime.json").write_text(json.dumps(runtime))
    assert narrative.describe_rerun(rerun, record).split(": ", 2)[2].startswith(
        "equal to the last digit. This run: AMD EPYC (AVX2), cpu, 1 thread(s), fp32; the "
        "record: not recorded.")
    metrics = json.loads((rerun / "metrics.json").read_text())
    (rerun / "metrics.json").write_text(json.dumps({**metrics, "threshold": 0.766}))
    assert "they differ, and the record does not say which machine made it" in (
        narrative.describe_rerun(rerun, record))
    (record / "runtime.json").write_text(json.dumps([{**runtime[0], "cpu_capability": "AVX512"}]))
    assert "they differ: the two were trained on different machines" in (
        narrative.describe_rerun(rerun, record))
    (record / "runtime.json").write_text(json.dumps(runtime))
    assert "a repeat that failed" in narrative.describe_rerun(rerun, record)
