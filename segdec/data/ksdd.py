"""KolektorSDD (Tabernik et al., 2019) on disk: ``kosNN/PartK.jpg`` + ``PartK_label.bmp|png``.

Fifty items (``kosNN``) of about eight images each; an image is defective when its mask has a
defect pixel. Images of one item are near-duplicates, so items are kept whole: the 3 folds are
the sorted items taken in turn (fold 0: kos01, kos04, ...), and the configured fold is the
fixed test set. Božič resizes to 512x1408 (W x H) and dilates the masks with a 7x7 kernel.
"""

from __future__ import annotations

from pathlib import Path

from segdec.data.dataset import Sample
from segdec.data.images import IMAGE_SUFFIXES
from segdec.errors import DataError

N_FOLDS = 3
MASK_EXTENSIONS = (".bmp", ".png")


def ksdd_folds(items: list[str]) -> list[list[str]]:
    """The items of each fold: sorted items dealt out in turn, the same for every seed."""
    ordered = sorted(items)
    return [ordered[fold::N_FOLDS] for fold in range(N_FOLDS)]


def _mask_of(image: Path) -> Path:
    for extension in MASK_EXTENSIONS:
        mask = image.with_name(f"{image.stem}_label{extension}")
        if mask.is_file():
            return mask
    raise DataError(
        f"{image} has no mask {image.stem}_label.bmp or .png; KolektorSDD gives every image one "
        "(all zero when defect-free): restore it or remove the image"
    )


def read_ksdd(root: str | Path, fold: int = 0) -> list[Sample]:
    """Every ``PartK`` image of every item under ``root``; fold ``fold`` of 3 is the test set."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"KolektorSDD folder {root} does not exist; point data_root at it")
    if fold not in range(N_FOLDS):
        raise DataError(f"fold={fold}, but KolektorSDD has folds 0, 1 and 2")
    items = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not items:
        raise DataError(f"{root} holds no item folders (kos01, kos02, ...); is it KolektorSDD?")
    test_items = set(ksdd_folds(items)[fold])
    samples = []
    for item in items:
        images = sorted(
            p for p in (root / item).iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_label")
        )
        samples += [
            Sample.from_mask(f"{item}/{image.name}", image, _mask_of(image), group=item,
                             fixed_subset="test" if item in test_items else "train")
            for image in images
        ]
    if not samples:
        raise DataError(f"{root} holds no images under its item folders")
    return samples
