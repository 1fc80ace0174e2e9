"""KolektorSDD2 (Božič et al., 2021) on disk: ``{train,test}/ID.png`` + ``ID_GT.png``.

Ground-truth images are colour; any non-zero pixel is a defect, and an image is defective when
its ground truth has one. The ``test`` folder is the fixed test set. Božič resizes to 232x640.
"""

from __future__ import annotations

from pathlib import Path

from segdec.data.dataset import Sample, split_folders
from segdec.errors import DataError

GT_SUFFIX = "_GT"


def read_ksdd2(root: str | Path) -> list[Sample]:
    """Every image of ``root/train`` and ``root/test`` with its ground truth."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"KolektorSDD2 folder {root} does not exist; point data_root at it")
    samples = []
    for folder, fixed_subset in split_folders(root, "train", "test"):
        for image in sorted(folder.glob("*.png")):
            if image.stem.endswith(GT_SUFFIX):
                continue
            mask = image.with_name(f"{image.stem}{GT_SUFFIX}.png")
            if not mask.is_file():
                raise DataError(f"{image} has no ground truth {mask.name}; restore it or remove "
                                "the image")
            samples.append(Sample.from_mask(f"{folder.name}/{image.name}", image, mask,
                                            fixed_subset=fixed_subset))
    if not samples:
        raise DataError(f"{root} holds no ID.png images in train/ or test/")
    return samples
