"""Who writes in an output folder and what it wrote there: the manifest by which a command
replaces or removes only its own files, and the lock that keeps a second writer out.

A command records the files it writes in ``.segdec-<command>.json`` before it writes them, so an
interrupted command's files are its own too; ``--overwrite`` removes only what that manifest
lists, and a folder holding anything else the command would replace is refused. While it writes,
it holds ``.segdec-lock`` (its PID, host, command and start time): a second writer is refused at
once, naming the holder. A lock whose process has died on this host is stale and taken over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from segdec.errors import ConfigError, FolderBusyError
from segdec.io import write_json

logger = logging.getLogger(__name__)

LOCK = ".segdec-lock"


def writable_folder(folder: Path, what: str = "the results") -> None:
    """``folder`` is (or can be made) a folder this process may write in; checked before any
    work, so a mistyped path fails at once and not with a traceback after the last image."""
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{existing} is a file, not a folder; give a folder for {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write in {existing} ({_why_not_writable(existing)}); give a "
                          "folder you can write to")


def _why_not_writable(folder: Path) -> str:
    read_only = hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY
    return "read-only file system" if read_only else "permission denied"


def manifest_path(folder: Path, command: str) -> Path:
    return Path(folder) / f".segdec-{command}.json"


def recorded(folder: Path, command: str) -> set[str]:
    """The files (paths relative to ``folder``) that ``command`` recorded writing there; none
    where it has no manifest, or an unreadable one (which then vouches for nothing)."""
    path = manifest_path(folder, command)
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {str(name) for name in files} if isinstance(files, list) else set()


def record(folder: Path, command: str, files: Iterable[str]) -> None:
    """Write ``command``'s manifest in ``folder``: the files it is about to write."""
    write_json(manifest_path(folder, command), {"command": f"segdec {command}",
                                                "files": sorted(set(files))})


def files_under(folder: Path, names: Iterable[str]) -> list[str]:
    """The files that ``names`` (files or folders of ``folder``) hold, relative to ``folder``."""
    found = []
    for name in names:
        path = folder / name
        if path.is_dir():
            found += sorted(p.relative_to(folder).as_posix() for p in path.rglob("*")
                            if not p.is_dir())
        elif path.exists() or path.is_symlink():
            found.append(name)
    return found


def remove_recorded(folder: Path, command: str, files: Iterable[str]) -> None:
    """Delete ``files`` (which ``command`` recorded), then the folders they leave empty."""
    emptied = set()
    for name in files:
        (folder / name).unlink(missing_ok=True)
        emptied.update(parent for parent in (folder / name).parents
                       if parent != folder and parent.is_relative_to(folder))
    for parent in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    manifest_path(folder, command).unlink(missing_ok=True)


def _holder(path: Path) -> dict:
    """The lock file's record; an empty or damaged one still holds the folder."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class FolderLock:
    """``with FolderLock(folder, "train"):`` the one writer of ``folder`` (made if missing, and
    removed again on exit if it is still empty)."""

    def __init__(self, folder: str | Path, command: str, what: str = "the results") -> None:
        self.folder, self.command, self.what = Path(folder), command, what
        self.path = self.folder / LOCK
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "command": f"segdec {command}",
                       "since": datetime.now().astimezone().isoformat(timespec="seconds")}
        self.created: list[Path] = []

    def __enter__(self) -> FolderLock:
        writable_folder(self.folder, self.what)
        self.created = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self._take():
            holder = _holder(self.path)
            if not self._stale(holder):
                self._remove_created()
                raise FolderBusyError(self._busy(holder))
            logger.warning("%s: taking over the lock of %s (PID %s on %s, since %s), which is "
                           "no longer running", self.folder, holder.get("command"),
                           holder.get("pid"), holder.get("host"), holder.get("since"))
            self.path.unlink(missing_ok=True)
            if not self._take():  # another process took it over first
                self._remove_created()
                raise FolderBusyError(self._busy(_holder(self.path)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if _holder(self.path).get("pid") == self.record["pid"]:
            self.path.unlink(missing_ok=True)
        self._remove_created()

    def _take(self) -> bool:
        """Create the lock file with this process's record in one step (a hard link of a
        complete file: no other process ever reads it half-written); False if it exists."""
        fd, tmp = tempfile.mkstemp(prefix=f"{LOCK}.", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.record, handle)
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _stale(self, holder: dict) -> bool:
        """A lock of a process of this host that no longer runs (killed, crashed)."""
        pid = holder.get("pid")
        return (holder.get("host") == self.record["host"] and isinstance(pid, int)
                and pid != os.getpid() and not _running(pid))

    def _busy(self, holder: dict) -> str:
        who = (f"{holder.get('command', 'segdec')} (PID {holder.get('pid')} on "
               f"{holder.get('host')}, since {holder.get('since')})" if holder
               else "another segdec process")
        return (f"{self.folder} is being written by {who}; one writer per folder: wait for it "
                f"to end or choose another folder (if that process is gone, delete {self.path})")

    def _remove_created(self) -> None:
        """The folders this lock made, where nothing was written in them."""
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                break
