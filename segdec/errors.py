"""The errors segdec raises for bad input, all under one base ``SegdecError``: what the user gave
(a file, a folder, a setting) cannot be used, and the message says which and what to do. The CLI
prints these as one line; any other exception is a bug and keeps its traceback."""

from __future__ import annotations


class SegdecError(Exception):
    """Bad input; the message names the file, folder or setting and what to do."""


class ConfigError(SegdecError, ValueError):
    """A run configuration, batch file or option value that cannot be used (a ValueError too, so
    callers that caught ValueError before this class existed still catch it)."""


class CheckpointError(SegdecError, ValueError):
    """A checkpoint that cannot be read, or that does not belong to the run it is used with."""


class OutputExistsError(SegdecError, FileExistsError):
    """An output folder that already holds results, which are never overwritten unasked."""


class MissingExtraError(SegdecError, ImportError):
    """An optional dependency that the asked-for feature needs is not installed."""
