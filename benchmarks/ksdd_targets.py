"""How strong a segmentation target each KolektorSDD crack gets at 1/8, per input size and mask
dilation (issue 33's diagnosis of the missed cracks: "resolution and mask dilation at 1/8").

    python benchmarks/ksdd_targets.py [KSDD_ROOT] > figures/ksdd/diagnosis/missed/targets.md

The network's segmentation output is trained towards a soft 1/8 map: the mask, resized to the
input size and dilated, average-pooled over 17x17 pixels with stride 8 (Božič's reference
implementation, ``segdec.data.dataset.downsample_mask``). A crack a few pixels wide at 500 px
covers a small share of each 17x17 window once the image is shrunk, so its target's peak falls.
This prints, for every defective image, the peak of that target (1: a cell wholly defect) under
Božič's setting and under this project's CPU settings, made by the training data path itself
(``DefectDataset``), with no network involved.
"""
import sys
from pathlib import Path

import pandas as pd

from segdec.data.dataset import DefectDataset, TargetOptions
from segdec.data.ksdd import read_ksdd
from segdec.paths import data_home

# (label, input size as (H, W), dilation): Božič's published setting first, then this project's
SETTINGS = [
    ("512x1408, 7x7 (Božič)", (1408, 512), 7),
    ("192x528, 3x3", (528, 192), 3),
    ("96x264, 3x3 (this project)", (264, 96), 3),
    ("96x264, 9x9", (264, 96), 9),
    ("96x264, 13x13", (264, 96), 13),
    ("96x264, 17x17", (264, 96), 17),
]
# The positives every network misses (figures/ksdd/diagnosis/missed/everywhere.md) and the two
# faintest that every network finds, for comparison
WATCHED = ["kos08/Part2.jpg", "kos12/Part5.jpg", "kos24/Part1.jpg", "kos14/Part7.jpg",
           "kos02/Part6.jpg", "kos31/Part1.jpg", "kos32/Part2.jpg"]


def target_peaks(root: Path) -> pd.DataFrame:
    """The peak of every defective image's soft 1/8 target, one column per setting."""
    positives = [sample for sample in read_ksdd(root) if sample.label]
    table = pd.DataFrame(index=[sample.name for sample in positives])
    for label, size, dilate in SETTINGS:
        dataset = DefectDataset(positives, [True] * len(positives),
                                TargetOptions(size=size, dilate=dilate), cache=False)
        table[label] = [float(dataset[i]["seg_target"].max()) for i in range(len(dataset))]
    return table


def main(root: Path) -> None:
    table = target_peaks(root)
    print(f"Peak of the soft 1/8 segmentation target of each of the {len(table)} defective "
          f"KolektorSDD images under `{root}` (1: a 1/8 cell wholly defect).\n")
    quartiles = table.quantile([0.0, 0.25, 0.5, 0.75, 1.0])
    quartiles.index = ["min", "25 %", "median", "75 %", "max"]
    print(quartiles.T.to_markdown(floatfmt=".2f") + "\n")
    print(table.loc[WATCHED].to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(data_home(), "ksdd"))
