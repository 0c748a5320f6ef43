"""The one interface every log store offers, and what they share.

A store keeps entries as the exact lines ``envelope.encode_entry`` made, in
position order. Stores differ in how they lock, write and read; the chain
check, the reading of events and the admission rules are the same for all
and live here, so that every store passes one contract test suite.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import datetime as dt
import functools
import itertools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import attrs
import orjson

from .admission import (
    DESCRIBES,
    RETRACTED,
    KnownIds,
    Names,
    admit,
    batch_names,
    check_version,
    late_date,
    new_descriptions,
    subject_of,
)
from .codec import SCHEMA, event_from_stored, unstructure
from .cycles import no_cycle_collection
from .envelope import (
    GENESIS,
    Entry,
    RawEntry,
    chained_lines,
    check_line,
    decode_line,
    encode_entry,
    format_time,
    parse_time,
)
from .errors import BrokenChainError, InputError, LogError, ReadOnlyLogError, StoredEntryError, StoreError, shown
from .events import Correction, Event, Observation, Retraction
from .parallel import in_two
from .projection import Block, Part, Projection, Read, State, extend
from .spool import Spool, SpooledLines, admit_spool

Clock = Callable[[], dt.datetime]


class Encoder(Protocol):
    """What ``append_lines`` calls under the write lock to make the lines of one batch.

    ``last`` is the log's last entry (None for an empty log), ``now`` the
    store clock's time as stored, ``known`` what admission needs of the log.
    Any refusal is raised by the call itself; the lines it returns may be
    made as the store takes them, once and in order, so that a batch of
    millions is never held twice.
    """

    def __call__(self, last: RawEntry | None, now: str, known: KnownIds) -> Iterable[bytes]: ...


# Wraps the lines of a long job (writing an admitted batch, verifying a log) as they are made or read, given
# how many there are: a progress bar's.
Progress = Callable[[Iterable[bytes], int], Iterable[bytes]]


def in_pieces(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """``lines`` a list of at most ``size`` at a time, taken as they come: how every store writes a batch."""
    lines = iter(lines)
    return iter(lambda: list(itertools.islice(lines, size)), [])


@attrs.frozen
class Appended:
    """What a spooled batch added: the new descriptions put before it, and where its events begin."""

    described: list[Event]
    first: int  # the position of the spool's first event
    count: int  # how many events the spool held


def spooled_lines(described: Sequence[Event], spool: Spool, head: LogHead, recorded_at: str) -> Iterator[bytes]:
    """The stored lines of new descriptions and then of a spool's events, chained after ``head``."""
    descriptions = ((type(event).__name__, orjson.dumps(unstructure(event))) for event in described)
    return chained_lines(itertools.chain(descriptions, spool.stored()), position=head.entries,
                         recorded_at=recorded_at, batch_end=head.entries + len(described) + spool.count - 1,
                         prev_hash=head.head)  # fmt: skip


def _made_by_a_fork(make: Callable[[], Iterator[bytes]], count: int, size: int) -> Iterator[bytes]:
    """The ``count`` lines ``make()`` makes (about ``size`` bytes), made by a fork meanwhile (``parallel.in_two``)
    a piece at a time, while this process writes and folds those made before them.

    Making them (the envelope, the chain's SHA-256) was half of writing an
    import. They wait for this process in the fork's temporary file: the
    fork is made only where the temporary folder has room for them twice
    over (the log may be on the same disk), and one that cannot write the
    file, or dies, leaves what it did not send to this process, which makes
    the same. A short batch is made here: a fork would cost more than it saves.
    """
    if count < FORKED_LINES:
        yield from make()
        return
    for piece in in_two(lambda: iter(()), lambda: in_pieces(make(), _MADE_AT_ONCE), room=2 * size):
        yield from piece


FORKED_LINES = 20_000
_MADE_AT_ONCE = 4096
_ENVELOPE = 256  # bytes a line holds besides its event (position, time, type, hashes), and then some


def check_log_file(path: Path, location: str) -> None:
    """A log file a writer may use: a regular file it may write, or one it may create in its folder.

    A FIFO or a device would block or swallow the batch; a dangling link
    is followed to the folder it names. Checked before an import reads its
    file, so that none of this is found out a million rows later.
    """
    target = path.resolve()
    if target.exists():
        if not target.is_file() and not target.is_dir():  # a folder: the store names it so itself
            raise StoreError(f"{location} is not a regular file, so it cannot hold a log")
        if not os.access(target, os.W_OK):
            raise StoreError(f"cannot write to {location}: permission denied")
    elif not target.parent.is_dir():
        raise StoreError(f"cannot create {location}: its folder does not exist")
    elif not os.access(target.parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create {location}: permission denied in its folder")


@functools.lru_cache(maxsize=1024)
def _day_of(recorded_at: str) -> dt.date:
    """The day of a stored time, or ``ValueError`` if it is not written as a writer stamps one (``format_time``:
    fixed width, so that text order is time order); the entries of a batch share one, parsed once."""
    moment = parse_time(recorded_at)  # strptime also reads what no writer writes: "2025-4-1T9:0:1.5Z"
    if format_time(moment) != recorded_at:
        raise ValueError(f"recorded_at {recorded_at!r} is not a time as writers write one, {format_time(moment)!r}")
    return moment.date()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@attrs.frozen
class LogHead:
    """How long a log is and the hash of its last entry: together they name one exact log."""

    entries: int
    head: str

    @classmethod
    def of(cls, last: RawEntry | None) -> LogHead:
        return cls(0, GENESIS) if last is None else cls(last.position + 1, last.hash)


@attrs.frozen
class TornTail:
    """Bytes at the end of a log that no acknowledged append wrote completely."""

    offset: int
    size: int
    entries: int  # complete lines of an unfinished batch among those bytes


@attrs.frozen
class Repaired:
    """What ``repair`` moved aside, and where to."""

    quarantine: Path
    torn: TornTail


@attrs.frozen
class Verified:
    """What ``verify`` proved: the whole chain up to ``head`` holds."""

    head: LogHead
    torn: TornTail | None
    # What became of the projections kept beside the log (the replay index), if the store keeps any.
    index_note: str | None = None
    # One of them did not match the log: a finding of its own (the old one is kept as evidence).
    index_mismatch: bool = False


class ChainCheck:
    """Checks stored lines one after another, as a reader or ``verify`` meets them."""

    def __init__(self) -> None:
        self.last: RawEntry | None = None

    def feed(self, line: bytes) -> RawEntry:
        position = 0 if self.last is None else self.last.position + 1
        raw = check_line(line, position, GENESIS if self.last is None else self.last.hash)
        if self.last is not None and raw.recorded_at < self.last.recorded_at:
            raise BrokenChainError(f"position {position}: recorded_at goes back in time", position)
        open_batch = self.last is not None and self.last.position < self.last.batch_end
        if raw.batch_end < position or (open_batch and raw.batch_end != self.last.batch_end):
            raise BrokenChainError(f"position {position}: batch_end {raw.batch_end} breaks its batch", position)
        self.last = raw
        return raw

    @property
    def head(self) -> LogHead:
        return LogHead.of(self.last)


# ``verify`` reads a log a window of lines at a time (held in memory: ``VERIFY_BYTES`` of them), and checks the
# first share of each here while a fork checks the rest (``parallel.in_two``): the fork only checks lines it
# inherited, so it never touches the database or the file. A window shorter than ``IN_TWO_LINES`` is checked
# here alone (a fork would cost more than it saves).
VERIFY_BYTES = 48 << 20
IN_TWO_LINES = 16_384
_VERIFY_SHARE = 0.5
_CHECKED_RUN = 4096  # lines a fork checks between two reports of its progress


def run_checks(counts: Iterator[int], progress: Progress | None, length: Callable[[], int | None]) -> None:
    """Run a check that says how many entries it has checked as it goes, through a progress bar of ``length()``
    entries if there is one (asked only then: it may read the log)."""
    entries = (None for count in counts for _ in range(count))
    collections.deque(entries if progress is None else progress(entries, length()), maxlen=0)


def _checked_in_windows(
    lines: Iterator[bytes], check: ChainCheck, readable: Callable[[RawEntry], None]
) -> Iterator[int]:
    """How many lines have been checked, as they are, ``check`` following the chain to the last one."""
    for window, unread in _windows(lines, VERIFY_BYTES):
        middle = int(len(window) * _VERIFY_SHARE)
        if len(window) < max(IN_TWO_LINES, 2) or middle == 0:
            yield from _checked(window, check, readable)
        else:
            first = functools.partial(_checked, window[:middle], check, readable)
            yield from in_two(first, functools.partial(_checked_after, window, middle, readable))
            check.last = decode_line(window[-1])  # the fork followed the chain to it (or this process did)
        if unread is not None:  # the lines before a row that could not be read are checked first, as they come
            raise unread


def _windows(lines: Iterator[bytes], size: int) -> Iterator[tuple[list[bytes], Exception | None]]:
    """The lines, in lists of the fewest that hold at least ``size`` bytes (the last may hold fewer); with the
    last, what reading the next one raised, if it did (a row the database cannot give back)."""
    window, held = [], 0
    try:
        for line in lines:
            window.append(line)
            held += len(line)
            if held >= size:
                yield window, None
                window, held = [], 0
    except Exception as exc:  # raised once the lines read before it are checked
        yield window, exc
        return
    if window:
        yield window, None


def _checked(lines: list[bytes], check: ChainCheck, readable: Callable[[RawEntry], None]) -> Iterator[int]:
    for start in range(0, len(lines), _CHECKED_RUN):
        run = lines[start : start + _CHECKED_RUN]
        for line in run:
            readable(check.feed(line))
        yield len(run)


def _checked_after(window: list[bytes], middle: int, readable: Callable[[RawEntry], None]) -> Iterator[int]:
    """``_checked`` of the window's lines from ``middle`` on, the chain followed from the line before them (only
    decoded here: the part that ends with it checks it, and comes first)."""
    check = ChainCheck()
    check.last = decode_line(window[middle - 1])
    yield from _checked(window[middle:], check, readable)


T = TypeVar("T")


def naming_entries(method: Callable[..., T]) -> Callable[..., T]:
    """A store's method that names its log in a ``StoredEntryError`` raised inside it.

    A projection refuses a stored event knowing only its position; the
    store it was read from adds which log that is.
    """

    @functools.wraps(method)
    def named(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except StoredEntryError as exc:
            raise exc.located(self.location) from None

    return named


class Store(abc.ABC):
    """An append-only log of entries.

    ``location`` names the log in messages. ``clock`` stamps ``recorded_at``;
    stamps never go back in time along a log, so known-at is always a prefix.
    """

    location: str
    read_only: bool = False
    # Whether a crash mid-write can leave bytes no append finished (a file can; a transaction cannot).
    can_tear: bool = False
    clock: Clock = staticmethod(utc_now)
    # The projections that appends keep up to date (see ``keep``).
    kept: tuple[Projection, ...] = ()
    # Wraps what a projection is rebuilt from when that is a long read (a log copied without its sidecars), given
    # about how many there are and the projection's title: a command line's progress bar. The JSON Lines store's.
    rebuilding: Callable[[Iterable, int, str], Iterable] | None = None

    # -- what each store implements -------------------------------------

    @abc.abstractmethod
    def lines(self, start: int = 0) -> Iterator[bytes]:
        """The stored lines of acknowledged entries from ``start``, streamed in order."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether there is a log here at all (an empty one counts); only writers create one."""

    @abc.abstractmethod
    def head(self) -> LogHead:
        """Length and head hash of the acknowledged log."""

    @abc.abstractmethod
    def append_lines(self, subjects: Collection[str], encode: Encoder) -> None:
        """Under the store's write lock, call ``encode(last=..., now=..., known=...)``
        and write the lines it returns, whole and durably, or not at all.

        ``known`` must know the status of at least the observation ids in ``subjects``.
        Callers append events with ``append`` and ``fix``, which admit them first.
        """

    @abc.abstractmethod
    def append_stored(self, lines: Sequence[bytes], after: LogHead) -> None:
        """Under the write lock, write already-encoded lines if the log's head is still ``after``.

        For ``copy_from``: the lines were checked as a chain on the way; nothing is admitted again.
        """

    @abc.abstractmethod
    def names(self) -> Names:
        """The incident and monitor slugs the log has described, for refusing a name it has not."""

    def projection(self, projection: Projection, since: State | None = None) -> State:
        """``projection``'s state for the whole acknowledged log.

        With ``since`` (a state of this projection read earlier from this
        store), only the entries appended after it are folded, if its last
        entry still stands. This default parses the log; stores that keep a
        projection's blocks beside the log read those and parse only the rest.
        """
        if (
            since is not None
            and since.entries
            and self.head().entries >= since.entries
            and decode_line(self.line_at(since.entries - 1)).hash == since.last_hash
        ):
            return extend(since, ((raw, -1, -1) for raw in self.records(since.entries)))[0]
        return extend(projection.load([]), ((raw, -1, -1) for raw in self.records()))[0]

    def partial_blocks(
        self, projection: Projection, read: Callable[[Read], tuple[Block, Part]]
    ) -> list[tuple[Block, Part]] | None:
        """What ``read`` takes of each stored block of ``projection``, where they cover the whole log and match it.

        ``read`` is given a function reading ``size`` bytes of a block's body
        from ``offset`` (``projection.bodies``), and returns the block's place
        in the log with what it read. None where this store cannot read a
        block in part, or where its blocks do not match the log or do not
        reach its head: the caller reads the projection whole, which brings
        it up to date. This default reads none in part.
        """
        return None

    def check_writable(self) -> None:
        """Raise at once the error a write would meet: an import then fails before it reads a million rows.

        It reaches the log (a server is connected to) and writes nothing; a
        log that does not exist yet is fine where a writer could create it.
        """
        if self.read_only:
            raise ReadOnlyLogError(f"{self.location} is read-only")
        self.head()

    def keep(self, projection: Projection) -> None:
        """Keep ``projection`` up to date with every append this store makes.

        The append extends it under the append's own lock, once its lines are
        durable, so a reader finds it at the log's head. A store with nowhere
        to keep blocks (the base class) keeps none; a reader still gets the
        projection whole from ``projection``, by parsing.
        """
        if projection.name not in {kept.name for kept in self.kept}:
            self.kept = (*self.kept, projection)

    def line_at(self, position: int, offset: int = -1) -> bytes:
        """The stored line of one entry (``offset`` is a hint stores that read files may use)."""
        for line in self.lines(position):
            return line
        raise LogError(f"{self.location} has no entry at position {position}")

    def torn(self) -> TornTail | None:
        """Bytes of an unfinished write at the end of the log, if the store can have any."""
        return None

    def repair(self) -> Repaired | None:
        """Move an unfinished write out of the log so that appends may go on; None if there was none."""
        return None

    def result(self, name: str, head: LogHead) -> BinaryIO | None:
        """The bytes kept under ``name`` (``keep_result``) if they were made at exactly ``head``; else None."""
        return None

    def keep_result(self, name: str, head: LogHead, chunks: Iterable[bytes]) -> bool:
        """Keep the bytes of ``chunks`` beside the log as ``name`` made at ``head``, replacing what was kept.

        For results derived from the whole log (a replay, rendered): a reader
        takes them only while the log still ends at ``head``. Best effort, as
        for projections; whether they were kept. ``chunks`` may be left
        partly unread when they are not.
        """
        return False

    def set_result_aside(self, name: str) -> str | None:
        """Move the bytes kept as ``name`` out of use, kept as evidence under a new name; that name."""
        return None

    def kept_checkpoints(self) -> list[bytes]:
        """Checkpoint lines the store keeps beside the log (a server shared by a team does)."""
        return []

    def keep_checkpoint(self, line: bytes) -> bool:
        """Keep a checkpoint line beside the log, if this kind of store does; whether it did."""
        return False

    def close(self) -> None:  # noqa: B027 - most stores hold nothing open between calls
        """Release connections; a closed store must not be used again."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- shared behaviour ------------------------------------------------

    def records(self, start: int = 0) -> Iterator[RawEntry]:
        """Entries with their events still as plain data: the fast read path."""
        for position, line in enumerate(self.lines(start), start):
            try:
                yield decode_line(line)
            except InputError as exc:
                raise self._unreadable(position, exc) from None

    def entries(self, start: int = 0) -> Iterator[Entry]:
        """Entries with their events structured and upcast to the current schema."""
        for raw in self.records(start):
            try:
                yield Entry.from_raw(raw)
            except (InputError, ValueError) as exc:
                raise self._unreadable(raw.position, exc) from None

    def _unreadable(self, position: int, exc: Exception) -> StoredEntryError:
        # A stored entry that cannot be read is a broken log, not bad input: say which log and where.
        reason = f"{exc.args[0]!r} is missing" if isinstance(exc, KeyError) and exc.args else str(exc)
        return StoredEntryError(position, reason, self.location)

    def append(
        self,
        events: Sequence[Event],
        labels: Sequence[str] | None = None,
        *,
        describe_new: bool = False,
        allow_duplicate: bool = False,
        progress: Progress | None = None,
    ) -> list[Entry]:
        """Append ``events`` as one batch: all of them land, or none do.

        Returns the entries once they are durable. Raises ``InputError`` if
        admission refuses an event (``labels`` name them in the message),
        such as an observation that repeats an effective one, unless
        ``allow_duplicate`` (a monitor that really published a total twice).
        With ``describe_new``, the incidents and monitors the events name that
        the log has not described are described first, in the same batch (the
        slug as their title or name); which names those are is decided under
        the write lock, so a description another writer has just added stays.
        ``progress`` wraps the writing of the admitted batch: it is given the
        lines as they are made, and how many there are (for a progress bar).
        """
        if not events:
            return []
        subjects = {subject_of(event) for event in events} - {None}
        given = list(labels) if labels is not None else [f"event {i + 1}" for i in range(len(events))]

        def make(known: KnownIds) -> tuple[Sequence[Event], Sequence[str]]:
            if not describe_new:
                return events, given
            described = new_descriptions(batch_names(events, given), known.names)
            named = [f"{DESCRIBES[type(d).__name__]} {d.slug}" for d in described]
            return [*described, *events], [*named, *given]

        return self._write(make, subjects, allow_duplicate=allow_duplicate, progress=progress)

    def append_spool(
        self,
        spool: Spool,
        *,
        describe_new: bool = False,
        allow_duplicate: bool = False,
        progress: Progress | None = None,
    ) -> Appended:
        """Append a spooled batch (``spool.Spool``) as ``append`` would the same events: all of them, or none.

        For a batch too large to hold: admission reads back only the events it
        must, and the entries are written from the spooled JSON. Returns what
        was appended, not every entry.
        """
        if self.read_only:
            raise ReadOnlyLogError(f"{self.location} is read-only")
        appended: list[Appended] = []

        def encode(last: RawEntry | None, now: str, known: KnownIds) -> Iterator[bytes]:
            head = LogHead.of(last)
            recorded_at = max(now, last.recorded_at) if last is not None else now
            today = parse_time(recorded_at).date()
            described = new_descriptions(spool.names, known.names) if describe_new else []
            admit_spool(spool, described, known, start=head.entries, today=today, allow_duplicate=allow_duplicate)
            appended[:] = [Appended(described, head.entries + len(described), spool.count)]
            spool.flush()  # before the fork that makes the lines reads it
            count = len(described) + spool.count
            made = _made_by_a_fork(lambda: spooled_lines(described, spool, head, recorded_at), count,
                                   spool.size + _ENVELOPE * count)  # fmt: skip
            made = made if progress is None else progress(made, count)
            return SpooledLines(made, spool, head.entries, len(described), recorded_at)

        with no_cycle_collection():
            self.append_lines(spool.targets, encode)
        return appended[0]

    def fix(
        self,
        observation_id: str,
        build: Callable[[Observation, int], Correction | Retraction],
        *,
        expected_version: int | None = None,
        label: str | None = None,
    ) -> Entry:
        """Append the correction or retraction ``build(record, version)`` makes from the current record.

        The record and its version are read under the same write lock as the
        append, so the fix can only be made from the version it replaces.
        With ``expected_version``, the fix is refused (``LogChangedError``)
        unless the record is still at that version.
        """
        where = label or observation_id

        def make(known: KnownIds) -> tuple[list[Event], list[str]]:
            status, version = known.status(observation_id), known.version(observation_id)
            if status is None or version is None:
                raise InputError(f"no observation {shown(observation_id)} in {self.location}", where)
            if status == RETRACTED:
                raise InputError(f"observation {shown(observation_id)} was retracted", where)
            if expected_version is not None:
                check_version(observation_id, expected_version, version, f"{where}: expected version")
            stored = Entry.from_raw(decode_line(known.line(version[0]))).event
            record = stored.replacement if isinstance(stored, Correction) else stored
            return [build(record, version[0])], [where]

        [entry] = self._write(make, {observation_id})
        return entry

    def _write(
        self,
        make: Callable[[KnownIds], tuple[Sequence[Event], Sequence[str]]],
        subjects: Collection[str],
        *,
        allow_duplicate: bool = False,
        progress: Progress | None = None,
    ) -> list[Entry]:
        """Under the write lock: make the batch and its labels from what the log holds, admit it and write it."""
        if self.read_only:
            raise ReadOnlyLogError(f"{self.location} is read-only")
        written: list[Entry] = []

        def encode(last: RawEntry | None, now: str, known: KnownIds) -> Iterator[bytes]:
            batch, named = make(known)
            head = LogHead.of(last)
            recorded_at = max(now, last.recorded_at) if last is not None else now
            stamp = parse_time(recorded_at)
            admit(batch, known, named, start=head.entries, today=stamp.date(), allow_duplicate=allow_duplicate)
            written.clear()
            made = lines(batch, head, recorded_at, stamp)
            return made if progress is None else progress(made, len(batch))

        def lines(batch: Sequence[Event], head: LogHead, recorded_at: str, stamp: dt.datetime) -> Iterator[bytes]:
            batch_end, prev = head.entries + len(batch) - 1, head.head
            for position, event in enumerate(batch, head.entries):
                line, digest = encode_entry(
                    event, position=position, recorded_at=recorded_at, batch_end=batch_end, prev_hash=prev
                )
                written.append(Entry(position, stamp, SCHEMA[type(event).__name__], batch_end, prev, digest, event))
                prev = digest
                yield line

        with no_cycle_collection():
            self.append_lines(subjects, encode)
        return written

    def copy_from(self, source: Store, *, chunk: int = 10_000, progress=None) -> LogHead:
        """Append every entry of ``source`` that this log does not hold yet, byte for byte.

        This log must be empty or a prefix of ``source``; the chain of ``source``
        is checked on the way, and entries go over in whole batches, so that an
        interrupted copy can simply be run again.
        """
        if self.read_only:
            raise ReadOnlyLogError(f"{self.location} is read-only")
        mine = self.head()
        check = ChainCheck()
        pending: list[bytes] = []
        lines = source.lines()
        if progress is not None:
            lines = progress(lines)
        for line in lines:
            raw = check.feed(line)
            if raw.position < mine.entries:
                if raw.position == mine.entries - 1 and raw.hash != mine.head:
                    raise LogError(
                        f"{self.location} is not empty and not a copy of the start of {source.location}; "
                        "copy into an empty log"
                    )
                continue
            source.check_readable(raw)  # before any of its batch is written: a copy never holds what verify refuses
            pending.append(line)
            if raw.position == raw.batch_end and len(pending) >= chunk:
                self._append_copied(pending, source)
                pending = []
        if check.head.entries < mine.entries:
            raise LogError(f"{self.location} holds more entries than {source.location}; copy into an empty log")
        if pending:
            self._append_copied(pending, source)
        return self.head()

    def _append_copied(self, lines: Sequence[bytes], source: Store) -> None:
        """``append_stored`` of lines copied from ``source``; an entry refused on the way is named where it lies."""
        try:
            self.append_stored(lines, self.head())
        except StoredEntryError as exc:
            raise exc.located(source.location) from None

    def verify(self, *, repair_index: bool = False, progress: Progress | None = None) -> Verified:
        """Check every stored line's hash, position, chain link, time and batch.

        Raises ``BrokenChainError`` naming the first bad position, or ``StoredEntryError`` for the first
        event that breaks the rules events are built under. ``repair_index``
        matters only to a store that keeps projections beside the log: it
        rebuilds one that does not match the log. ``progress`` wraps the
        entries as they are checked, with their number. A long log shares
        the check with a fork (``_checked_in_windows``), and names what one
        process names.
        """
        check = ChainCheck()
        # Closed here, not when a traceback that holds this frame goes: a database reads them in a transaction.
        with contextlib.closing(self.lines()) as lines:
            run_checks(_checked_in_windows(lines, check, self.check_readable), progress, self._length)
        return Verified(check.head, self.torn())

    def _length(self) -> int | None:
        """How many entries the log holds, for a progress bar; None if its last entry is unreadable (the check
        names it, where it lies)."""
        try:
            return self.head().entries
        except LogError:
            return None

    def check_readable(self, raw: RawEntry) -> None:
        """Raise ``StoredEntryError`` naming this log and the position of ``raw`` if it is not an entry this
        version reads: a line can be whole and chained, yet hold what no writer could have written. Its event
        must be one events are built as, its time one a writer stamps (the replay index refuses any other), and
        its figure dated no later than the day it was recorded, as admission asks (``admission.late_date``)."""
        try:
            event = event_from_stored(raw.type, raw.schema, raw.event)
            recorded_on = _day_of(raw.recorded_at)
            late = late_date(event, recorded_on)
            if late is not None:
                name, day = late
                raise ValueError(f"its {name}, {day}, is after the day it was recorded ({recorded_on}, UTC)")
        except (InputError, ValueError, KeyError, TypeError) as exc:
            raise self._unreadable(raw.position, exc) from None

    def now(self) -> str:
        return format_time(self.clock())
