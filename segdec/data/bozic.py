"""Božič et al.'s published splits (his KolektorSDD folds, his Severstal train / validation / test
lists), read from their CSV form into this project's split table, so that a number compared with
a published one comes from the same images.

The CSV files are not shipped (they are lists of his repository's file names, CC BY-NC-SA 4.0);
``splits_root`` names the folder holding ``ksdd_folds.csv`` and ``severstal_splits.csv.gz``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segdec.data.dataset import SPLIT_COLUMNS, Sample
from segdec.errors import DataError

KSDD_FOLDS = "ksdd_folds.csv"
SEVERSTAL_SPLITS = "severstal_splits.csv.gz"
# Every fold of Božič's KolektorSDD column trains on all 33 (or 34) training items.
KSDD_POSITIVE_ITEMS = 33
_SUBSETS = {"train": "train", "validation": "val", "test": "test"}


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"{path} does not exist; splits: bozic reads Božič's published splits as CSV from "
            "splits_root (ksdd_folds.csv, severstal_splits.csv.gz): point splits_root at that "
            "folder, or use splits: own")
    table = pd.read_csv(path, dtype={"image_id": str, "item": str})
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise DataError(f"{path} lacks columns {missing}; is it Božič's split as CSV?")
    return table


def _pick(table: pd.DataFrame, path: Path, what: str, **where: int) -> pd.DataFrame:
    """The rows of one of Božič's settings, or an error listing the settings the file has."""
    keys = list(where)
    rows = table.loc[(table[keys] == pd.Series(where)).all(axis=1)]
    if rows.empty:
        have = sorted({tuple(int(v) for v in r) for r in table[keys].itertuples(index=False)})
        listed = ", ".join("/".join(map(str, setting)) for setting in have)
        raise DataError(f"{path} has no split for {what}; Božič published {'/'.join(keys)} = "
                        f"{listed}: choose one of those or use splits: own")
    return rows


def ksdd_split(samples: list[Sample], folds_csv: str | Path, fold: int, n_all: int | None,
               n_seg: int | None, n_val: int | None) -> pd.DataFrame:
    """Fold ``fold`` of Božič's KolektorSDD column: his test items, his training items, and the
    items whose masks train (``n_seg`` counts items, his L_p: 0, 5, 10, 15, 20 or null for all
    33; kos38 and kos39 hold two defective images each). Validation is the test fold, as in his
    protocol, so ``n_val`` must be 0."""
    path = Path(folds_csv)
    if n_all is not None:
        raise DataError("Božič's KolektorSDD folds train on every positive of the training items: "
                        "set n_all: null with splits: bozic")
    if n_val != 0:
        raise DataError("Božič's KolektorSDD folds have no validation set (he validated on the "
                        "test fold): set n_val: 0 with splits: bozic")
    table = _read(path, ["n_positive", "n_segmented", "fold", "item", "split", "segmented"])
    n_segmented = KSDD_POSITIVE_ITEMS if n_seg is None else n_seg
    rows = _pick(table, path, f"n_seg={n_segmented} items in fold {fold}",
                 n_positive=KSDD_POSITIVE_ITEMS, n_segmented=n_segmented, fold=fold)
    by_item: dict[str, list[Sample]] = {}
    for sample in samples:
        by_item.setdefault(sample.group, []).append(sample)
    absent = sorted(set(rows["item"]) - set(by_item))
    if absent:
        raise DataError(f"{path} fold {fold} names item {absent[0]} ({len(absent)} such), which "
                        "is not in the KolektorSDD folder; point data_root at the complete set")
    table_rows = []
    for subset in ("test", "train"):
        for item in sorted(rows.loc[rows["split"] == subset, "item"]):
            segmented = bool(rows.loc[rows["item"] == item, "segmented"].iloc[0])
            for sample in sorted(by_item[item], key=lambda s: s.name):
                labelled = (sample.has_mask and segmented) or not sample.label
                table_rows.append((sample.name, subset, sample.label, labelled))
    split = pd.DataFrame(table_rows, columns=SPLIT_COLUMNS)
    test, train = split[split["subset"] == "test"], split[split["subset"] == "train"]
    return pd.concat([test, test.assign(subset="val"), train], ignore_index=True)


def severstal_split(samples: list[Sample], splits_csv: str | Path, n_all: int | None,
                    n_seg: int | None) -> pd.DataFrame:
    """Božič's Severstal split for ``n_all`` defective training images, ``n_seg`` of them with
    pixel labels (null: all): his exact train, validation and test images."""
    path = Path(splits_csv)
    if n_all is None:
        raise DataError("Božič's Severstal splits are per n_all (300, 750, 1500, 3000 or 1000): "
                        "set n_all with splits: bozic")
    table = _read(path, ["n_all", "n_segmented", "image_id", "split", "segmented"])
    n_segmented = n_all if n_seg is None else n_seg
    rows = _pick(table, path, f"n_all={n_all}, n_seg={n_segmented}", n_all=n_all,
                 n_segmented=n_segmented)
    by_name = {Path(sample.name).stem: sample for sample in samples}
    absent = [image for image in rows["image_id"] if image not in by_name]
    if absent:
        raise DataError(
            f"Božič's split n_all={n_all}, n_seg={n_segmented} ({path}) names {len(absent)} "
            f"images that the Severstal folder lacks (the first: {absent[0]}.jpg); download "
            "the whole training set (segdec download severstal) or use splits: own")
    table_rows = []
    for subset in ("test", "validation", "train"):
        chosen = rows[rows["split"] == subset].sort_values("image_id")
        for image, segmented in zip(chosen["image_id"], chosen["segmented"], strict=True):
            sample = by_name[image]
            table_rows.append((sample.name, _SUBSETS[subset], sample.label,
                               bool(segmented) or not sample.label))
    return pd.DataFrame(table_rows, columns=SPLIT_COLUMNS)


def bozic_split(dataset: str, samples: list[Sample], splits_root: str | Path, *, fold: int,
                n_all: int | None, n_seg: int | None, n_val: int | None) -> pd.DataFrame:
    """Božič's split of ``dataset`` (KolektorSDD or Severstal) from ``splits_root``."""
    root = Path(splits_root)
    if dataset == "ksdd":
        return ksdd_split(samples, root / KSDD_FOLDS, fold, n_all, n_seg, n_val)
    if dataset == "severstal":
        return severstal_split(samples, root / SEVERSTAL_SPLITS, n_all, n_seg)
    raise DataError(f"Božič published splits for KolektorSDD and Severstal only, not {dataset}; "
                    "use splits: own")
