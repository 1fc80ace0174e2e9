"""Deterministic, nested train / validation / test splits (PAPER.md, Table 4).

From one seed: a fixed test and validation set (stratified by label) and a fixed pool of
training negatives, shared by every setting; the training positives are a fixed permutation, so
the positives of ``n_all = 300`` lie inside those of 750, 1500 and 3000, and the pixel-labelled
positives (the first ``n_seg`` of them) are nested the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segdec.data.dataset import Sample
from segdec.data.images import DataError
from segdec.io import atomic_write

# Božič et al. on the full Severstal training set (12,568 images).
SEVERSTAL_TOTAL, SEVERSTAL_TEST, SEVERSTAL_VAL, SEVERSTAL_TRAIN_NEGATIVES = 12568, 2400, 1118, 4143
SPLIT_COLUMNS = ["image", "subset", "label", "has_pixel_label"]


def _count(requested: int | None, default: int, available: int, what: str) -> int:
    if requested is None:
        return min(default, available)
    if requested > available:
        raise DataError(f"{what}={requested} asks for more images than the data hold ({available})")
    return requested


def make_split(
    samples: list[Sample],
    n_all: int | None,
    n_seg: int | None,
    seed: int = 0,
    n_test: int | None = None,
    n_val: int | None = None,
    n_train_negatives: int | None = None,
) -> pd.DataFrame:
    """One row per used image: ``image`` (name), ``subset``, ``label``, ``has_pixel_label``.

    ``None`` counts mean Božič's Severstal numbers, scaled down to smaller data.
    """
    if not samples:
        raise DataError("the dataset is empty: no images were found")
    total = len(samples)
    rng = np.random.default_rng(seed)
    positives = [s.name for s in sorted(samples, key=lambda s: s.name) if s.label]
    negatives = [s.name for s in sorted(samples, key=lambda s: s.name) if not s.label]
    positives = [positives[i] for i in rng.permutation(len(positives))]
    negatives = [negatives[i] for i in rng.permutation(len(negatives))]
    share = len(positives) / total
    test = _count(n_test, round(SEVERSTAL_TEST * total / SEVERSTAL_TOTAL), total, "n_test")
    val = _count(n_val, round(SEVERSTAL_VAL * total / SEVERSTAL_TOTAL), total - test, "n_val")
    test_pos, val_pos = round(test * share), round(val * share)
    test_neg, val_neg = test - test_pos, val - val_pos
    if min(test_pos, test_neg, val_pos, val_neg) < 1:
        raise DataError(
            f"the test ({test}) and validation ({val}) splits each need positives and negatives; "
            f"the data hold {len(positives)} positives and {len(negatives)} negatives"
        )
    train_pos_pool = positives[test_pos + val_pos:]
    train_neg_pool = negatives[test_neg + val_neg:]
    n_train_pos = len(train_pos_pool) if n_all is None else n_all
    if n_train_pos > len(train_pos_pool) or n_train_pos < 1:
        raise DataError(
            f"n_all={n_all} asks for more training positives than the data hold "
            f"({len(train_pos_pool)} after the test and validation splits)"
        )
    n_labelled = n_train_pos if n_seg is None else n_seg
    if n_labelled > n_train_pos:
        raise DataError(f"n_seg={n_seg} exceeds the {n_train_pos} training positives")
    n_neg = _count(n_train_negatives, SEVERSTAL_TRAIN_NEGATIVES, len(train_neg_pool),
                   "n_train_negatives")
    if n_neg < 1:
        raise DataError("no training negatives are left after the test and validation splits")
    rows = (
        [(n, "test", 1, True) for n in positives[:test_pos]]
        + [(n, "test", 0, True) for n in negatives[:test_neg]]
        + [(n, "val", 1, True) for n in positives[test_pos:test_pos + val_pos]]
        + [(n, "val", 0, True) for n in negatives[test_neg:test_neg + val_neg]]
        + [(n, "train", 1, i < n_labelled) for i, n in enumerate(train_pos_pool[:n_train_pos])]
        + [(n, "train", 0, True) for n in train_neg_pool[:n_neg]]
    )
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


def save_split(split: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: split.to_csv(tmp, index=False))


def load_split(path: str | Path, samples: list[Sample]) -> pd.DataFrame:
    """Read a split CSV and check that every image it names exists with the same label."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} does not exist")
    split = pd.read_csv(path)
    missing_columns = set(SPLIT_COLUMNS) - set(split.columns)
    if missing_columns:
        raise DataError(f"split file {path} lacks columns {sorted(missing_columns)}")
    labels = {s.name: s.label for s in samples}
    for row in split.itertuples(index=False):
        if row.image not in labels:
            raise DataError(f"split file {path} names {row.image}, which is not in the dataset")
        if int(row.label) != labels[row.image]:
            raise DataError(f"split file {path}: {row.image} has label {row.label} there but "
                            f"{labels[row.image]} in the dataset")
    split["has_pixel_label"] = split["has_pixel_label"].astype(bool)
    return split


def subset(
    split: pd.DataFrame, samples: list[Sample], name: str
) -> tuple[list[Sample], list[bool]]:
    """The samples of one subset and their has_pixel_label flags, in split order."""
    by_name = {s.name: s for s in samples}
    rows = split[split["subset"] == name]
    if rows.empty:
        raise DataError(f"the {name} split is empty; use more data or smaller split sizes")
    return [by_name[n] for n in rows["image"]], rows["has_pixel_label"].astype(bool).tolist()
