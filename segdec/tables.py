"""The paper's tables from run records (``segdec.runs``): Table 5 and Table 6 beside the paper's
values, Figure 8's numbers as a table, the paired comparisons of two networks, runs that change
one thing of a reference run, a table of any batch's runs, and saving a table as CSV and
Markdown, where a network becomes its label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segdec import paper
from segdec.config import RunConfig
from segdec.errors import DataError
from segdec.io import atomic_write, write_text
from segdec.metrics import image_metrics
from segdec.runs import (
    IMPROVED,
    IMPROVED_NO_GA,
    METRICS,
    PAPER_KSDD_MS_L_P,
    RELEASED,
    Network,
    collect_runs,
    finished,
    join_folds,
    mode_order,
    over_seeds,
)
from segdec.statistics import sign_test


def noted(title: str, note: str = "") -> str:
    """``title`` with ``note`` in parentheses, so that an output of synthetic data (the demo's
    "synthetic smoke test") says so wherever it is looked at."""
    return f"{title} ({note})" if note else title


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
        return mode_order(ours, "n_all", "l_p").reset_index(drop=True)
    reference = paper.table5().drop(columns=["row", "epochs"])
    table = ours.merge(reference, on=["mode", "n_all", "l_p"], how="outer",
                       suffixes=("", " paper"))
    columns = ["mode", "n_all", "l_p", "epochs"]
    for metric in METRICS:
        table[f"{metric} diff"] = table[metric] - table[f"{metric} paper"]
        columns += [metric, f"{metric} paper", f"{metric} diff"]
    return mode_order(table[columns], "n_all", "l_p").reset_index(drop=True)


def pixel_label_table(runs: pd.DataFrame,
                      networks: tuple[Network, ...] = (IMPROVED_NO_GA, IMPROVED, RELEASED),
                      ) -> pd.DataFrame:
    """Table 5's analogue on a dataset with folds: per network and number of pixel-labelled
    positives, the folds-joined AP, AUC, FP and FN (means over seeds, AP in %), with the
    spread and every seed's AP. Only settings run on all 3 folds are rows."""
    summary = over_seeds(join_folds(finished(runs)))
    summary = summary[(summary["folds"] == "0,1,2") & summary["network"].isin(networks)]
    if summary.empty:
        raise DataError(f"no setting of {', '.join(map(str, networks))} was run on all 3 folds")
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
    table = mode_order(table, "switches", "architecture", "no_ga", "input_size").drop(
        columns=["switches", "no_ga"])
    return table.reset_index(drop=True)


# ---- paired comparisons -----------------------------------------------------------------------
# (network, network it is compared with): the paper's claim, the better variant against Božič's
# network, and the project's own finding (gradient adjustment off against on).
COMPARISONS = ((IMPROVED, RELEASED), (IMPROVED_NO_GA, RELEASED),
               (IMPROVED_NO_GA, IMPROVED))


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
    return mode_order(pd.DataFrame(rows), "a", "input_size").reset_index(drop=True)


# ---- one change at a time ---------------------------------------------------------------------
# A positive that a run scores below this is one it misses (the decision's plain threshold).
MISSED_SCORE = 0.5


def _reference_of(name: str, names: set[str]) -> str | None:
    """The run ``name`` varies: the longest other name it extends by a ``-suffix``."""
    bases = [other for other in names if name.startswith(f"{other}-")]
    return max(bases, key=len) if bases else None


def _joined_predictions(run_dirs: list[str]) -> pd.DataFrame:
    """The test predictions of several runs (a setting's folds) as one table."""
    return pd.concat([pd.read_csv(Path(d) / "predictions.csv") for d in run_dirs],
                     ignore_index=True)


def variant_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that each change one thing of a reference run, their folds joined: one row for the
    reference and one per change. A variant is named after the run it varies
    (``fold0/FS-A+T+W-flips`` varies ``fold0/FS-A+T+W``) and what it changed is read from the two
    ``config.yaml`` files, not from the name. Columns: the change, the folds joined, AP (joined
    and the folds' mean), FP and FN of the joined predictions at their best-F threshold, and the
    score of every positive the reference misses (below ``MISSED_SCORE``) in each variant."""
    done = finished(runs)
    names = set(done["run"])
    by_fold = {(row.fold, row.run): row.run_dir for row in done.itertuples()}
    changes: dict[str, list[str]] = {}
    for row in done.itertuples():
        reference = _reference_of(row.run, names)
        if reference is None or (row.fold, reference) not in by_fold:
            continue
        config = RunConfig.from_file(Path(row.run_dir) / "config.yaml")
        saved = RunConfig.from_file(Path(by_fold[row.fold, reference]) / "config.yaml")
        changed = config.differences(saved.to_dict())
        label = "; ".join(f"{field} {old} -> {new}" for field, (old, new) in changed.items())
        changes.setdefault(row.run, []).append(label or "nothing")
    if not changes:
        raise DataError("no run here varies another (a variant is named after its reference "
                        "plus a suffix: FS-A+T+W and FS-A+T+W-flips)")
    references = {_reference_of(name, names) for name in changes}
    missed_by_reference = _joined_predictions(
        list(done.loc[done["run"].isin(references), "run_dir"]))
    missed = missed_by_reference[(missed_by_reference["label"] == 1)
                                 & (missed_by_reference["score"] < MISSED_SCORE)]
    missed_images = sorted(missed["image"])
    rows = []
    for name in sorted(references) + sorted(changes):
        group = done[done["run"] == name].sort_values("fold")
        predictions = _joined_predictions(list(group["run_dir"]))
        joined = image_metrics(predictions["label"].to_numpy(), predictions["score"].to_numpy())
        labels = set(changes.get(name, ["none (the reference)"]))
        scores = predictions.set_index("image")["score"]
        rows.append({"run": name, "change": " / ".join(sorted(labels)),
                     "folds": ",".join(str(int(f)) for f in group["fold"]),
                     "seeds": ",".join(str(int(s)) for s in sorted(set(group["seed"]))),
                     "ap": joined["ap"], "ap_fold_mean": group["ap"].mean(),
                     "fp": joined["fp"], "fn": joined["fn"],
                     **{image: scores.get(image, np.nan) for image in missed_images}})
    return pd.DataFrame(rows)


# ---- showing and saving ----------------------------------------------------------------------
SWITCH_COLUMNS = {"attention": "A", "atrous": "T", "decay": "W", "gradient_adjustment": "GA"}


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table as it is shown and saved: a switch column as an ``x`` where it is on, under its
    letter (``SWITCH_COLUMNS``), and a network as its label. The tables themselves keep the
    booleans and ``Network`` keys, which the prose reads."""
    marks = {column: table[column].map({True: "x", False: ""})
             for column in SWITCH_COLUMNS if column in table}
    labels = {column: table[column].map(lambda v: str(v) if isinstance(v, Network) else v)
              for column in table if table[column].map(lambda v: isinstance(v, Network)).any()}
    return table.assign(**marks, **labels).rename(columns=SWITCH_COLUMNS)


# What each column of a shown table means: a notebook prints the legend of the columns it shows.
COLUMN_LEGEND = {
    "mode": "supervision: WS image labels only, MS some masks, FS every mask",
    "network": "A+T+W the paper's network, none Božič's; (released) as his code builds it, "
               "no GA gradient adjustment off",
    "a": "the first network of the pair", "b": "the network it is compared with",
    "A": "attention", "T": "atrous (dilated) kernels", "W": "the decayed loss balance",
    "GA": "gradient adjustment: the decision loss kept out of the segmentation features",
    "architecture": "Božič's network as described in his paper, or as his code builds it",
    "n_all": "training positives", "l_p": "training positives with masks",
    "n_seg": "training positives with masks as set (KolektorSDD: his items)",
    "epochs": "training epochs", "input_size": "network input, width x height",
    "folds": "KolektorSDD folds whose test predictions are joined",
    "validation": "what picks the best epoch", "seeds": "seeds averaged",
    "ap": "average precision % (KolektorSDD: the folds' test predictions joined), mean over "
          "seeds",
    "ap_sd": "its standard deviation over seeds (points)",
    "ap_per_seed": "each seed's AP %", "ap paper": "the paper's AP %",
    "ap diff": "ours minus the paper's (points)",
    "ap_fold_mean": "mean of the per-fold APs % (higher than joined: each fold ranks alone)",
    "ap_fold_std": "their spread over folds (points)",
    "auc": "area under the ROC curve %", "f_measure": "best F-measure %",
    "fp": "false positives at the best-F threshold", "fn": "false negatives there",
    "pixel_ap": "pixel AP % of the upsampled maps", "pixel_ap_1_8": "pixel AP % at 1/8",
    "pixel_iou_1_8": "pixel IoU % at 1/8",
    "pairs": "fold-seed pairs", "a_better": "pairs the first network wins",
    "b_better": "pairs it loses", "ties": "pairs tied", "sign_test_p": "sign test p",
    "mean_diff": "mean AP difference over the pairs (points)",
    "sd_diff": "its standard deviation (points)", "joined_seeds": "seeds with every fold",
    "joined_diff_per_seed": "folds-joined AP difference per seed (points)",
    "joined_diff_mean": "their mean (points)",
}


def readable(table: pd.DataFrame, title: str, columns: list[str] | None = None,
             percent: tuple[str, ...] = (), csv: str | Path | None = None) -> str:
    """A table as a reader reads it, in Markdown: ``shown``, only those of ``columns`` it has
    (all by default), the ``percent`` columns (fractions) in %, every number rounded to one
    decimal (a p value to three), under ``title``, with the legend of its columns and a link to
    the full ``csv`` (a path from the repository root, linked from ``notebooks/``)."""
    frame = shown(table)
    frame = frame[[c for c in columns if c in frame]] if columns else frame
    frame = frame.assign(**{c: pd.to_numeric(frame[c]) * 100 for c in percent if c in frame})

    def cell(value, column: str):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        if isinstance(value, float | np.floating):
            return format(value, ".3f" if column.endswith("_p") else ".1f")
        return value

    cells = pd.DataFrame({c: [cell(v, c) for v in frame[c]] for c in frame.columns})
    markdown = cells.to_markdown(index=False, disable_numparse=True)
    legend = "; ".join(f"**{c}** {COLUMN_LEGEND[c]}" for c in frame.columns
                       if c in COLUMN_LEGEND)
    href = "" if csv is None else (str(csv) if Path(csv).is_absolute()
                                   else f"../{Path(csv).as_posix()}")
    link = f" All columns: [{Path(csv).name}]({href})." if csv else ""
    return f"### {title}\n\n{markdown}\n\n{legend}.{link}"


def save_table(table: pd.DataFrame, out_dir: str | Path, name: str,
               title_note: str = "") -> list[Path]:
    """``name.csv`` and ``name.md`` (three decimals) in ``out_dir``, as ``shown``; with
    ``title_note``, the Markdown opens with a title line saying it (the CSV stays one table)."""
    out_dir, table = Path(out_dir), shown(table)
    csv = atomic_write(out_dir / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    printed = table.astype(object).where(table.notna(), None)  # missing values print as "-"
    # Text columns stay text ("86.1" of a per-seed list must not print as 86.100).
    text = [i for i, column in enumerate(table.columns)
            if table[column].map(lambda v: isinstance(v, str)).any()]
    title = f"# {noted(name, title_note)}\n\n" if title_note else ""
    markdown = write_text(out_dir / f"{name}.md", title + printed.to_markdown(
        index=False, floatfmt=".3f", missingval="-", disable_numparse=text or False) + "\n")
    return [csv, markdown]
