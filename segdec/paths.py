"""Where a notebook works from: in a checkout of this repository, its root, so that a notebook
opened from ``notebooks/`` in Jupyter finds ``figures/``, ``runs/`` and ``data/`` as batches do."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def repository_root() -> Path | None:
    """The checkout holding this package (a ``pyproject.toml`` naming segdec beside it), or None
    when segdec is installed from a wheel."""
    root = PACKAGE_ROOT.parent
    project = root / "pyproject.toml"
    if project.is_file() and 'name = "segdec"' in project.read_text():
        return root
    return None


def work_from_repository() -> Path:
    """Change to the repository root when the working directory lies inside the checkout (a
    notebook opened from ``notebooks/``); elsewhere (one's own project) leave it. Returns it."""
    root, here = repository_root(), Path.cwd().resolve()
    if root is not None and here != root and here.is_relative_to(root):
        os.chdir(root)
    return Path.cwd()
