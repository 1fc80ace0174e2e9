"""Which weakly labelled defective images to give pixel masks next (beyond the paper).

Candidates are the run's training positives with only an image label (``split.csv``: subset
train, label 1, has_pixel_label False). Each is known to hold a defect, so a model that has
learnt what defects look like should find one in it. The run's best checkpoint scores each
candidate with three components in [0, 1]:

- ``seg_miss = 1 - max(seg map)``: the segmentation subnetwork does not find the defect that
  the image label says is there;
- ``disagreement = |decision probability - max(seg map)|``: the two subnetworks disagree, so
  the decision rests on evidence the segmentation map does not show;
- ``seg_entropy``: the mean binary entropy of the segmentation map (bits), i.e. how unsure the
  map is overall.

``score`` is their mean; the highest-scoring images are where a mask should teach the most.
Images are ranked by score (ties by name). ``label_budget_experiment`` tests the advice: mixed
supervision with the top-K masks against K random ones, over several seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import xlogy

from segdec.checkpoint import (
    best_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    scoring_dtype,
)
from segdec.config import RunConfig
from segdec.data.images import DataError
from segdec.data.prepare import loader, prepare_data
from segdec.errors import ConfigError
from segdec.evaluate import predict_loader
from segdec.io import atomic_write
from segdec.plots import save_figure, styled
from segdec.runtime import resolve_device
from segdec.train import train

COMPONENTS = ["seg_miss", "disagreement", "seg_entropy"]
RANKING_COLUMNS = ["rank", "image", "score", "decision_prob", "seg_max", *COMPONENTS]
ARMS = ("initial", "advisor", "random")


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(p), 0 at p in {0, 1}."""
    return -(xlogy(p, p) + xlogy(1 - p, 1 - p)) / np.log(2)


def rank_candidates(run_dir: str | Path, device: str = "auto") -> pd.DataFrame:
    """Every weakly labelled training positive of a run, best candidate for a mask first."""
    run_dir = Path(run_dir)
    config = RunConfig.from_file(run_dir / "config.yaml")
    config, data = prepare_data(config, run_dir / "split.csv")
    train_set = data.train
    candidates = [i for i, sample in enumerate(train_set.samples)
                  if sample.label and not train_set.has_pixel_label[i]]
    if not candidates:
        raise DataError(f"{run_dir}/split.csv has no training positive without a pixel label; "
                        "every defective training image already has a mask")
    torch_device = resolve_device(device)
    state = load_checkpoint(best_checkpoint(run_dir))
    model = model_from_checkpoint(state, torch_device)
    scores, maps = predict_loader(model, loader(train_set, config, torch_device, candidates),
                                  torch_device, scoring_dtype(state, torch_device),
                                  keep_maps=len(candidates))
    seg_max = np.array([m.max() for m in maps], dtype=np.float64)
    table = pd.DataFrame({
        "image": [train_set.samples[i].name for i in candidates],
        "decision_prob": scores,
        "seg_max": seg_max,
        "seg_miss": 1.0 - seg_max,
        "disagreement": np.abs(scores - seg_max),
        "seg_entropy": [float(binary_entropy(m.astype(np.float64)).mean()) for m in maps],
    })
    table["score"] = table[COMPONENTS].mean(axis=1)
    table = table.sort_values(["score", "image"], ascending=[False, True], ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[RANKING_COLUMNS]


def suggest_labels(run_dir: str | Path, budget: int, out: str | Path | None = None,
                   device: str = "auto") -> pd.DataFrame:
    """The ``budget`` best candidates, written to ``out`` (default RUN/label_suggestions.csv)."""
    if budget < 1:
        raise ConfigError(f"budget={budget} must be at least 1")
    top = rank_candidates(run_dir, device).head(budget)
    out = Path(out) if out else Path(run_dir) / "label_suggestions.csv"
    atomic_write(out, lambda tmp: top.to_csv(tmp, index=False))
    return top


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
def plot_label_budget(table: pd.DataFrame, path: str | Path) -> Path:
    """Test AP of each seed's three runs, joined by seed, with the mean per arm."""
    import matplotlib.pyplot as plt

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
    axes.set_ylabel("test AP")
    axes.legend()
    figure.tight_layout()
    (saved,) = save_figure(figure, Path(path).parent, Path(path).stem, formats=("png",))
    plt.close(figure)
    return saved
