"""The SQLite store: a large log on one machine, in one file.

Writers serialise on SQLite's own write lock (``BEGIN IMMEDIATE``), so the
position and the chain link are read and written under that lock. The
database runs in WAL mode with ``synchronous=FULL``: a commit returns only
once it is on disk, and readers never block writers or see half a batch.
"""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from .envelope import GENESIS
from .errors import LogError, StoreError, shown
from .projection import Read
from .sql import DESCRIPTION_ROWS, FIGURES, PROJECTIONS, TABLE, SqlStore
from .store import Clock, check_log_file, utc_now

# Checks each row inserted against the last one: the chain that no other program writing to the file may
# break. It costs SQLite a small program run per row, half the time of inserting an import's rows, so a
# writer inserting more than one piece of rows drops it for the rest of its transaction (``_insert``).
EXTENDS_CHAIN = f"""
CREATE TRIGGER IF NOT EXISTS {TABLE}_extends_chain BEFORE INSERT ON {TABLE}
WHEN NEW.position != (SELECT COALESCE(MAX(position) + 1, 0) FROM {TABLE})
  OR NEW.prev_hash != COALESCE((SELECT hash FROM {TABLE} ORDER BY position DESC LIMIT 1), '{GENESIS}')
BEGIN SELECT RAISE(ABORT, 'an entry must extend the chain: next position, linked to the last hash'); END;
"""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    position    INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    type        TEXT NOT NULL,
    subject     TEXT,
    hash        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    line        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_subject ON {TABLE} (subject);
CREATE INDEX IF NOT EXISTS {TABLE}_described ON {TABLE} (position) WHERE {DESCRIPTION_ROWS};
CREATE TABLE IF NOT EXISTS {FIGURES} (position INTEGER PRIMARY KEY, figure TEXT);
CREATE INDEX IF NOT EXISTS {FIGURES}_figure ON {FIGURES} (figure);
CREATE TABLE IF NOT EXISTS {PROJECTIONS} (
    name        TEXT NOT NULL,
    first_entry INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    last_hash   TEXT NOT NULL,
    body        BLOB NOT NULL,
    PRIMARY KEY (name, first_entry, entries, last_hash)
);
CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'the log is append-only: entries cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'the log is append-only: entries cannot be deleted'); END;
{EXTENDS_CHAIN}"""
# The figures table as ``SCHEMA`` makes it, as SQLite keeps its statement (``_figures_unlike_ours``).
_FIGURES_TABLE = f"CREATE TABLE {FIGURES} (position INTEGER PRIMARY KEY, figure TEXT)"
# Hashes are unique. A log made before this index holds them unique by a constraint of its table instead
# (SQLite's ``sqlite_autoindex_..._1``), which it keeps: the two would check every insert twice. A named
# index can be dropped while a large batch is inserted, and made again before its commit (``_insert``).
HASH_INDEX = f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_hash ON {TABLE} (hash)"
_HASH_CONSTRAINT = f"sqlite_autoindex_{TABLE}_1"


# Pages of 16 KB, not SQLite's 4 KB: an entry's line is most of a kilobyte, and a page holds a few dozen, not
# a few. An import's commit writes a quarter as many pages to the write-ahead log and back to the database:
# inserting 200,000 entries took 1.7 s of SQLite's time where it took 2.9 s.
PAGE_SIZE = 16384
_WRITE_CACHE_KB = 64 * 1024
_DEFAULT_CACHE = -2000  # SQLite's own: 2 MB


class SqliteStore(SqlStore):
    database_errors = (sqlite3.Error,)
    first_row_unlike_its_line = f"""
SELECT position FROM (SELECT *, CAST(line AS TEXT) AS j FROM {TABLE})
WHERE recorded_at IS NOT json_extract(j, '$.recorded_at') OR type IS NOT json_extract(j, '$.type')
   OR hash IS NOT json_extract(j, '$.hash') OR prev_hash IS NOT json_extract(j, '$.prev_hash')
   OR subject IS NOT (CASE json_extract(j, '$.type') WHEN 'Observation' THEN json_extract(j, '$.event.id')
                      WHEN 'Correction' THEN json_extract(j, '$.event.observation_id')
                      WHEN 'Retraction' THEN json_extract(j, '$.event.observation_id') END)
ORDER BY position LIMIT 1"""

    def __init__(self, path: str | Path, *, read_only: bool = False, clock: Clock = utc_now) -> None:
        self.path = Path(path)
        self.location = f"sqlite:///{path}"
        self.read_only = read_only
        self.clock = clock
        self._open: dict[bool, sqlite3.Connection] = {}
        # The write transaction under way: the entries the log held before it, the rows it inserted, whether
        # it dropped the chain trigger, and the indexes it dropped, to be made again (``_insert``).
        self._before = self._inserted = 0
        self._chain_dropped = False
        self._dropped: DroppedIndexes | None = None

    def check_writable(self) -> None:
        check_log_file(self.path, self.location)
        super().check_writable()

    def _connection(self, *, write: bool) -> sqlite3.Connection | None:
        """The connection for writing (schema ensured) or reading (None while there is no log yet)."""
        if self.path.is_dir():
            raise StoreError(f"{self.location}: {self.path} is a directory, not a database file")
        connection = self._open.get(write)
        try:
            if connection is None:
                if not write and not self.path.exists():
                    return None
                connection = self._connect(write)
                self._open[write] = connection
            if not write:
                try:
                    found = connection.execute(_HAS_ENTRIES, (TABLE,)).fetchone()
                except sqlite3.OperationalError as error:
                    if not self._unchangeable():
                        if "readonly" in str(error) or "unable to open" in str(error):
                            raise StoreError(
                                f"cannot read {self.location}: SQLite reads a log in WAL mode by making "
                                f"{self.path.name}-shm beside it, and may not in its folder; it reads one as it lies "
                                "only where no one may write in the folder and no write-ahead log lies beside it (a "
                                "copy in a folder of your own can be read)"
                            ) from None
                        raise
                    connection.close()
                    connection = self._open[write] = self._connect(write, immutable=True)
                    found = connection.execute(_HAS_ENTRIES, (TABLE,)).fetchone()
                return connection if found else None
        except sqlite3.Error as error:
            raise self._failure(error) from None
        return connection

    def _unchangeable(self) -> bool:
        """Whether no writer can change the log here: its folder is mounted read-only or no one has the right
        to write in it (a log sent on a stick, a share mounted read-only), and no write-ahead log lies beside it.

        A reader of a database in WAL mode makes its shared-memory file
        (``-shm``) beside it, and cannot in such a folder: SQLite refuses to
        read. Where no writer can write either (a writer needs the
        write-ahead log, ``-wal``, which it cannot make there), the log is
        read as it lies, with no lock and nothing made beside it
        (``immutable``). A folder only this reader may not write is not
        enough: a writer with the right could change the file under it.
        """
        folder = self.path.parent
        try:
            pending = self.path.with_name(f"{self.path.name}-wal").stat().st_size
        except FileNotFoundError:
            pending = 0
        try:
            mounted_read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
            no_one_writes = not os.stat(folder).st_mode & 0o222
        except OSError:
            return False
        return not pending and (mounted_read_only or no_one_writes)

    def _open_kept(self, cursor: sqlite3.Cursor, key: tuple[str, int, str]) -> BinaryIO | None:
        """By SQLite's incremental blob I/O, from the snapshot of the row it was opened on."""
        row = cursor.execute(f"SELECT rowid FROM {PROJECTIONS} WHERE {self._kept_row()}", key).fetchone()
        if row is None:
            return None
        return _Blob(cursor.connection.blobopen(PROJECTIONS, "body", row[0], readonly=True), self.location)

    def _connect(self, write: bool, *, immutable: bool = False) -> sqlite3.Connection:
        if not write:
            uri = f"{self.path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"
            return sqlite3.connect(uri, uri=True, timeout=120, isolation_level=None)
        connection = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new database's only: one with pages keeps its size
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(SCHEMA)
        found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_HASH_CONSTRAINT,)).fetchone()
        if found is None:
            connection.execute(HASH_INDEX)
        return connection

    @contextmanager
    def _write_transaction(self, connection: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
        cursor = connection.cursor()
        # An import inserts a million rows into indexes of hashes and ids, in no order of theirs: with
        # SQLite's default 2 MB of cache, each insert reads pages back from the file. The cache is
        # larger while a batch is written, and given back when it is done.
        cursor.execute(f"PRAGMA cache_size = -{_WRITE_CACHE_KB}")
        try:
            # IMMEDIATE takes the database's write lock now, before the last entry is read.
            cursor.execute("BEGIN IMMEDIATE")
            self._before = self._inserted = 0
            self._chain_dropped, self._dropped = False, None
            try:
                yield cursor
                if self._dropped is not None:
                    remake_indexes(cursor, self._dropped)
                if self._chain_dropped:
                    cursor.execute(EXTENDS_CHAIN)  # back before the commit (a rollback brings it back too)
            except BaseException:
                if connection.in_transaction:  # SQLite ends it itself on some errors (a full disk): say those
                    cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        finally:
            with suppress(sqlite3.Error):
                cursor.execute(f"PRAGMA cache_size = {_DEFAULT_CACHE}")
                cursor.execute("PRAGMA shrink_memory")

    def _insert(self, cursor: sqlite3.Cursor, rows: list[tuple]) -> None:
        """The rows, after those inserted before in this transaction; the chain trigger checks the first
        piece's, which joins the batch to the log. Those after it continue this writer's own chain, under
        the write lock no other writer can insert past: the trigger is dropped for them until the commit.

        Once the transaction has inserted as many rows as the log held before
        it (a dataset loaded), the indexes of both tables are dropped too and
        made again before the commit. An insert puts each row's id, hash and
        figure key in its index, in no order of theirs, at a page read and
        written apiece; making an index sorts its keys once. That halves what
        SQLite spends on an import, and costs at most two rows' worth of
        sorting per row inserted. Readers never see it: they read the last
        commit's snapshot, indexes and all. What ANALYZE kept of them is
        given back; where a trigger not the store's own fires on the tables,
        none is dropped (``drop_indexes``).
        """
        if not self._inserted:
            self._before = rows[0][0] if rows else 0
        elif not self._chain_dropped:
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_extends_chain")
            self._chain_dropped = True
        if self._inserted and self._inserted >= self._before and self._dropped is None:
            self._dropped = drop_indexes(cursor)
        self._inserted += len(rows)
        cursor.executemany(
            f"INSERT INTO {TABLE} (position, recorded_at, type, subject, hash, prev_hash, line) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _insert_result(self, cursor: sqlite3.Cursor, key: tuple[str, int, str], body: BinaryIO, size: int) -> None:
        """The row with a blob of ``size`` zeros, then the bytes written into it a piece at a time."""
        cursor.execute(
            f"INSERT INTO {PROJECTIONS} (name, first_entry, entries, last_hash, body) VALUES (?, 0, ?, ?, zeroblob(?))",
            (*key, size),
        )
        with cursor.connection.blobopen(PROJECTIONS, "body", cursor.lastrowid) as blob:
            while piece := body.read(1 << 20):
                blob.write(piece)

    def _select_lines(self, connection: sqlite3.Connection, start: int) -> Iterator[bytes]:
        cursor = connection.execute(f"SELECT line FROM {TABLE} WHERE position >= ? ORDER BY position", (start,))
        for (line,) in cursor:
            # A row edited behind the triggers may hold text, a number or nothing instead of bytes: as text,
            # it is a line that does not end in its hash, and verify names its position.
            yield line if isinstance(line, bytes) else str(line).encode()

    def _failure(self, error: Exception) -> Exception:
        message = str(error)
        if "append-only" in message or "extend the chain" in message:
            return LogError(f"{self.location}: {message}")
        if "disk is full" in message or "database or disk is full" in message:
            return StoreError(
                f"cannot write to {self.location}: the disk is full; nothing was appended (or it is SQLite's "
                f"temporary folder, {_temporary_folder()}, that is full: set SQLITE_TMPDIR to another)"
            )
        if "readonly" in message or "unable to open" in message:
            return StoreError(f"cannot write to {self.location}: {message}")
        return StoreError(f"{self.location}: {message}")

    def _figures_unlike_ours(self, cursor: sqlite3.Cursor) -> str | None:
        cursor.execute("SELECT type, sql FROM sqlite_master WHERE name = ?", (FIGURES,))
        found = cursor.fetchone()
        if found is None:
            return None
        kind, sql = found
        if kind != "table":
            return f"a {kind}"
        # Its key alone holds positions to unique whole numbers. (SQLite quotes a name it renamed a table to.)
        if " ".join((sql or "").replace('"', "").split()) != _FIGURES_TABLE:
            return f"made as {shown(sql, 120)}"
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (FIGURES,))
        trigger = cursor.fetchone()
        return None if trigger is None else f"a trigger on it, {shown(trigger[0])}"

    def _has_table(self, cursor: sqlite3.Cursor, name: str) -> bool:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cursor.fetchone() is not None

    @contextmanager
    def _snapshot(self, connection: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        try:
            yield cursor
        finally:
            cursor.execute("COMMIT")  # it only read

    @contextmanager
    def _body(self, cursor: sqlite3.Cursor, key: tuple[str, int, int, str]) -> Iterator[Read]:
        """By SQLite's incremental blob I/O, in the caller's snapshot: a range reads those bytes, not the row."""
        cursor.execute(f"SELECT rowid FROM {PROJECTIONS} WHERE {self._block_row()}", key)
        try:
            blob = cursor.connection.blobopen(PROJECTIONS, "body", cursor.fetchone()[0], readonly=True)
        except sqlite3.OperationalError as error:  # a body that is not a BLOB (damage): the whole reader says so
            raise ValueError(str(error)) from None

        def read(offset: int, size: int) -> bytes:
            if offset < 0 or size < 0 or offset + size > len(blob):
                raise ValueError("a read runs past the end of its block")
            blob.seek(offset)
            return blob.read(size)

        try:
            yield read
        finally:
            blob.close()

    def _save_without_waiting(self, work) -> None:
        try:
            connection = self._connection(write=True)
            connection.execute("PRAGMA busy_timeout = 0")
            try:
                with self._write_transaction(connection) as cursor:
                    work(cursor)
            finally:
                connection.execute("PRAGMA busy_timeout = 120000")
        except (sqlite3.Error, StoreError):
            pass  # a writer is busy, or the file cannot be written: the next reader parses again

    def close(self) -> None:
        """Close the connections; a writer's first moves what it wrote from the write-ahead log into the database.

        Until then every reader reads those pages out of the WAL, and a big
        import leaves hundreds of megabytes there. Best effort, never waiting
        on a reader: what it cannot move now, a later close or SQLite moves.
        """
        writer = self._open.get(True)
        if writer is not None:
            with suppress(sqlite3.Error):
                writer.execute("PRAGMA busy_timeout = 0")
                writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        for connection in self._open.values():
            connection.close()
        self._open.clear()


_HAS_ENTRIES = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
# The store's own triggers; another on its tables might read through an index a large batch drops.
_OWN_TRIGGERS = frozenset({f"{TABLE}_no_update", f"{TABLE}_no_delete", f"{TABLE}_extends_chain"})
# What ANALYZE keeps of an index, dropped with it.
_STATISTICS = ("sqlite_stat1", "sqlite_stat4")


@attrs.frozen
class DroppedIndexes:
    """Indexes dropped while a large batch is inserted: how each is made, and what ANALYZE kept of them."""

    made: list[str]
    statistics: list[tuple[str, list[tuple]]]  # (statistics table, its rows of these indexes)


def drop_indexes(cursor: sqlite3.Cursor) -> DroppedIndexes:
    """Drop the named indexes of the entries and the figures that every row goes into (none where a trigger
    other than the store's own fires on those tables: it may read through them, by name too)."""
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (?, ?)", (TABLE, FIGURES))
    if {name for (name,) in cursor.fetchall()} - _OWN_TRIGGERS:
        return DroppedIndexes([], [])
    cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?, ?) "
        "AND sql NOT LIKE '% WHERE %'",  # a partial index takes few rows, and making it reads every one
        (TABLE, FIGURES),
    )
    indexes = cursor.fetchall()
    names = [name for name, _ in indexes]
    statistics = []
    for table in _STATISTICS:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        if cursor.fetchone() is not None:
            cursor.execute(f"SELECT * FROM {table} WHERE idx IN ({', '.join('?' * len(names))})", names)
            statistics.append((table, cursor.fetchall()))
    for name in names:
        cursor.execute('DROP INDEX "{}"'.format(name.replace('"', '""')))
    return DroppedIndexes([sql for _, sql in indexes], statistics)


def remake_indexes(cursor: sqlite3.Cursor, dropped: DroppedIndexes) -> None:
    """Make the dropped indexes again from every row, and give them back what ANALYZE kept of them."""
    for sql in dropped.made:
        cursor.execute(sql)
    for table, rows in dropped.statistics:
        if rows:
            cursor.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _temporary_folder() -> str:
    """Where SQLite keeps its temporary files (what a sort that does not fit in memory spills, as making an
    index does): the first of these folders it can write to, in its order."""
    for folder in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return "."


class _Blob(io.RawIOBase):
    """A kept result read where it lies, from the snapshot of the row it was opened on (another connection
    replacing the row meanwhile changes nothing read here); a failing read is a ``StoreError``."""

    def __init__(self, blob: sqlite3.Blob, location: str) -> None:
        self._blob, self._location = blob, location

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._blob.read(len(buffer))
        except sqlite3.Error as error:
            raise StoreError(f"{self._location}: cannot read a kept result: {error}") from None
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._blob.seek(offset, whence)
        return self._blob.tell()

    def tell(self) -> int:
        return self._blob.tell()

    def close(self) -> None:
        if not self.closed:
            self._blob.close()
        super().close()
