"""segdec.statistics and segdec.claims: paired verdicts on hand-made ablation runs, including
the obvious alternatives (WS already equal to FS, runs at chance, collapsed runs)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from segdec import claims, narrative
from segdec.runs import collect_runs
from segdec.statistics import paired, sign_test, t_interval
from tests.layouts import fake_run

SWITCHES = {"A+T+W": (True, True, "decay"), "T+W": (False, True, "decay"),
            "A+T": (True, True, "linear"), "A+W": (True, False, "decay"),
            "none": (False, False, "linear")}
# Each row's fold AP against A+T+W's on the same fold and seed: T+W always 2 points lower (A
# helps), A+T 2 higher at seed 0 and lower at seed 1 (not separated), A+W 3 higher (T hurts).
OFFSETS = {"A+T+W": lambda seed: 0.0, "T+W": lambda seed: -0.02,
           "A+T": lambda seed: (0.02, -0.02, 0.0)[seed], "A+W": lambda seed: 0.03}


def _ablation(root):
    """WS and MS5 with every row (none at chance, one A+T+W run collapsed) on 3 folds x 3 seeds,
    FS with A+T+W only; every A+T+W run has the same fold AP in every mode (so WS = MS = FS)."""
    for fold in range(3):
        for seed in range(3):
            for mode, l_p in (("WS", 0), ("MS", 5), ("FS", 8)):
                for switches, (attention, atrous, balance) in SWITCHES.items():
                    if mode == "FS" and switches != "A+T+W" or switches == "none" and mode != "WS":
                        continue
                    base = 0.95 + 0.01 * fold + 0.001 * seed
                    ap = 0.55 if switches == "none" else base + OFFSETS[switches](seed)
                    run_dir = fake_run(root, f"fold{fold}/{mode}-{switches}-s{seed}", 8, l_p, ap,
                                       attention=attention, atrous=atrous, balance=balance,
                                       dataset="ksdd", fold=fold, n_val=0, seed=seed,
                                       split_seed=0, input_width=96, input_height=264,
                                       gradient_adjustment=False, splits="bozic", epochs=25)
                    pd.DataFrame({"image": [f"kos{fold}/Part0.jpg", f"kos{fold}/Part1.jpg"],
                                  "score": [0.9, 0.2], "label": [1, 0]}).to_csv(
                        run_dir / "predictions.csv")
                    if (switches, mode, fold, seed) == ("A+T+W", "MS", 2, 2):
                        metrics = json.loads((run_dir / "metrics.json").read_text())
                        metrics["warning"] = "the map scale collapsed"
                        (run_dir / "metrics.json").write_text(json.dumps(metrics))


def test_paired_statistics_pin_the_interval_sign_test_and_verdict():
    assert sign_test([1, 1, 1, 1, 1, 1, 1, 1, 1]) == pytest.approx(2 / 512)
    assert sign_test([1, -1, 0]) == 1.0 and sign_test([0, 0]) == 1.0
    low, high = t_interval([1.0, 2.0, 3.0])  # mean 2, sem 1/sqrt(3), t(0.975, 2) = 4.303
    assert (round(low, 3), round(high, 3)) == (-0.484, 4.484)
    assert paired([2.0] * 9).verdict == "helps" and paired([-2.0] * 9).verdict == "hurts"
    # 9 of 9 positive but an interval across zero: the two tests disagree, so no verdict
    assert paired([0.1] * 8 + [30.0]).verdict == "not separated"
    assert paired([1.0] * 5).can_separate is False and paired([1.0] * 6).can_separate is True


def test_each_change_gets_its_verdict_from_paired_runs(tmp_path):
    _ablation(tmp_path)
    runs = claims.ablation_runs(collect_runs(tmp_path))
    table = claims.change_claims(runs).set_index(["claim", "mode"])
    a, t, w, none = (change.claim for change in claims.CHANGES)
    assert table.loc[(a, "WS"), ["pairs", "wins", "verdict"]].tolist() == [9, 9, "helps"]
    assert table.loc[(a, "WS"), "mean"] == pytest.approx(2.0)
    assert table.loc[(t, "MS"), ["wins", "losses", "verdict", "failed_pairs"]].tolist() == [
        0, 9, "hurts", 1]
    assert table.loc[(w, "WS"), ["wins", "losses", "ties", "verdict"]].tolist() == [
        3, 3, 3, "not separated"]
    assert table.loc[(none, "WS"), ["failed_pairs", "verdict"]].tolist() == [9, "helps"]
    assert table.loc[(a, "FS"), "verdict"] == "not yet run"


def test_the_verdict_says_what_failed_and_tests_ws_against_fs_first(tmp_path):
    _ablation(tmp_path)
    text = narrative.verdict(collect_runs(tmp_path))
    lines = text.splitlines()
    assert lines[0] == (
        "- **A (attention) helps:** WS **helps** (+2.0 AP points, 95 % interval +2.0 to +2.0; 9 "
        "of 9 pairs for, 0 against; sign test p = 0.004); MS **helps** (+2.0 AP points, 95 % "
        "interval +2.0 to +2.0; 9 of 9 pairs for, 0 against; sign test p = 0.004; 1 pair "
        "includes a collapsed or at-chance run (mean without them +2.0)); FS **not yet run**.")
    # every "none" run is at chance: the difference is against failures, not a network
    assert lines[3].startswith("- **A+T+W beats none (Božič's network as described):** WS "
                               "**not testable (most pairs hold a failed run)**")
    # MS matches FS, but so does WS: the alternative is said
    assert lines[4].startswith("- **MS (5 masked items) comes within 1 point of FS:** **holds**")
    assert "But WS, with no mask at all, comes within it too" in lines[4]
    assert lines[5] == (
        "- **Table 6's KolektorSDD numbers for the paper's network:** WS 100.0 (3 seeds) against "
        "the paper's 93.41: **holds** (target 93); MS 100.0 (3 seeds) against the paper's 99.36: "
        "**holds** (target 97); FS 100.0 (3 seeds) against the paper's 100.00: **holds** (target "
        "99).")
    assert "Božič's 3 KolektorSDD folds; input 96x264" in lines[7]
    assert "gradient adjustment off" in lines[7] and "seeds 0, 1, 2" in lines[7]


def test_the_claims_table_marks_failed_runs_in_their_cells(tmp_path):
    _ablation(tmp_path)
    runs = claims.ablation_runs(collect_runs(tmp_path))
    table = narrative.claims_table_markdown(claims.cells(runs)).splitlines()
    assert table[2] == "| none | 100.0 ± 0.0 (3) †9, none without (92.7) | - (98.9) | - (99.5) |"
    assert table[8] == ("| A+T+W | 100.0 ± 0.0 (3) (93.4) | 100.0 ± 0.0 (3) †1, 100.0 without "
                        "(99.4) | 100.0 ± 0.0 (3) (100.0) |")


def test_table6_numbers_below_three_seeds_say_where_they_stand_not_a_verdict():
    changes = pd.DataFrame(columns=["claim", "mode", "verdict"])
    supervision = pd.DataFrame({"mode": ["MS", "WS"], "claim": ["MS claim", "WS claim"],
                                "verdict": "not yet run"})
    numbers = pd.DataFrame({"mode": ["WS", "FS"], "paper": [93.41, 100.0], "target": [93.0, 99.0],
                            "ap": [94.0, 95.0], "seeds": [1, 3],
                            "verdict": ["holds", "does not hold"]})
    text = narrative.describe_claims(changes, supervision, numbers, "here")
    assert ("WS 94.0 (1 seed) against the paper's 93.41: **reached at 1 of 3 seeds** (target 93); "
            "FS 95.0 (3 seeds) against the paper's 100.00: **does not hold** (target 99, 4.0 "
            "points short).") in text
    assert text.count("What was tried to close the gap") == 1
    reached = narrative.describe_claims(changes, supervision, numbers.iloc[:1], "here")
    assert "What was tried" not in reached  # nothing falls short: no pointer to a diagnosis
