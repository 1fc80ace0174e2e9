"""Image-free run records: the files of a finished run that a repository can hold and re-render
its tables from (configuration, split, history, metrics, predictions, runtime), copied safely."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from segdec.data.images import DataError

RECORD_FILES = ("config.yaml", "split.csv", "history.csv", "metrics.json", "predictions.csv",
                "runtime.json")


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
        existing = [(f, t) for f, t in zip(files, targets, strict=True) if t.is_file()]
        differing = [t for f, t in existing if not filecmp.cmp(f, t, shallow=False)]
        if differing:
            conflicts.append(f"{relative}: {', '.join(t.name for t in differing)}")
        elif len(existing) == len(files):
            present.append(relative.as_posix())
        else:
            plan.append((relative, files, targets))
    if conflicts:
        raise DataError(
            f"{destination} already holds other records of these runs: {'; '.join(conflicts)}; "
            "a finished run's record is never overwritten: move the old record away first")
    for _, files, targets in plan:
        for file, target in zip(files, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(file, temporary)
            temporary.replace(target)
    return [relative.as_posix() for relative, _, _ in plan], present
