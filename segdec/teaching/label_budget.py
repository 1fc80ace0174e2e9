"""The label-budget experiment of ``notebooks/07_label_budget.ipynb``: are the masks that
``segdec suggest-labels`` advises worth more than as many random ones? Its recorded results are
under ``figures/label_budget/`` (the commands that made them are in its README).

Per seed, mixed supervision with the advisor's extra masks is trained against the same number of
random extra masks, both starting from one first run; the notebook calls this module.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from segdec.config import RunConfig
from segdec.errors import DataError
from segdec.io import atomic_write
from segdec.plots import save_figure, styled
from segdec.suggest import rank_candidates
from segdec.train import train

ARMS = ("initial", "advisor", "random")


def with_pixel_labels(split: pd.DataFrame, images: list[str]) -> pd.DataFrame:
    """A copy of ``split`` in which ``images`` (training positives) also have pixel labels."""
    eligible = set(split.loc[(split["subset"] == "train") & (split["label"] == 1), "image"])
    outside = sorted(set(images) - eligible)
    if outside:
        raise DataError(f"{outside[0]} is not a training positive of the split; only those can "
                        "be given pixel labels")
    split = split.copy()
    split.loc[split["image"].isin(images), "has_pixel_label"] = True
    return split


def label_budget_experiment(config: RunConfig, n_initial: int, budget: int, seeds: list[int],
                            out_dir: str | Path, progress: bool = False) -> pd.DataFrame:
    """Test metrics of mixed supervision with advisor-chosen against random extra masks.

    Per seed (split and training seed alike): train with ``n_initial`` masks (``initial``; 0 is
    weak supervision), rank its weak positives, then train with those masks plus the top
    ``budget`` of the ranking (``advisor``) or ``budget`` random weak positives (``random``).
    Finished runs under ``out_dir`` are reused, so a rerun only trains what is missing.
    """
    out_dir = Path(out_dir)
    rows = []
    for seed in seeds:
        seed_dir = out_dir / f"seed{seed}"
        base = config.replace(seed=seed)
        initial = base.replace(n_seg=n_initial, out_dir=str(seed_dir / "initial"))
        rows.append({"seed": seed, "arm": "initial", "n_pixel_labels": n_initial,
                     **train(initial, resume=True, progress=progress)})
        ranking = rank_candidates(initial.out_dir, config.device)
        if budget > len(ranking):
            raise DataError(f"budget={budget} exceeds the {len(ranking)} weakly labelled "
                            "training positives; use more data or a smaller budget")
        rng = np.random.default_rng(seed)
        chosen = {"advisor": ranking["image"].head(budget).tolist(),
                  "random": rng.choice(sorted(ranking["image"]), budget, replace=False).tolist()}
        split = pd.read_csv(seed_dir / "initial" / "split.csv")
        for arm, images in chosen.items():
            split_csv = seed_dir / f"{arm}_split.csv"
            labelled = with_pixel_labels(split, images)
            atomic_write(split_csv, lambda tmp, s=labelled: s.to_csv(tmp, index=False))
            run = base.replace(n_seg=n_initial + budget, split_csv=str(split_csv),
                               out_dir=str(seed_dir / arm))
            rows.append({"seed": seed, "arm": arm, "n_pixel_labels": n_initial + budget,
                         **train(run, resume=True, progress=progress)})
    return pd.DataFrame(rows).drop(columns="checkpoint")


def summarise_label_budget(table: pd.DataFrame) -> pd.DataFrame:
    """AP per arm (mean, standard deviation over seeds) and advisor - random, paired by seed."""
    summary = table.groupby("arm")["ap"].agg(["mean", "std", "count"]).reindex(list(ARMS))
    by_seed = table.pivot(index="seed", columns="arm", values="ap")
    difference = by_seed["advisor"] - by_seed["random"]
    summary.loc["advisor - random"] = [difference.mean(), difference.std(), len(difference)]
    summary["wins"] = ["", "", "", f"{int((difference > 0).sum())}/{len(difference)}"]
    return summary.rename(columns={"mean": "ap_mean", "std": "ap_std", "count": "seeds"})


@styled
def plot_label_budget(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Test AP of each seed's three runs, joined by seed, with the mean per arm, on an axis from
    0 to 1 (a difference is read against the whole range) under ``title``, which says what the
    images were (synthetic ones, by default of the notebook)."""
    by_seed = table.pivot(index="seed", columns="arm", values="ap")[list(ARMS)]
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for seed, aps in by_seed.iterrows():
        axes.plot(ARMS, aps.values, color="0.7", marker="o", label="one seed" if seed ==
                  by_seed.index[0] else None)
    axes.plot(ARMS, by_seed.mean().values, color="C3", marker="s", linewidth=2, label="mean")
    initial, extra = table.loc[table.arm == "initial", "n_pixel_labels"].iloc[0], \
        table.loc[table.arm == "advisor", "n_pixel_labels"].iloc[0]
    axes.set_xticks(range(3), [f"initial\n{initial} masks", f"advisor\n{extra} masks",
                               f"random\n{extra} masks"])
    axes.set(ylabel="test AP", ylim=(0, 1.02), title=title or None)
    axes.title.set_fontsize("small")
    axes.legend(loc="lower right")
    figure.tight_layout()
    (saved,) = save_figure(figure, Path(path).parent, Path(path).stem, formats=("png",))
    plt.close(figure)
    return saved
