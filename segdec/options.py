"""Dataclass fields that carry their own command-line group, one line of help, choices and a
parser of text, so the run configuration, its CLI and its checks are written once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any


def option(default: Any, group: str, help: str, choices: tuple[str, ...] | None = None,
           parse: Callable[[str], Any] | None = None) -> Any:
    """A field with its command-line group, one line of help, for text its choices and, where
    text other than the plain value is accepted (``20m`` for seconds), its ``parse``."""
    return field(default=default, metadata={"group": group, "help": help, "choices": choices,
                                            "parse": parse})
