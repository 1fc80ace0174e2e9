"""Atomic file writes: a run directory never holds a half-written checkpoint, CSV or JSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.
    A failure to write (a full disk, a read-only folder) names ``path``, not the temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _naming(err, path) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would give
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if err.errno is None or err.filename not in (None, tmp):
            raise
        raise _naming(err, path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` about ``path`` (the file being written) rather than its temporary."""
    return type(err)(err.errno, err.strerror, str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
