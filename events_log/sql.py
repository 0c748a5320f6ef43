"""What the SQL stores share: one table of entries, guarded by the database itself.

Each entry is a row holding the exact stored line and, for queries, the
columns taken from it (position, time, type, the observation it is about,
hashes). Triggers make the table append-only and make every insert extend
the chain: the next position, linked to the last hash. So a store that
bypasses this code still cannot rewrite history or fork the chain; only
dropping the table (which the documented day-to-day role cannot do) can.

The subclasses say how to connect, how to take the write lock, and how to
spell the SQL of their database.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import tempfile
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, TypeVar

import attrs

from .admission import LIVE, IdIndex, Names, figure_key, subject_id
from .codec import SCHEMA, upcast
from .envelope import RawEntry, decode_line
from .errors import (
    BrokenChainError,
    IndexMismatchWarning,
    LogChangedError,
    LogError,
    UnreadableEntryError,
    shown,
)
from .projection import Block, Folding, Part, Projection, Read, State, decoder, extend, extend_read
from .spool import SpooledLines
from .store import Encoder, LogHead, Progress, Store, Verified, in_pieces, naming_entries

TABLE = "timeline_entries"
# The rows describing incidents and monitors; each database keeps a partial index of them.
DESCRIPTION_ROWS = "type IN ('IncidentDescribed', 'MonitorDescribed')"
# A read model beside the log: one row per entry, with the figure key (see
# ``admission.figure_key``) of an observation or correction, so that admission
# finds possible repeats through an index instead of reading the log. It is
# derived data: written in the same transaction as the entries, and caught up
# from the log under the write lock if it is behind (a log made before it).
FIGURES = "timeline_figures"
# The blocks of the projections the store keeps (see ``projection.py``), one row each:
# which projection, the entries it covers and the hash of its last one, its bytes.
# Rows are only ever added; a block is used while the log holds that hash at that
# position, so a stale or foreign block is simply never picked.
PROJECTIONS = "timeline_projections"
# Rows built and sent at once when a batch is written, and lines read at once.
_ROWS_AT_ONCE = 4096
T = TypeVar("T")


class SqlStore(Store):
    """A store of entries in one SQL table; subclasses supply the database's dialect."""

    placeholder = "?"
    # The database's own exception classes, turned into project errors by ``_failure``.
    database_errors: tuple[type[Exception], ...] = ()
    # The position of the first row whose columns do not hold what its line says (``_row``), read from its JSON
    # by the database itself: writers look entries up by these columns, so verify checks them too.
    first_row_unlike_its_line: str

    # -- what each database supplies ---------------------------------------

    @abc.abstractmethod
    def _connection(self, *, write: bool) -> Any:
        """An open DB-API connection, with the schema in place when writing."""

    @abc.abstractmethod
    def _write_transaction(self, connection: Any) -> Any:
        """A context manager: a transaction that holds the store's write lock until commit."""

    @abc.abstractmethod
    def _insert(self, cursor: Any, rows: list[tuple]) -> None:
        """Insert entry rows (position, recorded_at, type, subject, hash, prev_hash, line)."""

    @abc.abstractmethod
    def _select_lines(self, connection: Any, start: int) -> Iterator[bytes]:
        """Stream the stored lines from ``start``, in position order."""

    @abc.abstractmethod
    def _failure(self, error: Exception) -> Exception:
        """The project error a database error stands for."""

    @abc.abstractmethod
    def _has_table(self, cursor: Any, name: str) -> bool:
        """Whether the database holds the store's table ``name`` (a log made before it has not)."""

    @abc.abstractmethod
    def _snapshot(self, connection: Any) -> contextlib.AbstractContextManager[Any]:
        """A cursor in a read transaction: what it reads is the database as of one moment."""

    @abc.abstractmethod
    def _body(self, cursor: Any, key: tuple[str, int, int, str]) -> contextlib.AbstractContextManager[Read]:
        """A function reading a stored block's body a range at a time, where it lies (``key``: its name, first
        entry, entries and last hash); it raises ``ValueError`` for a range past the body's end."""

    @abc.abstractmethod
    def _save_without_waiting(self, work) -> None:
        """Run ``work(cursor)`` in a write transaction if no writer holds the lock now; else skip it."""

    # -- the Store interface -------------------------------------------------

    def lines(self, start: int = 0) -> Iterator[bytes]:
        connection = self._connection(write=False)
        if connection is None:
            return
        try:
            yield from self._select_lines(connection, start)
        except self.database_errors as error:
            raise self._failure(error) from None

    def exists(self) -> bool:
        return self._connection(write=False) is not None

    def head(self) -> LogHead:
        connection = self._connection(write=False)
        if connection is None:
            return LogHead.of(None)
        try:
            return LogHead.of(self._last(connection.cursor()))
        except self.database_errors as error:
            raise self._failure(error) from None

    def line_at(self, position: int, offset: int = -1) -> bytes:
        connection = self._connection(write=False)
        try:
            cursor = connection.cursor() if connection is not None else None
            if cursor is not None:
                cursor.execute(f"SELECT line FROM {TABLE} WHERE position = {self.placeholder}", (position,))
                row = cursor.fetchone()
                if row is not None:
                    return _line_bytes(row[0])
        except self.database_errors as error:
            raise self._failure(error) from None
        raise LogError(f"{self.location} has no entry at position {position}")

    @naming_entries
    def append_lines(self, subjects: Collection[str], encode: Encoder) -> None:
        def write(cursor: Any) -> None:
            last = self._last(cursor)
            entries = LogHead.of(last).entries
            self._catch_up_figures(cursor, entries)
            lines = encode(last=last, now=self.now(), known=self._known(cursor, subjects))
            self._write_and_keep(cursor, entries, lines)

        self._in_write_transaction(write)

    def append_stored(self, lines: Sequence[bytes], after: LogHead) -> None:
        def write(cursor: Any) -> None:
            if LogHead.of(self._last(cursor)) != after:
                raise LogChangedError(f"{self.location} changed while being written; run the command again")
            self._catch_up_figures(cursor, after.entries)
            self._write_and_keep(cursor, after.entries, lines)

        self._in_write_transaction(write)

    # -- the projections beside the log ---------------------------------------

    @naming_entries
    def projection(self, projection: Projection, since: State | None = None) -> State:
        """``projection`` from its blocks in the database, brought up to date from the log.

        With ``since`` (a state read earlier), only what was appended after it
        is read, if its last entry still stands. What a reader had to parse is
        saved as a block, if no writer holds the lock.
        """
        connection = self._connection(write=False)
        if connection is None:
            return projection.load([])
        try:
            cursor = self._reading_cursor(connection)
            origin = self._origin(cursor, projection)
            if (
                since is not None
                and since.entries
                and since.origin == origin
                and self._hash_at(cursor, since.entries - 1) == since.last_hash
            ):
                return extend(since, self._parsed(since.entries))[0]
            with self._snapshot(connection) as snapshot:  # the blocks are listed, then read one at a time
                stored, damaged = self._stored(snapshot, projection)
            state, new = extend(stored, self._parsed(stored.entries))
        except self.database_errors as error:
            raise self._failure(error) from None
        if damaged is not None:
            warnings.warn(
                IndexMismatchWarning(
                    f"the {projection.title} in {PROJECTIONS} of {self.location} {_unreadable_block(damaged)}; "
                    "reading the log past it (`timeline verify` sets it aside)"
                ),
                stacklevel=3,  # past projection and naming_entries
            )
        if new and not self.read_only:
            self._save_without_waiting(lambda cursor: self._insert_blocks(cursor, projection, new))
        state.origin = origin
        return state

    def _reading_cursor(self, connection: Any) -> Any:
        """A cursor for reading what may be large (a projection's blocks): the database's own."""
        return connection.cursor()

    def _origin(self, cursor: Any, projection: Projection) -> int:
        """How many times ``verify`` has set this projection's blocks aside: a state read before is
        good only while that stands (blocks that did not match may have been read into it)."""
        if not self._has_table(cursor, PROJECTIONS):
            return 0
        cursor.execute(
            f"SELECT COUNT(DISTINCT name) FROM {PROJECTIONS} WHERE name LIKE {self.placeholder}",
            (f"{projection.name}.mismatch-%",),
        )
        return cursor.fetchone()[0]

    def _write_and_keep(self, cursor: Any, entries: int, lines: Iterable[bytes]) -> None:
        """The append, in its transaction and under its lock: insert ``lines`` after the log's first
        ``entries`` and extend every kept projection with them on the way, each line decoded once.

        A projection that cannot be read or written (a role without the
        right to) is left out, each in a savepoint: that costs the next
        reader a parse, never the append.
        """
        kept = [
            (projection, *caught_up)
            for projection in self.kept
            if (caught_up := self._caught_up(cursor, projection, entries)) is not None
        ]
        refused: set[str] = set()

        def insert_blocks() -> None:
            # Blocks go in as they are cut, so an import's never pile up in memory. A projection whose
            # blocks the database refuses is given up for this append (a gap is never read past).
            for projection, blocks, folding in kept:
                ready = [*blocks, *folding.blocks]
                blocks.clear()
                folding.blocks.clear()
                if ready and projection.name not in refused:
                    inserted = self._in_savepoint(cursor, self._insert_blocks, cursor, projection, ready)
                    if inserted is None:
                        refused.add(projection.name)

        write = self._write_spooled_rows if isinstance(lines, SpooledLines) else self._write_rows
        write(cursor, lines, [folding for *_, folding in kept], insert_blocks)
        for *_, folding in kept:
            folding.done()
        insert_blocks()

    def _caught_up(self, cursor: Any, projection: Projection, entries: int) -> tuple[list[Any], Folding] | None:
        """The blocks that bring ``projection``'s stored state up to the first ``entries``, and a folding
        that goes on from there; None if it cannot be read here."""

        def read() -> tuple[list[Any], Folding] | None:
            if not self._has_table(cursor, PROJECTIONS):
                return None
            stored, _ = self._stored(cursor, projection)
            state, blocks = extend(stored, self._parsed_in(cursor, stored.entries, entries))
            return blocks, Folding(state)

        return self._in_savepoint(cursor, read)

    def _in_savepoint(self, cursor: Any, work: Callable[..., T], *args: Any) -> T | None:
        """``work(*args)``, undone alone (and None) if the database refuses it; the transaction goes on."""
        cursor.execute("SAVEPOINT timeline_projection")
        try:
            done = work(*args)
        except self.database_errors:
            cursor.execute("ROLLBACK TO SAVEPOINT timeline_projection")
            done = None
        cursor.execute("RELEASE SAVEPOINT timeline_projection")
        return done

    def _stored(self, cursor: Any, projection: Projection, *, checked: bool = False) -> tuple[State, Any]:
        """The projection's stored blocks that still match the log, from its first entry on, and the
        first entry (as its row names it) of the first block that could not be read (None if every one could);
        ``checked``: read with the projection's ``decode_checked``, where it has one (``verify``). ``cursor``
        reads one snapshot (a read transaction, or the writer's).

        A block that cannot be read is passed over (a shorter one from the same entry may stand in for
        it), never taken for one that is not there: the reader parses the log from it and says so.
        """
        if not self._has_table(cursor, PROJECTIONS):
            return projection.load([]), None
        # The blocks are listed, then each body is read by its key: a body in the rows of the query that
        # orders them was held whole by the client (PostgreSQL: every block at once), or copied into its
        # sorter (SQLite: 50 MB more at a time, for blocks of 8 MB).
        self._select_matching(cursor, projection, "b.last_hash")
        listed = cursor.fetchall()
        damaged: list[Any] = []
        decode = decoder(projection, checked=checked)
        body_of = f"SELECT body FROM {PROJECTIONS} WHERE {self._block_row()}"

        def following() -> Iterator[Any]:
            at = 0
            for first, count, last_hash in listed:  # a block at a time, handed over as read: never held twice
                if not _whole_numbers(first, count):
                    damaged.append(first)
                    continue
                if first != at:
                    if first > at:
                        return
                    continue
                cursor.execute(body_of, (projection.name, first, count, last_hash))
                found = cursor.fetchone()
                if found is None:  # gone since it was listed (a writer's transaction sees others' commits)
                    continue
                body = found[0]
                try:
                    if not isinstance(body, bytes | bytearray | memoryview):  # text, or a number: damage
                        raise ValueError(f"a body of type {type(body).__name__}")
                    block = decode(bytes(body))
                except ValueError:
                    damaged.append(first)
                    continue
                at += count
                yield block

        return projection.load(following()), (damaged[0] if damaged else None)

    def partial_blocks(
        self, projection: Projection, read: Callable[[Read], tuple[Block, Part]]
    ) -> list[tuple[Block, Part]] | None:
        """What ``read`` takes of each stored block, its bytes read where they lie, all in one snapshot.

        The blocks are those ``_stored`` takes: the rows that still end with
        the hash of the log's entry where they say they end, one after
        another from the first entry. Nothing is parsed or written: where they
        do not reach the log's head, this says None and the caller reads the
        projection whole, which brings it up to date.
        """
        connection = self._connection(write=False)
        if connection is None:
            return None
        try:
            with self._snapshot(connection) as cursor:
                if not self._has_table(cursor, PROJECTIONS):
                    return None
                self._select_matching(cursor, projection, "b.last_hash")
                found: list[tuple[Block, Part]] = []
                at = 0
                for first, count, last_hash in cursor.fetchall():
                    if first != at or not _whole_numbers(first, count):
                        continue  # a shorter block from the same entry, one past a gap, or damage
                    with self._body(cursor, (projection.name, first, count, last_hash)) as body:
                        block, part = read(body)
                    if (block.first, block.count, block.last_hash) != (first, count, last_hash):
                        return None
                    found.append((block, part))
                    at += count
                entries = LogHead.of(self._last(cursor)).entries
        except ValueError:
            return None
        except self.database_errors as error:
            raise self._failure(error) from None
        return found if found and at == entries else None

    def _select_matching(self, cursor: Any, projection: Projection, column: str) -> None:
        """Select (first entry, entries, ``column``) of the projection's blocks whose last entry is still the log's,
        by first entry, the longest first."""
        cursor.execute(
            f"SELECT b.first_entry, b.entries, {column} FROM {PROJECTIONS} b JOIN {TABLE} e "
            f"ON e.position = b.first_entry + b.entries - 1 AND e.hash = b.last_hash "
            f"WHERE b.name = {self.placeholder} ORDER BY b.first_entry, b.entries DESC",
            (projection.name,),
        )

    def _insert_blocks(self, cursor: Any, projection: Projection, blocks: list[Any]) -> bool:
        """Insert ``blocks`` (each of them, whatever the rows beside them); True once done."""
        p = self.placeholder
        cursor.executemany(
            f"INSERT INTO {PROJECTIONS} (name, first_entry, entries, last_hash, body) VALUES ({p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT DO NOTHING",
            [(projection.name, b.first, b.count, b.last_hash, projection.encode(b)) for b in blocks],
        )
        return True

    def _hash_at(self, cursor: Any, position: int) -> str | None:
        cursor.execute(f"SELECT hash FROM {TABLE} WHERE position = {self.placeholder}", (position,))
        row = cursor.fetchone()
        return None if row is None else row[0]

    def _parsed(self, start: int) -> Iterator[tuple[RawEntry, int, int]]:
        """Entries from ``start``, streamed, for a projection (stores of rows have no byte offsets)."""
        return ((raw, -1, -1) for raw in self.records(start))

    def _parsed_in(self, cursor: Any, start: int, end: int) -> Iterator[tuple[RawEntry, int, int]]:
        """Entries ``start`` to ``end``, through ``cursor`` (in the caller's transaction), a few thousand at a time."""
        p = self.placeholder
        while start < end:
            cursor.execute(
                f"SELECT line FROM {TABLE} WHERE position >= {p} AND position < {p} ORDER BY position",
                (start, min(end, start + _ROWS_AT_ONCE)),
            )
            rows = cursor.fetchall()
            if not rows:
                return
            for (line,) in rows:
                yield _decode(_line_bytes(line), self.location), -1, -1
            start += len(rows)

    @naming_entries
    def verify(self, *, repair_index: bool = False, progress: Progress | None = None) -> Verified:
        """Check the chain, that the figures table holds what the lines make, and that each kept projection's
        stored blocks say what the log says.

        Blocks that do not match are moved under the name ``<name>.mismatch-<n>``
        (kept as evidence, never used again) and the finding fails
        verification, unless ``repair_index`` asks for new blocks at once.
        """
        checked = super().verify(progress=progress)
        connection = self._connection(write=False)
        if connection is None:
            return checked
        self._check_columns(connection)
        notes, mismatch = self._checked_figures(connection, repair_index)
        for projection in self.kept:
            try:
                with self._snapshot(connection) as cursor:
                    stored, damaged = self._stored(cursor, projection, checked=True)
            except self.database_errors as error:
                raise self._failure(error) from None
            rebuilt = self._rebuilt(projection, stored.entries)
            if damaged is None and (not stored.entries or stored.same(rebuilt)):
                if stored.entries:
                    notes.append(f"the {projection.title} in {PROJECTIONS} matches the log")
                if stored.entries < checked.head.entries:
                    self._read_through(projection, rebuilt)
                continue
            if stored.same(rebuilt):
                # No torn write leaves such a block (a transaction lands whole): it is damage.
                finding = f"the {projection.title} in {PROJECTIONS} {_unreadable_block(damaged)}"
            else:
                finding = (
                    f"the {projection.title} in {PROJECTIONS} does not match the log: it says {stored.entries} "
                    f"entries, head {stored.last_hash}; the log has {checked.head.entries}, head {checked.head.head}"
                )
            if self.read_only:
                notes.append(f"{finding} (left as it is)")
                mismatch = True
                continue
            kept = self._set_aside(projection.name)
            if repair_index:
                self.projection(projection)
                notes.append(f"{finding}; the old blocks are kept as {kept}; new ones were built")
            else:
                notes.append(f"{finding}; the old blocks are kept as {kept} (`verify --repair-index` builds new ones)")
                mismatch = True
        if not notes:
            return checked
        return attrs.evolve(checked, index_note="; ".join(notes), index_mismatch=mismatch)

    def _check_columns(self, connection: Any) -> None:
        """Raise ``BrokenChainError`` at the first row whose columns do not hold what its line says.

        The chain holds for the lines alone; a row's columns are what writers
        look entries up by (the last hash, the subject a fix is about), so a
        row changed around the store's guards could mislead the next writer
        while every line still checks. Called once the chain holds.
        """
        try:
            cursor = connection.cursor()
            cursor.execute(self.first_row_unlike_its_line)
            found = cursor.fetchone()
            if found is None:
                return
            cursor.execute(f"SELECT * FROM {TABLE} WHERE position = {self.placeholder}", (found[0],))
            stored = dict(zip([column[0] for column in cursor.description], cursor.fetchone(), strict=True))
        except self.database_errors as error:
            raise self._failure(error) from None
        line = _line_bytes(stored["line"])
        raw = decode_line(line)
        said = dict(zip(_COLUMNS, _row(line, raw), strict=False))  # the line is the last column
        if stored.get("batch_end") is not None:  # PostgreSQL keeps it too
            said["batch_end"] = raw.batch_end
        differ = [name for name, value in said.items() if stored[name] != value]
        what = f"{differ[0]} column ({shown(stored[differ[0]])}) does" if differ else "columns do"
        raise BrokenChainError(f"position {found[0]}: the row's {what} not hold what its line says", found[0])

    def _checked_figures(self, connection: Any, repair: bool) -> tuple[list[str], bool]:
        """For ``verify``: what it says of the figures table, and whether that is a finding (``_figures_finding``).

        ``repair`` rebuilds the rows of a table whose rows are wrong, and
        checks it again. A table the store did not make (other columns, a
        trigger, a view) is only named: the store makes the table when it
        is missing, and a database role may have rights on this one.
        """
        finding = self._figures_finding(connection)
        if finding is None:
            return [], False
        kind, said = finding
        said = f"{FIGURES} {said}"
        if kind == "shape":
            return [f"{said}: drop it (DROP TABLE {FIGURES}), and the next append by a role allowed to create it makes "
                    "it again from the log"], True  # fmt: skip
        if self.read_only:
            return [f"{said} (left as it is)"], True
        if not repair:
            # A log rewritten around the store leaves the keys of its old lines: the lines may be the wrong ones.
            return [f"{said}; the table or the log was changed outside timeline: if the log's lines are right (as "
                    "`verify --expect` with a checkpoint shows), `verify --repair-index` rebuilds the table from "
                    "them"], True  # fmt: skip
        try:
            self._in_write_transaction(self._remake_figures)
        except LogError as error:
            return [f"{said}; it could not be rebuilt ({error})"], True
        again = self._figures_finding(connection)
        if again is not None:
            return [f"{said}; rebuilt from the log's lines, it still {again[1]}"], True
        return [f"{said}; it was rebuilt from the log's lines"], False

    def _figures_finding(self, connection: Any) -> tuple[str, str] | None:
        """What is wrong with the figures table, as ("shape" or "rows", what), or None: it must be the table the
        store makes, and each entry it has a row for must be one of the log's first entries, with the figure key
        the entry's line makes, and no row may be missing before the last.

        The table is what admission looks repeats up by (``_known``): a row
        changed outside the store would let a repeat in while every line
        still checks, and a row past the log would stop the catch-up from
        filling the rows before it (``_catch_up_figures`` fills from the last
        row on). The checks of its rows count on its positions being unique
        whole numbers, which only its primary key makes them. The table may
        lag behind the log (a log made before it): the next write gives it
        the rows it lacks.
        """
        p = self.placeholder
        try:
            cursor = self._reading_cursor(connection)
            unlike = self._figures_unlike_ours(cursor)
            if unlike is not None:
                return "shape", f"is not the table timeline makes ({unlike})"
            if not self._has_table(cursor, FIGURES):
                return None
            # One statement, one snapshot: a writer adds entries and their rows in one transaction.
            cursor.execute(f"SELECT (SELECT MIN(position) FROM {FIGURES}), (SELECT MAX(position) FROM {FIGURES}), "
                           f"(SELECT COUNT(*) FROM {FIGURES}), (SELECT COUNT(*) FROM {TABLE})")  # fmt: skip
            first, last, rows, entries = cursor.fetchone()
            if not rows:
                return None
            if first < 0 or last >= entries:
                return "rows", f"has a row for position {first if first < 0 else last}, which the log does not hold"
            if rows != last + 1:  # positions are unique: some before the last are missing
                cursor.execute(
                    f"SELECT MIN(position) + 1 FROM {FIGURES} f WHERE position < {p} AND NOT EXISTS "
                    f"(SELECT 1 FROM {FIGURES} g WHERE g.position = f.position + 1)",
                    (last,),
                )
                missing = 0 if first > 0 else cursor.fetchone()[0]
                return "rows", f"has no row for position {missing}, though it has rows after it"
            done = -1
            while done < last:
                cursor.execute(
                    f"SELECT e.position, e.type, e.line, f.figure FROM {TABLE} e JOIN {FIGURES} f "
                    f"ON f.position = e.position WHERE e.position > {p} AND e.position <= {p} "
                    f"ORDER BY e.position LIMIT {_ROWS_AT_ONCE}",
                    (done, last),
                )
                found = cursor.fetchall()
                for position, type_name, line, figure in found:
                    made = None
                    if type_name in ("Observation", "Correction"):
                        made = _figure_row(decode_line(_line_bytes(line)))[1]
                    if figure != made:
                        said = "no key" if figure is None else shown(figure)
                        makes = "has no figure key" if made is None else f"has the figure key {shown(made)}"
                        return "rows", f"holds {said} for position {position}, but that entry {makes}"
                done = found[-1][0] if found else last
        except self.database_errors as error:
            raise self._failure(error) from None
        return None

    @abc.abstractmethod
    def _figures_unlike_ours(self, cursor: Any) -> str | None:
        """How the figures table differs from the one the store makes (its columns and key, a trigger on it, not
        a table at all), or None if it does not, or there is none."""

    def _remake_figures(self, cursor: Any) -> None:
        """Under the write lock: the figures table's rows made again from the lines (``verify --repair-index``)."""
        cursor.execute(f"DELETE FROM {FIGURES}")
        self._catch_up_figures(cursor, LogHead.of(self._last(cursor)).entries)

    def _read_through(self, projection: Projection, state: State) -> None:
        """Read the rest of the log after ``state`` (the projection of its first entries) into the projection, as
        a reader with no stored blocks reads it, for what that refuses (a fix of an observation not in the log
        before it): verify refuses every log a reader refuses."""
        read = getattr(projection, "read_lines", None)
        if read is None:
            extend(state, self._parsed(state.entries))
            return
        with contextlib.closing(self.lines(state.entries)) as lines:  # a database reads them in a transaction
            extend_read(state, (read(piece, -1) for piece in in_pieces(lines, _ROWS_AT_ONCE)), _decoded)

    def _rebuilt(self, projection: Projection, entries: int) -> State:
        """The projection of the log's first ``entries`` made anew: from runs of lines, if it reads lines itself
        (``read_lines``, as a first replay of a file reads them), else entry by entry."""
        read = getattr(projection, "read_lines", None)
        if read is None:
            return extend(projection.load([]), itertools.islice(self._parsed(0), entries))[0]
        with contextlib.closing(self.lines()) as lines:  # a database reads them in a transaction
            runs = (read(piece, -1) for piece in in_pieces(itertools.islice(lines, entries), _ROWS_AT_ONCE))
            return extend_read(projection.load([]), runs, _decoded)[0]

    def _set_aside(self, name: str) -> str:
        """Rename a projection's (or a result's) rows to a free ``<name>.mismatch-<n>``, under the write lock."""
        p = self.placeholder
        kept: list[str] = []

        def rename(cursor: Any) -> None:
            cursor.execute(f"SELECT DISTINCT name FROM {PROJECTIONS} WHERE name LIKE {p}", (f"{name}.%",))
            taken = {found for (found,) in cursor.fetchall()}
            n = 1
            while f"{name}.mismatch-{n}" in taken:
                n += 1
            kept.append(f"{name}.mismatch-{n}")
            cursor.execute(f"UPDATE {PROJECTIONS} SET name = {p} WHERE name = {p}", (kept[0], name))

        self._in_write_transaction(rename)
        return kept[0]

    # -- results kept beside the log: one row of the projections table, covering the whole log ----

    def result(self, name: str, head: LogHead) -> BinaryIO | None:
        connection = self._connection(write=False)
        if connection is None:
            return None
        try:
            cursor = connection.cursor()
            if not self._has_table(cursor, PROJECTIONS):
                return None
            return self._open_kept(cursor, (name, head.entries, head.head))
        except self.database_errors as error:
            raise self._failure(error) from None

    def _open_kept(self, cursor: Any, key: tuple[str, int, str]) -> BinaryIO | None:
        """The row of a kept result (``key``: its name and head), opened for reading where it lies, or None.

        Each database reads it a part at a time its own way: a question about
        one incident reads its part of the full replay kept by incident.
        """
        raise NotImplementedError

    def _block_row(self) -> str:
        """The condition that picks a stored block's row, given its key: name, first entry, entries, last hash."""
        p = self.placeholder
        return f"name = {p} AND first_entry = {p} AND entries = {p} AND last_hash = {p}"

    def _kept_row(self) -> str:
        """The condition that picks a kept result's row, given its name and the head it was made at."""
        p = self.placeholder
        return f"name = {p} AND first_entry = 0 AND entries = {p} AND last_hash = {p}"

    def keep_result(self, name: str, head: LogHead, chunks: Iterable[bytes]) -> bool:
        """One row replacing the one before, if this role may (a role that may only insert keeps none).

        The bytes wait in a temporary file, not joined in memory: the replay
        an import keeps is tens of megabytes.
        """
        if self.read_only:
            return False
        kept = []
        with tempfile.TemporaryFile(prefix="timeline-result-") as body:
            for chunk in chunks:
                body.write(chunk)
            size = body.tell()

            def replace(cursor: Any) -> None:
                p = self.placeholder
                cursor.execute(f"DELETE FROM {PROJECTIONS} WHERE name = {p}", (name,))
                body.seek(0)
                self._insert_result(cursor, (name, head.entries, head.head), body, size)
                kept.append(True)

            self._save_without_waiting(replace)
        return bool(kept)

    def _insert_result(self, cursor: Any, key: tuple[str, int, str], body: BinaryIO, size: int) -> None:
        """Insert the row of a kept result: (name, entries, head) and ``size`` bytes read from ``body``."""
        p = self.placeholder
        cursor.execute(
            f"INSERT INTO {PROJECTIONS} (name, first_entry, entries, last_hash, body) VALUES ({p}, 0, {p}, {p}, {p})",
            (*key, body.read()),
        )

    def set_result_aside(self, name: str) -> str | None:
        connection = self._connection(write=False)
        if connection is None:
            return None
        return self._set_aside(name)

    def _write_rows(
        self, cursor: Any, lines: Iterable[bytes], foldings: Sequence[Folding], after_piece: Callable[[], None]
    ) -> None:
        """Insert the entry and figure rows of ``lines`` a few thousand at a time, in the caller's transaction,
        and fold each line into ``foldings`` on the way (``after_piece`` is called after each piece).

        The lines are taken as they are made: a batch of millions of imported
        rows never has all its lines or rows in memory at once; it still
        lands whole or not at all, as the transaction does.
        """
        for piece in in_pieces(lines, _ROWS_AT_ONCE):
            decoded = [(line, decode_line(line)) for line in piece]
            self._insert(cursor, [_row(line, raw) for line, raw in decoded])
            self._insert_figures(cursor, [_figure_row(raw) for _, raw in decoded])
            for _, raw in decoded:
                for folding in foldings:
                    folding.add(raw)
            after_piece()

    def _write_spooled_rows(
        self, cursor: Any, batch: SpooledLines, foldings: Sequence[Folding], after_piece: Callable[[], None]
    ) -> None:
        """``_write_rows`` of a spooled batch: the rows of its observations are made, and the projections
        folded, from the spool's columns (``spool.ObservationRun``); only its other lines are decoded."""
        for _, runs in batch.pieces(_ROWS_AT_ONCE):
            entries: list[tuple] = []
            figures: list[tuple[int, str | None]] = []
            for run in runs:
                if run.figures is not None:
                    positions = range(run.position, run.position + len(run))
                    entries += map(_observation_row, positions, itertools.repeat(run.recorded_at), run.ids, run.lines)
                    figures += zip(positions, _hex_keys(run.figures["key"]), strict=True)
                    for folding in foldings:
                        folding.add_observations(run, _decoded)
                    continue
                for line in run.lines:
                    raw = decode_line(line)
                    entries.append(_row(line, raw))
                    figures.append(_figure_row(raw))
                    for folding in foldings:
                        folding.add(raw)
            self._insert(cursor, entries)
            self._insert_figures(cursor, figures)
            after_piece()

    def _insert_figures(self, cursor: Any, rows: list[tuple[int, str | None]]) -> None:
        if rows:
            p = self.placeholder
            cursor.executemany(f"INSERT INTO {FIGURES} (position, figure) VALUES ({p}, {p})", rows)

    def _catch_up_figures(self, cursor: Any, entries: int) -> None:
        """Under the write lock: give the figures table a row for every entry it lacks."""
        p = self.placeholder
        cursor.execute(f"SELECT MAX(position) FROM {FIGURES}")
        done = cursor.fetchone()[0]
        done = -1 if done is None else done
        while done < entries - 1:
            cursor.execute(
                f"SELECT line FROM {TABLE} WHERE position > {p} ORDER BY position LIMIT 10000", (done,)
            )
            lines = [_line_bytes(line) for (line,) in cursor.fetchall()]
            rows = [_figure_row(decode_line(line)) for line in lines]
            if not rows:
                return
            self._insert_figures(cursor, rows)
            done = rows[-1][0]

    # -- shared steps -----------------------------------------------------------

    def _in_write_transaction(self, work) -> None:
        connection = self._connection(write=True)
        try:
            with self._write_transaction(connection) as cursor:
                work(cursor)
        except self.database_errors as error:
            raise self._failure(error) from None

    def _last(self, cursor: Any) -> RawEntry | None:
        cursor.execute(f"SELECT line FROM {TABLE} ORDER BY position DESC LIMIT 1")
        row = cursor.fetchone()
        if row is None:
            return None
        line = row[0]
        return _decode(_line_bytes(line), self.location)

    def _known(self, cursor: Any, subjects: Collection[str]) -> IdIndex:
        """The status of just the ids a batch is about, read under the write lock."""
        p = self.placeholder

        def read(position: int) -> bytes:
            cursor.execute(f"SELECT line FROM {TABLE} WHERE position = {p}", (position,))
            line = cursor.fetchone()[0]
            return _line_bytes(line)

        def similar(keys: Iterable[str]) -> Iterator[tuple[str, int]]:
            cursor.execute(f"SELECT 1 FROM {FIGURES} WHERE figure IS NOT NULL LIMIT 1")
            if cursor.fetchone() is None:
                return  # a log without observations has nothing to repeat
            found: list[tuple[str, int]] = []
            for chunk in in_pieces(keys, 500):  # each key once
                cursor.execute(
                    f"SELECT e.subject, e.position FROM {FIGURES} f JOIN {TABLE} e ON e.position = f.position "
                    f"WHERE f.figure IN ({', '.join([p] * len(chunk))})",
                    chunk,
                )
                found += cursor.fetchall()
            # Only records whose current version that still is, and not retracted.
            current = self._known(cursor, {subject for subject, _ in found})
            for subject, position in found:
                version = current.version(subject)
                if current.status(subject) == LIVE and version is not None and version[0] == position:
                    yield subject, position

        def taken(ids: Sequence[str]) -> set[str]:
            cursor.execute(f"SELECT 1 FROM {TABLE} WHERE type = 'Observation' LIMIT 1")
            if cursor.fetchone() is None:
                return set()  # the first import into a log: no query per id
            held: set[str] = set()
            for chunk in in_pieces(ids, 500):
                cursor.execute(
                    f"SELECT subject FROM {TABLE} WHERE type = 'Observation' "
                    f"AND subject IN ({', '.join([p] * len(chunk))})",
                    chunk,
                )
                held.update(subject for (subject,) in cursor.fetchall())
            return held

        def fetch(ids: Collection[str]) -> list[tuple[str, str, int]]:
            rows: list[tuple[str, str, int]] = []
            for chunk in in_pieces(sorted(ids), 500):
                cursor.execute(
                    f"SELECT type, subject, position FROM {TABLE} "
                    f"WHERE subject IN ({', '.join([p] * len(chunk))}) ORDER BY position",
                    chunk,
                )
                rows += cursor.fetchall()
            return rows

        known = IdIndex(read, similar, taken, fetch)
        for type_name, subject, position in fetch(subjects):
            known.add(type_name, subject, position)
        known.fetched(subjects)
        known.names = self._names(cursor)
        return known

    def _names(self, cursor: Any) -> Names:
        """The described names, from the description rows alone (a partial index finds them)."""
        names = Names()
        cursor.execute(f"SELECT line FROM {TABLE} WHERE {DESCRIPTION_ROWS} ORDER BY position")
        for (line,) in cursor.fetchall():
            raw = decode_line(_line_bytes(line))
            names.add(raw.type, raw.event["slug"])
        return names

    def names(self) -> Names:
        connection = self._connection(write=False)
        if connection is None:
            return Names()
        try:
            return self._names(connection.cursor())
        except self.database_errors as error:
            raise self._failure(error) from None


_COLUMNS = ("position", "recorded_at", "type", "subject", "hash", "prev_hash", "line")  # of a row, as ``_row`` makes it


def _whole_numbers(*values: Any) -> bool:
    """Whether a block's row names its entries by whole numbers: a table remade without its columns' types
    (damage) may hold text there."""
    return all(type(value) is int for value in values)


def _row(line: bytes, raw: RawEntry) -> tuple:
    return (raw.position, raw.recorded_at, raw.type, subject_id(raw.type, raw.event), raw.hash, raw.prev_hash, line)


def _observation_row(position: int, recorded_at: str, observation_id: str, line: bytes) -> tuple:
    """``_row`` of an observation's line this append made, from what made it: only its hashes are read from it.

    The line is ``{"position":...,"prev_hash":"<64 hex digits>",...,"hash":"<64 hex digits>"}``
    (``envelope.entry_line``): the envelope's ``prev_hash`` comes before the event.
    """
    at = line.index(b'"prev_hash":"') + 13
    prev_hash = line[at : at + 64].decode()
    return position, recorded_at, "Observation", observation_id, line[-66:-2].decode(), prev_hash, line


def _line_bytes(line: Any) -> bytes:
    """A row's line as bytes: the database's bytes, or text where a row was put in around the store."""
    return line.encode() if isinstance(line, str) else bytes(line)


def _hex_keys(keys: Any) -> list[str]:
    """Figure keys of 16 bytes each (a numpy column of them) as ``admission.figure_key`` writes them."""
    text = keys.tobytes().hex()
    return [text[at : at + 32] for at in range(0, len(text), 32)]


def _decoded(line: bytes, offset: int) -> RawEntry:
    """A line this append made, decoded (as ``_write_rows`` decodes each)."""
    return decode_line(line)


def _figure_row(raw: RawEntry) -> tuple[int, str | None]:
    """(position, figure key) of a stored entry; the key only for observations and corrections."""
    if raw.type not in ("Observation", "Correction"):
        return raw.position, None
    data = raw.event if raw.schema == SCHEMA[raw.type] else upcast(raw.type, raw.schema, raw.event)
    return raw.position, figure_key(data if raw.type == "Observation" else data["replacement"])


def _unreadable_block(first: Any) -> str:
    """What a reader says of a stored block whose bytes are not one, or whose row does not name its entries."""
    if not _whole_numbers(first):
        return f"holds a block whose first entry is {shown(first)}, not a whole number (damage)"
    return f"holds a block from entry {first} whose bytes cannot be read (damage)"


def _decode(line: bytes, location: str) -> RawEntry:
    try:
        return decode_line(line)
    except ValueError as exc:
        raise UnreadableEntryError(f"{location}: the last entry is unreadable ({exc})") from None
