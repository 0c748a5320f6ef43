"""The PostgreSQL store: one log on a server that a whole team shares.

Every append runs in one transaction that first takes a transaction-level
advisory lock, the same for every writer of the log. Only then does it read
the last entry and choose the next position, and it keeps the lock until it
commits. So positions are given out in commit order: a reader that has seen
position N and asks for what follows can never be overtaken by an entry
with a lower position committing later (the way event stores that take a
sequence value before committing lose events). An advisory lock needs no
table privilege, so the day-to-day role can hold INSERT and SELECT only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors

from .envelope import GENESIS
from .errors import InputError, LogError, StoreError
from .sql import FIGURES, TABLE, SqlStore
from .store import Clock, utc_now

# pg_advisory_xact_lock key shared by every writer: the bytes of "tolllog".
LOCK_KEY = 0x746F6C6C6C6F67

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    position    BIGINT PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    type        TEXT NOT NULL,
    subject     TEXT,
    hash        TEXT NOT NULL UNIQUE,
    prev_hash   TEXT NOT NULL,
    line        BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {TABLE} (subject);
CREATE TABLE IF NOT EXISTS {FIGURES} (position BIGINT PRIMARY KEY, figure TEXT);
CREATE INDEX IF NOT EXISTS {FIGURES}_figure ON {FIGURES} (figure);

CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the log is append-only: % of entries is refused', TG_OP;
END $$;

CREATE OR REPLACE FUNCTION {TABLE}_extends_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_position BIGINT;
    last_hash TEXT;
BEGIN
    SELECT position, hash INTO last_position, last_hash FROM {TABLE} ORDER BY position DESC LIMIT 1;
    IF NEW.position <> COALESCE(last_position + 1, 0) OR NEW.prev_hash <> COALESCE(last_hash, '{GENESIS}') THEN
        RAISE EXCEPTION 'an entry must extend the chain: next position, linked to the last hash';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE};
CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse();
DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};
CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse();
DROP TRIGGER IF EXISTS {TABLE}_chain ON {TABLE};
CREATE TRIGGER {TABLE}_chain BEFORE INSERT ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_extends_chain();
"""


# -- checkpoints the server keeps (issue 13) -------------------------------------------------
# Their own table, append-only like the entries. Names are qualified with the schema the log's
# table lives in, found when the table is made, so that no search_path can redirect them.
CHECKPOINTS = "timeline_checkpoints"
CHECKPOINTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    number      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line        BYTEA NOT NULL
);
CREATE OR REPLACE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'checkpoints are append-only: % of checkpoints is refused', TG_OP;
END $$;
DROP TRIGGER IF EXISTS timeline_checkpoints_no_update ON {table};
CREATE TRIGGER timeline_checkpoints_no_update BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {refuse}();
DROP TRIGGER IF EXISTS timeline_checkpoints_no_truncate ON {table};
CREATE TRIGGER timeline_checkpoints_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {refuse}();
"""


def _create_checkpoints(connection: psycopg.Connection) -> None:
    """Make the checkpoints table beside the log's table (in the same schema)."""
    from psycopg import sql

    schema = connection.execute("SELECT current_schema()").fetchone()[0]
    names = {
        "table": sql.Identifier(schema, CHECKPOINTS).as_string(connection),
        "refuse": sql.Identifier(schema, CHECKPOINTS + "_refuse").as_string(connection),
    }
    connection.execute(CHECKPOINTS_SCHEMA.format(**names))


# -- end of checkpoints ---------------------------------------------------------------------


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresStore(SqlStore):
    placeholder = "%s"
    database_errors = (psycopg.Error,)

    def __init__(self, url: str, *, read_only: bool = False, clock: Clock = utc_now) -> None:
        self.url = url
        self.location = _redacted(url)
        self.read_only = read_only
        self.clock = clock
        self._open: psycopg.Connection | None = None

    def _connection(self, *, write: bool) -> psycopg.Connection | None:
        if self._open is None:
            try:
                self._open = psycopg.connect(self.url, autocommit=True)
            except psycopg.Error as error:
                raise StoreError(f"cannot connect to {self.location}: {_first_line(error)}") from None
        connection = self._open
        try:
            exists = connection.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is not None
            if not exists and not write:
                return None
            # A log made before the figures table gets it from its next writer.
            if write and connection.execute("SELECT to_regclass(%s)", (FIGURES,)).fetchone()[0] is None:
                with connection.transaction():
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                    connection.execute(SCHEMA)
                    _create_checkpoints(connection)
        except psycopg.Error as error:
            raise self._failure(error) from None
        return connection

    def exists(self) -> bool:
        """Whether the database holds a log; a server that cannot be reached holds none to read."""
        if self._open is None:
            try:
                self._open = psycopg.connect(self.url, autocommit=True)
            except psycopg.Error as error:
                raise InputError(f"no log at {self.location}: cannot connect ({_first_line(error)})") from None
        return super().exists()

    @contextmanager
    def _write_transaction(self, connection: psycopg.Connection) -> Iterator[psycopg.Cursor]:
        with connection.transaction(), connection.cursor() as cursor:
            # Held until commit: positions are chosen and committed one writer at a time.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            yield cursor

    def _insert(self, cursor: psycopg.Cursor, rows: list[tuple]) -> None:
        with cursor.copy(
            f"COPY {TABLE} (position, recorded_at, type, subject, hash, prev_hash, line) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)

    def _select_lines(self, connection: psycopg.Connection, start: int) -> Iterator[bytes]:
        # A server-side cursor streams the log instead of loading it whole.
        with connection.transaction(), connection.cursor(name="timeline_lines") as cursor:
            cursor.itersize = 1000
            cursor.execute(f"SELECT line FROM {TABLE} WHERE position >= %s ORDER BY position", (start,))
            for (line,) in cursor:
                yield bytes(line)

    def _failure(self, error: Exception) -> Exception:
        message = _first_line(error)
        if isinstance(error, psycopg.errors.RaiseException):
            return LogError(f"{self.location}: {message}")
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            return StoreError(f"{self.location}: permission denied ({message})")
        if isinstance(error, psycopg.errors.DiskFull):
            return StoreError(f"cannot write to {self.location}: the disk is full; nothing was appended")
        if isinstance(error, psycopg.OperationalError):
            return StoreError(f"lost the connection to {self.location}: {message}")
        return StoreError(f"{self.location}: {message}")

    def kept_checkpoints(self) -> list[bytes]:
        connection = self._connection(write=False)
        try:
            if connection is None or connection.execute("SELECT to_regclass(%s)", (CHECKPOINTS,)).fetchone()[0] is None:
                return []
            rows = connection.execute(f"SELECT line FROM {CHECKPOINTS} ORDER BY number").fetchall()
        except psycopg.Error as error:
            raise self._failure(error) from None
        return [bytes(line) for (line,) in rows]

    def keep_checkpoint(self, line: bytes) -> bool:
        connection = self._connection(write=True)
        try:
            with connection.transaction():
                if connection.execute("SELECT to_regclass(%s)", (CHECKPOINTS,)).fetchone()[0] is None:
                    # A log made before checkpoints existed: add their table now (needs CREATE).
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                    _create_checkpoints(connection)
                connection.execute(f"INSERT INTO {CHECKPOINTS} (line) VALUES (%s)", (line,))
        except psycopg.Error as error:
            raise self._failure(error) from None
        return True

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
