"""segdec.tables.variant_table and its narrative: runs that change one thing of a reference run,
joined over folds, and the positives the reference misses, on hand-made KolektorSDD runs."""

from __future__ import annotations

import pandas as pd
import pytest

from segdec import narrative
from segdec.errors import DataError
from segdec.runs import collect_runs
from segdec.tables import variant_table
from tests.layouts import fake_run

# Per fold: (image, label, reference's score, the variant's score). The reference misses
# kos01/Part1 (0.2) and kos02/Part0 (0.05); the variant finds the first (0.7).
PREDICTIONS = {
    0: [("kos01/Part0.jpg", 1, 0.9, 0.9), ("kos01/Part1.jpg", 1, 0.2, 0.7),
        ("kos01/Part2.jpg", 0, 0.1, 0.1), ("kos01/Part3.jpg", 0, 0.3, 0.3)],
    1: [("kos02/Part0.jpg", 1, 0.05, 0.15), ("kos02/Part1.jpg", 1, 0.8, 0.8),
        ("kos02/Part2.jpg", 0, 0.4, 0.4)],
}


def _runs(root):
    for fold, rows in PREDICTIONS.items():
        for name, dilate, column in (("FS-A+T+W", 3, 2), ("FS-A+T+W-dilate17", 17, 3)):
            run_dir = fake_run(root, f"fold{fold}/{name}", 8, 8, 0.9 + 0.01 * fold,
                               dataset="ksdd", fold=fold, n_val=0, seed=0, splits="bozic",
                               input_width=96, input_height=264, dilate_masks=dilate,
                               gradient_adjustment=False, epochs=25)
            pd.DataFrame({"image": [r[0] for r in rows], "label": [r[1] for r in rows],
                          "score": [r[column] for r in rows]}).to_csv(
                run_dir / "predictions.csv", index=False)
    return collect_runs(root)


def test_a_variant_is_labelled_by_its_configuration_and_joined_over_folds(tmp_path):
    table = variant_table(_runs(tmp_path))
    assert list(table["run"]) == ["FS-A+T+W", "FS-A+T+W-dilate17"]
    assert list(table["change"]) == ["none (the reference)", "dilate_masks 3 -> 17"]
    assert list(table["folds"]) == ["0,1", "0,1"]
    # Joined ranking: reference P P N N P N P -> (1 + 1 + 3/5 + 4/7) / 4; variant P P P N N P N
    assert table["ap"].tolist() == pytest.approx([(2 + 3 / 5 + 4 / 7) / 4, (3 + 4 / 6) / 4])
    assert table["ap_fold_mean"].tolist() == pytest.approx([0.905, 0.905])
    assert list(table.columns[8:]) == ["kos01/Part1.jpg", "kos02/Part0.jpg"]
    assert table.loc[1, "kos01/Part1.jpg"] == 0.7 and table.loc[1, "kos02/Part0.jpg"] == 0.15


def test_the_text_names_what_a_change_finds_and_that_one_seed_is_not_a_verdict(tmp_path):
    text = narrative.describe_variants(variant_table(_runs(tmp_path)))
    assert text.splitlines()[0] == (
        "- **dilate_masks 3 -> 17:** joined AP 91.7 against 79.3 (+12.4 points), 0 FP and 1 FN "
        "against 3 and 0; of the 2 positives the reference misses it finds `kos01/Part1` "
        "(0.70).")
    assert "Each row is one seed, so a change of a few points may be seed noise" in text
    section = narrative.diagnosis_section(_runs(tmp_path / "again"))
    assert "| dilate_masks 3 -> 17 | 0,1 | 0 | 91.7 | 90.5 | 0 | 1 | **0.70** | 0.15 |" in section


def test_runs_that_vary_nothing_are_refused_with_the_naming_rule(tmp_path):
    fake_run(tmp_path, "fold0/FS-A+T+W", 8, 8, 0.9, dataset="ksdd", fold=0, n_val=0)
    with pytest.raises(DataError, match="named after its reference plus a suffix"):
        variant_table(collect_runs(tmp_path))


def test_a_variant_on_fewer_folds_is_not_compared_as_if_joined_alike(tmp_path):
    runs = _runs(tmp_path)
    fake_run(tmp_path, "fold0/FS-A+T+W-50epochs", 8, 8, 0.9, dataset="ksdd", fold=0, n_val=0,
             seed=0, splits="bozic", input_width=96, input_height=264, dilate_masks=3,
             gradient_adjustment=False, epochs=50)
    pd.DataFrame({"image": [r[0] for r in PREDICTIONS[0]], "label": [r[1] for r in PREDICTIONS[0]],
                  "score": [r[2] for r in PREDICTIONS[0]]}).to_csv(
        tmp_path / "fold0" / "FS-A+T+W-50epochs" / "predictions.csv", index=False)
    table = variant_table(collect_runs(tmp_path))
    # beta follows the epochs where a run leaves it to the recipe: both differences are named.
    # Fold 0 alone ranks P N P N: AP (1 + 2/3) / 2; best F at 0.2 with 1 FP and no FN
    change = "beta 0.0374 -> 0.0185; epochs 25 -> 50"
    assert len(runs) == 4 and list(table["change"])[1] == change
    assert narrative.describe_variants(table).splitlines()[0].startswith(
        f"- **{change}:** (folds 0 only, the reference's 0,1: not comparable yet) joined AP 83.3 "
        "against 79.3")
    assert f"| {change} | 0 | 0 | 83.3 | 90.0 | 1 | 0 | 0.20 | - |" in (
        narrative.variant_table_markdown(table))
