"""segdec.suggest, the label advisor: which weak positives to mask next, and the notebook
(with its experiment, segdec/teaching/label_budget.py) that tests the advice."""

from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

from segdec.cli import main
from segdec.errors import DataError
from segdec.suggest import COMPONENTS, binary_entropy, rank_candidates

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_label_budget.ipynb"


@pytest.fixture
def experiment():
    """The label-budget experiment that notebook 07 calls."""
    from segdec.teaching import label_budget

    return label_budget


def test_binary_entropy_is_one_bit_at_a_half_and_zero_when_sure():
    np.testing.assert_allclose(binary_entropy(np.array([0.0, 0.5, 1.0])), [0.0, 1.0, 0.0])


def test_ranking_covers_exactly_the_weak_positives(tiny_run):
    split = pd.read_csv(tiny_run / "split.csv")
    weak = split[(split.subset == "train") & (split.label == 1) & ~split.has_pixel_label]
    ranking = rank_candidates(tiny_run, device="cpu")
    assert sorted(ranking.image) == sorted(weak.image)
    assert ranking["rank"].tolist() == list(range(1, len(weak) + 1))
    assert ranking.score.is_monotonic_decreasing
    np.testing.assert_allclose(ranking.score, ranking[COMPONENTS].mean(axis=1))
    np.testing.assert_allclose(ranking.seg_miss, 1 - ranking.seg_max)
    disagreement = (ranking.decision_prob - ranking.seg_max).abs()
    np.testing.assert_allclose(ranking.disagreement, disagreement)
    assert ranking[COMPONENTS].apply(lambda c: c.between(0, 1)).all().all()


def test_cli_writes_the_top_of_the_ranking(tiny_run, tmp_path, capsys):
    out = tmp_path / "suggest.csv"
    assert main(["suggest-labels", "--run", str(tiny_run), "--budget", "3", "--out", str(out),
                 "--device", "cpu"]) == 0
    top = pd.read_csv(out)
    assert top["rank"].tolist() == [1, 2, 3]
    assert top.image.tolist() == rank_candidates(tiny_run, "cpu").image.head(3).tolist()
    assert top.image[0] in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # argparse refuses it before any work
        main(["suggest-labels", "--run", str(tiny_run), "--budget", "0"])
    assert refused.value.code == 2 and "0 must be at least 1" in capsys.readouterr().err


def test_with_pixel_labels_marks_only_training_positives(tiny_run, experiment):
    with_pixel_labels = experiment.with_pixel_labels
    split = pd.read_csv(tiny_run / "split.csv")
    weak = split[(split.subset == "train") & (split.label == 1) & ~split.has_pixel_label]
    chosen = weak.image.head(2).tolist()
    marked = with_pixel_labels(split, chosen)
    assert marked.set_index("image").loc[chosen, "has_pixel_label"].all()
    assert marked.has_pixel_label.sum() == split.has_pixel_label.sum() + 2
    negative = split[(split.subset == "train") & (split.label == 0)].image.iloc[0]
    with pytest.raises(DataError, match="not a training positive"):
        with_pixel_labels(split, [negative])


def test_the_experiments_summary_and_figure_keep_the_kernels_backend(experiment, tmp_path):
    """advisor - random is paired by seed; the figure is drawn on whatever backend the notebook's
    kernel has (it used to switch matplotlib to Agg inside the kernel)."""
    import matplotlib

    table = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "arm": list(experiment.ARMS) * 2,
                          "ap": [0.5, 0.75, 0.5, 0.25, 0.5, 0.75],
                          "n_pixel_labels": [2, 4, 4] * 2})
    summary = experiment.summarise_label_budget(table)
    assert summary.index.tolist() == ["initial", "advisor", "random", "advisor - random"]
    assert summary.ap_mean.tolist() == [0.375, 0.625, 0.625, 0.0]
    assert summary.wins.tolist() == ["", "", "", "1/2"]
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        path = experiment.plot_label_budget(table, tmp_path / "label_budget.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_label_budget_notebook_runs_under_papermill(tmp_path):
    figures = tmp_path / "figures"
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name="python3",
        progress_bar=False, cwd=str(NOTEBOOK.parents[1]),
        parameters={"data_root": str(tmp_path / "data"), "n_pos": 20, "n_neg": 20,
                    "n_initial": 2, "budget": 2, "seeds": [0], "epochs": 1,
                    "out_dir": str(tmp_path / "runs"), "figures_dir": str(figures),
                    "results": None},
    )
    results = pd.read_csv(figures / "results.csv")
    assert results.arm.tolist() == ["initial", "advisor", "random"]
    assert results.n_pixel_labels.tolist() == [2, 4, 4]
    summary = pd.read_csv(figures / "summary.csv", index_col=0)
    assert summary.loc["advisor - random", "ap_mean"] == pytest.approx(
        results.ap[1] - results.ap[2])
    assert (figures / "label_budget.png").stat().st_size > 0
    advisor_split = pd.read_csv(tmp_path / "runs" / "seed0" / "advisor_split.csv")
    suggested = rank_candidates(tmp_path / "runs" / "seed0" / "initial", "cpu").image.head(2)
    assert advisor_split.set_index("image").loc[suggested, "has_pixel_label"].all()
