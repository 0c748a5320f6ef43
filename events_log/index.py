"""A columnar index of a log: what replay needs, without parsing a line of JSON.

Replaying millions of entries is bound by parsing: each stored line carries
its source, quote and hashes, and most of it is not needed to compute the
series. The index keeps, per entry, only what replay uses, in arrays:

- every entry: its position, its recorded time (microseconds), its type and
  the byte offset of its line;
- observations (one row each, in log order): series number, day, kind, low,
  high, qualifier and id;
- corrections: the row they replace and the corrected values;
- retractions: the row they withdraw;
- descriptions of incidents and monitors, as their event data.

An index is built from a log's entries (``IndexBuilder``) and stored as
blocks; the JSON Lines store keeps the blocks in a sidecar file and checks
them against the log before use (see ``jsonl.py``). It is derived data:
whatever it says, the log is the truth, and ``timeline verify`` rebuilds it
from the log and compares.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zlib
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from .admission import Names
from .codec import SCHEMA, upcast
from .envelope import RawEntry
from .errors import StoreError
from .events import Observation

TYPES = ("Observation", "Correction", "Retraction", "IncidentDescribed", "MonitorDescribed")
TYPE_CODE = {name: code for code, name in enumerate(TYPES)}
QUALIFIERS = ("exact", "about", "at_least", "at_most", "range")
QUALIFIER_CODE = {name: code for code, name in enumerate(QUALIFIERS)}
OPEN = -1  # an open-ended high in the ``high`` column
_EPOCH = dt.datetime(1970, 1, 1)


def time_code(recorded_at: str) -> int:
    """Microseconds since 1970 of a stored ``recorded_at`` (always UTC, fixed width)."""
    stamp = dt.datetime.strptime(recorded_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (stamp - _EPOCH) // dt.timedelta(microseconds=1)


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
    fix_entry: bytes  # int64 per correction: its position
    fix_row: bytes  # int64: the observation row it corrects
    fix_series: bytes
    fix_day: bytes
    fix_cumulative: bytes
    fix_low: bytes
    fix_high: bytes
    fix_qualifier: bytes
    drop_entry: bytes  # int64 per retraction: its position
    drop_row: bytes  # int64: the observation row it withdraws
    described: list[tuple[int, str, dict[str, Any]]]  # (position, type, event data)


_encode = msgspec.msgpack.Encoder().encode
_decode_block = msgspec.msgpack.Decoder(Block).decode


def frame(block: Block) -> bytes:
    """A block as stored: length, CRC-32, then the msgpack bytes, so a torn write is seen."""
    body = _encode(block)
    return len(body).to_bytes(8, "little") + zlib.crc32(body).to_bytes(4, "little") + body


def unframe(data: bytes) -> Iterator[tuple[int, Block]]:
    """The whole blocks in ``data`` with the offset just after each; stops at a torn or damaged one."""
    at = 0
    while at + 12 <= len(data):
        size = int.from_bytes(data[at : at + 8], "little")
        crc = int.from_bytes(data[at + 8 : at + 12], "little")
        body = data[at + 12 : at + 12 + size]
        if len(body) < size or zlib.crc32(body) != crc:
            return
        try:
            block = _decode_block(body)
        except msgspec.DecodeError:
            return
        at += 12 + size
        yield at, block


class IndexBuilder:
    """Folds entries into blocks; knows the series and observation ids the log already has."""

    def __init__(
        self, series: Iterable[tuple] = (), rows: Callable[[], Mapping[str, int]] | None = None, next_row: int = 0
    ) -> None:
        self.series: dict[tuple, int] = {key: n for n, key in enumerate(series)}
        # New ids go in a dict of their own; the log's own are looked up only if a
        # correction or retraction needs them (making that map costs a pass over every id).
        self.new_rows: dict[str, int] = {}
        self._log_rows = rows
        self._next_row = next_row
        self._reset()

    @property
    def rows(self) -> Mapping[str, int]:
        """Observation id -> row, for the log so far and the entries added."""
        return ChainMap(self.new_rows, self._log_rows()) if self._log_rows is not None else self.new_rows

    def _reset(self) -> None:
        self._first: int | None = None
        self._count = 0
        self._last_hash = ""
        self._end = -1
        self._times: list[int] = []
        self._types: list[int] = []
        self._offsets: list[int] = []
        self._new_series: list[tuple] = []
        self._obs: list[tuple] = []
        self._obs_ids: list[str] = []
        self._fix: list[tuple] = []
        self._drop: list[tuple[int, int]] = []
        self._described: list[tuple[int, str, dict]] = []
        self._time_cache: dict[str, int] = {}

    def _series_of(self, data: dict[str, Any]) -> int:
        key = (data["incident"], data["monitor"], data["measure"], data["category"], data["location"])
        number = self.series.get(key)
        if number is None:
            number = self.series[key] = len(self.series)
            self._new_series.append(key)
        return number

    def _values(self, data: dict[str, Any]) -> tuple:
        figure = data["figure"]
        high = figure["high"]
        return (
            self._series_of(data),
            dt.date.fromisoformat(data["reported_on"]).toordinal(),
            data["kind"] == "cumulative",
            figure["low"],
            OPEN if high is None else high,
            QUALIFIER_CODE[figure["qualifier"]],
        )

    def add(self, raw: RawEntry, offset: int = -1, end: int = -1) -> None:
        """Add the next entry; ``offset`` and ``end`` are where its line starts and ends in the file."""
        if self._first is None:
            self._first = raw.position
        data = raw.event if raw.schema == SCHEMA.get(raw.type) else upcast(raw.type, raw.schema, raw.event)
        stamp = self._time_cache.get(raw.recorded_at)
        if stamp is None:
            stamp = self._time_cache[raw.recorded_at] = time_code(raw.recorded_at)
        self._times.append(stamp)
        self._types.append(TYPE_CODE[raw.type])
        self._offsets.append(offset)
        self._count += 1
        self._last_hash = raw.hash
        self._end = end
        if raw.type == "Observation":
            self.new_rows[data["id"]] = self._next_row
            self._next_row += 1
            self._obs.append((raw.position, *self._values(data)))
            self._obs_ids.append(data["id"])
        elif raw.type == "Correction":
            self._fix.append((raw.position, self._row(data["observation_id"]), *self._values(data["replacement"])))
        elif raw.type == "Retraction":
            self._drop.append((raw.position, self._row(data["observation_id"])))
        else:
            self._described.append((raw.position, raw.type, data))

    def _row(self, observation_id: str) -> int:
        row = self.new_rows.get(observation_id)
        return row if row is not None else self.rows[observation_id]

    def __len__(self) -> int:
        return self._count

    def block(self) -> Block:
        """The entries added since the last block, as a block."""
        obs = _columns(self._obs, 7)
        fix = _columns(self._fix, 8)
        drop = _columns(self._drop, 2)
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
            obs_ids="\n".join(self._obs_ids),
            fix_entry=_bytes(fix[0], np.int64),
            fix_row=_bytes(fix[1], np.int64),
            fix_series=_bytes(fix[2], np.int32),
            fix_day=_bytes(fix[3], np.int32),
            fix_cumulative=_bytes(fix[4], np.int8),
            fix_low=_bytes(fix[5], np.int64),
            fix_high=_bytes(fix[6], np.int64),
            fix_qualifier=_bytes(fix[7], np.int8),
            drop_entry=_bytes(drop[0], np.int64),
            drop_row=_bytes(drop[1], np.int64),
            described=self._described,
        )
        self._reset()
        return block


# Odd 64-bit multipliers for ``_mix``: each column lands spread over the whole word.
_MIXERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB,
                                       0xD6E8FEB86659FD93, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9))  # fmt: skip


def _mix(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of equally long integer columns (wrapping arithmetic)."""
    mixed = np.zeros(len(columns[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column, multiplier in zip(columns, _MIXERS, strict=False):
            mixed = (mixed ^ column.astype(np.int64).view(np.uint64)) * multiplier
            mixed ^= mixed >> np.uint64(29)
    return mixed


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _bytes(values: list[int], dtype: Any) -> bytes:
    return np.asarray(values, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<"), copy=False).tobytes()


def _array(data: list[bytes], dtype: Any) -> np.ndarray:
    joined = b"".join(data)
    return np.frombuffer(joined, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)


class LogIndex:
    """The index of a whole log prefix, as numpy columns."""

    _rows: Mapping[str, int] | None = None
    # Set by a store that read the index from a file: what that file began with (see jsonl.py).
    origin: bytes | None = None

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks
        # Shared by this index and the ones extended from it: it tells them from an index read anew.
        self.lineage = object()
        self.entries = sum(b.count for b in blocks)
        self.last_hash = blocks[-1].last_hash if blocks else ""
        self.end_offset = blocks[-1].end_offset if blocks else 0
        self.times = _array([b.times for b in blocks], np.int64)
        self.types = _array([b.types for b in blocks], np.int8)
        self.offsets = _array([b.offsets for b in blocks], np.int64)
        self.series: list[tuple] = [key for b in blocks for key in b.new_series]
        self.obs_entry = _array([b.obs_entry for b in blocks], np.int64)
        self.obs_series = _array([b.obs_series for b in blocks], np.int32)
        self.obs_day = _array([b.obs_day for b in blocks], np.int32)
        self.obs_cumulative = _array([b.obs_cumulative for b in blocks], np.int8)
        self.obs_low = _array([b.obs_low for b in blocks], np.int64)
        self.obs_high = _array([b.obs_high for b in blocks], np.int64)
        self.obs_qualifier = _array([b.obs_qualifier for b in blocks], np.int8)
        # The ids list may be shared with indexes extended from this one, and grow: only the
        # first ``obs_count`` belong to this index (copying a million ids per append would not).
        self.obs_ids: list[str] = [i for b in blocks if b.obs_ids for i in b.obs_ids.split("\n")]
        self.obs_count = len(self.obs_ids)
        self.fix_entry = _array([b.fix_entry for b in blocks], np.int64)
        self.fix_row = _array([b.fix_row for b in blocks], np.int64)
        self.fix_values = tuple(
            _array([getattr(b, f"fix_{name}") for b in blocks], dtype)
            for name, dtype in (("series", np.int32), ("day", np.int32), ("cumulative", np.int8), ("low", np.int64),
                                ("high", np.int64), ("qualifier", np.int8))
        )  # fmt: skip
        self.drop_entry = _array([b.drop_entry for b in blocks], np.int64)
        self.drop_row = _array([b.drop_row for b in blocks], np.int64)
        self.described = [d for b in blocks for d in b.described]
        if len(self.obs_ids) != len(self.obs_entry):
            raise StoreError("the replay index is inconsistent; delete it and it will be rebuilt from the log")

    def series_numbers(self) -> Mapping[tuple, int]:
        """Series key -> its number (made once, then kept)."""
        numbers = getattr(self, "_series_numbers", None)
        if numbers is None:
            numbers = self._series_numbers = {key: n for n, key in enumerate(self.series)}
        return numbers

    def rows(self) -> Mapping[str, int]:
        """Observation id -> its row (made once, then kept)."""
        if self._rows is None:
            count = self.obs_count
            self._rows = dict(zip(itertools.islice(self.obs_ids, count), range(count), strict=True))
        return self._rows

    def builder(self) -> IndexBuilder:
        """A builder that continues this index (for the entries appended after it)."""
        return IndexBuilder(self.series, self.rows, self.obs_count)

    def known_ids(self, read: Callable[[int], bytes] | None = None) -> KnownRows:
        """What admission needs: the status and version of every observation id, and the described names.

        ``read`` reads the stored line at a position (under the caller's lock).
        """
        return KnownRows(self.rows(), set(self.drop_row.tolist()), self.names(), self, read)

    def names(self) -> Names:
        """The incident and monitor slugs the log has described (descriptions are few: no column needed)."""
        names = Names()
        for _, type_name, data in self.described:
            names.add(type_name, data["slug"])
        return names

    def extended(self, blocks: list[Block], new_rows: Mapping[str, int]) -> LogIndex:
        """This index followed by the blocks of entries appended after it.

        ``new_rows`` are the rows of the new ids (from the builder), so that
        nothing proportional to the whole log is redone.
        """
        if not blocks:
            return self
        more = LogIndex(blocks)
        combined = object.__new__(LogIndex)
        combined.blocks = self.blocks + blocks
        combined.entries = self.entries + more.entries
        combined.last_hash, combined.end_offset = more.last_hash, more.end_offset
        for name in ("times", "types", "offsets", "obs_entry", "obs_series", "obs_day", "obs_cumulative", "obs_low",
                     "obs_high", "obs_qualifier", "fix_entry", "fix_row", "drop_entry", "drop_row"):  # fmt: skip
            setattr(combined, name, np.concatenate([getattr(self, name), getattr(more, name)]))
        combined.fix_values = tuple(np.concatenate(pair) for pair in zip(self.fix_values, more.fix_values, strict=True))
        combined.series = self.series + more.series
        if len(self.obs_ids) == self.obs_count:  # nobody has extended this index yet: grow the list in place
            self.obs_ids.extend(more.obs_ids)
            combined.obs_ids = self.obs_ids
        else:
            combined.obs_ids = self.obs_ids[: self.obs_count] + more.obs_ids
        combined.obs_count = self.obs_count + more.obs_count
        combined.described = self.described + more.described
        combined.lineage = self.lineage
        combined.origin = self.origin
        if self._rows is not None:
            combined._rows = ChainMap(dict(new_rows), self._rows)
        return combined

    def extends(self, other: LogIndex) -> bool:
        """Whether this index is ``other`` with entries appended after it."""
        return self.lineage is other.lineage and self.entries >= other.entries


class KnownRows:
    """Observation ids with their rows, and the rows retracted since."""

    def __init__(
        self,
        rows: Mapping[str, int],
        dropped: set[int],
        names: Names,
        index: LogIndex,
        read: Callable[[int], bytes] | None,
    ) -> None:
        self.rows = rows
        self.dropped = dropped
        self.names = names
        self._index = index
        self._read = read

    def status(self, observation_id: str) -> str | None:
        row = self.rows.get(observation_id)
        if row is None:
            return None
        return "retracted" if row in self.dropped else "live"

    def similar(self, observations: Sequence[Observation]) -> Iterator[tuple[str, int]]:
        """Effective records with the series, day, kind and figure of one of ``observations``.

        Whole columns at a time (a hash of those six columns per row, then
        ``isin``): no line of the log is read but the candidates' own.
        """
        index = self._index
        numbers = index.series_numbers()
        wanted = [
            (number, o.reported_on.toordinal(), o.kind == "cumulative", o.figure.low,
             OPEN if o.figure.high is None else o.figure.high, QUALIFIER_CODE[o.figure.qualifier])
            for o in observations
            if (number := numbers.get(o.series_key)) is not None
        ]  # fmt: skip
        if not wanted:
            return
        keys = _mix(*np.array(wanted, dtype=np.int64).T)
        count = len(index.obs_entry)
        hit = np.isin(_mix(index.obs_series, index.obs_day, index.obs_cumulative, index.obs_low, index.obs_high,
                           index.obs_qualifier), keys)  # fmt: skip
        last_fixes = np.zeros(0, dtype=np.int64)
        if len(index.fix_row):
            # The last fix of each corrected row holds its values; the row's own are replaced.
            fixed, first_from_end = np.unique(index.fix_row[::-1], return_index=True)
            last_fixes = len(index.fix_row) - 1 - first_from_end
            hit[fixed[fixed < count]] = False
            fix_hit = np.isin(_mix(*(column[last_fixes] for column in index.fix_values)), keys)
            last_fixes = last_fixes[fix_hit & ~np.isin(index.fix_row[last_fixes], index.drop_row)]
        hit[index.drop_row[index.drop_row < count]] = False
        for row in np.flatnonzero(hit).tolist():
            yield index.obs_ids[row], int(index.obs_entry[row])
        for fix in last_fixes.tolist():
            yield index.obs_ids[int(index.fix_row[fix])], int(index.fix_entry[fix])

    def version(self, observation_id: str) -> tuple[int, str] | None:
        row = self.rows.get(observation_id)
        if row is None:
            return None
        fixes = self._index.fix_entry[self._index.fix_row == row]
        if len(fixes):
            return int(fixes.max()), "Correction"
        return int(self._index.obs_entry[row]), "Observation"

    def line(self, position: int) -> bytes:
        if self._read is None:
            raise StoreError("this index was not opened with its log")
        return self._read(position)


def same_index(a: LogIndex, b: LogIndex) -> bool:
    """Whether two indexes hold the same columns (however their blocks were cut)."""
    arrays = ("times", "types", "offsets", "obs_entry", "obs_series", "obs_day", "obs_cumulative", "obs_low",
              "obs_high", "obs_qualifier", "fix_entry", "fix_row", "drop_entry", "drop_row")  # fmt: skip
    return (
        a.entries == b.entries
        and a.last_hash == b.last_hash
        and all(np.array_equal(getattr(a, name), getattr(b, name)) for name in arrays)
        and all(np.array_equal(x, y) for x, y in zip(a.fix_values, b.fix_values, strict=True))
        and a.obs_ids[: a.obs_count] == b.obs_ids[: b.obs_count]
        and a.series == b.series
        and a.described == b.described
    )


def build_index(entries: Iterable[tuple[RawEntry, int, int]]) -> list[Block]:
    """Blocks for entries given with the start and end offsets of their lines."""
    builder = IndexBuilder()
    blocks = []
    for raw, start, end in entries:
        builder.add(raw, start, end)
        if len(builder) >= 100_000:
            blocks.append(builder.block())
    if len(builder):
        blocks.append(builder.block())
    return blocks
