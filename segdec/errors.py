"""The errors segdec raises for bad input, all under one base ``SegdecError``: what the user gave
(a file, a folder, a setting) cannot be used, and the message says which and what to do. The CLI
prints these, and the operating system's failures (``os_error_line``), as one line; any other
exception is a bug and keeps its traceback."""

from __future__ import annotations

import errno
import os


class SegdecError(Exception):
    """Bad input; the message names the file, folder or setting and what to do."""


class DataError(SegdecError, ValueError):
    """Bad input data (an image, a mask, a CSV row, a dataset folder); the message names the file
    or row and says what to do."""


class ConfigError(SegdecError, ValueError):
    """A run configuration, batch file or option value that cannot be used (a ValueError too, so
    callers that caught ValueError before this class existed still catch it)."""


class CheckpointError(SegdecError, ValueError):
    """A checkpoint that cannot be read, or that does not belong to the run it is used with."""


class OutputExistsError(SegdecError, FileExistsError):
    """An output folder that already holds results, which are never overwritten unasked."""


class MissingExtraError(SegdecError, ImportError):
    """An optional dependency that the asked-for feature needs is not installed."""


class FolderBusyError(SegdecError):
    """An output folder that another segdec process is writing in (it holds the folder's lock)."""


class Interrupted(SegdecError):
    """Ctrl-C: the message says where the work stopped and how to continue (exit code 130)."""


# What to do about the failures of the operating system a user meets: their paths and disks.
OS_REMEDIES = {
    errno.ENOSPC: "the disk is full: free space on it, or choose a folder on another disk, then "
                  "run again",
    errno.EDQUOT: "the disk quota is used up: free space, or choose a folder elsewhere, then run "
                  "again",
    errno.EROFS: "the file system is read-only: choose a folder you can write to",
    errno.EACCES: "permission denied: choose a folder you can write to, or change its permissions",
    errno.EPERM: "not permitted: choose a folder you can write to, or change its permissions",
    errno.ENOTDIR: "a part of this path is a file, not a folder: give a path through folders",
    errno.EEXIST: "a file of that name is in the way: give another path, or move the file",
    errno.EISDIR: "it is a folder where a file is needed: give a file's path",
    errno.ENOENT: "it does not exist: check the path",
    errno.EIO: "the disk could not be written or read (a full or failing disk): free space on it, "
               "or choose another disk, then run again",
}


def os_error_line(err: OSError) -> str:
    """An operating-system failure (a full disk, a read-only folder, a file in the way) as one
    line naming the path and what to do; segdec's own ``FileNotFoundError("...")`` messages,
    which carry no error number, as they are."""
    if err.errno is None:
        return str(err)
    where = f"{err.filename}: " if err.filename else ""
    remedy = OS_REMEDIES.get(err.errno, "check the path and the disk, then run again")
    return f"{where}{err.strerror or os.strerror(err.errno)}; {remedy}"
