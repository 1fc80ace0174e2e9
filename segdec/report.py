"""Run directories -> the paper's Table 5, Figure 8, Figure 9 and Table 6, beside its numbers.

Every function reads what ``segdec.train.train`` wrote (``config.yaml``, ``split.csv``,
``metrics.json``, ``segmentation_maps.npz``), so the tables and figures always come from real
runs. ``N_all`` and ``L_p`` are counted in each run's ``split.csv`` rather than read from the
configuration, where ``None`` means "all". Batch tags (``RunConfig.notes``) become columns, so a
report can pick the runs of one artifact (``tag="table6"``).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segdec import paper
from segdec.config import RunConfig, supervision_mode
from segdec.data.images import DataError
from segdec.data.prepare import prepare_data
from segdec.evaluate import image_metrics, input_image, input_mask
from segdec.io import atomic_write, write_text
from segdec.plots import IMAGE, LINE_COLOURS, MAP, TRUE_DEFECT, colourbar, styled
from segdec.records import MAPS_RECORD, pixel_free_maps
from segdec.statistics import sign_test

MODES = ("WS", "MS", "FS")
IMPROVED, BASELINE = "A+T+W", "none"  # the paper's network and Božič's
RELEASED = "none (released)"  # Božič's network as his code builds it (architecture: released)
# Table 6's KolektorSDD MS column does not say its L_p; this project compares it with L_p = 5,
# the fewest masks of Božič's KolektorSDD sweep, so Figure 8 draws it there.
PAPER_KSDD_MS_L_P = 5
# How figures name the networks (the tables keep the short labels).
NETWORK_NAMES = {IMPROVED: "paper's network (A+T+W)",
                 f"{IMPROVED}, no GA": "paper's network, gradient adjustment off",
                 RELEASED: "Božič's network as released", BASELINE: "Božič's network as described"}
METRICS = ["auc", "ap", "f_measure", "fp", "fn"]
PIXEL_METRICS = ["pixel_ap", "pixel_f", "pixel_iou", "pixel_ap_1_8", "pixel_f_1_8",
                 "pixel_iou_1_8"]


def noted(title: str, note: str = "") -> str:
    """``title`` with ``note`` in parentheses, so that an output of synthetic data (the demo's
    "synthetic smoke test") says so wherever it is looked at."""
    return f"{title} ({note})" if note else title


# ---- collecting runs --------------------------------------------------------------------------
def improvements(attention: bool, atrous: bool, decay: bool) -> str:
    """``"A+T+W"``-style label of the switched-on improvements (``"none"``: Božič's network)."""
    letters = [name for name, on in zip("ATW", (attention, atrous, decay), strict=True) if on]
    return "+".join(letters) or BASELINE


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
    network = improvements(config.attention, config.atrous, decay)
    if config.architecture == "released":
        network = RELEASED if network == BASELINE else f"{network} (released)"
    if not config.gradient_adjustment:  # the decision loss reaches the segmentation features
        network = f"{network}, no GA"
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
        **config.notes, "finished": bool(metrics),
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


def _mode_order(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    """Rows in the paper's mode order, then by ``keys`` (an input size by its pixels)."""
    order = frame["mode"].map({m: i for i, m in enumerate(MODES)})
    frame = frame.assign(_order=order)
    keys = tuple(k if k != "input_size" else "_pixels" for k in keys)
    if "_pixels" in keys:
        frame = frame.assign(_pixels=frame["input_size"].map(
            lambda s: pixels(s) if isinstance(s, str) and "None" not in s else 0))
    return frame.sort_values(["_order", *keys]).drop(
        columns=[c for c in ("_order", "_pixels") if c in frame])


# ---- any batch ---------------------------------------------------------------------------------
def runs_table(root: str | Path) -> pd.DataFrame:
    """One row per finished run under ``root`` (its path below ``root``), with its tags, test
    metrics, best epoch, the last epoch's decision loss and the training time: what a
    diagnostic or own-images batch gave, for any set of runs."""
    root = Path(root)
    runs = finished(collect_runs(root))
    tags = sorted({key for path in runs["run_dir"] for key in
                   RunConfig.from_file(Path(path) / "config.yaml").notes})
    rows = []
    for _, run in runs.iterrows():
        history = pd.read_csv(Path(run["run_dir"]) / "history.csv")
        validated = history.dropna(subset=["val_ap"])
        best = validated.loc[validated["val_ap"].idxmax(), "epoch"] + 1 if len(validated) else None
        rows.append({
            "run": Path(run["run_dir"]).relative_to(root).as_posix(),
            **{tag: run.get(tag) for tag in tags}, "network": run["network"],
            "mode": run["mode"], "fold": run["fold"],
            "validation": run["validation"], "ap": run["ap"], "auc": run["auc"],
            "fp": int(run["fp"]), "fn": int(run["fn"]), "pixel_ap_1_8": run["pixel_ap_1_8"],
            "best_epoch": best, "last_decision_loss": history["loss_dec"].iloc[-1],
            "train_s": round(history["seconds"].sum()),
        })
    return pd.DataFrame(rows)


# ---- Table 5 ----------------------------------------------------------------------------------
def table5(runs: pd.DataFrame, compare_with_paper: bool = True) -> pd.DataFrame:
    """The paper's method (A+T+W) per setting; with the paper's values and our differences."""
    ours = finished(runs)
    ours = ours[ours["network"] == IMPROVED][["mode", "n_all", "l_p", "epochs", *METRICS]]
    if not compare_with_paper:
        return _mode_order(ours, "n_all", "l_p").reset_index(drop=True)
    reference = paper.table5().drop(columns=["row", "epochs"])
    table = ours.merge(reference, on=["mode", "n_all", "l_p"], how="outer",
                       suffixes=("", " paper"))
    columns = ["mode", "n_all", "l_p", "epochs"]
    for metric in METRICS:
        table[f"{metric} diff"] = table[metric] - table[f"{metric} paper"]
        columns += [metric, f"{metric} paper", f"{metric} diff"]
    return _mode_order(table[columns], "n_all", "l_p").reset_index(drop=True)


# ---- Figure 8 ---------------------------------------------------------------------------------
@styled
def figure8(runs: pd.DataFrame, compare_with_paper: bool = True,
            baseline: str = BASELINE, title_note: str = "") -> Figure:
    """AP per ``L_p-N_all`` setting (folds joined): our improved and baseline networks (Božič's,
    as described or, with ``baseline=RELEASED``, as released), and the paper's AP; ``title_note``
    is added to the title (``noted``)."""
    ours = join_folds(runs)
    ours = ours[ours["network"].isin([IMPROVED, baseline])]
    bars = ours.assign(source=np.where(ours["network"] == IMPROVED, "this project: A+T+W",
                                       f"this project: Božič's network ({baseline})"))
    bars = bars[["mode", "n_all", "l_p", "ap", "source"]]
    if compare_with_paper:
        reference = paper.table5().assign(source="paper, Table 5 (A+T+W)")
        bars = pd.concat([bars, reference[bars.columns]], ignore_index=True)
    bars = bars.sort_values(["n_all", "l_p"])
    bars["setting"] = bars["l_p"].astype(str) + "-" + bars["n_all"].astype(str)
    settings, sources = list(dict.fromkeys(bars["setting"])), list(dict.fromkeys(bars["source"]))
    mean_ap = bars.groupby(["source", "setting"], sort=False)["ap"].mean()  # over seeds
    figure, axis = plt.subplots(figsize=(max(6.0, 0.45 * len(settings) + 3), 4))
    width = 0.8 / len(sources)  # the sources side by side within each setting
    for index, (source, colour) in enumerate(zip(sources, LINE_COLOURS, strict=False)):
        aps = mean_ap[source]
        axis.bar([settings.index(s) - 0.4 + width * (index + 0.5) for s in aps.index], aps,
                 width, color=colour, label=source)
    axis.set_xticks(range(len(settings)), settings)
    axis.set(xlabel="L_p-N_all (pixel-labelled positives - all positives)", ylabel="AP",
             ylim=(0, 1.0),
             title=noted("Figure 8: AP per setting", title_note))
    axis.tick_params(axis="x", rotation=60)
    axis.legend(title="source", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    figure.tight_layout()
    return figure


def pixel_label_table(runs: pd.DataFrame,
                      networks: tuple[str, ...] = (f"{IMPROVED}, no GA", IMPROVED, RELEASED),
                      ) -> pd.DataFrame:
    """Table 5's analogue on a dataset with folds: per network and number of pixel-labelled
    positives, the folds-joined AP, AUC, FP and FN (means over seeds, AP in %), with the
    spread and every seed's AP. Only settings run on all 3 folds are rows."""
    summary = over_seeds(join_folds(finished(runs)))
    summary = summary[(summary["folds"] == "0,1,2") & summary["network"].isin(networks)]
    if summary.empty:
        raise DataError(f"no setting of {', '.join(networks)} was run on all 3 folds")
    order = {network: i for i, network in enumerate(networks)}
    table = summary.assign(order=summary["network"].map(order)).sort_values(
        ["order", "input_size", "l_p"])
    return pd.DataFrame({
        "network": table["network"], "input_size": table["input_size"],
        "mode": table["mode"], "n_all": table["n_all"],
        "l_p": table["l_p"], "epochs": table["epochs"], "seeds": table["seeds"],
        "ap": 100 * table["ap"], "ap_sd": 100 * table["ap_sd"],
        "ap_per_seed": [", ".join(f"{100 * ap:.1f}" for ap in aps) for aps in table["ap_per_seed"]],
        "auc": table["auc"], "fp": table["fp"], "fn": table["fn"],
        "pixel_ap_1_8": table["pixel_ap_1_8"]}).reset_index(drop=True)


@styled
def figure8_pixel_labels(runs: pd.DataFrame,
                         networks: tuple[str, ...] = (f"{IMPROVED}, no GA", IMPROVED, RELEASED),
                         dataset: str = "ksdd", title_note: str = "") -> Figure:
    """AP against the number of pixel-labelled positives L_p, as the paper's Figure 8 reads, on
    a dataset with folds: each seed's folds-joined AP (dots), their mean ± sd over seeds (line
    and bars), each fold's AP (faint crosses), and the paper's Table 6 values where it has the
    setting (stars: A+T+W; diamonds: Božič's "none" row). The axis starts at 0; ``title_note``
    is added to the title (``noted``)."""
    done = finished(runs)
    done = done[(done["dataset"] == dataset) & done["network"].isin(networks)]
    joined = join_folds(done)
    joined = joined[joined["folds"] == "0,1,2"]
    if joined.empty:
        raise DataError(f"no {dataset} setting of {', '.join(networks)} was run on all 3 folds")
    summary = over_seeds(joined)
    figure, axis = plt.subplots(figsize=(7.5, 4.6))
    # The size with the most runs draws solid; another size (a resolution row) dashed, squares.
    sizes = list(done["input_size"].value_counts().index)
    for colour, network in zip(LINE_COLOURS, networks, strict=False):
        for size in sizes:
            is_main = size == sizes[0]
            label = NETWORK_NAMES.get(network, network) + ("" if is_main else f" at {size}")
            of_size = joined["input_size"] == size
            points = joined[(joined["network"] == network) & of_size]
            curve = summary[(summary["network"] == network) & (summary["input_size"] == size)]
            if curve.empty:
                continue
            curve = curve.sort_values("l_p")
            seeds = int(curve["seeds"].max())
            axis.errorbar(curve["l_p"], curve["ap"], yerr=curve["ap_sd"].fillna(0),
                          color=colour, marker="o" if is_main else "s", capsize=3,
                          linestyle="-" if is_main else "--",
                          label=f"{label}: mean ± sd of {seeds} seeds" if seeds > 1
                          else f"{label}: 1 seed, no spread yet")
            axis.scatter(points["l_p"], points["ap"], color=colour, s=14, alpha=0.6)
            folds = done[(done["network"] == network) & (done["input_size"] == size)]
            axis.scatter(folds["l_p"], folds["ap"], color=colour, marker="x", s=12, alpha=0.3,
                         linewidths=0.8)
    reference = paper.table6()
    reference = reference[reference["dataset"] == dataset]
    fs_l_p = summary.loc[summary["mode"] == "FS", "l_p"].max()
    x_of = {"WS": 0, "MS": PAPER_KSDD_MS_L_P, "FS": fs_l_p}
    for switches, marker, name in (
            ((True, True, True), "*", f"paper, A+T+W (Table 6; MS drawn at {PAPER_KSDD_MS_L_P})"),
            ((False, False, False), "D", "paper, Božič's (Table 6's none row)")):
        rows = reference[(reference["attention"] == switches[0])
                         & (reference["atrous"] == switches[1])
                         & (reference["decay"] == switches[2])]
        axis.scatter([x_of[m] for m in rows["mode"]], rows["ap"] / 100, marker=marker, s=70,
                     facecolor="none", edgecolor="black", label=name, zorder=3)
    axis.scatter([], [], color="grey", s=14, label="dots: one seed, folds joined")
    axis.scatter([], [], color="grey", marker="x", s=12, label="crosses: one fold, one seed")
    sizes = ", ".join(sizes)
    epochs = ", ".join(str(e) for e in sorted(done["epochs"].unique()))
    ticks = sorted(summary["l_p"].unique())
    axis.set(xlabel="L_p: pixel-labelled positives (0: WS; the last: all, FS)",
             ylabel="AP (3 folds' test predictions joined)", ylim=(0, 1.02), xticks=ticks,
             title=noted(f"AP against pixel labels on real {dataset.upper()} "
                         f"({sizes}, {epochs} epochs, 3 folds joined)", title_note))
    axis.legend(loc="lower right", fontsize="x-small")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# ---- Figure 9 ---------------------------------------------------------------------------------
def _has_maps(run_dir: str | Path) -> bool:
    return any((Path(run_dir) / name).is_file()
               for name in ("segmentation_maps.npz", MAPS_RECORD))


def _paired_runs(runs: pd.DataFrame, mode: str, networks: list[str]) -> list[Path]:
    """One run per network with saved maps, all of the same fold, seed, input size and L_p (so
    every column shows the same test images of the same split): the first such setting by fold,
    seed, then the most pixel labels."""
    keys = ["fold", "seed", "input_size", "l_p"]
    chosen = runs[(runs["mode"] == mode) & runs["network"].isin(networks)]
    chosen = chosen[chosen["run_dir"].map(_has_maps).astype(bool)]
    complete = [key for key, group in chosen.groupby(keys, dropna=False)
                if set(group["network"]) == set(networks)]
    if not complete:
        raise DataError(f"no {mode} runs of {' and '.join(repr(n) for n in networks)} with saved "
                        f"maps ({MAPS_RECORD} or segmentation_maps.npz) on the same fold and "
                        "seed among the runs; Figure 9 needs one with and one without the "
                        "improvements")
    fold, seed, size, l_p = sorted(complete, key=lambda k: (
        np.inf if pd.isna(k[0]) else k[0], k[1], k[2], -k[3]))[0]
    same = chosen[(chosen["seed"] == seed) & (chosen["input_size"] == size)
                  & (chosen["l_p"] == l_p)
                  & (chosen["fold"].isna() if pd.isna(fold) else chosen["fold"] == fold)]
    return [Path(same.loc[same["network"] == n, "run_dir"].iloc[0]) for n in networks]


def figure9_runs(runs: pd.DataFrame, mode: str = "FS",
                 baseline: str = BASELINE) -> dict[str, Path]:
    """The two runs Figure 9 sets side by side, Božič's network first, then the paper's: same
    mode, fold, seed, input size and L_p (``_paired_runs``)."""
    return dict(zip((baseline, IMPROVED),
                    _paired_runs(finished(runs), mode, [baseline, IMPROVED]), strict=True))


def saved_maps(run_dir: Path) -> dict[str, np.ndarray]:
    """A run's saved test maps with their images and masks: its segmentation_maps.npz, or the
    pixel-free record (``records.MAPS_RECORD``) with the images and masks read again from the
    run's dataset as the run read them."""
    full = run_dir / "segmentation_maps.npz"
    if full.is_file():
        with np.load(full) as saved:
            return dict(saved)
    maps = pixel_free_maps(run_dir / MAPS_RECORD)
    config = RunConfig.from_file(run_dir / "config.yaml")
    try:
        _, data = prepare_data(config, run_dir / "split.csv")
    except (DataError, OSError) as err:
        raise DataError(f"{run_dir} keeps its maps without the images, which are read from "
                        f"{config.data_root} ({err}); get the dataset (segdec download "
                        f"{config.dataset}, or see the README's 'Get the data') or point "
                        "data_root at it") from None
    index = {sample.name: i for i, sample in enumerate(data.test.samples)}
    missing = [str(n) for n in maps["names"] if str(n) not in index]
    if missing:
        raise DataError(f"{run_dir}: {config.data_root} lacks the test images "
                        f"{', '.join(missing)} of this run's split")
    maps["images"] = np.array([input_image(data.test, index[str(n)], channels=1)
                               for n in maps["names"]], dtype=np.uint8)
    maps["masks"] = np.array([input_mask(data.test, index[str(n)]) for n in maps["names"]],
                             dtype=np.uint8)
    return maps


@styled
def figure9(runs: pd.DataFrame, mode: str = "FS", n_images: int = 4,
            baseline: str = BASELINE, title_note: str = "") -> Figure:
    """Segmentation maps of positive test images without and with the improvements, each on the
    same probability scale (one colourbar), upsampled from 1/8 as the paper shows them, with
    the true defect outlined, the decision p against that run's threshold, and hit or miss;
    ``title_note`` is added to the title (``noted``)."""
    columns = {NETWORK_NAMES.get(network, network): run
               for network, run in figure9_runs(runs, mode, baseline).items()}
    saved = {title: saved_maps(run) for title, run in columns.items()}
    thresholds = {title: json.loads((run / "metrics.json").read_text())["threshold"]
                  for title, run in columns.items()}
    reference = saved[NETWORK_NAMES[IMPROVED]]
    names = [n for n, label in zip(reference["names"], reference["labels"], strict=True)
             if label and all(n in list(maps["names"]) for maps in saved.values())][:n_images]
    if not names:
        raise DataError(f"{columns[NETWORK_NAMES[IMPROVED]]} and "
                         f"{columns[NETWORK_NAMES.get(baseline, baseline)]} saved no positive "
                         "test image in common")
    height, width = reference["images"].shape[1:3]
    figure = Figure(figsize=(12.5, len(names) * (3.4 * height / width + 0.9) + 0.8),
                    layout="constrained")
    axes = figure.subplots(len(names), 3, squeeze=False)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    shown = None
    for row, name in enumerate(names):
        index = list(reference["names"]).index(name)
        image, mask = reference["images"][index], reference["masks"][index]
        axes[row, 0].imshow(image, cmap=IMAGE)
        axes[row, 0].contour(mask, levels=[0.5], colors=TRUE_DEFECT, linewidths=0.8)
        axes[row, 0].set_title(f"{name}\ntrue defect outlined in cyan", fontsize="small")
        for column, (title, maps) in enumerate(saved.items(), start=1):
            at = list(maps["names"]).index(name)
            shown = axes[row, column].imshow(maps["seg_maps"][at], cmap=MAP, vmin=0,
                                             vmax=1, interpolation="bilinear", extent=extent)
            axes[row, column].contour(mask, levels=[0.5], colors=TRUE_DEFECT,
                                      linewidths=0.8)
            score, threshold = float(maps["scores"][at]), thresholds[title]
            verdict = "hit" if score >= threshold else "miss"
            axes[row, column].set_title(f"{title}\np = {score:.3f}, threshold {threshold:.3f}: "
                                        f"{verdict}", fontsize="small")
    for axis in axes.flat:
        axis.set_axis_off()
    colourbar(figure, shown, axes[:, 1:], "segmentation map: defect probability of each 8x8 "
              "cell (sigmoid)")
    config = RunConfig.from_file(columns[NETWORK_NAMES[IMPROVED]] / "config.yaml")
    note = ("; Božič's released network normalises its map per image (zero mean), so about "
            "half of every image lies above 0.5 whatever it sees: read its map by contrast"
            if baseline == RELEASED else "")
    title = noted(f"Segmentation of positive test images, {mode} on {config.dataset} "
                  f"({config.input_width}x{config.input_height}, fold {config.fold}, "
                  f"seed {config.seed})", title_note)
    figure.suptitle(f"{title}{note}", fontsize="medium", wrap=True)
    return figure


# ---- Table 6 ----------------------------------------------------------------------------------
def table6(runs: pd.DataFrame, dataset: str = "severstal", compare_with_paper: bool = True,
           folds: list[int] | None = None) -> pd.DataFrame:
    """AP (%) per mode and improvement switches for one dataset, beside the paper's.

    KolektorSDD's folds are joined (``join_folds``): ``ap`` is the AP of all folds' test
    predictions together, as the paper's Table 6 reports it, averaged over seeds (``ap_sd``: the
    spread over seeds, ``ap_per_seed``: each seed's), with the per-fold mean and spread and the
    pixel metrics of the segmentation beside it. With ``folds`` only those folds' runs count and
    only settings run on exactly those folds are rows, so a column never mixes fold sets; the
    paper's rows then stand beside ours only where we have the setting. Božič's network appears
    as described and, where run, as released; both sit beside the paper's "none" row. Each input
    size is its own row (``input_size``). On KolektorSDD, MS is Table 6's setting, L_p =
    ``PAPER_KSDD_MS_L_P``; the other L_p of a sweep belong to Figure 8 (``pixel_label_table``).
    """
    keys = ["mode", "attention", "atrous", "decay"]
    percent = ["ap", "ap_sd", "ap_fold_mean", "ap_fold_std"]
    done = finished(runs)
    done = done[done["dataset"] == dataset]
    if dataset == "ksdd":
        done = done[(done["mode"] != "MS") | (done["n_seg"] == PAPER_KSDD_MS_L_P)]
    if folds is not None:
        done = done[done["fold"].isin(folds)]
    ours = over_seeds(join_folds(done))
    if folds is not None:
        ours = ours[ours["folds"] == ",".join(map(str, sorted(folds)))]
    ours = ours[keys + ["n_seg", "architecture", "gradient_adjustment", "input_size", "folds",
                        "validation", "seeds",
                        *percent, "ap_per_seed", "pixel_ap_1_8", "pixel_iou_1_8", "pixel_ap"]]
    table = ours.assign(**{k: ours[k] * 100 for k in percent},
                        ap_per_seed=[", ".join(f"{100 * ap:.1f}" for ap in aps)
                                     for aps in ours["ap_per_seed"]])
    if compare_with_paper:
        reference = paper.table6()
        reference = reference[reference["dataset"] == dataset].drop(columns="dataset")
        table = table.merge(reference, on=keys, how="outer" if folds is None else "left",
                            suffixes=("", " paper"))
        table["ap diff"] = table["ap"] - table["ap paper"]
    switch_order = {switches: i for i, switches in enumerate(paper.ABLATION_SWITCHES)}
    table = table.assign(switches=[switch_order.get(tuple(s), len(switch_order))
                                   for s in table[keys[1:]].itertuples(index=False)])
    table = table.assign(no_ga=~table["gradient_adjustment"].fillna(True).astype(bool))
    table = _mode_order(table, "switches", "architecture", "no_ga", "input_size").drop(
        columns=["switches", "no_ga"])
    marks = {k: table[k].map({True: "x", False: ""}) for k in keys[1:] + ["gradient_adjustment"]}
    return table.assign(**marks).rename(columns={"attention": "A", "atrous": "T", "decay": "W",
                                                 "gradient_adjustment": "GA"}).reset_index(
        drop=True)


# ---- paired comparisons -----------------------------------------------------------------------
# (network, network it is compared with): the paper's claim, the better variant against Božič's
# network, and the project's own finding (gradient adjustment off against on).
COMPARISONS = ((IMPROVED, RELEASED), (f"{IMPROVED}, no GA", RELEASED),
               (f"{IMPROVED}, no GA", IMPROVED))


def paired_comparisons(runs: pd.DataFrame,
                       comparisons: tuple[tuple[str, str], ...] = COMPARISONS) -> pd.DataFrame:
    """Per mode, network A against network B on the same fold and seed (so the same test images,
    split and sampling seed): the AP differences of the pairs, how many favour each, and the
    difference of the folds-joined AP per seed. A difference that does not keep its sign across
    pairs is not separated from seed noise."""
    done = finished(runs)
    joined = join_folds(done)
    pair_keys, rows = ["mode", "n_seg", "input_size", "fold", "seed"], []
    for first, second in comparisons:
        a, b = (done[done["network"] == n][[*pair_keys, "ap"]] for n in (first, second))
        pairs = a.merge(b, on=pair_keys, suffixes=("_a", "_b"))
        ja, jb = (joined[(joined["network"] == n) & (joined["folds"] == "0,1,2")]
                  [["mode", "n_seg", "input_size", "seed", "ap"]] for n in (first, second))
        joined_pairs = ja.merge(jb, on=["mode", "n_seg", "input_size", "seed"],
                                suffixes=("_a", "_b"))
        for (mode, n_seg, size), group in pairs.groupby(["mode", "n_seg", "input_size"]):
            diff = group["ap_a"] - group["ap_b"]
            seeds = joined_pairs[(joined_pairs["mode"] == mode) & (joined_pairs["n_seg"] == n_seg)
                                 & (joined_pairs["input_size"] == size)]
            seeds = seeds.sort_values("seed")
            joined_diff = seeds["ap_a"] - seeds["ap_b"]
            rows.append({
                "mode": mode, "n_seg": n_seg, "input_size": size, "a": first, "b": second,
                "pairs": len(group),
                "a_better": int((diff > 0).sum()), "b_better": int((diff < 0).sum()),
                "ties": int((diff == 0).sum()), "sign_test_p": sign_test(diff),
                "mean_diff": 100 * diff.mean(),
                "sd_diff": 100 * diff.std(ddof=1), "joined_seeds": len(seeds),
                "joined_diff_per_seed": ", ".join(f"{100 * d:+.1f}" for d in joined_diff),
                "joined_diff_mean": 100 * joined_diff.mean() if len(seeds) else np.nan,
            })
    if not rows:  # the batch has no such pairs: an empty table, which the text says
        return pd.DataFrame(columns=["mode", "n_seg", "a", "b", "pairs"])
    return _mode_order(pd.DataFrame(rows), "a", "input_size").reset_index(drop=True)


# ---- saving -----------------------------------------------------------------------------------
def save_table(table: pd.DataFrame, out_dir: str | Path, name: str,
               title_note: str = "") -> list[Path]:
    """``name.csv`` and ``name.md`` (three decimals) in ``out_dir``; with ``title_note``, the
    Markdown opens with a title line saying it (the CSV stays one table)."""
    out_dir = Path(out_dir)
    csv = atomic_write(out_dir / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    shown = table.astype(object).where(table.notna(), None)  # missing values print as "-"
    # Text columns stay text ("86.1" of a per-seed list must not print as 86.100).
    text = [i for i, column in enumerate(table.columns)
            if table[column].map(lambda v: isinstance(v, str)).any()]
    title = f"# {noted(name, title_note)}\n\n" if title_note else ""
    markdown = write_text(out_dir / f"{name}.md", title + shown.to_markdown(
        index=False, floatfmt=".3f", missingval="-", disable_numparse=text or False) + "\n")
    return [csv, markdown]

