"""The paper's figures from run records (``segdec.runs``): Figure 8 (AP per setting, and AP
against the number of pixel labels) and Figure 9 (segmentation maps without and with the
paper's changes), each beside the paper's values where it has them."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segdec import paper
from segdec.config import RunConfig
from segdec.data.prepare import prepare_data
from segdec.errors import DataError
from segdec.plots import (
    IMAGE,
    LINE_COLOURS,
    MAP,
    TRUE_DEFECT,
    colourbar,
    credit_images,
    styled,
)
from segdec.records import MAPS_RECORD, pixel_free_maps
from segdec.runs import (
    BASELINE,
    IMPROVED,
    IMPROVED_NO_GA,
    PAPER_KSDD_MS_L_P,
    RELEASED,
    Network,
    finished,
    join_folds,
    over_seeds,
)
from segdec.tables import noted


@styled
def figure8(runs: pd.DataFrame, compare_with_paper: bool = True,
            baseline: Network = BASELINE, title_note: str = "") -> Figure:
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


@styled
def figure8_pixel_labels(runs: pd.DataFrame,
                         networks: tuple[Network, ...] = (IMPROVED_NO_GA, IMPROVED,
                                                          RELEASED),
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
        raise DataError(f"no {dataset} setting of {', '.join(map(str, networks))} was run on "
                        "all 3 folds")
    summary = over_seeds(joined)
    all_l_p = sorted(summary["l_p"].unique())
    figure, axis = plt.subplots(figsize=(7.5, 4.6))
    # The size with the most runs draws solid; another size (a resolution row) dashed, squares.
    sizes = list(done["input_size"].value_counts().index)
    for colour, network in zip(LINE_COLOURS, networks, strict=False):
        for size in sizes:
            is_main = size == sizes[0]
            label = network.name + ("" if is_main else f" at {size}")
            of_size = joined["input_size"] == size
            points = joined[(joined["network"] == network) & of_size]
            curve = summary[(summary["network"] == network) & (summary["input_size"] == size)]
            if curve.empty:
                continue
            curve = curve.sort_values("l_p")
            seeds = int(curve["seeds"].max())
            style = "-" if is_main else "--"
            axis.errorbar(curve["l_p"], curve["ap"], yerr=curve["ap_sd"].fillna(0),
                          color=colour, marker="o" if is_main else "s", capsize=3,
                          linestyle="none", label=f"{label}: mean ± sd of {seeds} seeds"
                          if seeds > 1 else f"{label}: 1 seed, no spread yet")
            for segment in unbroken(list(curve["l_p"]), all_l_p):
                axis.plot(segment, curve.set_index("l_p").loc[segment, "ap"], color=colour,
                          linestyle=style)
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
    ticks = all_l_p
    axis.set(xlabel="L_p: pixel-labelled positives (0: WS; the last: all, FS)",
             ylabel="AP (3 folds' test predictions joined)", ylim=(0, 1.02), xticks=ticks,
             title=noted(f"AP against pixel labels on real {dataset.upper()} "
                         f"({sizes}, {epochs} epochs, 3 folds joined)", title_note))
    axis.legend(loc="lower right", fontsize="x-small")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def unbroken(values: list, axis_values: list) -> list[list]:
    """``values`` (sorted, a subset of ``axis_values``) cut into runs of neighbours on the axis,
    so that a line joins two settings only where none between them is missing: a network not run
    at L_p 10-20 gets no line drawn through them, as if it had been."""
    runs: list[list] = []
    for value in values:
        if runs and axis_values.index(value) == axis_values.index(runs[-1][-1]) + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return [run for run in runs if len(run) > 1]


# ---- Figure 9 ---------------------------------------------------------------------------------
def _has_maps(run_dir: str | Path) -> bool:
    return any((Path(run_dir) / name).is_file()
               for name in ("segmentation_maps.npz", MAPS_RECORD))


def _paired_runs(runs: pd.DataFrame, mode: str, networks: list[Network]) -> list[Path]:
    """One run per network with saved maps, all of the same fold, seed, input size and L_p (so
    every column shows the same test images of the same split), none of which failed (a
    collapsed map or a ranking at chance shows a failure, not the network: ``runs.failure``):
    the first such setting by fold, seed, then the most pixel labels."""
    keys = ["fold", "seed", "input_size", "l_p"]
    chosen = runs[(runs["mode"] == mode) & runs["network"].isin(networks)
                  & (runs["failure"] == "")]
    chosen = chosen[chosen["run_dir"].map(_has_maps).astype(bool)]
    complete = [key for key, group in chosen.groupby(keys, dropna=False)
                if set(group["network"]) == set(networks)]
    if not complete:
        named = " and ".join(repr(str(n)) for n in networks)
        raise DataError(f"no {mode} runs of {named} that learnt (neither collapsed nor at "
                        f"chance) with saved maps ({MAPS_RECORD} or segmentation_maps.npz) on "
                        "the same fold and seed among the runs; Figure 9 needs one with and one "
                        "without the improvements")
    fold, seed, size, l_p = sorted(complete, key=lambda k: (
        np.inf if pd.isna(k[0]) else k[0], k[1], k[2], -k[3]))[0]
    same = chosen[(chosen["seed"] == seed) & (chosen["input_size"] == size)
                  & (chosen["l_p"] == l_p)
                  & (chosen["fold"].isna() if pd.isna(fold) else chosen["fold"] == fold)]
    return [Path(same.loc[same["network"] == n, "run_dir"].iloc[0]) for n in networks]


def figure9_runs(runs: pd.DataFrame, mode: str = "FS",
                 baseline: Network = BASELINE) -> dict[Network, Path]:
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
    maps["images"] = np.array([data.test.input_image(index[str(n)], channels=1)
                               for n in maps["names"]], dtype=np.uint8)
    maps["masks"] = np.array([data.test.input_mask(index[str(n)]) for n in maps["names"]],
                             dtype=np.uint8)
    return maps


@styled
def figure9(runs: pd.DataFrame, mode: str = "FS", n_images: int = 4,
            baseline: Network = BASELINE, title_note: str = "") -> Figure:
    """Segmentation maps of positive test images without and with the improvements, of two runs
    that learnt (``figure9_runs``), upsampled from 1/8 as the paper shows them, with the true
    defect outlined, the decision p against that run's threshold, and hit or miss. Each map is
    drawn from 0 to its own largest probability, given in its title: the paper's network's maps
    peak far below 1 on KolektorSDD and look black on a common 0-1 scale. ``title_note`` is
    added to the title (``noted``)."""
    columns = {network.name: run
               for network, run in figure9_runs(runs, mode, baseline).items()}
    saved = {title: saved_maps(run) for title, run in columns.items()}
    thresholds = {title: json.loads((run / "metrics.json").read_text())["threshold"]
                  for title, run in columns.items()}
    reference = saved[IMPROVED.name]
    names = [n for n, label in zip(reference["names"], reference["labels"], strict=True)
             if label and all(n in list(maps["names"]) for maps in saved.values())][:n_images]
    if not names:
        raise DataError(f"{columns[IMPROVED.name]} and "
                         f"{columns[baseline.name]} saved no positive "
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
            seg_map = np.asarray(maps["seg_maps"][at], dtype=np.float32)
            peak = float(seg_map.max())
            shown = axes[row, column].imshow(seg_map / max(peak, 1e-6), cmap=MAP, vmin=0,
                                             vmax=1, interpolation="bilinear", extent=extent)
            axes[row, column].contour(mask, levels=[0.5], colors=TRUE_DEFECT,
                                      linewidths=0.8)
            score, threshold = float(maps["scores"][at]), thresholds[title]
            verdict = "hit" if score >= threshold else "miss"
            axes[row, column].set_title(f"{title}\np = {score:.3f}, threshold {threshold:.3f}: "
                                        f"{verdict}; map max {peak:.2f}", fontsize="small")
    for axis in axes.flat:
        axis.set_axis_off()
    colourbar(figure, shown, axes[:, 1:], "segmentation map: defect probability of each 8x8 "
              "cell (sigmoid), from 0 to the panel's max", ticks={0: "0", 0.5: "max / 2",
                                                                 1: "max"})
    config = RunConfig.from_file(columns[IMPROVED.name] / "config.yaml")
    note = ("; Božič's released network normalises its map per image (zero mean), so about "
            "half of every image lies above 0.5 whatever it sees: read its map by contrast"
            if baseline == RELEASED else "")
    title = noted(f"Segmentation of positive test images, {mode} on {config.dataset} "
                  f"({config.input_width}x{config.input_height}, fold {config.fold}, "
                  f"seed {config.seed})", title_note)
    figure.suptitle(f"{title}{note}", fontsize="medium", wrap=True)
    return credit_images(figure, config.dataset)
