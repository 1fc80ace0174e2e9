"""Which KolektorSDD positives every run misses, and what they share (issue 33: a failure that
repeats at every seed is a finding, not noise).

    python benchmarks/ksdd_missed_everywhere.py RUNS_DIR [RUNS_DIR ...] \
        > figures/ksdd/diagnosis/missed/everywhere.md

Reads the run records alone (each run's ``predictions.csv`` and ``config.yaml``) and the images
from the folder each record names; runs that failed (``segdec.runs.failure``) are left out. Per
positive test image, over every run that tested it: how many runs, its median score, and the
median share of the run's negatives that score at least as high (0: ranked above every clean
image; 0.25: a quarter of the clean images outrank it), beside its defect's contrast (natively
and at the run's input size), extent and slope (``ksdd_missed.defect_shape``). Then how strongly
each property goes with being outranked (Spearman's rank correlation over the positives), and
the most outranked images per supervision mode.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from ksdd_missed import defect_shape
from scipy.stats import spearmanr

from segdec.config import RunConfig
from segdec.data.images import image_shape, load_image, load_mask, resize
from segdec.runs import collect_runs, finished

PROPERTIES = ["contrast", "contrast at input", "extent", "|slope|"]


def outranked(runs_dirs: list[Path]) -> tuple[pd.DataFrame, RunConfig]:
    """Every positive's score in every run that learnt, with the share of that run's negatives
    scoring at least as high, and one run's configuration (its data folder and input size,
    shared by the runs)."""
    runs = pd.concat([finished(collect_runs(d)) for d in runs_dirs], ignore_index=True)
    runs = runs[runs["failure"] == ""]
    rows = []
    for run in runs.itertuples(index=False):
        table = pd.read_csv(Path(run.run_dir) / "predictions.csv")
        negatives = np.sort(table.loc[table["label"] == 0, "score"].to_numpy())
        for row in table[table["label"] == 1].itertuples(index=False):
            above = 1 - np.searchsorted(negatives, row.score, side="left") / len(negatives)
            rows.append({"image": row.image, "mode": run.mode, "score": row.score,
                         "outranked_by": above})
    config = RunConfig.from_file(Path(runs["run_dir"].iloc[0]) / "config.yaml")
    return pd.DataFrame(rows), config


def shape_of(image: str, config: RunConfig) -> dict[str, float]:
    """The defect's contrast natively and at the run's input size, its extent and slope."""
    path = Path(config.data_root) / image
    mask_path = next(path.with_name(f"{path.stem}_label{suffix}")
                     for suffix in (".bmp", ".png") if path.with_name(
                         f"{path.stem}_label{suffix}").is_file())
    pixels, mask = load_image(path, 1), load_mask(mask_path, image_shape(path))
    size = (config.input_height, config.input_width)
    native = defect_shape(pixels, mask)
    small = defect_shape(resize(pixels, size), resize(mask, size, mask=True))
    return {"contrast": native["contrast"], "contrast at input": small["contrast"],
            "extent": native["extent"], "|slope|": abs(native["slope"])}


def main(runs_dirs: list[str]) -> None:
    scores, config = outranked([Path(d) for d in runs_dirs])
    table = scores.groupby("image").agg(
        runs=("score", "size"), median_score=("score", "median"),
        outranked_by=("outranked_by", "median")).reset_index()
    table = table.join(pd.DataFrame([shape_of(image, config) for image in table["image"]]))
    table = table.sort_values("outranked_by", ascending=False)
    print(f"Runs under {', '.join(runs_dirs)}; images from {config.data_root}; input "
          f"{config.input_width}x{config.input_height} (W x H).\n")
    print(table.head(12).to_markdown(index=False, floatfmt=".3f") + "\n")
    print("| property | Spearman ρ with outranked_by | p |\n| --- | --- | --- |")
    for name in PROPERTIES:
        rho, p = spearmanr(table[name], table["outranked_by"], nan_policy="omit")
        print(f"| {name} | {rho:+.2f} | {p:.3f} |")
    print(f"\n{len(table)} positives; the first 12 by outranked_by shown.\n")
    worst = scores[scores["image"].isin(table["image"].head(3))]
    by_mode = worst.pivot_table(index="image", columns="mode", values="outranked_by",
                                aggfunc="median")[["WS", "MS", "FS"]]
    print("Median outranked_by of the three most outranked images, per mode:\n")
    print(by_mode.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main(sys.argv[1:])
