"""The paper's reference numbers (docs/paper.md), written once as data for the reports and batches.

Table 5 holds the image-level results of the 26 Severstal settings; Table 6 the ablation AP (in %)
of the three improvements per dataset. Table 4, the Severstal schedule, is a training recipe and
lives in ``segdec.recipes``.
"""

from __future__ import annotations

import pandas as pd

# Table 6's setting: N_all = 1000, 50 epochs, MS with L_p = 250.
ABLATION_N_ALL, ABLATION_EPOCHS, ABLATION_L_P = 1000, 50, 250

TABLE5_COLUMNS = ["mode", "n_all", "l_p", "epochs", "auc", "ap", "f_measure", "fp", "fn"]
_TABLE5 = [
    ("WS", 300, 0, 90, 0.918, 0.932, 0.843, 174, 198),
    ("WS", 750, 0, 80, 0.918, 0.933, 0.847, 171, 196),
    ("WS", 1500, 0, 60, 0.920, 0.937, 0.849, 168, 192),
    ("WS", 3000, 0, 40, 0.958, 0.962, 0.914, 133, 102),
    ("MS", 300, 10, 90, 0.918, 0.935, 0.845, 170, 195),
    ("MS", 300, 50, 90, 0.952, 0.959, 0.907, 117, 83),
    ("MS", 300, 150, 90, 0.963, 0.972, 0.927, 96, 72),
    ("MS", 750, 10, 80, 0.918, 0.934, 0.843, 171, 196),
    ("MS", 750, 50, 80, 0.918, 0.934, 0.842, 169, 198),
    ("MS", 750, 150, 80, 0.957, 0.962, 0.913, 130, 104),
    ("MS", 750, 300, 80, 0.979, 0.983, 0.945, 47, 51),
    ("MS", 1500, 10, 60, 0.923, 0.942, 0.870, 129, 97),
    ("MS", 1500, 50, 60, 0.954, 0.969, 0.921, 93, 69),
    ("MS", 1500, 150, 60, 0.980, 0.983, 0.947, 44, 53),
    ("MS", 1500, 300, 60, 0.979, 0.983, 0.949, 46, 52),
    ("MS", 1500, 750, 60, 0.983, 0.985, 0.952, 42, 51),
    ("MS", 3000, 10, 40, 0.949, 0.961, 0.910, 103, 74),
    ("MS", 3000, 50, 40, 0.953, 0.965, 0.918, 82, 63),
    ("MS", 3000, 150, 40, 0.969, 0.982, 0.939, 53, 50),
    ("MS", 3000, 300, 40, 0.978, 0.985, 0.947, 46, 50),
    ("MS", 3000, 750, 40, 0.981, 0.987, 0.952, 43, 49),
    ("MS", 3000, 1500, 40, 0.985, 0.988, 0.957, 42, 48),
    ("FS", 300, 300, 90, 0.978, 0.982, 0.944, 46, 54),
    ("FS", 750, 750, 80, 0.985, 0.990, 0.966, 41, 47),
    ("FS", 1500, 1500, 60, 0.989, 0.993, 0.971, 38, 36),
    ("FS", 3000, 3000, 40, 0.993, 0.996, 0.979, 35, 32),
]

TABLE6_DATASETS = ("dagm", "ksdd", "severstal")
# (mode, attention, atrous, decayed balance, AP % on DAGM, KSDD, Severstal)
_TABLE6 = [
    ("WS", False, False, False, 74.82, 92.65, 90.27),
    ("WS", True, False, False, 75.06, 92.91, 91.31),
    ("WS", False, True, False, 76.12, 93.12, 92.25),
    ("WS", True, True, False, 75.49, 93.01, 92.53),
    ("WS", True, False, True, 76.77, 93.05, 91.08),
    ("WS", False, True, True, 76.98, 93.27, 92.82),
    ("WS", True, True, True, 77.21, 93.41, 93.16),
    ("MS", False, False, False, 68.43, 98.92, 97.1),
    ("MS", True, False, False, 68.85, 97.63, 97.2),
    ("MS", False, True, False, 71.24, 99.00, 97.4),
    ("MS", True, True, False, 71.49, 98.68, 97.5),
    ("MS", True, False, True, 69.18, 97.81, 97.3),
    ("MS", False, True, True, 71.35, 99.24, 97.6),
    ("MS", True, True, True, 72.18, 99.36, 97.9),
    ("FS", False, False, False, 88.74, 99.46, 98.7),
    ("FS", True, False, False, 89.10, 98.26, 98.7),
    ("FS", False, True, False, 90.18, 99.51, 98.8),
    ("FS", True, True, False, 89.56, 99.24, 98.9),
    ("FS", True, False, True, 88.97, 99.43, 98.7),
    ("FS", False, True, True, 90.98, 99.87, 99.0),
    ("FS", True, True, True, 91.03, 100.00, 99.2),
]
# The seven on/off combinations of (attention, atrous, decayed balance) that Table 6 lists.
ABLATION_SWITCHES: list[tuple[bool, bool, bool]] = [row[1:4] for row in _TABLE6[:7]]


def table5() -> pd.DataFrame:
    """Table 5, one row per setting, in the paper's order (``row`` counts from 1)."""
    frame = pd.DataFrame(_TABLE5, columns=TABLE5_COLUMNS)
    return frame.assign(row=range(1, len(frame) + 1))


def table6() -> pd.DataFrame:
    """Table 6 in long form: mode, attention, atrous, decay, dataset, ap (in %)."""
    wide = pd.DataFrame(_TABLE6, columns=["mode", "attention", "atrous", "decay",
                                          *TABLE6_DATASETS])
    return wide.melt(id_vars=["mode", "attention", "atrous", "decay"], var_name="dataset",
                     value_name="ap")
