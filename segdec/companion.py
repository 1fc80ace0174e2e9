"""The companion: the numbered report notebooks executed in place from the committed run
records, so that a reader sees real tables, figures and their generated explanations on the
repository's pages without running anything (``make companion``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from segdec.batch import KERNEL
from segdec.paths import repository_root

# Executed with their own defaults, which point at the committed records.
NOTEBOOKS = ("notebooks/03_table5.ipynb", "notebooks/04_figure8.ipynb",
             "notebooks/06_ablation.ipynb")


def render_companion(notebooks: tuple[str, ...] = NOTEBOOKS, root: str | Path | None = None,
                     log: Callable[[str], None] = print) -> dict[str, float]:
    """Execute each notebook in place (written to a temporary file, then renamed, so a failed
    execution leaves the committed notebook as it was); returns the seconds each took."""
    import papermill

    root = Path(root or repository_root() or ".").resolve()
    seconds = {}
    for notebook in notebooks:
        path = root / notebook
        temporary = path.with_name(f".{path.stem}.executing.ipynb")
        started = time.perf_counter()
        try:
            papermill.execute_notebook(str(path), str(temporary), kernel_name=KERNEL,
                                       progress_bar=False, cwd=str(root))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        seconds[notebook] = time.perf_counter() - started
        log(f"{notebook}: executed in {seconds[notebook]:.0f} s")
    return seconds
