"""One's own images, in the layouts engineers already have, read in place (nothing copied).

The layout is recognised from the folder (``detect_layout``):

* ``images-masks``: ``images/`` + optional ``masks/`` + optional ``labels.csv``. A mask has its
  image's stem and any image suffix (``images/a01.jpg`` -> ``masks/a01.png``); non-zero pixels
  are defects. ``labels.csv`` (columns ``image,label``, ``image`` being the file name in
  ``images/``) labels images without masks: a defective image with a label but no mask trains
  with image-level supervision only. An image needs a mask or a label; where it has both, they
  must agree.
* ``mvtec``: the MVTec AD layout, ``train/good/``, ``test/<type>/`` and
  ``ground_truth/<type>/<stem>_mask.png``; every ``good`` image is clean, every other type
  defective. All images are pooled and split by seed (MVTec's own train split has no defects).
* ``class-folders``: ``good/`` (or ``ok/``, ``normal/``) plus one folder per defect type, with
  optional masks in a parallel tree ``masks/<type>/<stem>.*``.
* ``masks-beside``: images in any nested subfolders, each mask beside its image with a suffix
  (``part_mask.png``, ``part_GT.png``, ``part_label.bmp``), or in a ``Label/`` (``labels/``,
  ``masks/``) subfolder beside it: KolektorSDD and DAGM as they are distributed. An image without
  a mask is clean, unless ``labels.csv`` (relative paths) says otherwise.

Sample names are paths relative to the root, so images of different folders never clash.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pandas as pd

from segdec.data.dataset import Sample
from segdec.data.images import IMAGE_SUFFIXES, DataError

LAYOUT = "images/ + optional masks/ (same stem) + optional labels.csv (image,label)"
LAYOUTS = {
    "images-masks": LAYOUT,
    "mvtec": "train/good/, test/<type>/, ground_truth/<type>/<stem>_mask.png (MVTec AD)",
    "class-folders": "good/ (or ok/, normal/) + one folder per defect type, optional masks/<type>/",
    "masks-beside": "images in nested folders, masks beside them (or in Label/ beside them) as "
                    "<stem>_mask|_GT|_label.*",
}
GOOD_FOLDERS = ("good", "ok", "normal")
MASK_SUFFIXES = ("_mask", "_gt", "_label")
MASK_FOLDERS = ("label", "labels", "mask", "masks")


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


def detect_layout(root: Path) -> str:
    """Which of ``LAYOUTS`` the folder ``root`` is in."""
    if not root.is_dir():
        raise DataError(f"{root} does not exist; point data_root at your images")
    if (root / "images").is_dir():
        return "images-masks"
    if (root / "train" / "good").is_dir() and (root / "test").is_dir():
        return "mvtec"
    if any((root / good).is_dir() for good in GOOD_FOLDERS):
        return "class-folders"
    if any(_mask_stem(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        return "masks-beside"
    layouts = "\n".join(f"  {name}: {text}" for name, text in LAYOUTS.items())
    raise DataError(f"{root} is in none of the folder layouts segdec reads:\n{layouts}")


def read_folder(root: str | Path) -> list[Sample]:
    """Every image of ``root`` with its mask and/or label, in whichever layout it is."""
    root = Path(root)
    reader = {"images-masks": _read_images_masks, "mvtec": _read_mvtec,
              "class-folders": _read_class_folders, "masks-beside": _read_masks_beside}
    return reader[detect_layout(root)](root)


def _mask_stem(path: Path) -> str | None:
    """The image stem a mask file belongs to (``a_GT.png`` -> ``a``), or None for an image."""
    for suffix in MASK_SUFFIXES:
        if path.stem.lower().endswith(suffix) and len(path.stem) > len(suffix):
            return path.stem[: -len(suffix)]
    return None


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _labelled(image: Path, root: Path, mask: Path | None, label: int) -> Sample:
    """A sample whose label comes from its folder; a mask, where there is one, must agree."""
    if mask is None:
        return Sample(_name(image, root), str(image), label, source=str(image.parent))
    sample = Sample.from_mask(_name(image, root), image, mask)
    if sample.label != label:
        state = "has defect pixels" if sample.label else "is empty"
        raise DataError(f"{image} is in a {'defect' if label else 'good'} folder but its mask "
                        f"{mask} {state}; move the image or fix the mask")
    return sample


def _read_mvtec(root: Path) -> list[Sample]:
    samples = []
    for image in sorted((root / "train").rglob("*")) + sorted((root / "test").rglob("*")):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        kind = image.parent.name
        mask = root / "ground_truth" / kind / f"{image.stem}_mask.png"
        samples.append(_labelled(image, root, mask if mask.is_file() else None,
                                 int(kind != "good")))
    if not any(s.label for s in samples):
        raise DataError(f"{root / 'test'} holds no defect type folders; MVTec AD puts defective "
                        "images in test/<type>/")
    return samples


def _read_class_folders(root: Path) -> list[Sample]:
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "masks"):
        label = int(folder.name.lower() not in GOOD_FOLDERS)
        masks = {m.stem: m for m in _image_files(root / "masks" / folder.name)} if (
            root / "masks" / folder.name).is_dir() else {}
        for image in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            samples.append(_labelled(image, root, masks.get(image.stem), label))
    return samples


def _read_masks_beside(root: Path) -> list[Sample]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images = [p for p in files if _mask_stem(p) is None]
    by_stem = {(p.parent, p.stem): p for p in images}
    masks: dict[Path, Path] = {}
    for mask in (p for p in files if _mask_stem(p) is not None):
        owner = by_stem.get((mask.parent, _mask_stem(mask)))
        if owner is None and mask.parent.name.lower() in MASK_FOLDERS:
            owner = by_stem.get((mask.parent.parent, _mask_stem(mask)))
        if owner is None:
            raise DataError(f"mask {mask} has no image {_mask_stem(mask)}.* beside it (or, in a "
                            f"{mask.parent.name}/ folder, beside that folder)")
        masks[owner] = mask
    labels = _read_labels(root / "labels.csv", {_name(p, root) for p in images})
    samples = []
    for image in images:
        given = labels.get(_name(image, root))
        # Images of one subfolder (a KolektorSDD item) stay in one split.
        group = "" if image.parent == root else _name(image.parent, root)
        if image in masks:
            sample = Sample.from_mask(_name(image, root), image, masks[image], group=group)
            if given is not None and given[0] != sample.label:
                raise DataError(f"{given[1]} labels {sample.name} {given[0]} but its mask "
                                f"{masks[image]} disagrees; fix one of them")
        else:
            label = given[0] if given else 0
            sample = Sample(_name(image, root), str(image), label, group=group,
                            source=given[1] if given else str(image))
        samples.append(sample)
    return _whole_items_only_when_small(samples)


# A subfolder holding at most this share of the images is an item (a KolektorSDD part: 8 of 399)
# whose near-duplicate images stay in one split; a larger one (a lot, a camera, DAGM's Test/) is
# split image by image, as one group that large could not be dealt out.
MAX_ITEM_SHARE = 0.1


def _whole_items_only_when_small(samples: list[Sample]) -> list[Sample]:
    sizes = Counter(s.group for s in samples if s.group)
    if not sizes or max(sizes.values()) <= MAX_ITEM_SHARE * len(samples):
        return samples
    return [dataclasses.replace(s, group="") for s in samples]


def _read_images_masks(root: Path) -> list[Sample]:
    """Every image under ``root/images`` with its mask and/or label."""
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
