"""Run directories as records: each run's settings, network and test metrics (``read_run``),
the finished runs under a folder (``collect_runs``), and the two joins every table and figure
reads them through, folds joined per seed (``join_folds``) and seeds summarised per setting
(``over_seeds``).

Every function reads what ``segdec.train.train`` wrote (``config.yaml``, ``split.csv``,
``metrics.json``), so the tables and figures always come from real runs. ``N_all`` and ``L_p``
are counted in each run's ``split.csv`` rather than read from the configuration, where ``None``
means "all". Batch tags (``RunConfig.notes``) become columns, so a report can pick the runs of
one artifact (``tag="table6"``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import total_ordering
from pathlib import Path

import pandas as pd

from segdec.config import RunConfig, supervision_mode
from segdec.errors import DataError
from segdec.metrics import image_metrics

MODES = ("WS", "MS", "FS")


@total_ordering
@dataclass(frozen=True)
class Network:
    """Which network a run trained: the paper's three switches (attention, atrous convolutions,
    the decaying loss weight), the architecture as Božič described it or as his code builds it,
    and whether gradient adjustment was on. Runs are grouped, paired and filtered by this key;
    its label (``str``) is made only where a table or figure shows it, so no code reads a
    network back out of text."""

    attention: bool
    atrous: bool
    decay: bool
    architecture: str = "described"
    gradient_adjustment: bool = True

    @property
    def switches(self) -> str:
        """``"A+T+W"``-style letters of the switched-on improvements (``"none"``: Božič's)."""
        letters = [name for name, on in zip("ATW", (self.attention, self.atrous, self.decay),
                                            strict=True) if on]
        return "+".join(letters) or "none"

    def with_adjustment(self) -> Network:
        """The same network with gradient adjustment on: the ablation compares switches within
        one recipe, whichever that is."""
        return replace(self, gradient_adjustment=True)

    @property
    def name(self) -> str:
        """The network's name in figures and prose (the tables keep the short ``str``)."""
        return NETWORK_NAMES.get(self, str(self))

    def __str__(self) -> str:
        label = self.switches
        if self.architecture == "released":
            label = f"{label} (released)"
        return label if self.gradient_adjustment else f"{label}, no GA"

    def __lt__(self, other: Network) -> bool:  # tables list networks by their labels
        return str(self) < str(other)


IMPROVED = Network(True, True, True)  # the paper's network
BASELINE = Network(False, False, False)  # Božič's, as his paper describes it
RELEASED = Network(False, False, False, "released")  # Božič's, as his code builds it
IMPROVED_NO_GA = Network(True, True, True, gradient_adjustment=False)
NETWORK_NAMES = {IMPROVED: "paper's network (A+T+W)",
                 IMPROVED_NO_GA: "paper's network, gradient adjustment off",
                 RELEASED: "Božič's network as released", BASELINE: "Božič's network as described"}


def network_named(label: str) -> Network:
    """The network a notebook parameter or option names by its label (``"none (released)"``),
    refused by name where it names none of the networks compared here."""
    known = {str(network): network for network in NETWORK_NAMES}
    if label not in known:
        raise DataError(f"no network is labelled {label!r}; choose one of "
                        f"{', '.join(map(repr, known))}")
    return known[label]


# Table 6's KolektorSDD MS column does not say its L_p; this project compares it with L_p = 5,
# the fewest masks of Božič's KolektorSDD sweep, so Figure 8 draws it there.
PAPER_KSDD_MS_L_P = 5
# A test AUC at or below this ranks defective images little better than a coin (0.5).
CHANCE_AUC = 0.6
COLLAPSED, AT_CHANCE = "collapsed", "at chance"
METRICS = ["auc", "ap", "f_measure", "fp", "fn"]
PIXEL_METRICS = ["pixel_ap", "pixel_f", "pixel_iou", "pixel_ap_1_8", "pixel_f_1_8",
                 "pixel_iou_1_8"]


def failure(metrics: dict) -> str:
    """How a finished run failed, from its test metrics: ``collapsed`` where evaluation found a
    flat map (metrics.json's warning), ``at chance`` where the test AUC is at most
    ``CHANCE_AUC``, else empty. A table marks such runs and a figure does not show them as a
    network's result."""
    if "warning" in metrics:
        return COLLAPSED
    return AT_CHANCE if metrics["auc"] <= CHANCE_AUC else ""


def read_run(run_dir: str | Path) -> dict:
    """One run directory as a flat record: settings, tags and (when finished) test metrics."""
    run_dir = Path(run_dir)
    config = RunConfig.from_file(run_dir / "config.yaml")
    split = pd.read_csv(run_dir / "split.csv")
    train = split[split["subset"] == "train"]
    positive = train["label"].astype(bool)
    n_all, l_p = int(positive.sum()), int((positive & train["has_pixel_label"].astype(bool)).sum())
    decay = config.balance == "decay"
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    network = Network(config.attention, config.atrous, decay, config.architecture,
                      config.gradient_adjustment)
    return {
        "run": run_dir.name, "run_dir": str(run_dir), "dataset": config.dataset,
        "mode": supervision_mode(n_all, l_p),
        "n_all": n_all, "l_p": l_p, "n_seg": "all" if config.n_seg is None else config.n_seg,
        "fold": config.fold if config.dataset == "ksdd" else None, "splits": config.splits,
        "flips": config.flips,
        "validation": "test set" if config.n_val == 0 else "held-out split",
        "input_size": f"{config.input_width}x{config.input_height}", "seed": config.seed,
        "epochs": config.epochs, "attention": config.attention, "atrous": config.atrous,
        "decay": decay, "architecture": config.architecture,
        "gradient_adjustment": config.gradient_adjustment,
        "seg_to_decision": config.seg_to_decision, "network": network,
        **config.notes, "finished": bool(metrics), "failure": failure(metrics) if metrics else "",
        **{k: metrics.get(k) for k in METRICS + PIXEL_METRICS},
    }


def collect_runs(root: str | Path, tag: str | None = None) -> pd.DataFrame:
    """Every run directory under ``root``; with ``tag``, only runs whose tag of that name is set."""
    records = [read_run(path.parent) for path in sorted(Path(root).rglob("config.yaml"))]
    runs = pd.DataFrame(records, columns=None if records else ["run", "finished"])
    if tag is not None:
        runs = runs[runs[tag].fillna(False).astype(bool)] if tag in runs else runs.iloc[:0]
    return runs.reset_index(drop=True)


def has_finished(runs: pd.DataFrame) -> bool:
    return bool(len(runs)) and bool(runs["finished"].astype(bool).any())


def runs_dataset(runs: pd.DataFrame) -> str:
    """The one dataset the finished runs come from (a report of several must name one)."""
    datasets = sorted(finished(runs)["dataset"].unique())
    if len(datasets) != 1:
        raise DataError(f"the runs come from {len(datasets)} datasets ({', '.join(datasets)}); "
                        "name the one to report on")
    return datasets[0]


def has_folds(runs: pd.DataFrame) -> bool:
    """Whether the runs come from a dataset with folds (KolektorSDD), read fold by fold."""
    return bool(len(runs)) and bool(runs["fold"].notna().any())


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    done = runs[runs["finished"].astype(bool)] if len(runs) else runs
    if done.empty:
        raise DataError("no finished runs to report on; run the batch first (segdec batch FILE)")
    return done


# What makes two runs the same setting (seeds and folds of one setting are joined or averaged;
# anything else, the input size included, is a different row).
SETTING = ["dataset", "splits", "mode", "n_seg", "network", "attention", "atrous", "decay",
           "architecture", "gradient_adjustment", "seg_to_decision", "input_size",
           "validation", "epochs", "flips"]


def join_folds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting and seed, its folds joined as Božič reports KolektorSDD: the test
    predictions of every fold concatenated (each image once) for AP, AUC, F, FP and FN, beside
    the per-fold AP's mean and spread. Pixel metrics are the folds' mean. A setting run on one
    fold (or a dataset without folds) keeps that run's numbers; ``folds`` says which were
    joined."""
    rows = []
    keys = [*SETTING, "seed"]
    for key, group in finished(runs).groupby(keys, sort=False, dropna=False):
        group = group.sort_values("fold")
        row = dict(zip(keys, key, strict=True))
        if len(group) == 1:
            joined = group.iloc[0][METRICS].to_dict()
        else:
            predictions = pd.concat([pd.read_csv(Path(d) / "predictions.csv")
                                     for d in group["run_dir"]], ignore_index=True)
            joined = image_metrics(predictions["label"].to_numpy(),
                                   predictions["score"].to_numpy())
        folds = [int(f) for f in group["fold"].dropna()]
        row.update({
            "folds": ",".join(map(str, folds)) or "-",
            "n_all": round(group["n_all"].mean()), "l_p": round(group["l_p"].mean()),
            **{k: joined[k] for k in METRICS},
            "ap_fold_mean": group["ap"].mean(), "ap_fold_std": group["ap"].std(ddof=0),
            **{k: pd.to_numeric(group[k], errors="coerce").mean() for k in PIXEL_METRICS},
        })
        rows.append(row)
    return pd.DataFrame(rows)


def over_seeds(joined: pd.DataFrame) -> pd.DataFrame:
    """One row per setting and fold set (``join_folds``'s rows): each metric's mean over the
    seeds, the joined AP's standard deviation over seeds (ddof 1; NaN for one seed) and every
    seed's joined AP, so that a difference can be read against the spread of seeds."""
    keys = [*SETTING, "folds"]
    rows = []
    for key, group in joined.groupby(keys, sort=False, dropna=False):
        group = group.sort_values("seed")
        means = group[[*METRICS, "ap_fold_mean", "ap_fold_std", *PIXEL_METRICS]].apply(
            pd.to_numeric, errors="coerce").mean()
        rows.append({**dict(zip(keys, key, strict=True)), "n_all": group["n_all"].iloc[0],
                     "l_p": group["l_p"].iloc[0], "seeds": len(group),
                     "seed_list": ",".join(str(int(s)) for s in group["seed"]),
                     **means.to_dict(), "ap_sd": group["ap"].std(ddof=1),
                     "ap_per_seed": list(group["ap"])})
    return pd.DataFrame(rows)


def pixels(input_size: str) -> int:
    """The pixel count of a ``WxH`` input size (sizes sort by it, not as text)."""
    width, height = input_size.split("x")
    return int(width) * int(height)


def mode_order(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    """Rows in the paper's mode order, then by ``keys`` (an input size by its pixels)."""
    order = frame["mode"].map({m: i for i, m in enumerate(MODES)})
    frame = frame.assign(_order=order)
    keys = tuple(k if k != "input_size" else "_pixels" for k in keys)
    if "_pixels" in keys:
        frame = frame.assign(_pixels=frame["input_size"].map(
            lambda s: pixels(s) if isinstance(s, str) and "None" not in s else 0))
    return frame.sort_values(["_order", *keys]).drop(
        columns=[c for c in ("_order", "_pixels") if c in frame])
