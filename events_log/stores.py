"""Opening a log by name: the one place that knows every kind of store."""

from __future__ import annotations

from .errors import InputError
from .jsonl import JsonlStore
from .store import Store


def open_store(target: str, *, read_only: bool = False) -> Store:
    """A store for ``target``: a file path is a JSON Lines log."""
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise InputError(f"unknown kind of log {scheme!r}; give a file path", "--log")
    return JsonlStore(target, read_only=read_only)
