"""Where things are found: the folder datasets live under (``data/``, or ``$SEGDEC_DATA``), and
where a notebook works from: in a checkout of this repository, its root, so that a notebook
opened from ``notebooks/`` in Jupyter finds ``figures/``, ``runs/`` and ``data/`` as batches do."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
# The folder the datasets live under: data/ (data/severstal, data/ksdd, ...), as the README's
# "Get the data" puts them, unless the environment names another (the tests and CI point it at
# the data shared beside the checkout). A data path in a configuration or batch file may start
# with it.
DATA_HOME_VARIABLE = "SEGDEC_DATA"
DEFAULT_DATA_HOME = "data"
DATA_HOME = "${" + DATA_HOME_VARIABLE + "}"


def data_home() -> str:
    """The folder the datasets live under: ``$SEGDEC_DATA``, else ``data``."""
    return os.environ.get(DATA_HOME_VARIABLE) or DEFAULT_DATA_HOME


def data_path(path: str) -> str:
    """``path`` with a leading ``${SEGDEC_DATA}`` (or ``$SEGDEC_DATA``) replaced by
    ``data_home()``, so that a run's config.yaml says which folder it read; other paths as
    given."""
    for prefix in (DATA_HOME, "$" + DATA_HOME_VARIABLE):
        if path == prefix or path.startswith(prefix + "/"):
            return data_home() + path[len(prefix):]
    return path


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
