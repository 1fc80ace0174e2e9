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

Sample names are paths relative to the root, so images of different folders never clash. Every
problem found while listing a folder is reported at once; files that look like masks but match
no mask rule, and macOS ``._*`` files (skipped), are warned about.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from segdec.data.dataset import Sample
from segdec.data.images import IMAGE_SUFFIXES
from segdec.errors import DataError

logger = logging.getLogger(__name__)

LAYOUT = "images/ + optional masks/ (same stem) + optional labels.csv (image,label)"
LAYOUTS = {
    "images-masks": LAYOUT,
    "mvtec": "train/good/, test/<type>/, ground_truth/<type>/<stem>_mask.png (MVTec AD)",
    "class-folders": "good/ (or ok/, normal/) + one folder per defect type, optional masks/<type>/",
    "masks-beside": "images in nested folders, masks beside them (or in Label/ beside them) as "
                    "<stem>_mask|_GT|_label.*",
}
GOOD_FOLDERS = ("good", "ok", "normal")
MASK_STEM_ENDINGS = ("_mask", "_gt", "_label")
MASK_FOLDERS = ("label", "labels", "mask", "masks")
# A name word that says "mask" (img3-mask, img3 GT, mask.img3, img3_ground_truth): such a file
# that matches no mask rule would silently be read as one more image.
MASK_WORD = re.compile(r"(?:^|[^a-z0-9])(masks?|labels?|gt|ground[ _.-]?truth)(?:$|[^a-z0-9])")


def _image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files by suffix, without macOS ``._*`` resource forks (``_warn_skipped`` says so)."""
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("._"))


def _warn_skipped(root: Path) -> None:
    forks = sorted(p for p in root.rglob("._*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if forks:
        named = ", ".join(str(p) for p in forks[:5]) + (f" and {len(forks) - 5} more"
                                                        if len(forks) > 5 else "")
        logger.warning("skipped %d macOS resource-fork file(s) (._*, not images): %s; delete "
                       "them (dot_clean, or find . -name '._*' -delete)", len(forks), named)


def _warn_mask_lookalikes(samples: list[Sample], layout: str) -> None:
    for sample in samples:
        if MASK_WORD.search(Path(sample.image).stem.lower()):
            logger.warning("%s looks like a mask but matches no mask rule, so it is read as an "
                           "image (label %s); in the %s layout masks are %s: rename it",
                           sample.image, sample.label, layout, LAYOUTS[layout])


def _raise_problems(problems: list[str], root: Path) -> None:
    if problems:
        raise DataError(f"{len(problems)} problem(s) in {root}:\n"
                        + "\n".join(f"  {problem}" for problem in problems))


def _read_labels_csv(csv_path: Path, image_names: set[str], problems: list[str],
                     how_to_name: str) -> dict[str, tuple[int | None, str]]:
    """image name -> (label, "labels.csv row N") for error messages, N being the file's line;
    bad rows go to ``problems``, with ``how_to_name``: how a row names its image. A bad label is
    None, so its image is not reported a second time as unlabelled."""
    if not csv_path.is_file():
        return {}
    try:
        # Blank lines are kept, so a row's number is its line in the file.
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse {csv_path}: {err}") from None
    if not {"image", "label"} <= set(table.columns):
        raise DataError(f"{csv_path} has columns {list(table.columns)}; expected image,label")
    by_file_name: dict[str, list[str]] = {}
    for name in sorted(image_names):
        by_file_name.setdefault(Path(name).name, []).append(name)
    labels: dict[str, tuple[int | None, str]] = {}
    for line, (name, label) in enumerate(zip(table["image"], table["label"], strict=True), 2):
        where = f"{csv_path} row {line}"
        if not (name.strip() or label.strip()):
            continue
        if name not in image_names:
            meant = by_file_name.get(Path(name).name, [])
            problems.append(f"{where} names {name!r}, which is no image of the dataset; "
                            f"{how_to_name}" + (f" ({' or '.join(map(repr, meant[:3]))}?)"
                                                if meant else ""))
        elif name in labels:
            problems.append(f"{where} labels {name} a second time ({labels[name][1]})")
        elif label.strip() not in ("0", "1"):
            problems.append(f"{where}: label {label!r} must be 0 (good) or 1 (defective)")
            labels[name] = (None, where)
        else:
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
    if any(_mask_stem(p) for p in _image_files(root, recursive=True)):
        return "masks-beside"
    layouts = "\n".join(f"  {name}: {text}" for name, text in LAYOUTS.items())
    raise DataError(f"{root} is in none of the folder layouts segdec reads:\n{layouts}")


def read_folder(root: str | Path) -> list[Sample]:
    """Every image of ``root`` with its mask and/or label, in whichever layout it is.

    Problems are collected while listing and raised together, so one fix-and-rerun mends all.
    """
    root = Path(root)
    reader = {"images-masks": _read_images_masks, "mvtec": _read_mvtec,
              "class-folders": _read_class_folders, "masks-beside": _read_masks_beside}
    layout, problems = detect_layout(root), []
    _warn_skipped(root)
    samples = reader[layout](root, problems)
    _warn_mask_lookalikes(samples, layout)
    _raise_problems(problems, root)
    return samples


def _mask_stem(path: Path) -> str | None:
    """The image stem a mask file belongs to (``a_GT.png`` -> ``a``), or None for an image."""
    for ending in MASK_STEM_ENDINGS:
        if path.stem.lower().endswith(ending) and len(path.stem) > len(ending):
            return path.stem[: -len(ending)]
    return None


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _from_mask(problems: list[str], name: str, image: Path, mask: Path,
               **fields) -> Sample | None:
    """``Sample.from_mask``, with an unreadable mask or one of the wrong size as a problem."""
    try:
        return Sample.from_mask(name, image, mask, **fields)
    except DataError as err:
        problems.append(str(err))
        return None


def _labelled(image: Path, root: Path, mask: Path | None, label: int,
              problems: list[str]) -> Sample | None:
    """A sample whose label comes from its folder; a mask, where there is one, must agree."""
    if mask is None:
        return Sample(_name(image, root), str(image), label, source=str(image.parent))
    sample = _from_mask(problems, _name(image, root), image, mask)
    if sample is not None and sample.label != label:
        state = "has defect pixels" if sample.label else "is empty"
        problems.append(f"{image} is in a {'defect' if label else 'good'} folder but its mask "
                        f"{mask} {state}; move the image or fix the mask")
    return sample


def _read_mvtec(root: Path, problems: list[str]) -> list[Sample]:
    images = _image_files(root / "train", recursive=True) + _image_files(root / "test",
                                                                         recursive=True)
    if all(image.parent.name == "good" for image in images):
        raise DataError(f"{root / 'test'} holds no defect type folders; MVTec AD puts defective "
                        "images in test/<type>/")
    samples = []
    for image in images:
        kind = image.parent.name
        mask = root / "ground_truth" / kind / f"{image.stem}_mask.png"
        samples.append(_labelled(image, root, mask if mask.is_file() else None,
                                 int(kind != "good"), problems))
    return [s for s in samples if s is not None]


def _read_class_folders(root: Path, problems: list[str]) -> list[Sample]:
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "masks"):
        label = int(folder.name.lower() not in GOOD_FOLDERS)
        masks = {m.stem: m for m in _image_files(root / "masks" / folder.name)} if (
            root / "masks" / folder.name).is_dir() else {}
        for image in _image_files(folder, recursive=True):
            samples.append(_labelled(image, root, masks.get(image.stem), label, problems))
    return [s for s in samples if s is not None]


def _read_masks_beside(root: Path, problems: list[str]) -> list[Sample]:
    files = _image_files(root, recursive=True)
    images = [p for p in files if _mask_stem(p) is None]
    by_stem = {(p.parent, p.stem): p for p in images}
    masks: dict[Path, Path] = {}
    for mask in (p for p in files if _mask_stem(p) is not None):
        owner = by_stem.get((mask.parent, _mask_stem(mask)))
        if owner is None and mask.parent.name.lower() in MASK_FOLDERS:
            owner = by_stem.get((mask.parent.parent, _mask_stem(mask)))
        if owner is None:
            problems.append(f"mask {mask} has no image {_mask_stem(mask)}.* beside it (or, in a "
                            f"{mask.parent.name}/ folder, beside that folder)")
            continue
        masks[owner] = mask
    names = [_name(p, root) for p in images]
    labels = _read_labels_csv(root / "labels.csv", set(names), problems,
                              f"write the image's path relative to {root}, such as {names[0]!r}"
                              if names else f"{root} holds no images")
    samples = []
    for image, name in zip(images, names, strict=True):
        given = labels.get(name)
        if given is not None and given[0] is None:
            continue  # a bad label, reported
        # Images of one subfolder (a KolektorSDD item) stay in one split.
        group = "" if image.parent == root else _name(image.parent, root)
        if image in masks:
            sample = _from_mask(problems, name, image, masks[image], group=group)
            if sample is None:
                continue
            if given is not None and given[0] != sample.label:
                problems.append(f"{given[1]} labels {name} {given[0]} but its mask "
                                f"{masks[image]} disagrees; fix one of them")
        else:
            label = given[0] if given else 0
            sample = Sample(name, str(image), label, group=group,
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


def _read_images_masks(root: Path, problems: list[str]) -> list[Sample]:
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
            problems.append(f"mask {mask} has no image {mask.stem}.* in {image_dir}")
        elif mask.stem in masks:
            problems.append(f"{masks[mask.stem]} and {mask} are both masks of {mask.stem}")
        else:
            masks[mask.stem] = mask
    if masks:
        for stem, count in Counter(p.stem for p in images).items():
            if count > 1:
                same = " and ".join(str(p) for p in images if p.stem == stem)
                problems.append(f"{same} share the stem {stem}; masks are matched by stem, so "
                                "rename all but one")
    labels = _read_labels_csv(root / "labels.csv", {p.name for p in images}, problems,
                              f"write the file name of an image in {image_dir}, such as "
                              f"{images[0].name!r}")
    samples = []
    for image in images:
        mask, given = masks.get(image.stem), labels.get(image.name)
        if given is not None and given[0] is None:
            continue  # a bad label, reported
        if mask is not None:
            sample = _from_mask(problems, image.name, image, mask)
            if sample is None:
                continue
            if given is not None and given[0] != sample.label:
                state = "has defect pixels" if sample.label else "is empty"
                problems.append(f"{given[1]} labels {image.name} {given[0]} but its mask {mask} "
                                f"{state}; fix one of them")
        elif given is not None:
            sample = Sample(image.name, str(image), given[0], source=given[1])
        else:
            problems.append(f"{image} has neither a mask in {mask_dir} nor a row in "
                            f"{root / 'labels.csv'}; give it one")
            continue
        samples.append(sample)
    return samples
