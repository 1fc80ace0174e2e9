"""Severstal Steel Defect Detection on disk: ``train.csv`` + ``train_images/*.jpg``.

Both CSV formats are read: the current ``ImageId,ClassId,EncodedPixels`` (one row per image and
defect class present) and the older wide ``ImageId_ClassId,EncodedPixels`` (four rows per image).
An image is positive if any (chosen) class is present; its mask is the union of its classes.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from segdec.data.dataset import Sample
from segdec.data.images import IMAGE_SUFFIXES
from segdec.data.rle import RLEError, parse_runs
from segdec.errors import DataError


def read_rle_rows(csv_path: str | Path) -> pd.DataFrame:
    """Rows (ImageId, ClassId, EncodedPixels, row) of either CSV format, empty rows dropped.

    ``row`` is the 1-based line number in the file (the header is line 1), for error messages.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path} does not exist; download the data or point data_root at it")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{csv_path} is empty; it needs the header ImageId,ClassId,EncodedPixels "
                        "(an image without rows is defect-free)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse {csv_path}: {err}") from None
    columns = list(table.columns)  # as in the file, before the row numbers are added
    table["row"] = range(2, len(table) + 2)
    if {"ImageId", "ClassId", "EncodedPixels"} <= set(table.columns):
        rows = table[["ImageId", "ClassId", "EncodedPixels", "row"]].copy()
        # In this format a row lists a defect: without pixels it would turn into a clean image.
        empty = rows[rows["EncodedPixels"].str.strip() == ""]
        if len(empty):
            first = empty.iloc[0]
            raise DataError(
                f"{csv_path} row {first.row} ({first.ImageId}, class {first.ClassId}) lists a "
                f"defect without EncodedPixels ({len(empty)} such rows); give its run-length "
                "pixels, or drop the row if the image is defect-free")
    elif {"ImageId_ClassId", "EncodedPixels"} <= set(table.columns):
        key = table["ImageId_ClassId"].str.rsplit("_", n=1, expand=True)
        if key.shape[1] != 2 or key[1].isna().any():
            bad = table.loc[key[1].isna(), "row"].iloc[0] if key.shape[1] == 2 else 2
            raise DataError(f"{csv_path} row {bad}: ImageId_ClassId must look like 'ID.jpg_3'")
        rows = pd.DataFrame({"ImageId": key[0], "ClassId": key[1],
                             "EncodedPixels": table["EncodedPixels"], "row": table["row"]})
    else:
        raise DataError(
            f"{csv_path} has columns {columns}; expected ImageId,ClassId,EncodedPixels "
            "or the older ImageId_ClassId,EncodedPixels"
        )
    rows = rows[rows["EncodedPixels"].str.strip() != ""].copy()
    for record in rows.itertuples():
        where = f"{csv_path} row {record.row} ({record.ImageId}, class {record.ClassId})"
        if str(record.ClassId).strip() not in ("1", "2", "3", "4"):
            raise DataError(f"{where}: ClassId must be 1, 2, 3 or 4, Severstal's defect classes")
        try:
            parse_runs(record.EncodedPixels)
        except RLEError as err:
            raise DataError(f"{where}: {err}; fix or drop that row") from None
    rows["ClassId"] = rows["ClassId"].astype(int)
    return rows.reset_index(drop=True)


def read_severstal(root: str | Path, classes: list[int] | None = None) -> list[Sample]:
    """Every image under ``root/train_images`` with its defect classes from ``root/train.csv``."""
    root = Path(root)
    image_dir = root / "train_images"
    if not image_dir.is_dir():
        raise DataError(
            f"{image_dir} does not exist; run `segdec download severstal --dest {root}` "
            "or `segdec synth --out DIR` for synthetic data"
        )
    csv_path = root / "train.csv"
    rows = read_rle_rows(csv_path)
    if classes is not None:
        rows = rows[rows["ClassId"].isin(classes)]
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{image_dir} holds no images")
    names = {p.name for p in images}
    missing = rows[~rows["ImageId"].isin(names)]
    if len(missing):
        first = missing.iloc[0]
        raise DataError(
            f"{csv_path} row {first.row} names {first.ImageId}, which is not in {image_dir} "
            f"({len(missing)} such rows); restore the image or drop its rows"
        )
    by_image: dict[str, list] = defaultdict(list)
    for record in rows.itertuples():
        by_image[record.ImageId].append(record)
    samples = []
    for path in images:
        records = by_image.get(path.name, [])
        samples.append(
            Sample(
                name=path.name,
                image=str(path),
                label=int(bool(records)),
                rles=tuple(r.EncodedPixels for r in records),
                classes=tuple(int(r.ClassId) for r in records),
                rle_rows=tuple(int(r.row) for r in records),
                source=str(csv_path),
            )
        )
    return samples
