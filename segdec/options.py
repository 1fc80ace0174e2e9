"""Dataclass fields that carry their own command-line group, one line of help and choices, so
the run configuration, its CLI and its checks are written once."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(default: Any, group: str, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A field with its command-line group, one line of help and, for text, its choices."""
    return field(default=default, metadata={"group": group, "help": help, "choices": choices})
