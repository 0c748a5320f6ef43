"""The replay index: a projection of the log into the columns replay folds.

Replaying millions of entries is bound by parsing: each stored line carries
its source, quote and hashes, and most of it is not needed to compute the
series. The index keeps, per entry, only what replay uses, in arrays:

- every entry: its position, its recorded time (microseconds), its type and
  the byte offset of its line (a hint for reading one entry back);
- observations (one row each, in log order): series number, day, kind, low,
  high, qualifier and id;
- corrections: the row they replace and the corrected values;
- retractions: the row they withdraw;
- descriptions of incidents and monitors, as their event data.

It is a projection (``events_log.projection``): built block by block from a
log's entries (``IndexBuilder``; from stored lines, its observations are
skimmed, see ``skim``), kept by the store beside the log (the
sidecar ``<log>.index``, or rows of a SQL table), trusted only while the log
still ends where a block says, and extended by every append of a store that
keeps it. Whatever it says, the log is the truth: ``timeline verify``
rebuilds it from the log and compares.

A block is stored in parts, each incident's observation rows apart (see the
end of this module), so that a question about one incident reads only that
incident's part of each block (``incident_parts``).
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np

from events_log.admission import Names
from events_log.codec import SCHEMA, parse_date, upcast
from events_log.envelope import MAX_POSITION, RawEntry, parse_time, time_code
from events_log.errors import InputError, StoredEntryError
from events_log.events import (
    EVENT_TYPES,
    MAX_COUNT,
    MAX_ID_LENGTH,
    OBSERVATION_ID,
    Figure,
    Kind,
    Qualifier,
    figure_problem,
    id_problem,
    series_key_of,
)
from events_log.projection import Decode, Ids, NewIds, Read
from events_log.spool import OPEN as SPOOLED_OPEN

from .growing import Room
from .skim import INDEXED, LINE, OPEN, POSITION, QUALIFIER_CODE, QUALIFIERS, TIME, Fix, Skimmed, skim_lines

# The codes stored in the index are positions in these: new event types and qualifiers go at the end.
TYPES = tuple(EVENT_TYPES)
TYPE_CODE = {name: code for code, name in enumerate(TYPES)}
OBSERVATION = TYPE_CODE["Observation"]
# A spool keeps a qualifier as its position in ``Qualifier``: its code here, by position.
_SPOOLED_QUALIFIER = np.array([QUALIFIER_CODE[q.value] for q in Qualifier], dtype=np.int64)


class Columns(NamedTuple):
    """What replay folds of an observation: one value (or one array of them) per column.

    Observation rows, the values corrections give them, and the rows replay
    keeps after corrections all have these six columns, in this order.
    """

    series: Any  # the series' number (``LogIndex.series`` holds its key)
    day: Any  # reported_on, as a date ordinal
    cumulative: Any  # 1 for a cumulative figure, 0 for an increment
    low: Any
    high: Any  # OPEN when open-ended
    qualifier: Any  # its position in QUALIFIERS


# The dtype of each column as the index stores it.
COLUMN_TYPES = Columns(
    series=np.int32, day=np.int32, cumulative=np.int8, low=np.int64, high=np.int64, qualifier=np.int8
)
# The index's numpy arrays and their dtypes (a block holds each as raw bytes): one value per entry,
# observation row, correction or retraction. The values a correction gives, ``correction_<column>``,
# are also ``correction_values``.
ARRAYS = {
    "times": np.int64, "types": np.int8, "offsets": np.int64, "obs_entry": np.int64,
    **{f"obs_{name}": dtype for name, dtype in COLUMN_TYPES._asdict().items()},
    "correction_entry": np.int64, "correction_row": np.int64,
    **{f"correction_{name}": dtype for name, dtype in COLUMN_TYPES._asdict().items()},
    "retraction_entry": np.int64, "retraction_row": np.int64,
}  # fmt: skip


# A description as the index keeps it: (its position, its type, its event's data).
Described = tuple[int, str, dict[str, Any]]


class Block(msgspec.Struct, array_like=True, gc=False):
    """Consecutive entries of a log, column by column. Arrays are raw little-endian bytes."""

    first: int
    count: int
    end_offset: int  # byte offset just after the block's last line (JSON Lines), or -1
    last_hash: str
    times: bytes  # int64 per entry
    types: bytes  # int8 per entry
    offsets: bytes  # int64 per entry: where its line starts, or -1
    new_series: list[tuple[str, str, str, str, str | None]]
    obs_entry: bytes  # int64 per observation row: its position
    obs_series: bytes  # int32
    obs_day: bytes  # int32 date ordinal
    obs_cumulative: bytes  # int8
    obs_low: bytes  # int64
    obs_high: bytes  # int64, OPEN when open-ended
    obs_qualifier: bytes  # int8
    obs_ids: str  # ids joined by newlines (ids cannot hold one)
    correction_entry: bytes  # int64 per correction: its position
    correction_row: bytes  # int64: the observation row it corrects
    correction_series: bytes
    correction_day: bytes
    correction_cumulative: bytes
    correction_low: bytes
    correction_high: bytes
    correction_qualifier: bytes
    retraction_entry: bytes  # int64 per retraction: its position
    retraction_row: bytes  # int64: the observation row it withdraws
    described: list[tuple[int, str, dict[str, Any]]]  # (position, type, event data)
    correction_ids: str = ""  # the ids of the observations corrected, joined by newlines
    # Incident slug -> its observation rows in the block (int32, from 0, ascending): a block is kept with each
    # incident's rows apart (``_ReplayIndex.encode``), so that one incident is read without the others.
    incident_rows: dict[str, bytes] = msgspec.field(default_factory=dict)


_encode = msgspec.msgpack.Encoder().encode
_decode_block = msgspec.msgpack.Decoder(Block).decode


class IndexBuilder:
    """Folds entries into blocks; knows the series and observation ids the log already has."""

    def __init__(
        self, series: Iterable[tuple] = (), rows: Callable[[], Mapping[str, int]] | None = None, next_row: int = 0
    ) -> None:
        self.series: dict[tuple, int] = {key: n for n, key in enumerate(series)}
        self._keys = list(self.series)  # by number
        # New ids are kept apart; the log's own are looked up only if a correction
        # or retraction needs them (making that map costs a pass over every id).
        self.new_ids = NewIds(next_row)
        self._log_rows = rows
        self._reset()

    def _reset(self) -> None:
        self._first: int | None = None
        self._count = 0
        self._last_hash = ""
        self._end = -1
        # Per entry, as machine numbers: a block's are made into bytes at once, not an int at a time.
        self._times = array("q")
        self._types = array("b")
        self._offsets = array("q")
        self._new_series: list[tuple] = []
        self._obs: list[tuple] = []
        self._obs_tables: list[np.ndarray] = []  # rows before those of ``_obs``, as tables (``add_observations``)
        self._obs_ids: list[str] = []
        self._corrections: list[tuple] = []
        self._correction_ids: list[str] = []
        self._retractions: list[tuple[int, int]] = []
        self._described: list[tuple[int, str, dict]] = []
        self._time_cache: dict[str, int] = {}

    def _series_number(self, key: tuple) -> int:
        """The number of a series, a new one numbered next: in the order the log first names them."""
        number = self.series.get(key)
        if number is None:
            number = self.series[key] = len(self.series)
            self._new_series.append(key)
            self._keys.append(key)
        return number

    def _values(self, data: dict[str, Any]) -> Columns:
        """The columns of an observation's data, checked as an event's are when it is built.

        Stored data is not trusted: a line whose chain holds may still carry
        a figure no writer could have admitted (a negative count, a high
        below its low), which replay would otherwise sum.
        """
        problem = id_problem(data["id"])
        if problem is not None:
            raise ValueError(problem)
        stored = data["figure"]
        figure = Figure(stored["low"], stored["high"], Qualifier(stored["qualifier"]))
        return Columns(
            series=self._series_number(series_key_of(data)),
            day=parse_date(data["reported_on"]).toordinal(),
            cumulative=Kind(data["kind"]) is Kind.CUMULATIVE,
            low=figure.low,
            high=OPEN if figure.high is None else figure.high,
            qualifier=QUALIFIER_CODE[figure.qualifier],
        )

    def add(self, raw: RawEntry, offset: int = -1, end: int = -1) -> None:
        """Add the next entry; ``offset`` and ``end`` are where its line starts and ends in the file.

        Raises ``StoredEntryError`` naming its position if its event is not one
        this version reads.
        """
        code, time = self._taken_in(raw)
        self._times.append(time)
        self._types.append(code)
        self._offsets.append(offset)
        self._count += 1
        self._last_hash = raw.hash
        self._end = end

    def _taken_in(self, raw: RawEntry) -> tuple[int, int]:
        """What an entry says, taken in (its observation row, fix or description): all but its own columns, which
        are its type's code and its time's, returned."""
        try:
            return self._take(raw)
        except (InputError, ValueError, KeyError, TypeError) as exc:
            reason = f"{exc.args[0]!r} is missing" if isinstance(exc, KeyError) else str(exc)
            raise StoredEntryError(raw.position, reason) from None

    def _take(self, raw: RawEntry) -> tuple[int, int]:
        if not 0 <= raw.position <= MAX_POSITION:
            raise ValueError(f"position {raw.position} is not one a log can reach")
        data = raw.event if raw.schema == SCHEMA.get(raw.type) else upcast(raw.type, raw.schema, raw.event)
        values = None
        if raw.type == "Observation":
            values = self._values(data)
        elif raw.type == "Correction":
            values = self._values(data["replacement"])
        if self._first is None:
            self._first = raw.position
        time, code = self._time_code(raw.recorded_at), TYPE_CODE[raw.type]
        if raw.type == "Observation":
            self.new_ids.add(data["id"])
            self._obs.append((raw.position, *values))
            self._obs_ids.append(data["id"])
        elif raw.type == "Correction":
            row = self._row(data["observation_id"], raw.position)
            self._corrections.append((raw.position, row, *values))
            self._correction_ids.append(data["observation_id"])
        elif raw.type == "Retraction":
            self._retractions.append((raw.position, self._row(data["observation_id"], raw.position)))
        else:
            self._described.append((raw.position, raw.type, data))
        return code, time

    def _take_fix(self, fix: Fix) -> None:
        """A skimmed fix taken in, as ``_take`` takes its line: the row it names is the last one of that id."""
        if fix.type == "Correction":
            number = self._series_number(fix.key)
            row = self._row(fix.observation_id, fix.position)
            self._corrections.append((fix.position, row, number, *fix.values))
            self._correction_ids.append(fix.observation_id)
        else:
            self._retractions.append((fix.position, self._row(fix.observation_id, fix.position)))

    def add_run(self, run: Skimmed, decode: Decode) -> None:
        """Add the entries of skimmed lines (``skim.skim_lines``), as ``add`` of each line would.

        Walking the run, the rows between two of its other lines (fixes, and
        lines read the exact way through ``decode``) give only their ids and
        series as they come, so that a fix finds exactly the observations
        before it and series are numbered in the order the log first names
        them. The rows themselves, and every entry's own columns, go in once
        for the run: with a fix every few dozen lines, taking the rows in
        between each time cost more than the fixes. A line read the exact way
        that holds an observation takes in the rows before it first, so that
        rows stay in log order.
        """
        rows, starts, count = run.rows, run.starts, len(run)
        table = rows[:, INDEXED]  # a copy: its series are renumbered below
        types = np.full(count, OBSERVATION, dtype=np.int8)
        times = np.empty(count, dtype=np.int64)
        times[rows[:, LINE]] = rows[:, TIME]
        if self._first is None and count and 0 not in run.others:
            self._first = run.fixes[0].position if 0 in run.fixes else int(rows[0, POSITION])
        last_hash = run.hashes[-64:]  # the last line's, unless that is a fix or read the exact way
        taken = 0  # the rows already among the observation rows

        def take_rows(upto: int) -> None:
            nonlocal taken
            if upto > taken:
                if self._obs:
                    self._obs_tables.append(_table(self._obs, 7))
                    self._obs = []
                self._obs_tables.append(table[taken:upto])
                self._obs_ids += run.ids[taken:upto]
                taken = upto

        first = 0  # the rows whose ids and series are taken in
        for done, line in enumerate([*sorted([*run.fixes, *run.others]), count]):
            last = line - done  # the rows before this line
            if last > first:
                for number in run.new_keys(first, last):
                    self._series_number(run.keys[number])
                self.new_ids.extend(run.ids[first:last])
                first = last
            if line == count:
                break
            fix = run.fixes.get(line)
            try:
                if fix is not None:
                    self._take_fix(fix)
                    types[line], times[line], line_hash = TYPE_CODE[fix.type], fix.time, fix.hash
                else:
                    take_rows(last)
                    raw = decode(run.others[line], int(starts[line]))
                    (types[line], times[line]), line_hash = self._taken_in(raw), raw.hash
                if line == count - 1:
                    last_hash = line_hash
            except Exception:  # whatever reading this line raised (a nesting too deep, say)
                take_rows(last)
                self._taken()  # a row before this line whose figure or id no event could have is named first
                raise
        take_rows(len(table))
        self._times.frombytes(times.tobytes())
        self._types.frombytes(types.tobytes())
        self._offsets.frombytes(starts[:count].astype(np.int64, copy=False).tobytes())
        self._count += count
        if count:
            self._last_hash, self._end = last_hash, int(starts[count])
        numbers = np.array([self.series.get(key, -1) for key in run.keys], dtype=np.int64)
        table[:, 1] = numbers[table[:, 1]]  # its series column; the tables added above are views of it

    def add_observations(self, run: Any) -> None:
        """Add consecutive observations from their spooled columns (``spool.ObservationRun``), as ``add`` would.

        Their values were worked out when they were spooled; only their
        series are numbered here (``_series_numbers``).
        """
        count, figures = len(run), run.figures
        high = figures["high"]
        table = np.column_stack((
            np.arange(run.position, run.position + count),
            self._series_numbers(figures["series"], run.series),
            figures["day"],
            figures["cumulative"],
            figures["low"],
            np.where(high == SPOOLED_OPEN, OPEN, high),
            _SPOOLED_QUALIFIER[figures["qualifier"]],
        )).astype(np.int64)  # fmt: skip
        times = np.full(count, self._time_code(run.recorded_at), dtype=np.int64)
        self._take_rows(table, run.ids, times, run.starts(), run.last_hash, run.end)

    def _take_rows(
        self, table: np.ndarray, ids: list[str], times: np.ndarray, offsets: Sequence[int], last_hash: str, end: int
    ) -> None:
        """Observation rows taken in at once, in the index's columns, after the rows ``add`` added before them."""
        if self._first is None:
            self._first = int(table[0, 0])
        self._times.frombytes(times.astype(np.int64, copy=False).tobytes())
        self._types.frombytes(bytes([OBSERVATION]) * len(ids))
        self._offsets.frombytes(np.asarray(offsets, dtype=np.int64).tobytes())
        self._count += len(ids)
        self._last_hash, self._end = last_hash, end
        self.new_ids.extend(ids)
        self._obs_ids += ids
        if self._obs:
            self._obs_tables.append(_table(self._obs, 7))
            self._obs = []
        self._obs_tables.append(table)

    def _time_code(self, recorded_at: str) -> int:
        """The code of a recorded time, parsed once: a batch's entries share one."""
        code = self._time_cache.get(recorded_at)
        if code is None:
            code = self._time_cache[recorded_at] = time_code(parse_time(recorded_at))
        return code

    def _series_numbers(self, spooled: np.ndarray, keys: Sequence[tuple]) -> np.ndarray:
        """The log's number of each series the spool numbered (``keys[n]`` is its series ``n``).

        A series new to the log is numbered as ``add`` numbers it, in the
        order the rows first name it: the spool numbered them in that order
        too, and any it met before this run were numbered here already.
        """
        met = np.unique(spooled)
        numbers = np.zeros(int(met[-1]) + 1 if len(met) else 0, dtype=np.int64)
        for spooled_number in met.tolist():
            numbers[spooled_number] = self._series_number(keys[spooled_number])
        return numbers[spooled]

    def _row(self, observation_id: str, position: int) -> int:
        return self.new_ids.row_of_fix(observation_id, self._log_rows, position)

    def __len__(self) -> int:
        return self._count

    def _taken(self) -> tuple[list[np.ndarray], str]:
        """The columns of the observation rows added since the last block, and their ids joined.

        Raises ``StoredEntryError`` naming the first row whose bounds disagree
        with its qualifier, or whose id no event could have: the skim leaves
        these checks here, a few numpy passes a block being cheaper than a
        call a line (``add`` refused such a row already).
        """
        obs = list(np.concatenate([*self._obs_tables, _table(self._obs, 7)]).T)
        joined = "\n".join(self._obs_ids)
        refused = [_figure_refused(obs[0], obs[4], obs[5], obs[6]), _id_refused(obs[0], self._obs_ids, joined)]
        first = min((error for error in refused if error is not None), key=lambda error: error.position, default=None)
        if first is not None:
            raise first
        return obs, joined

    def block(self) -> Block:
        """The entries added since the last block, as a block.

        Raises ``StoredEntryError`` if an observation's figure or id is one no
        event could have (``_taken``).
        """
        obs, obs_ids = self._taken()
        fix = _columns(self._corrections, 8)
        drop = _columns(self._retractions, 2)
        block = Block(
            first=self._first if self._first is not None else 0,
            count=self._count,
            end_offset=self._end,
            last_hash=self._last_hash,
            times=_bytes(self._times, np.int64),
            types=_bytes(self._types, np.int8),
            offsets=_bytes(self._offsets, np.int64),
            new_series=self._new_series,
            obs_entry=_bytes(obs[0], np.int64),
            obs_series=_bytes(obs[1], np.int32),
            obs_day=_bytes(obs[2], np.int32),
            obs_cumulative=_bytes(obs[3], np.int8),
            obs_low=_bytes(obs[4], np.int64),
            obs_high=_bytes(obs[5], np.int64),
            obs_qualifier=_bytes(obs[6], np.int8),
            obs_ids=obs_ids,
            correction_entry=_bytes(fix[0], np.int64),
            correction_row=_bytes(fix[1], np.int64),
            correction_series=_bytes(fix[2], np.int32),
            correction_day=_bytes(fix[3], np.int32),
            correction_cumulative=_bytes(fix[4], np.int8),
            correction_low=_bytes(fix[5], np.int64),
            correction_high=_bytes(fix[6], np.int64),
            correction_qualifier=_bytes(fix[7], np.int8),
            retraction_entry=_bytes(drop[0], np.int64),
            retraction_row=_bytes(drop[1], np.int64),
            described=self._described,
            correction_ids="\n".join(self._correction_ids),
            incident_rows=_incident_rows(obs[1], self._keys),
        )
        self._reset()
        return block


def _incident_rows(series: np.ndarray, keys: Sequence[tuple]) -> dict[str, bytes]:
    """A block's observation rows by incident (``Block.incident_rows``), given their series' numbers."""
    numbers, of_row = np.unique(series, return_inverse=True)
    slugs = sorted({keys[number][0] for number in numbers.tolist()})
    code = {slug: k for k, slug in enumerate(slugs)}
    codes = np.array([code[keys[number][0]] for number in numbers.tolist()], dtype=np.int64)[of_row]
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(slugs))))).tolist()
    return {slug: _bytes(order[bounds[k] : bounds[k + 1]], np.int32) for k, slug in enumerate(slugs)}


def _table(rows: list[tuple], width: int) -> np.ndarray:
    """Rows of whole numbers as one table: one numpy call for all of them (a list per column costs twice as much)."""
    return np.array(rows, dtype=np.int64).reshape(len(rows), width)


def _columns(rows: list[tuple], width: int) -> list[np.ndarray]:
    """Rows of whole numbers as columns (``_table``)."""
    table = _table(rows, width)
    return [table[:, n] for n in range(width)]


def _bytes(values: list[int] | array | np.ndarray, dtype: Any) -> bytes:
    return np.asarray(values, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<"), copy=False).tobytes()


def _read_only(array: np.ndarray) -> np.ndarray:
    """An index's column: replay reads it, and copies what it corrects."""
    array.flags.writeable = False
    return array


# The figures' columns: an index read for a whole fold keeps them as 32-bit numbers where every one fits.
_FIGURES = ("obs_low", "obs_high", "correction_low", "correction_high")


def _narrow_figures(index: LogIndex) -> None:
    """Lows and highs as 32-bit numbers if every one of them fits, else all as stored (64-bit).

    Tolls fit; a whole fold then holds 8 bytes less per observation. All
    four columns change together: a correction's values are written into the
    observations' columns, which must be as wide as they are.
    """
    columns = [getattr(index, name) for name in _FIGURES]
    bounds = np.iinfo(np.int32)
    fits = all(not len(c) or (bounds.min <= c.min() and c.max() <= bounds.max) for c in columns)
    dtype = np.int32 if fits else np.int64
    for name, column in zip(_FIGURES, columns, strict=True):
        if column.dtype != dtype:
            setattr(index, name, _read_only(column.astype(dtype)))


def _correction_values(index: LogIndex) -> Columns:
    return Columns(*(getattr(index, f"correction_{name}") for name in COLUMN_TYPES._fields))


# The columns of indexes extended by appends: the next append's rows are written after them.
_EXTENDED = Room()


class LogIndex:
    """The index of a whole log prefix, as numpy columns."""

    _rows: Mapping[str, int] | None = None
    # Set by a store that read the index from a file: what that file began with (see jsonl.py).
    origin: bytes | None = None
    # Whether each incident's part of each stored block holds that incident's rows, as a reader of one incident
    # takes them (``_ReplayIndex.load``); and the ids the stored blocks name their corrections' rows by, each
    # string of them with the number of the first correction it names (``same`` compares them with the rows').
    parts_hold = True
    fixes_named: tuple[tuple[int, str], ...] = ()

    def __init__(self, blocks: Iterable[Block], without: frozenset[str] = frozenset()) -> None:
        """The index of ``blocks``, taken one at a time; the columns named in ``without`` are left out (None).

        Each block's columns are added to the index's as it comes, so that
        a large index is never in memory twice while it is read (a store
        hands its blocks over as it reads them).
        """
        # Shared by this index and the ones extended from it: it tells them from an index read anew.
        self.lineage = object()
        self.without = without
        self.entries, self.last_hash, self.end_offset = 0, "", 0
        self.last_time: int | None = None  # the time code of the last entry
        self.series: list[tuple] = []
        self.described: list[tuple[int, str, dict[str, Any]]] = []
        columns = {name: bytearray() for name in ARRAYS if name not in without}
        ids: list[str] = []
        counts: list[int] = []
        for block in blocks:
            self.entries += block.count
            self.last_hash, self.end_offset = block.last_hash, block.end_offset
            if block.count:
                self.last_time = int.from_bytes(block.times[-8:], "little", signed=True)
            self.series += block.new_series
            self.described += block.described
            for name, column in columns.items():
                column += getattr(block, name)  # grown in place: a large one is remapped, never copied
            if block.obs_entry:
                ids.append(block.obs_ids)
                counts.append(len(block.obs_entry) // 8)
        for name, dtype in ARRAYS.items():
            array = None
            if name not in without:
                data, size = columns.pop(name), np.dtype(dtype).itemsize
                rows = len(data) // size
                if not without:  # an index kept up to date by appends: the next ones are written after its rows
                    data += bytes(rows // 8 * size)
                array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)
                array = _read_only(array if without else _EXTENDED.taken(array, rows))
            setattr(self, name, array)
        if without:
            _narrow_figures(self)
        self.correction_values = _correction_values(self)
        self.obs_ids = Ids.of(ids, counts)

    def observation_columns(self) -> Columns:
        """The six observation columns, one value per observation row, as stored (before corrections)."""
        return Columns(
            series=self.obs_series, day=self.obs_day, cumulative=self.obs_cumulative, low=self.obs_low,
            high=self.obs_high, qualifier=self.obs_qualifier,
        )  # fmt: skip

    def rows(self) -> Mapping[str, int]:
        """Observation id -> its row (made once, then kept)."""
        if self._rows is None:
            self._rows = dict(zip(self.obs_ids.tolist(), range(len(self.obs_ids)), strict=True))
        return self._rows

    def builder(self) -> IndexBuilder:
        """A builder that continues this index (for the entries appended after it)."""
        return IndexBuilder(self.series, self.rows, len(self.obs_ids))

    def names(self) -> Names:
        """The incident and monitor slugs the log has described (descriptions are few: no column needed)."""
        return names_of(self.described)

    def extended(self, blocks: list[Block], builder: IndexBuilder) -> LogIndex:
        """This index followed by the blocks of entries appended after it, which ``builder`` made.

        The builder's rows of the new ids are reused, so that nothing
        proportional to the whole log is redone.
        """
        if not blocks:
            return self
        more = LogIndex(blocks, self.without)
        combined = object.__new__(LogIndex)
        combined.entries = self.entries + more.entries
        combined.last_hash, combined.end_offset = more.last_hash, more.end_offset
        combined.without = self.without
        combined.last_time = more.last_time if more.entries else self.last_time
        for name in ARRAYS:
            mine, theirs = getattr(self, name), getattr(more, name)
            setattr(combined, name, None if mine is None else _read_only(_EXTENDED.appended(mine, theirs)))
        if self.without:
            _narrow_figures(combined)
        combined.correction_values = _correction_values(combined)
        combined.series = self.series + more.series
        combined.obs_ids = self.obs_ids.extended(more.obs_ids)
        combined.described = self.described + more.described
        combined.lineage = self.lineage
        combined.origin = self.origin
        combined.parts_hold, combined.fixes_named = self.parts_hold, self.fixes_named
        if self._rows is not None:
            combined._rows = ChainMap(builder.new_ids.mapping(), self._rows)
        return combined

    def same(self, other: LogIndex) -> bool:
        """Whether two indexes hold the same columns (however their blocks were cut), and what a reader of one
        incident reads of each is what its columns say (``_parts_hold``)."""
        return (
            self._parts_hold()
            and other._parts_hold()
            and self.entries == other.entries
            and self.last_hash == other.last_hash
            and all(np.array_equal(getattr(self, name), getattr(other, name)) for name in ARRAYS)
            and self.obs_ids.tolist() == other.obs_ids.tolist()
            and self.series == other.series
            and self.described == other.described
        )

    def _parts_hold(self) -> bool:
        """Whether what a reader of one incident reads of the stored blocks is what the columns say."""
        return self.parts_hold and all(
            self.obs_ids.take(self.correction_row[start : start + joined.count("\n") + 1]) == joined.split("\n")
            for start, joined in self.fixes_named
        )

    def extends(self, other: LogIndex) -> bool:
        """Whether this index is ``other`` with entries appended after it."""
        return self.lineage is other.lineage and self.entries >= other.entries


def names_of(described: Iterable[tuple[int, str, dict[str, Any]]]) -> Names:
    """The slugs of the incidents and monitors among descriptions kept as the index keeps them."""
    names = Names()
    for _, type_name, data in described:
        names.add(type_name, data["slug"])
    return names


class _ReplayIndex:
    """The projection itself: ``REPLAY_INDEX``; ``REPLAY_COLUMNS`` reads the same blocks without some columns."""

    name = "index"
    title = "replay index"

    def __init__(self, without: frozenset[str] = frozenset()) -> None:
        self.without = without

    def load(self, blocks: Iterable[Block]) -> LogIndex:
        """The index of stored blocks, with what only a reader of one incident reads compared with the rest
        (``_read_back``), so that ``verify``, which compares the index with the log, vouches for it too."""
        fixed: list[tuple[int, str]] = []
        held = [True]
        index = LogIndex(_read_back(blocks, fixed, held), self.without)
        index.parts_hold, index.fixes_named = held[0], tuple(fixed)
        return index

    @staticmethod
    def read_lines(lines: Sequence[bytes], start: int) -> Skimmed:
        return skim_lines(lines, start)

    def encode(self, block: Block) -> bytes:
        return _in_parts(block)

    def decode(self, body: bytes) -> Block:
        """A block from its stored bytes: kept in parts (each checked against its CRC-32), or whole as versions
        before parts kept it."""
        return _decoded(body, parts=True, ids=False)

    def decode_framed(self, body: bytes) -> Block:
        """``decode`` of bytes whose frame's CRC-32 held (a sidecar's): their parts' are not checked again."""
        return _decoded(body, parts=False, ids=False)

    def decode_checked(self, body: bytes) -> Block:
        """``decode``, also comparing what a reader of one incident reads with what the whole block says."""
        return _decoded(body, parts=True, ids=True)


def _read_back(blocks: Iterable[Block], fixed: list[tuple[int, str]], held: list[bool]) -> Iterator[Block]:
    """Stored blocks as they come, each incident's rows compared with their series' incident (``held[0]`` says
    whether every one is of its part's incident), and where each block's corrections' ids start among the log's
    corrections noted in ``fixed`` (``_ReplayIndex.load`` compares them with the ids of the rows they fix).

    A block knows the series it names first, not the log's before it, so
    this goes with the blocks in order. Blocks kept whole (by an older
    version) have no parts, and are never read in part.
    """
    codes: dict[str, int] = {}  # incident slug -> a number
    of_series = np.zeros(0, dtype=np.int64)  # each series' incident's number
    corrections = 0
    for block in blocks:
        if block.new_series:
            new = [codes.setdefault(key[0], len(codes)) for key in block.new_series]
            of_series = np.concatenate([of_series, np.array(new, dtype=np.int64)])
        if block.incident_rows and held[0]:
            series = block_column(block, "obs_series")
            held[0] = not len(series) or 0 <= series.min() <= series.max() < len(of_series)
            for slug, rows in block.incident_rows.items() if held[0] else ():
                held[0] = held[0] and bool((of_series[series[np.frombuffer(rows, "<i4")]] == codes.get(slug, -1)).all())
        if block.correction_ids:
            fixed.append((corrections, block.correction_ids))
        corrections += len(block.correction_entry) // 8
        yield block


def _decoded(body: bytes, *, parts: bool, ids: bool) -> Block:
    try:
        block = _assembled(_stored(_reader(body)), parts=parts, ids=ids) if body[:1] == _PARTED else _decode_block(body)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    _check_figures(block, "obs")
    _check_figures(block, "correction")
    return block


def block_column(block: Block | BlockHead | Rows, name: str) -> np.ndarray:
    """A column of a block, or of a part of one, by its name in ``ARRAYS``."""
    return np.frombuffer(getattr(block, name), dtype=np.dtype(ARRAYS[name]).newbyteorder("<"))


def _check_figures(block: Block | BlockHead | Rows, prefix: str) -> None:
    """Raise ``ValueError`` if a block, or a part of one, holds a figure no event could have (``_figures_hold``)."""
    if not _figures_hold(*(block_column(block, f"{prefix}_{name}") for name in ("low", "high", "qualifier"))).all():
        raise ValueError(f"a block holds a figure no event could have ({prefix}_low, _high, _qualifier)")


def _figures_hold(low: np.ndarray, high: np.ndarray, qualifier: np.ndarray) -> np.ndarray:
    """Whether each figure of these columns is one ``Figure`` takes (``events.figure_problem``), all at once.

    A block is trusted because its log still ends with the hash it names, not
    for what it holds: one built from a log before stored figures were
    checked may hold a figure the log's line breaks the rules with (a
    negative count). Such a block is not used, so the line is read, and refused.
    """
    if len(low) != len(high) or len(low) != len(qualifier):
        return np.zeros(1, dtype=bool)
    code = {name: QUALIFIER_CODE[name] for name in QUALIFIERS}
    is_open = high == OPEN
    counts = (low >= 0) & (low <= MAX_COUNT) & (is_open | ((high >= low) & (high <= MAX_COUNT)))
    worded = (
        (is_open == (qualifier == code["at_least"]))
        & (((qualifier != code["exact"]) & (qualifier != code["about"])) | (high == low))
        & ((qualifier != code["range"]) | (high != low))
        & (qualifier >= 0) & (qualifier < len(QUALIFIERS))
    )  # fmt: skip
    return counts & worded


def _figure_refused(
    positions: np.ndarray, low: np.ndarray, high: np.ndarray, qualifier: np.ndarray
) -> StoredEntryError | None:
    """The refusal of the first row whose figure ``Figure`` would not take, as ``add`` would refuse its line."""
    bad = np.flatnonzero(~_figures_hold(low, high, qualifier))
    if not len(bad):
        return None
    row = int(bad[0])
    stored_high = int(high[row])
    problem = figure_problem(
        int(low[row]), None if stored_high == OPEN else stored_high, Qualifier(QUALIFIERS[qualifier[row]])
    )
    return StoredEntryError(int(positions[row]), str(InputError(problem or "is not a figure", "high")))


# The pattern of ``events.OBSERVATION_ID`` a byte at a time: which may start an id, which may follow.
_FIRST_OF_ID = np.array([OBSERVATION_ID.fullmatch(chr(byte)) is not None for byte in range(256)])
_IN_IDS = np.array([OBSERVATION_ID.fullmatch("a" + chr(byte)) is not None for byte in range(256)])
_IN_IDS[ord("\n")] = True  # the newline that joins ids


def _id_refused(positions: np.ndarray, ids: list[str], joined: str) -> StoredEntryError | None:
    """The refusal of the first row whose id no event could have (``events.OBSERVATION_ID``), as ``add``'s.

    The skim does not check an id line by line; replay keeps ids joined by
    newlines (``Ids``), and a segment's by spaces (``rule.Folded``), so a
    line edited by hand must not shift every id after it, and an id verify
    refuses must not be replayed. A few numpy passes over the joined ids, a
    few milliseconds a million; only a block that fails them is looked at
    id by id, to name the first.
    """
    if not ids:
        return None
    codes = np.frombuffer(joined.encode("ascii"), np.uint8) if joined.isascii() else None
    if codes is not None and _IN_IDS[codes].all():
        ends = np.flatnonzero(codes == 10)
        if len(ends) == len(ids) - 1:
            starts = np.concatenate(([0], ends + 1))
            lengths = np.diff(np.concatenate((starts, [len(codes) + 1]))) - 1
            if lengths.min() >= 1 and lengths.max() <= MAX_ID_LENGTH and _FIRST_OF_ID[codes[starts]].all():
                return None
    row = next(k for k, id_ in enumerate(ids) if id_problem(id_) is not None)
    return StoredEntryError(int(positions[row]), id_problem(ids[row]))


REPLAY_INDEX = _ReplayIndex()
# For folding a whole log, and no more: without each entry's time, type and line offset, nor each
# observation's position (25 bytes an observation), which only a cut at known-at or reading a line back
# needs; its figures are narrowed where they fit (``_narrow_figures``).
REPLAY_COLUMNS = _ReplayIndex(frozenset({"times", "types", "offsets", "obs_entry"}))


# -- a block as it is stored: in parts -------------------------------------------------
#
# A question about one incident (``timeline replay --incident X --as-of D``) needs a fiftieth of the
# observation rows, yet a block kept whole must be read, checked and decoded whole. So a block is kept in
# parts, each with its CRC-32: a head that every read takes (where the block is in the log, its new series,
# its fixes, its descriptions, and where the other parts lie), the entries' own columns, the ids of its
# observations in log order, and each incident's observation rows and their ids. Read whole, the parts make
# the block again (``_assembled``: the ids are the one thing kept twice, as putting an incident's ids back
# in log order costs more than reading them twice); a reader of one incident (``read_incident``) reads the
# head and that incident's parts of each block.
#
#     body := 0xC1 | head length (u32) | head CRC-32 (u32) | head | parts
#
# 0xC1 is the one byte msgpack never uses: a body that starts otherwise is a block kept whole.

_PARTED = b"\xc1"
_HEAD = struct.Struct("<II")

# Where a part lies after the head: offset, length, CRC-32.
Place = tuple[int, int, int]

# The columns of a correction besides its position.
_FIXED = ("row", *COLUMN_TYPES._fields)
# The observation columns an incident's part holds, in ``Rows``' order.
_ROW_COLUMNS = ("obs_entry", *(f"obs_{name}" for name in COLUMN_TYPES._fields))


class BlockHead(msgspec.Struct, array_like=True, gc=False):
    """What every read of a stored block takes: all of the block but its entries' columns and observation rows."""

    first: int
    count: int
    end_offset: int
    last_hash: str
    last_time: int | None  # the time code of its last entry
    rows: int  # observation rows in the block
    new_series: list[tuple[str, str, str, str, str | None]]
    correction_entry: bytes
    correction_row: bytes
    correction_series: bytes
    correction_day: bytes
    correction_cumulative: bytes
    correction_low: bytes
    correction_high: bytes
    correction_qualifier: bytes
    correction_ids: str
    retraction_entry: bytes
    retraction_row: bytes
    described: list[tuple[int, str, dict[str, Any]]]
    entries: Place  # ``_Entries``
    ids: Place  # every observation's id, in log order, joined by newlines (UTF-8)
    incidents: dict[str, tuple[Place, Place]]  # slug -> its ``Rows``, and their ids as ``ids`` keeps them


class _Entries(msgspec.Struct, array_like=True, gc=False):
    times: bytes
    types: bytes
    offsets: bytes


class Rows(msgspec.Struct, array_like=True, gc=False, omit_defaults=True):
    """One incident's observation rows in a block: which they are (int32, from 0 in the block) and their columns."""

    rows: bytes
    obs_entry: bytes
    obs_series: bytes
    obs_day: bytes
    obs_cumulative: bytes
    obs_low: bytes
    obs_high: bytes
    obs_qualifier: bytes
    ids: str = ""  # joined by newlines: a part of their own, filled in by ``read_incident``


_decode_head = msgspec.msgpack.Decoder(BlockHead).decode
_decode_entries = msgspec.msgpack.Decoder(_Entries).decode
_decode_rows = msgspec.msgpack.Decoder(Rows).decode

_ROWS_CHANGED = "a block's parts do not hold each of its observation rows once"


def _in_parts(block: Block) -> bytes:
    parts: list[bytes] = []

    def placed(data: bytes) -> Place:
        place = (sum(map(len, parts)), len(data), zlib.crc32(data))
        parts.append(data)
        return place

    entries = placed(_encode(_Entries(block.times, block.types, block.offsets)))
    joined = block.obs_ids.encode()
    ids = placed(joined)
    each_id = JoinedIds(joined)
    incidents = {}
    for slug, rows in block.incident_rows.items():
        taken = np.frombuffer(rows, "<i4")
        columns = [block_column(block, name)[taken].tobytes() for name in _ROW_COLUMNS]
        incidents[slug] = (placed(_encode(Rows(rows, *columns))), placed(each_id.taken(taken)))
    count = len(block.obs_entry) // 8
    if sum(len(rows) // 4 for rows in block.incident_rows.values()) != count:
        raise ValueError(_ROWS_CHANGED)
    head = _encode(BlockHead(
        block.first, block.count, block.end_offset, block.last_hash,
        int.from_bytes(block.times[-8:], "little", signed=True) if block.count else None, count, block.new_series,
        block.correction_entry, block.correction_row, block.correction_series, block.correction_day,
        block.correction_cumulative, block.correction_low, block.correction_high, block.correction_qualifier,
        block.correction_ids, block.retraction_entry, block.retraction_row, block.described, entries, ids, incidents,
    ))  # fmt: skip
    return b"".join([_PARTED, _HEAD.pack(len(head), zlib.crc32(head)), head, *parts])


class _Stored(NamedTuple):
    """A stored block's head, and how to read its other parts."""

    head: BlockHead
    read: Read
    after_head: int  # where the parts start in the body

    def part(self, place: Place, *, checked: bool = True) -> bytes:
        """A part's bytes; ``checked`` against its CRC-32, unless the caller checked the whole body's."""
        offset, length, crc = place
        data = self.read(self.after_head + offset, length)
        if checked and zlib.crc32(data) != crc:
            raise ValueError("a part of a block does not match its CRC-32")
        return data


def _reader(body: bytes) -> Read:
    view = memoryview(body)

    def read(offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > len(view):
            raise ValueError("a part of a block runs past its end")
        return view[offset : offset + size]

    return read


def _stored(read: Read) -> _Stored:
    if read(0, 1) != _PARTED:
        raise ValueError("a block kept whole, not in parts")
    length, crc = _HEAD.unpack(read(1, _HEAD.size))
    head_bytes = read(1 + _HEAD.size, length)
    if zlib.crc32(head_bytes) != crc:
        raise ValueError("the head of a block does not match its CRC-32")
    head = _decode_head(head_bytes)
    corrections = len(block_column(head, "correction_entry"))
    ids = head.correction_ids.count("\n") + 1 if head.correction_ids else 0
    if (ids != corrections or len(block_column(head, "retraction_row")) != len(block_column(head, "retraction_entry"))
            or any(len(block_column(head, f"correction_{name}")) != corrections for name in _FIXED)):  # fmt: skip
        raise ValueError("a block's fixes do not have one of each of their columns each")
    return _Stored(head, read, 1 + _HEAD.size + length)


def _assembled(stored: _Stored, *, parts: bool, ids: bool) -> Block:
    """The block whose parts these are: each incident's rows put back in their place.

    ``parts``: each part read is checked against its CRC-32 (not where the
    whole body's was); ``ids`` also compares the ids a reader of one
    incident reads with the block's (``verify``).
    """
    head = stored.head
    entries = _decode_entries(stored.part(head.entries, checked=parts))
    joined = str(stored.part(head.ids, checked=parts), "utf-8")
    incidents = {slug: _whole(_decode_rows(stored.part(rows, checked=parts)), head.rows) for slug, (rows, _) in
                 head.incidents.items()}  # fmt: skip
    if (len(entries.times), len(entries.types), len(entries.offsets)) != (8 * head.count, head.count, 8 * head.count):
        raise ValueError("a block's entries do not have one of each of their columns each")
    if head.last_time != (int.from_bytes(entries.times[-8:], "little", signed=True) if head.count else None):
        raise ValueError("a block's head does not name the time of its last entry")
    taken = np.concatenate([np.frombuffer(rows.rows, "<i4") for rows in incidents.values()] or [np.zeros(0, int)])
    if len(taken) != head.rows or (head.rows and (np.bincount(taken, minlength=head.rows) != 1).any()):
        raise ValueError(_ROWS_CHANGED)  # bincount refuses a negative row; one past the end makes it too long
    if (joined.count("\n") + 1 if joined else 0) != head.rows:
        raise ValueError("a block's ids are not one an observation row")
    placed = np.empty(head.rows, dtype=np.int64)
    placed[taken] = np.arange(head.rows)  # where each row is among the incidents' rows, one after another
    columns = {}
    for name in _ROW_COLUMNS:
        dtype = np.dtype(ARRAYS[name]).newbyteorder("<")
        together = np.concatenate([np.frombuffer(getattr(rows, name), dtype) for rows in incidents.values()] or
                                  [np.zeros(0, dtype)])  # fmt: skip
        columns[name] = together[placed].tobytes()
    if ids:
        each_id = JoinedIds(joined.encode())
        for slug, (_, place) in head.incidents.items():
            if stored.part(place) != each_id.taken(np.frombuffer(incidents[slug].rows, "<i4")):
                raise ValueError(f"a block keeps other ids for the rows of {slug!r} than for the block")
    return Block(
        head.first, head.count, head.end_offset, head.last_hash, entries.times, entries.types, entries.offsets,
        head.new_series, *columns.values(), joined, head.correction_entry,
        head.correction_row, head.correction_series, head.correction_day, head.correction_cumulative,
        head.correction_low, head.correction_high, head.correction_qualifier, head.retraction_entry,
        head.retraction_row, head.described, head.correction_ids, {slug: rows.rows for slug, rows in incidents.items()},
    )  # fmt: skip


def _whole(rows: Rows, block_rows: int) -> Rows:
    """An incident's part as its readers take it: at least one row, in log order, each in its block (which has
    ``block_rows``), and as many of each column."""
    count, odd = divmod(len(rows.rows), 4)
    taken = np.frombuffer(rows.rows[: count * 4], "<i4")
    if (odd or not count or taken[0] < 0 or taken[-1] >= block_rows or (np.diff(taken) <= 0).any()
            or any(len(block_column(rows, name)) != count for name in _ROW_COLUMNS)):  # fmt: skip
        raise ValueError(_ROWS_CHANGED)
    return rows


class JoinedIds:
    """Ids joined by newlines, from which those of any rows are taken, joined again: a few numpy passes, no
    string an id."""

    def __init__(self, joined: bytes) -> None:
        self._codes = np.frombuffer(joined + b"\n", np.uint8)
        self._starts = np.concatenate(([0], np.flatnonzero(self._codes == 10) + 1))  # of each id, then the end

    def taken(self, rows: np.ndarray) -> bytes:
        """The ids of ``rows``, in that order, joined by newlines."""
        if not len(rows):
            return b""
        begin = self._starts[rows]
        length = self._starts[rows + 1] - begin  # with its newline
        gather = np.arange(int(length.sum())) + np.repeat(begin - (np.cumsum(length) - length), length)
        return self._codes[gather][:-1].tobytes()


def read_incident(read: Read, incident: str) -> tuple[BlockHead, Rows | None]:
    """The head of a stored block and the rows of ``incident`` in it, with their ids (None if it has none), read in
    part.

    Raises ``ValueError`` if what is read is not a block kept in parts, does
    not match its CRC-32, or holds a figure no event could have.
    """
    try:
        stored = _stored(read)
        places = stored.head.incidents.get(incident)
        rows = None
        if places is not None:
            rows = _whole(_decode_rows(stored.part(places[0])), stored.head.rows)
            ids = bytes(stored.part(places[1])).decode()
            if (ids.count("\n") + 1 if ids else 0) != len(rows.rows) // 4:
                raise ValueError("a block's ids of an incident are not one a row")
            rows.ids = ids
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    _check_figures(stored.head, "correction")
    if rows is not None:
        _check_figures(rows, "obs")
    return stored.head, rows
