"""Deterministic, nested train / validation / test splits (docs/paper.md, Table 4).

From one seed: a fixed test and validation set (stratified by label) and a fixed pool of
training negatives, shared by every setting; the training positives are a fixed permutation, so
the positives of ``n_all = 300`` lie inside those of 750, 1500 and 3000, and the pixel-labelled
positives (the first ``n_seg`` of them) are nested the same way.

A run's ``split.csv`` also keeps each image's SHA-1 (column ``sha1``), so that a resumed run
refuses an image whose pixels changed under the same name, as it refuses a removed one; splits
without the column (older runs, ``segdec split``) are read as before.

Datasets with their own test images (DAGM and KolektorSDD2 ``Test`` folders, a KolektorSDD fold,
marked by ``Sample.fixed_subset``) are tested on those. Test and validation images are drawn by
whole groups (KolektorSDD items), so no item is both trained on and tested on.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from segdec.data.dataset import SPLIT_COLUMNS, Sample
from segdec.errors import DataError, OutputExistsError
from segdec.io import atomic_write
from segdec.outputs import manifest_path

# Božič et al. on the full Severstal training set (12,568 images).
SEVERSTAL_TOTAL, SEVERSTAL_TEST, SEVERSTAL_VAL, SEVERSTAL_TRAIN_NEGATIVES = 12568, 2400, 1118, 4143
HASH_COLUMN = "sha1"


def _count(requested: int | None, default: int, available: int, what: str) -> int:
    if requested is None:
        return min(default, available)
    if requested > available:
        raise DataError(f"{what}={requested} asks for more images than the data hold ({available})")
    return requested


def _draw(pool: list[Sample], n: int, rng: np.random.Generator, what: str,
          whole_groups: bool) -> list[Sample]:
    """About ``n`` images of ``pool`` with its share of positives, in a seeded order.

    With ``whole_groups`` a group (KolektorSDD item) is taken whole or not at all, never so that
    the positives or negatives overshoot their share; without groups the counts are exact.
    """
    n_pos = round(n * sum(s.label for s in pool) / len(pool))
    wanted = {1: n_pos, 0: n - n_pos}
    for label, kind in ((1, "defective"), (0, "defect-free")):
        if not any(s.label == label for s in pool):
            raise DataError(
                f"the data hold no {kind} images for the {what} split, so AP cannot be measured; "
                "check the labels (masks, labels.csv, class folders) or add such images")
    if min(wanted.values()) < 1:
        raise DataError(
            f"the {what} split ({n} images) needs positives and negatives; the data hold "
            f"{sum(s.label for s in pool)} positives and {sum(1 - s.label for s in pool)} "
            f"negatives for it; ask for more {what} images"
        )
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in pool:
        groups[(sample.group or sample.name) if whole_groups else sample.name].append(sample)
    keys = sorted(groups)
    taken, counts = [], {0: 0, 1: 0}
    for key in (keys[i] for i in rng.permutation(len(keys))):
        members = groups[key]
        pos = sum(s.label for s in members)
        if counts[1] + pos <= wanted[1] and counts[0] + len(members) - pos <= wanted[0]:
            taken += members
            counts[1] += pos
            counts[0] += len(members) - pos
    if not (counts[0] and counts[1]):
        raise DataError(
            f"no whole items fit a {what} split of {n} images ({wanted[1]} positives, "
            f"{wanted[0]} negatives); ask for more {what} images"
        )
    return sorted(taken, key=lambda s: s.name)


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

    ``None`` counts mean Božič's Severstal numbers, scaled down to smaller data; a fixed test set
    is used whole by default. ``n_val=0`` validates on the test set, as Božič did for KolektorSDD
    and DAGM (model selection on the test set: comparable numbers, optimistic ones).
    """
    if not samples:
        raise DataError("the dataset is empty: no images were found")
    total = len(samples)
    rng = np.random.default_rng(seed)
    ordered = sorted(samples, key=lambda s: s.name)
    fixed_test = [s for s in ordered if s.fixed_subset == "test"]
    if fixed_test:
        n = _count(n_test, len(fixed_test), len(fixed_test), "n_test")
        test = _draw(fixed_test, n, rng, "test", whole_groups=False)
        excluded = {s.name for s in fixed_test}
    else:
        n = _count(n_test, round(SEVERSTAL_TEST * total / SEVERSTAL_TOTAL), total, "n_test")
        test = _draw(ordered, n, rng, "test", whole_groups=True)
        excluded = {s.name for s in test}
    rest = [s for s in ordered if s.name not in excluded]
    if n_val == 0:
        val = test
    else:
        n = _count(n_val, round(SEVERSTAL_VAL * total / SEVERSTAL_TOTAL), len(rest), "n_val")
        val = _draw(rest, n, rng, "validation", whole_groups=True)
        excluded = {s.name for s in val}
        rest = [s for s in rest if s.name not in excluded]
    positives = [s for s in rest if s.label]
    negatives = [s for s in rest if not s.label]
    positives = [positives[i] for i in rng.permutation(len(positives))]
    negatives = [negatives[i] for i in rng.permutation(len(negatives))]
    n_train_pos = len(positives) if n_all is None else n_all
    if n_train_pos > len(positives) or n_train_pos < 1:
        raise DataError(
            f"n_all={n_all} asks for more training positives than the data hold "
            f"({len(positives)} after the test and validation splits)"
        )
    train_pos = positives[:n_train_pos]
    with_masks = [s.name for s in train_pos if s.has_mask]
    n_labelled = len(with_masks) if n_seg is None else n_seg
    if n_labelled > len(with_masks):
        raise DataError(f"n_seg={n_seg} exceeds the {len(with_masks)} training positives with "
                        f"masks (of {n_train_pos})")
    labelled = set(with_masks[:n_labelled])
    n_neg = _count(n_train_negatives, SEVERSTAL_TRAIN_NEGATIVES, len(negatives),
                   "n_train_negatives")
    if n_neg < 1:
        raise DataError("no training negatives are left after the test and validation splits")
    rows = (
        [(s.name, "test", s.label, s.has_mask or not s.label) for s in test]
        + [(s.name, "val", s.label, s.has_mask or not s.label) for s in val]
        + [(s.name, "train", 1, s.name in labelled) for s in train_pos]
        + [(s.name, "train", 0, True) for s in negatives[:n_neg]]
    )
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


def save_split(split: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: split.to_csv(tmp, index=False))


def check_split_target(path: Path, overwrite: bool) -> None:
    """``segdec split --out path`` replaces only a split file, only with ``overwrite``, and
    never a run's own ``split.csv``: that run's checkpoints and metrics belong to it, and
    evaluating it on another split would put training images in its test set."""
    if not path.exists():
        return
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; give the split file's name, such as "
                                f"{path / 'split.csv'}")
    run = path.parent
    if path.name == "split.csv" and any(
            p.exists() for p in (run / "config.yaml", run / "checkpoints",
                                 manifest_path(run, "train"))):
        raise OutputExistsError(f"{path} is the split that the run in {run} trained on; a run's "
                                "split is never replaced: write the new split elsewhere")
    if not overwrite:
        raise OutputExistsError(f"{path} already exists; replace it with --overwrite, or "
                                "choose another --out")
    try:
        columns = list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        columns = []
    if not set(SPLIT_COLUMNS) <= set(columns):
        raise OutputExistsError(f"{path} is not a split file (no {', '.join(SPLIT_COLUMNS)} "
                                "columns), so --overwrite does not replace it; choose another "
                                "--out")


def image_sha1(path: str | Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def with_image_hashes(split: pd.DataFrame, samples: list[Sample]) -> pd.DataFrame:
    """``split`` with each image's SHA-1 in a ``sha1`` column (a run's split.csv keeps it)."""
    by_name = {s.name: s for s in samples}
    return split.assign(**{HASH_COLUMN: [image_sha1(by_name[name].image)
                                         for name in split["image"]]})


def split_digest(split: pd.DataFrame) -> str:
    """The SHA-1 of which image is in which subset with which labels: what a run's checkpoints
    record, so that evaluating it on an edited or replaced split.csv is refused."""
    rows = (f"{image},{subset},{int(label)},{int(bool(pixels))}" for image, subset, label, pixels
            in split[SPLIT_COLUMNS].itertuples(index=False))
    return hashlib.sha1("\n".join(rows).encode()).hexdigest()


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


def check_unchanged(split: pd.DataFrame, samples: list[Sample], path: Path) -> None:
    """Every image whose SHA-1 the split (read from ``path``) keeps still has those bytes: what
    a resumed run checks. Reports and evaluations read the images as they are, so that records
    render on another copy of a dataset."""
    if HASH_COLUMN not in split.columns:
        return
    images = {s.name: s.image for s in samples}
    changed = [images[name] for name, sha1 in zip(split["image"], split[HASH_COLUMN], strict=True)
               if isinstance(sha1, str) and image_sha1(images[name]) != sha1]
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise DataError(f"image {changed[0]}{more} changed since {path} was written (its content "
                        "differs from the SHA-1 kept there); a run must keep its images: restore "
                        "them, or start a new run")


def subset(
    split: pd.DataFrame, samples: list[Sample], name: str
) -> tuple[list[Sample], list[bool]]:
    """The samples of one subset and their has_pixel_label flags, in split order."""
    by_name = {s.name: s for s in samples}
    rows = split[split["subset"] == name]
    if rows.empty:
        raise DataError(f"the {name} split is empty; use more data or smaller split sizes")
    return [by_name[n] for n in rows["image"]], rows["has_pixel_label"].astype(bool).tolist()
