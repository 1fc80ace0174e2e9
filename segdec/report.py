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
import seaborn as sns
from matplotlib.figure import Figure

from segdec import paper
from segdec.config import RunConfig, supervision_mode
from segdec.data.images import DataError
from segdec.evaluate import image_metrics
from segdec.io import atomic_write, write_text

MODES = ("WS", "MS", "FS")
IMPROVED, BASELINE = "A+T+W", "none"  # the paper's network and Božič's
RELEASED = "none (released)"  # Božič's network as his code builds it (architecture: released)
METRICS = ["auc", "ap", "f_measure", "fp", "fn"]
PIXEL_METRICS = ["pixel_ap", "pixel_f", "pixel_iou", "pixel_ap_1_8", "pixel_f_1_8",
                 "pixel_iou_1_8"]


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
        "fold": config.fold if config.dataset == "ksdd" else None,
        "validation": "test set" if config.n_val == 0 else "held-out split",
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


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    done = runs[runs["finished"].astype(bool)] if len(runs) else runs
    if done.empty:
        raise DataError("no finished runs to report on; run the batch first (segdec batch FILE)")
    return done


SETTING = ["dataset", "mode", "n_seg", "network", "attention", "atrous", "decay", "architecture",
           "gradient_adjustment", "seg_to_decision",
           "validation", "epochs"]


def join_folds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting, its folds joined as Božič reports KolektorSDD: the test predictions
    of every fold concatenated (each image once) for AP, AUC, F, FP and FN, beside the per-fold
    AP's mean and spread. Pixel metrics are the folds' mean. A setting run on one fold (or a
    dataset without folds) keeps that run's numbers; ``folds`` says which were joined."""
    rows = []
    for key, group in finished(runs).groupby(SETTING, sort=False, dropna=False):
        group = group.sort_values("fold")
        row = dict(zip(SETTING, key, strict=True))
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


def _mode_order(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    order = frame["mode"].map({m: i for i, m in enumerate(MODES)})
    return frame.assign(_order=order).sort_values(["_order", *keys]).drop(columns="_order")


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
def figure8(runs: pd.DataFrame, compare_with_paper: bool = True,
            baseline: str = BASELINE) -> Figure:
    """AP per ``L_p-N_all`` setting (folds joined): our improved and baseline networks (Božič's,
    as described or, with ``baseline=RELEASED``, as released), and the paper's AP."""
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
    figure, axis = plt.subplots(figsize=(max(6.0, 0.45 * bars["setting"].nunique() + 3), 4))
    sns.barplot(data=bars, x="setting", y="ap", hue="source", ax=axis, errorbar=None)
    axis.set(xlabel="L_p-N_all (pixel-labelled positives - all positives)", ylabel="AP",
             ylim=(max(0.0, bars["ap"].min() - 0.05), 1.0), title="Figure 8: AP per setting")
    axis.tick_params(axis="x", rotation=60)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    figure.tight_layout()
    return figure


# ---- Figure 9 ---------------------------------------------------------------------------------
def _run_of(runs: pd.DataFrame, mode: str, network: str) -> Path:
    chosen = runs[(runs["mode"] == mode) & (runs["network"] == network)]
    if chosen.empty:
        raise ValueError(f"no finished {mode} run with network {network!r} among the runs; "
                         "Figure 9 needs one with and one without the improvements")
    # The most pixel labels; of several folds, the first, so both columns show the same images.
    chosen = chosen.sort_values(["fold", "l_p"], ascending=[True, False], na_position="last")
    return Path(chosen["run_dir"].iloc[0])


def figure9(runs: pd.DataFrame, mode: str = "FS", n_images: int = 4,
            baseline: str = BASELINE) -> Figure:
    """Segmentation maps on positive test images without and with the improvements, upsampled
    bilinearly from 1/8 to the image as the paper shows them."""
    done = finished(runs)
    columns = {"Božič's network": _run_of(done, mode, baseline),
               "with A+T+W": _run_of(done, mode, IMPROVED)}
    saved = {title: np.load(run / "segmentation_maps.npz") for title, run in columns.items()}
    reference = saved["with A+T+W"]
    names = [n for n, label in zip(reference["names"], reference["labels"], strict=True) if label]
    names = names[:n_images]
    if not names:
        raise ValueError(f"{columns['with A+T+W']} saved no positive test images")
    height, width = reference["images"].shape[1:3]
    figure, axes = plt.subplots(len(names), 3, squeeze=False,
                                figsize=(12, len(names) * (4 * height / width + 0.7)))
    for row, name in enumerate(names):
        index = list(reference["names"]).index(name)
        image, mask = reference["images"][index], reference["masks"][index]
        axes[row, 0].imshow(image, cmap="gray")
        axes[row, 0].contour(mask, levels=[0.5], colors="cyan", linewidths=0.7)
        axes[row, 0].set_title(f"{name} (mask in cyan)", fontsize="small")
        for column, (title, maps) in enumerate(saved.items(), start=1):
            at = list(maps["names"]).index(name)
            axes[row, column].imshow(image, cmap="gray")
            seg_map = maps["seg_maps"][at]  # 1/8 resolution, upsampled over the image
            axes[row, column].imshow(seg_map, cmap="autumn", alpha=0.8 * np.clip(seg_map, 0, 1),
                                     vmin=0, vmax=1, interpolation="bilinear",
                                     extent=(-0.5, width - 0.5, height - 0.5, -0.5))
            axes[row, column].set_title(f"{title}: p = {maps['scores'][at]:.3f}",
                                        fontsize="small")
    for axis in axes.flat:
        axis.set_axis_off()
    figure.suptitle(f"Figure 9: segmentation of positive test images ({mode})")
    figure.tight_layout()
    return figure


# ---- Table 6 ----------------------------------------------------------------------------------
def table6(runs: pd.DataFrame, dataset: str = "severstal",
           compare_with_paper: bool = True) -> pd.DataFrame:
    """AP (%) per mode and improvement switches for one dataset, beside the paper's.

    KolektorSDD's folds are joined (``join_folds``): ``ap`` is the AP of all folds' test
    predictions together, as the paper's Table 6 reports it, with the per-fold mean and spread
    and the pixel metrics of the segmentation beside it. Božič's network appears as described
    and, where run, as released; both sit beside the paper's "none" row.
    """
    keys = ["mode", "attention", "atrous", "decay"]
    percent = ["ap", "ap_fold_mean", "ap_fold_std"]
    ours = join_folds(runs)
    ours = ours[ours["dataset"] == dataset]
    ours = ours[keys + ["architecture", "gradient_adjustment", "folds", "validation", *percent,
                        "pixel_ap_1_8", "pixel_iou_1_8", "pixel_ap"]]
    table = ours.assign(**{k: ours[k] * 100 for k in percent})
    if compare_with_paper:
        reference = paper.table6()
        reference = reference[reference["dataset"] == dataset].drop(columns="dataset")
        table = table.merge(reference, on=keys, how="outer", suffixes=("", " paper"))
        table["ap diff"] = table["ap"] - table["ap paper"]
    switch_order = {switches: i for i, switches in enumerate(paper.ABLATION_SWITCHES)}
    table = table.assign(switches=[switch_order.get(tuple(s), len(switch_order))
                                   for s in table[keys[1:]].itertuples(index=False)])
    table = table.assign(no_ga=~table["gradient_adjustment"].fillna(True).astype(bool))
    table = _mode_order(table, "switches", "architecture", "no_ga").drop(
        columns=["switches", "no_ga"])
    marks = {k: table[k].map({True: "x", False: ""}) for k in keys[1:] + ["gradient_adjustment"]}
    return table.assign(**marks).rename(columns={"attention": "A", "atrous": "T", "decay": "W",
                                                 "gradient_adjustment": "GA"}).reset_index(
        drop=True)


# ---- saving -----------------------------------------------------------------------------------
def save_table(table: pd.DataFrame, out_dir: str | Path, name: str) -> list[Path]:
    """``name.csv`` and ``name.md`` (three decimals) in ``out_dir``."""
    out_dir = Path(out_dir)
    csv = atomic_write(out_dir / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    shown = table.astype(object).where(table.notna(), None)  # missing values print as "-"
    markdown = write_text(out_dir / f"{name}.md",
                          shown.to_markdown(index=False, floatfmt=".3f", missingval="-") + "\n")
    return [csv, markdown]


def save_figure(figure: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """``name.png`` (120 dpi) and ``name.pdf`` in ``out_dir``."""
    paths = []
    for suffix, options in ((".png", {"dpi": 120}), (".pdf", {})):
        path = Path(out_dir) / f"{name}{suffix}"
        atomic_write(path, lambda tmp, o=options, s=suffix: figure.savefig(
            tmp, format=s[1:], bbox_inches="tight", **o))
        paths.append(path)
    return paths
