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

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict

from .envelope import GENESIS
from .errors import InputError, LogError, StoreError, shown
from .projection import Read
from .sql import DESCRIPTION_ROWS, FIGURES, PROJECTIONS, TABLE, SqlStore
from .store import Clock, utc_now
from .stores import redact_url, url_secrets

# pg_advisory_xact_lock key shared by every writer: the bytes of "tolllog".
LOCK_KEY = 0x746F6C6C6C6F67
# How long a writer waits for that lock when TIMELINE_LOCK_TIMEOUT does not say.
LOCK_TIMEOUT = 300.0
# The types of the entries' columns an append copies, in order (``_insert``).
_COPIED_TYPES = ["int8", "text", "text", "text", "text", "text", "bytea"]
# Marks the guards installed on a table (a comment on it), so an owner's writer can
# bring an older table's functions and triggers up to date.
GUARDS = "timeline guards 3"

# The length of the `,"hash":"<64 hex>"}` suffix that ends every stored line.
_SUFFIX_LENGTH = 75

# Each table of the store is one function of the (quoted) schema name returning its DDL:
# a table, its functions and triggers. Every name in them is schema-qualified and every
# function pins its search_path, with pg_temp last: a caller's temporary table or
# function can never stand in for ours (PostgreSQL's advice for SECURITY DEFINER
# functions, which trigger functions need just as much: they run with the caller's path).


def _entries_ddl(schema: str) -> str:
    t = f"{schema}.{TABLE}"
    path = f"SET search_path = pg_catalog, {schema}, pg_temp"
    return rf"""
CREATE TABLE IF NOT EXISTS {t} (
    position    BIGINT PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    type        TEXT NOT NULL,
    subject     TEXT,
    hash        TEXT NOT NULL UNIQUE,
    prev_hash   TEXT NOT NULL,
    line        BYTEA NOT NULL,
    batch_end   BIGINT
);
ALTER TABLE {t} ADD COLUMN IF NOT EXISTS batch_end BIGINT;
CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {t} (subject);
CREATE INDEX IF NOT EXISTS {TABLE}_described ON {t} (position) WHERE {DESCRIPTION_ROWS};

CREATE OR REPLACE FUNCTION {t}_refuse() RETURNS trigger LANGUAGE plpgsql {path} AS $$
BEGIN
    RAISE EXCEPTION 'the log is append-only: % of entries is refused', TG_OP;
END $$;

-- The checks of `timeline verify` for one entry, before it is stored: the line's
-- SHA-256 and its hash, the envelope against the columns, the chain, the time and
-- the batch. What is refused here could never be verified, so no role can wedge the log.
CREATE OR REPLACE FUNCTION {t}_extends_chain() RETURNS trigger LANGUAGE plpgsql {path} AS $$
DECLARE
    last {t}%ROWTYPE;
    last_batch_end BIGINT;
    body_length INTEGER := length(NEW.line) - {_SUFFIX_LENGTH};
    envelope RECORD;
BEGIN
    SELECT * INTO last FROM {t} ORDER BY position DESC LIMIT 1;
    IF NEW.position IS DISTINCT FROM COALESCE(last.position + 1, 0)
        OR NEW.prev_hash IS DISTINCT FROM COALESCE(last.hash, '{GENESIS}') THEN
        RAISE EXCEPTION 'position %: an entry must extend the chain: next position, linked to the last hash',
            NEW.position;
    END IF;
    IF body_length < 2 OR substring(NEW.line FROM body_length + 1)
        IS DISTINCT FROM pg_catalog.convert_to(',"hash":"' || NEW.hash || '"}}', 'UTF8') THEN
        RAISE EXCEPTION 'position %: the line does not end in the hash of its hash column', NEW.position;
    END IF;
    IF pg_catalog.encode(pg_catalog.sha256(substring(NEW.line FOR body_length) || '\x7d'::bytea), 'hex')
        IS DISTINCT FROM NEW.hash THEN
        RAISE EXCEPTION 'position %: the SHA-256 of the line does not match its hash column', NEW.position;
    END IF;
    BEGIN
        -- One parse of the line; each field stays JSON, so a number is told from a string.
        SELECT * INTO envelope FROM json_to_record(pg_catalog.convert_from(NEW.line, 'UTF8')::json) AS (
            position json, recorded_at json, type json, schema json, batch_end json,
            prev_hash json, event json, hash json);
        PERFORM NEW.recorded_at::timestamptz;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'position %: not a log entry (%)', NEW.position, SQLERRM;
    END;
    IF json_typeof(envelope.position) IS DISTINCT FROM 'number'
        OR envelope.position::text IS DISTINCT FROM NEW.position::text
        OR json_typeof(envelope.prev_hash) IS DISTINCT FROM 'string'
        OR envelope.prev_hash #>> '{{}}' IS DISTINCT FROM NEW.prev_hash
        OR json_typeof(envelope.hash) IS DISTINCT FROM 'string'
        OR envelope.hash #>> '{{}}' IS DISTINCT FROM NEW.hash
        OR json_typeof(envelope.recorded_at) IS DISTINCT FROM 'string'
        OR envelope.recorded_at #>> '{{}}' IS DISTINCT FROM NEW.recorded_at
        OR json_typeof(envelope.type) IS DISTINCT FROM 'string'
        OR envelope.type #>> '{{}}' IS DISTINCT FROM NEW.type
        OR envelope.schema::text !~ '^[0-9]{{1,9}}$'
        OR envelope.batch_end::text !~ '^[0-9]{{1,18}}$'
        OR json_typeof(envelope.event) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'position %: the entry''s envelope does not agree with its columns', NEW.position;
    END IF;
    -- Fixed width, UTC, 'Z': byte order is time order.
    IF NEW.recorded_at !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}\.[0-9]{{6}}Z$' THEN
        RAISE EXCEPTION 'position %: recorded_at is not a UTC time with microseconds', NEW.position;
    END IF;
    IF NEW.recorded_at COLLATE "C" < last.recorded_at COLLATE "C" THEN
        RAISE EXCEPTION 'position %: recorded_at goes back in time', NEW.position;
    END IF;
    -- Kept in a column (whatever the writer sent), so the next entry and the commit check need not parse.
    NEW.batch_end := envelope.batch_end::text::bigint;
    last_batch_end := COALESCE(
        last.batch_end, (pg_catalog.convert_from(last.line, 'UTF8')::json->>'batch_end')::bigint);
    IF NEW.batch_end < NEW.position OR (last.position < last_batch_end AND NEW.batch_end <> last_batch_end) THEN
        RAISE EXCEPTION 'position %: batch_end % breaks its batch', NEW.position, NEW.batch_end;
    END IF;
    RETURN NEW;
END $$;

-- At commit: the last entry closes its batch, so no batch is left open for the next writer.
CREATE OR REPLACE FUNCTION {t}_batch_whole() RETURNS trigger LANGUAGE plpgsql {path} AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM {t} WHERE position = NEW.position + 1) THEN
        RAISE EXCEPTION 'position %: the batch does not end here, and nothing follows: a batch lands whole',
            NEW.position;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {TABLE}_no_update ON {t};
CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE OR DELETE ON {t}
    FOR EACH ROW EXECUTE FUNCTION {t}_refuse();
DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {t};
CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION {t}_refuse();
DROP TRIGGER IF EXISTS {TABLE}_chain ON {t};
CREATE TRIGGER {TABLE}_chain BEFORE INSERT ON {t}
    FOR EACH ROW EXECUTE FUNCTION {t}_extends_chain();
DROP TRIGGER IF EXISTS {TABLE}_batch_whole ON {t};
CREATE CONSTRAINT TRIGGER {TABLE}_batch_whole AFTER INSERT ON {t} DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.batch_end <> NEW.position) EXECUTE FUNCTION {t}_batch_whole();
COMMENT ON TABLE {t} IS '{GUARDS}';
"""


# -- checkpoints the server keeps (issue 13) -------------------------------------------------
# Their own table, append-only like the entries, in the schema the log's table lives in.
CHECKPOINTS = "timeline_checkpoints"


def _checkpoints_ddl(schema: str) -> str:
    t = f"{schema}.{CHECKPOINTS}"
    return f"""
CREATE TABLE IF NOT EXISTS {t} (
    number      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line        BYTEA NOT NULL
);
CREATE OR REPLACE FUNCTION {t}_refuse() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog, {schema}, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'checkpoints are append-only: % of checkpoints is refused', TG_OP;
END $$;
DROP TRIGGER IF EXISTS {CHECKPOINTS}_no_update ON {t};
CREATE TRIGGER {CHECKPOINTS}_no_update BEFORE UPDATE OR DELETE ON {t}
    FOR EACH ROW EXECUTE FUNCTION {t}_refuse();
DROP TRIGGER IF EXISTS {CHECKPOINTS}_no_truncate ON {t};
CREATE TRIGGER {CHECKPOINTS}_no_truncate BEFORE TRUNCATE ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION {t}_refuse();
"""


def _create_checkpoints(connection: psycopg.Connection) -> None:
    """Make the checkpoints table beside the log's table (in the same schema)."""
    schema = connection.execute("SELECT current_schema()").fetchone()[0]
    connection.execute(_checkpoints_ddl(_quoted(schema)))


# -- end of checkpoints ---------------------------------------------------------------------


def _copy(cursor: psycopg.Cursor, target: str, types: list[str], rows: list[tuple]) -> None:
    """Rows into ``target`` (a table and its columns) by one COPY, in binary: a line goes as its bytes, not as
    hex text twice its length for the server to parse."""
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _figures_ddl(schema: str) -> str:
    """The figures table (see ``sql.FIGURES``): derived data, kept in the same transactions as the entries."""
    t = f"{schema}.{FIGURES}"
    return f"""
CREATE TABLE IF NOT EXISTS {t} (position BIGINT PRIMARY KEY, figure TEXT);
CREATE INDEX IF NOT EXISTS {FIGURES}_figure ON {t} (figure);
"""


def _projections_ddl(schema: str) -> str:
    """The blocks of the projections the store keeps (see ``sql.PROJECTIONS``): derived data, only added to."""
    t = f"{schema}.{PROJECTIONS}"
    return f"""
CREATE TABLE IF NOT EXISTS {t} (
    name        TEXT NOT NULL,
    first_entry BIGINT NOT NULL,
    entries     BIGINT NOT NULL,
    last_hash   TEXT NOT NULL,
    body        BYTEA NOT NULL,
    PRIMARY KEY (name, first_entry, entries, last_hash)
);
-- Stored whole, not compressed: a kept replay is read a range at a time (one incident of it), and a
-- compressed value would be inflated from its start for every range.
ALTER TABLE {t} ALTER COLUMN body SET STORAGE EXTERNAL;
"""


# The store's tables, in the order they are created; a new table is one more function here.
TABLES = (_entries_ddl, _checkpoints_ddl, _figures_ddl, _projections_ddl)


def _quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


def schema_sql(schema: str) -> str:
    """The DDL of every table of the store in ``schema`` (an unquoted name)."""
    return "\n".join(ddl(_quoted(schema)) for ddl in TABLES)


class PostgresStore(SqlStore):
    placeholder = "%s"
    database_errors = (psycopg.Error,)
    # The chain trigger checked these columns as each row went in; a row changed around it is found here.
    first_row_unlike_its_line = f"""
SELECT position FROM (SELECT *, pg_catalog.convert_from(line, 'UTF8')::jsonb AS j FROM {TABLE}) AS entry
WHERE recorded_at IS DISTINCT FROM j->>'recorded_at' OR type IS DISTINCT FROM j->>'type'
   OR hash IS DISTINCT FROM j->>'hash' OR prev_hash IS DISTINCT FROM j->>'prev_hash'
   OR subject IS DISTINCT FROM (CASE j->>'type' WHEN 'Observation' THEN j->'event'->>'id'
                                WHEN 'Correction' THEN j->'event'->>'observation_id'
                                WHEN 'Retraction' THEN j->'event'->>'observation_id' END)
   OR batch_end <> (j->>'batch_end')::bigint  -- NULL in a row put in before the column was added
ORDER BY position LIMIT 1"""

    def __init__(
        self, url: str, *, read_only: bool = False, clock: Clock = utc_now, lock_timeout: float = LOCK_TIMEOUT
    ) -> None:
        self.url = url
        self.location = redact_url(url)
        self.read_only = read_only
        self.clock = clock
        self.lock_timeout = lock_timeout
        self._open: psycopg.Connection | None = None

    def _connection(self, *, write: bool) -> psycopg.Connection | None:
        if self._open is None:
            self._open = self._connect()
        connection = self._open
        try:
            table, guards, owned = connection.execute(
                "SELECT c.oid, obj_description(c.oid, 'pg_class'), pg_has_role(c.relowner, 'USAGE') "
                "FROM (SELECT to_regclass(%s) AS oid) AS found LEFT JOIN pg_class AS c ON c.oid = found.oid",
                (TABLE,),
            ).fetchone()
            # A missing table is created by the first writer; an older table's guards (or a missing
            # derived table) are brought up to date by the first writer allowed to (its owner).
            derived_missing = write and any(
                connection.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None
                for name in (FIGURES, PROJECTIONS)
            )
            if write and (table is None or ((guards != GUARDS or derived_missing) and owned)):
                with self._write_transaction(connection):
                    schema = connection.execute("SELECT current_schema()").fetchone()[0]
                    if schema is None:
                        raise StoreError(f"{self.location}: no schema to create the log in (see search_path)")
                    connection.execute(schema_sql(schema))
            elif table is None:
                return None
        except psycopg.Error as error:
            raise self._failure(error) from None
        return connection

    def _open_kept(self, cursor: psycopg.Cursor, key: tuple[str, int, str]) -> BinaryIO | None:
        """A range at a time (``substr``), from a column stored uncompressed; its last bytes come with its length.

        A question about one incident reads the kept replay's trailer and
        directory (its last few kilobytes) and then that incident's part:
        with the length, one round trip to the server instead of three.
        """
        row = cursor.execute(
            f"SELECT length(body), substr(body, greatest(length(body) - {_TAIL - 1}, 1)) "
            f"FROM {PROJECTIONS} WHERE {self._kept_row()}",
            key,
        ).fetchone()
        if row is None:
            return None
        return io.BufferedReader(_Ranges(self, key, row[0], bytes(row[1])), buffer_size=1 << 20)

    def _range(self, key: tuple[str, int, str], start: int, length: int) -> bytes:
        try:
            row = self._open.execute(f"SELECT substr(body, %s, %s) FROM {PROJECTIONS} WHERE {self._kept_row()}",
                                     (start + 1, length, *key)).fetchone()  # fmt: skip
        except psycopg.Error as error:
            raise self._failure(error) from None
        if row is None:
            raise StoreError(f"{self.location}: the kept {key[0]} was replaced while it was read; ask again")
        return bytes(row[0])

    def _connect(self) -> psycopg.Connection:
        """One connection; a URL libpq cannot read is bad input (exit 2), a server that fails is not."""
        try:
            conninfo_to_dict(self.url)
        except psycopg.Error as error:
            raise InputError(f"{self.location} is not a PostgreSQL URL that can be used: {self._said(error)}") from None
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as error:
            message = self._said(error)
            if "connection option" in message or "invalid URI" in message:
                raise InputError(f"{self.location} is not a PostgreSQL URL that can be used: {message}") from None
            raise StoreError(f"cannot connect to {self.location}: {message}") from None

    def exists(self) -> bool:
        """Whether the database holds a log; a server that cannot be reached holds none to read."""
        if self._open is None:
            try:
                self._open = self._connect()
            except StoreError as error:
                raise InputError(f"no log at {self.location}: {error}") from None
        return super().exists()

    @contextmanager
    def _write_transaction(self, connection: psycopg.Connection) -> Iterator[psycopg.Cursor]:
        with connection.transaction(), connection.cursor() as cursor:
            # Held until commit: positions are chosen and committed one writer at a time.
            self._lock(cursor)
            yield cursor

    def _lock(self, cursor: psycopg.Cursor | psycopg.Connection) -> None:
        """Take the writers' lock in the current transaction, waiting at most ``lock_timeout``.

        Any role that can connect can take an advisory lock and keep it; lock_timeout covers
        advisory locks too, and ``_failure`` then names the session that holds it.
        """
        timeout = f"{max(1, round(self.lock_timeout * 1000))}ms"
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))

    def _holder(self, connection: psycopg.Connection) -> str:
        """The session holding the writers' lock, as far as pg_stat_activity shows it to this role."""
        try:
            row = connection.execute(
                "SELECT l.pid, a.usename, a.application_name, host(a.client_addr), a.state "
                "FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid::text::bigint = %s AND l.objid::text::bigint = %s LIMIT 1",
                (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF),
            ).fetchone()
        except psycopg.Error:
            row = None
        if row is None:
            return "a session this role cannot see (or one that has just let go)"
        pid, user, application, address, state = row
        seen = [
            f"user {user}" if user else None,
            f"application {application!r}" if application else None,
            f"from {address}" if address else None,
            state,
        ]
        shown = ", ".join(part for part in seen if part)
        return f"session {pid}" + (f" ({shown})" if shown else "")

    def _insert(self, cursor: psycopg.Cursor, rows: list[tuple]) -> None:
        _copy(cursor, f"{TABLE} (position, recorded_at, type, subject, hash, prev_hash, line)", _COPIED_TYPES, rows)

    def _insert_figures(self, cursor: psycopg.Cursor, rows: list[tuple[int, str | None]]) -> None:
        # By COPY as the entries: one statement for the server per row (``executemany``) was three quarters
        # of an import's time, the server parsing and planning each.
        if rows:
            _copy(cursor, f"{FIGURES} (position, figure)", ["int8", "text"], rows)

    def _insert_result(self, cursor: psycopg.Cursor, key: tuple[str, int, str], body: BinaryIO, size: int) -> None:
        # By COPY too: as a parameter of an INSERT, the bytes were held twice more (130 MB more for the 64 MB of
        # the replay an import keeps; 66 MB by COPY).
        name, entries, head = key
        _copy(cursor, f"{PROJECTIONS} (name, first_entry, entries, last_hash, body)",
              ["text", "int8", "int8", "text", "bytea"], [(name, 0, entries, head, body.read())])  # fmt: skip

    def _reading_cursor(self, connection: psycopg.Connection) -> psycopg.Cursor:
        # Binary results: a bytea column comes as its bytes, not as hex text twice its length to decode.
        return connection.cursor(binary=True)

    def _select_lines(self, connection: psycopg.Connection, start: int) -> Iterator[bytes]:
        # A server-side cursor streams the log instead of loading it whole, its lines as bytes (``_reading_cursor``).
        with connection.transaction(), connection.cursor(name="timeline_lines", binary=True) as cursor:
            cursor.itersize = 1000
            cursor.execute(f"SELECT line FROM {TABLE} WHERE position >= %s ORDER BY position", (start,))
            for (line,) in cursor:
                yield bytes(line)

    def _failure(self, error: Exception) -> Exception:
        message = self._said(error)
        if isinstance(error, psycopg.errors.LockNotAvailable) and self._open is not None:
            return StoreError(
                f"{self.location}: waited {self.lock_timeout:g} s for the writers' lock, held by "
                f"{self._holder(self._open)}; nothing was written (TIMELINE_LOCK_TIMEOUT sets the wait)"
            )
        if isinstance(error, psycopg.errors.RaiseException):
            return LogError(f"{self.location}: {message}")
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            return StoreError(f"{self.location}: permission denied ({message})")
        if isinstance(error, psycopg.errors.DiskFull):
            return StoreError(f"cannot write to {self.location}: the disk is full; nothing was appended")
        if isinstance(error, psycopg.OperationalError):
            return StoreError(f"lost the connection to {self.location}: {message}")
        return StoreError(f"{self.location}: {message}")

    def _said(self, error: Exception) -> str:
        """The first line of a database error, with any password of the URL blanked out."""
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        for secret in url_secrets(self.url):
            message = message.replace(secret, "***")
        return message

    def _figures_unlike_ours(self, cursor: psycopg.Cursor) -> str | None:
        cursor.execute("SELECT c.relkind, c.oid FROM pg_class c WHERE c.oid = to_regclass(%s)", (FIGURES,))
        found = cursor.fetchone()
        if found is None:
            return None
        kind, table = found
        if kind != "r":
            return f"a relation of kind {shown(kind)}, not a plain table"
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnum = ANY(i.indkey) FROM pg_attribute a "
            "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (table,),
        )
        columns = [tuple(column) for column in cursor.fetchall()]
        if columns != [("position", "bigint", True), ("figure", "text", False)]:
            return "its columns are not position BIGINT PRIMARY KEY, figure TEXT"
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal LIMIT 1", (table,))
        trigger = cursor.fetchone()
        if trigger is not None:
            return f"a trigger on it, {shown(trigger[0])}"
        cursor.execute("SELECT rulename FROM pg_rewrite WHERE ev_class = %s LIMIT 1", (table,))
        rule = cursor.fetchone()
        return None if rule is None else f"a rule on it, {shown(rule[0])}"

    def _has_table(self, cursor: psycopg.Cursor, name: str) -> bool:
        cursor.execute("SELECT to_regclass(%s)", (name,))
        return cursor.fetchone()[0] is not None

    @contextmanager
    def _snapshot(self, connection: psycopg.Connection) -> Iterator[psycopg.Cursor]:
        with connection.transaction(), connection.cursor(binary=True) as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield cursor

    @contextmanager
    def _body(self, cursor: psycopg.Cursor, key: tuple[str, int, int, str]) -> Iterator[Read]:
        """A range at a time (``substr``), from a column stored uncompressed; its first bytes (where a block
        keeps its head) come with its length, in one round trip."""
        where = self._block_row()
        size, start = cursor.execute(
            f"SELECT length(body), substr(body, 1, {_HEAD_BYTES}) FROM {PROJECTIONS} WHERE {where}", key
        ).fetchone()

        def read(offset: int, length: int) -> bytes:
            if offset < 0 or length < 0 or offset + length > size:
                raise ValueError("a read runs past the end of its block")
            if offset + length <= len(start):
                return start[offset : offset + length]
            ranged = f"SELECT substr(body, %s, %s) FROM {PROJECTIONS} WHERE {where}"
            return bytes(cursor.execute(ranged, (offset + 1, length, *key)).fetchone()[0])

        yield read

    def _save_without_waiting(self, work) -> None:
        try:
            connection = self._connection(write=True)
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,))
                if cursor.fetchone()[0]:
                    work(cursor)
        except (psycopg.Error, StoreError):
            pass  # no right to write it, or the server is busy: the next reader parses again

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
                    self._lock(connection)
                    _create_checkpoints(connection)
                connection.execute(f"INSERT INTO {CHECKPOINTS} (line) VALUES (%s)", (line,))
        except psycopg.Error as error:
            raise self._failure(error) from None
        return True

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


_TAIL = 1 << 16  # the last bytes of a kept result read with its length: a kept replay's directory is ~9 KB at 1M
_HEAD_BYTES = 1 << 18  # the first bytes of a block read with its length: a replay index block's head is ~100 KB at 1M


class _Ranges(io.RawIOBase):
    """A kept result read a range at a time from its row; one that is gone meanwhile is a ``StoreError``.

    ``tail`` is its last bytes, read when it was opened (``_TAIL``): reads
    there are answered from them, as the snapshot opened.
    """

    def __init__(self, store: PostgresStore, key: tuple[str, int, str], size: int, tail: bytes) -> None:
        self._store, self._key, self._size, self._at = store, key, size, 0
        self._tail, self._tail_start = tail, size - len(tail)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self._size - self._at)
        if length <= 0:
            return 0
        if self._at >= self._tail_start:
            start = self._at - self._tail_start
            data = self._tail[start : start + length]
        else:  # up to the tail at most: what is read already is not asked for again
            data = self._store._range(self._key, self._at, min(length, self._tail_start - self._at))
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._at = base + offset
        return self._at

    def tell(self) -> int:
        return self._at
