"""Opening a log by name: the one place that knows every kind of store."""

from __future__ import annotations

from .jsonl import JsonlStore
from .store import Store


def open_store(target: str, *, read_only: bool = False) -> Store:
    """A store for ``target``.

    ``sqlite:///path.db`` is SQLite, ``postgresql://...`` a PostgreSQL server,
    anything else a path to a JSON Lines file.
    """
    if target.startswith("sqlite:///"):
        from .sqlite import SqliteStore

        return SqliteStore(target.removeprefix("sqlite:///"), read_only=read_only)
    if target.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg loads only for PostgreSQL logs.

        return PostgresStore(target, read_only=read_only)
    return JsonlStore(target, read_only=read_only)
