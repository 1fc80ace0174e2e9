"""Image-free run records: the files of a finished run that a repository can hold and re-render
its tables and figures from (configuration, split, history, metrics, predictions, runtime, the
time estimated before training against the time taken, and the saved segmentation maps without
the images' pixels), copied safely."""

from __future__ import annotations

import filecmp
import io
import shutil
from pathlib import Path

import numpy as np

from segdec.errors import DataError
from segdec.io import atomic_write

RECORD_FILES = ("config.yaml", "split.csv", "history.csv", "metrics.json", "predictions.csv",
                "runtime.json", "timing.json")
# segmentation_maps.npz holds test images and masks, which a dataset's licence may keep out of a
# repository; this record keeps the maps, scores and names, and Figure 9 reads the images again.
MAPS_RECORD = "maps_without_pixels.npz"
PIXEL_FREE_KEYS = ("names", "seg_maps", "scores", "labels")


def pixel_free_maps(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a run's segmentation_maps.npz that hold no pixel of an image or mask."""
    with np.load(path) as saved:
        return {key: saved[key] for key in PIXEL_FREE_KEYS}


def _same_maps(a: dict[str, np.ndarray], path: Path) -> bool:
    with np.load(path) as b:
        return set(b.files) == set(a) and all(np.array_equal(a[k], b[k]) for k in a)


def _write_maps(path: Path, maps: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def copy_records(source: str | Path, destination: str | Path) -> tuple[list[str], list[str]]:
    """Copy every finished run's record below ``source`` to the same place below
    ``destination``; returns (copied, already there) run paths. A destination record that
    differs from its run is refused before anything is copied, naming the files: a committed
    result is never overwritten by another run's."""
    source, destination = Path(source), Path(destination)
    runs = sorted(path.parent for path in source.rglob("metrics.json"))
    plan, present, conflicts = [], [], []
    for run in runs:
        relative = run.relative_to(source)
        files = [run / name for name in RECORD_FILES if (run / name).is_file()]
        targets = [destination / relative / f.name for f in files]
        maps = pixel_free_maps(run / "segmentation_maps.npz") if (
            run / "segmentation_maps.npz").is_file() else None
        maps_target = destination / relative / MAPS_RECORD
        existing = [(f, t) for f, t in zip(files, targets, strict=True) if t.is_file()]
        differing = [t.name for f, t in existing if not filecmp.cmp(f, t, shallow=False)]
        if maps is not None and maps_target.is_file() and not _same_maps(maps, maps_target):
            differing.append(MAPS_RECORD)
        complete = len(existing) == len(files) and (maps is None or maps_target.is_file())
        if differing:
            conflicts.append(f"{relative}: {', '.join(differing)}")
        elif complete:
            present.append(relative.as_posix())
        else:
            plan.append((relative, files, targets, maps, maps_target))
    if conflicts:
        raise DataError(
            f"{destination} already holds other records of these runs: {'; '.join(conflicts)}; "
            "a finished run's record is never overwritten: move the old record away first")
    for _, files, targets, maps, maps_target in plan:
        for file, target in zip(files, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(file, temporary)
            temporary.replace(target)
        if maps is not None:
            _write_maps(maps_target, maps)
    return [relative.as_posix() for relative, *_ in plan], present
