"""One's own images: ``images/`` + optional ``masks/`` + optional ``labels.csv``.

A mask has its image's stem and any image suffix (``images/a01.jpg`` -> ``masks/a01.png``);
non-zero pixels are defects. ``labels.csv`` (columns ``image,label``, ``image`` being the file
name in ``images/``) labels images without masks: a defective image with a label but no mask
trains with image-level supervision only. An image needs a mask or a label; where it has both,
they must agree.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segdec.data.dataset import Sample
from segdec.data.images import IMAGE_SUFFIXES, DataError

LAYOUT = "images/ + optional masks/ (same stem) + optional labels.csv (image,label)"


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_labels(csv_path: Path, image_names: set[str]) -> dict[str, tuple[int, str]]:
    """image name -> (label, "labels.csv row N") for error messages."""
    if not csv_path.is_file():
        return {}
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse {csv_path}: {err}") from None
    if not {"image", "label"} <= set(table.columns):
        raise DataError(f"{csv_path} has columns {list(table.columns)}; expected image,label")
    labels: dict[str, tuple[int, str]] = {}
    for row, (name, label) in enumerate(zip(table["image"], table["label"], strict=True), 2):
        where = f"{csv_path} row {row}"
        if name not in image_names:
            raise DataError(f"{where} names {name!r}, which is not in images/; use the file name")
        if label.strip() not in ("0", "1"):
            raise DataError(f"{where}: label {label!r} must be 0 (good) or 1 (defective)")
        if name in labels:
            raise DataError(f"{where} labels {name} a second time ({labels[name][1]})")
        labels[name] = (int(label), where)
    return labels


def read_folder(root: str | Path) -> list[Sample]:
    """Every image under ``root/images`` with its mask and/or label."""
    root = Path(root)
    image_dir, mask_dir = root / "images", root / "masks"
    if not image_dir.is_dir():
        raise DataError(f"{image_dir} does not exist; the folder format is {LAYOUT}")
    images = _image_files(image_dir)
    if not images:
        raise DataError(f"{image_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    stems = {p.stem: p for p in images}
    masks: dict[str, Path] = {}
    for mask in _image_files(mask_dir) if mask_dir.is_dir() else []:
        if mask.stem not in stems:
            raise DataError(f"mask {mask} has no image {mask.stem}.* in {image_dir}")
        if mask.stem in masks:
            raise DataError(f"{masks[mask.stem]} and {mask} are both masks of {mask.stem}")
        masks[mask.stem] = mask
    if masks and len(stems) < len(images):
        raise DataError(f"{image_dir} holds several images with one stem; masks are matched by "
                        "stem, so rename them")
    labels = _read_labels(root / "labels.csv", {p.name for p in images})
    samples = []
    for image in images:
        mask, given = masks.get(image.stem), labels.get(image.name)
        if mask is not None:
            sample = Sample.from_mask(image.name, image, mask)
            if given is not None and given[0] != sample.label:
                state = "has defect pixels" if sample.label else "is empty"
                raise DataError(f"{given[1]} labels {image.name} {given[0]} but its mask {mask} "
                                f"{state}; fix one of them")
        elif given is not None:
            sample = Sample(image.name, str(image), given[0], source=given[1])
        else:
            raise DataError(f"{image} has neither a mask in {mask_dir} nor a row in "
                            f"{root / 'labels.csv'}; give it one")
        samples.append(sample)
    return samples
