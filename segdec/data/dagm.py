"""DAGM 2007 on disk: ``ClassN/{Train,Test}/NNNN.PNG`` with ``Label/NNNN_label.PNG``.

Labels come from each split folder's ``Label/Labels.txt``: a first line holding a count, then one
tab-separated row per image, ``ID  defect(0/1)  image  0  label_image`` (CRLF line endings in
the original). The ``Test`` folder is the fixed test set when both folders exist; a copy with only
one of them is split like any other dataset (seeded, stratified).
"""

from __future__ import annotations

from pathlib import Path

from segdec.data.dataset import Sample, split_folders
from segdec.errors import DataError


def _read_split_labels(folder: Path, fixed_subset: str) -> list[Sample]:
    """The samples of one split folder (Train or Test), as its Label/Labels.txt lists them."""
    labels_path = folder / "Label" / "Labels.txt"
    if not labels_path.is_file():
        raise DataError(f"{labels_path} does not exist; DAGM keeps each split's labels there")
    lines = labels_path.read_text().splitlines()
    first = 1 if lines and lines[0].strip().isdigit() else 0  # the count line
    samples, named = [], set()
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        where = f"{labels_path} line {number}"
        if len(fields) < 3 or fields[1] not in ("0", "1"):
            raise DataError(f"{where}: expected 'ID<TAB>0|1<TAB>image<TAB>0<TAB>label image', "
                            f"got {line!r}")
        image = folder / fields[2]
        if not image.is_file():
            raise DataError(f"{where} names {fields[2]}, which is not in {folder}; "
                            "restore the image or drop the row")
        named.add(image.name)
        name = f"{folder.name}/{image.name}"
        if fields[1] == "0":
            samples.append(Sample(name, str(image), 0, source=where, fixed_subset=fixed_subset))
            continue
        mask = folder / "Label" / (fields[4] if len(fields) > 4 else "")
        if not mask.is_file():
            raise DataError(f"{where} marks {fields[2]} defective but its mask {mask} is missing")
        sample = Sample.from_mask(name, image, mask, fixed_subset=fixed_subset)
        if not sample.label:
            raise DataError(f"{where} marks {fields[2]} defective but its mask {mask} is empty")
        samples.append(sample)
    unlabelled = sorted(p.name for p in folder.iterdir()
                        if p.suffix.lower() == ".png" and p.name not in named)
    if unlabelled:
        raise DataError(f"{labels_path} has no row for {unlabelled[0]} ({len(unlabelled)} such "
                        "images); add rows or remove the images")
    return samples


def read_dagm(root: str | Path, dataset_class: int = 1) -> list[Sample]:
    """The images of DAGM class ``dataset_class`` under ``root``."""
    class_dir = Path(root) / f"Class{dataset_class}"
    if not class_dir.is_dir():
        found = sorted(p.name for p in Path(root).glob("Class*")) if Path(root).is_dir() else []
        raise DataError(f"{class_dir} does not exist (found: {', '.join(found) or 'nothing'}); "
                        "check data_root and dataset_class")
    samples = []
    for folder, fixed_subset in split_folders(class_dir, "Train", "Test"):
        samples += _read_split_labels(folder, fixed_subset)
    return samples
