"""What admission asks of a log, kept as a projection so that no append reads the whole log.

Admission needs, under the write lock: whether an observation id exists and
is live, the position of its current version, the names described, and the
effective records that state the same figure as a new observation (possible
repeats). The JSON Lines store keeps this projection in a sidecar file
(``<log>.known``) and reads it before every append; the SQL stores answer
the same questions with queries on their own tables instead.

Per entry it keeps the byte offset of its line, so that a store can read one
entry without scanning; per observation, its id, position and the figure
key (``admission.figure_key``) as 64 bits; per correction, the row it
replaces and its new figure key; per retraction, the row it withdraws.

A log copied without its sidecars (a clone: sidecars are not kept in git)
has this index rebuilt by its first append. Decoding each whole line into
dicts made that 10 s at a million entries, so stored lines are read as the
replay index reads them (``read_lines``): an observation of the current
schema is decoded by msgspec into structs, in any process, its figure key
hashed there, and every other line (a fix, a description, anything a writer
does not write) is left whole to ``KnownBuilder.add``, which takes or
refuses it in its turn.
"""

from __future__ import annotations

import hashlib
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any

import attrs
import msgspec
import numpy as np
import orjson

from .admission import LIVE, RETRACTED, Names, figure_key
from .codec import SCHEMA, upcast
from .envelope import MAX_POSITION, RawEntry, StoredObservation, entry_reading
from .errors import StoredEntryError
from .events import MAX_COUNT, OBSERVATION_ID, id_problem
from .projection import Decode, Ids, NewIds, line_starts


class KnownBlock(msgspec.Struct, array_like=True, gc=False):
    """Consecutive entries, column by column; arrays are raw little-endian bytes."""

    first: int
    count: int
    end_offset: int
    last_hash: str
    offsets: bytes  # int64 per entry: where its line starts, or -1
    obs_entry: bytes  # int64 per observation: its position
    obs_ids: str  # joined by newlines (an id cannot hold one)
    obs_figure: bytes  # int64: its figure key's first 64 bits
    correction_entry: bytes  # int64 per correction: its position
    correction_row: bytes  # int64: the observation (by order of appearance) it corrects
    correction_figure: bytes  # int64: the figure key of the replacement
    retraction_row: bytes  # int64 per retraction: the observation it withdraws
    described: list[tuple[str, str]]  # (event type, slug) of each description


_ARRAYS = ("offsets", "obs_entry", "obs_figure", "correction_entry", "correction_row", "correction_figure",
           "retraction_row")  # fmt: skip
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(KnownBlock).decode


def figure_code(data: dict[str, Any]) -> int:
    """The first 64 bits of an observation's figure key, as a signed integer (a numpy int64)."""
    return key_code(figure_key(data))


def key_code(key: str) -> int:
    """The first 64 bits of a figure key, as this projection keeps it."""
    return int.from_bytes(bytes.fromhex(key[:16]), "little", signed=True)


def _bytes(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def _array(parts: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(parts), dtype="<i8").astype(np.int64, copy=False)


# What ``read_lines`` decodes of an observation's line: the fields ``add`` reads, as a writer stores them, and
# the rest (``StoredObservation``); a line holding anything else is left to ``add``. Counts are bounded as
# events bound them: a figure key is never asked of a number that JSON cannot write back.
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class _Figure(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    low: Count
    high: Count | None
    qualifier: str


class _Observation(StoredObservation, kw_only=True):
    id: str
    incident: str
    monitor: str
    measure: str
    category: str
    reported_on: str
    kind: str
    figure: _Figure


_read_entry = msgspec.json.Decoder(entry_reading("KnownEntry", _Observation)).decode
_OBSERVATION_SCHEMA = SCHEMA["Observation"]
# A run's ids, joined by newlines, each one ``id_problem`` takes: one match in C for the run (and a count of the
# newlines, since an id holding one would read as two).
_IDS = re.compile(f"(?:{OBSERVATION_ID.pattern})(?:\n(?:{OBSERVATION_ID.pattern}))*")


@attrs.frozen(eq=False)
class KnownRun:
    """A run of stored lines as ``read_lines`` read them: observations as columns, every other line whole."""

    starts: np.ndarray  # int64: where each line starts, then where the last ends; all -1 if lines have no offsets
    lines: np.ndarray  # int64 per observation read: its line's number in the run
    positions: np.ndarray  # int64 per observation read
    figures: np.ndarray  # int64 per observation read: its figure key's first 64 bits (``key_code``)
    ids: list[str]
    hashes: str  # each observation's hash (64 hex digits each), joined
    others: dict[int, bytes]  # the lines not read, by their number in the run, for ``KnownBuilder.add``

    def __len__(self) -> int:
        return len(self.starts) - 1

    def part(self, start: int, stop: int) -> KnownRun:
        """Lines ``start`` to ``stop`` of the run (a run cut where a block ends)."""
        first, last = np.searchsorted(self.lines, [start, stop])
        return KnownRun(
            self.starts[start : stop + 1], self.lines[first:last] - start, self.positions[first:last],
            self.figures[first:last], self.ids[first:last], self.hashes[64 * first : 64 * last],
            {line - start: text for line, text in self.others.items() if start <= line < stop},
        )  # fmt: skip


def read_lines(lines: Sequence[bytes], start: int) -> KnownRun:
    """Stored lines (``start``: where the first begins, or -1) read into a ``KnownRun``, knowing nothing of the log.

    The figure key is hashed here, as ``figure_code`` hashes the same values
    decoded whole: what a process reading part of a long log can do alone.
    """
    starts = line_starts(lines, start)
    numbers, positions, ids, hashes, keys = [], [], [], [], []
    others: dict[int, bytes] = {}
    sha256, dumps = hashlib.sha256, orjson.dumps
    for n, line in enumerate(lines):
        try:
            entry = _read_entry(line)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # ValidationError is a DecodeError
            others[n] = line  # ``add`` takes it, or refuses it in its turn: after the lines before it
            continue
        if entry.type != "Observation" or entry.schema != _OBSERVATION_SCHEMA or len(entry.hash) != 64:
            others[n] = line
            continue
        event, figure = entry.event, entry.event.figure
        fields = (event.incident, event.monitor, event.measure, event.category, event.location, event.reported_on,
                  event.kind, figure.low, figure.high, figure.qualifier)  # fmt: skip  # as ``figure_fields``
        keys.append(sha256(dumps(fields)).digest()[:8])
        numbers.append(n)
        positions.append(entry.position)
        ids.append(event.id)
        hashes.append(entry.hash)
    joined = "\n".join(ids)
    if ids and not (_IDS.fullmatch(joined) and joined.count("\n") == len(ids) - 1):  # ``add`` refuses some id
        kept = [k for k, i in enumerate(ids) if OBSERVATION_ID.fullmatch(i)]
        others.update((numbers[k], lines[numbers[k]]) for k in set(range(len(ids))) - set(kept))
        others = dict(sorted(others.items()))
        numbers, positions, keys, ids, hashes = ([column[k] for k in kept] for column in (numbers, positions, keys,
                                                                                           ids, hashes))  # fmt: skip
    return KnownRun(
        starts, np.array(numbers, dtype=np.int64), np.array(positions, dtype=np.int64),
        np.frombuffer(b"".join(keys), dtype="<i8").astype(np.int64), ids, "".join(hashes), others,
    )  # fmt: skip


class KnownBuilder:
    """Folds entries into the next ``KnownBlock``; finds the rows of ids the log already has."""

    def __init__(self, rows: Callable[[], Mapping[str, int]] | None = None, next_row: int = 0) -> None:
        self.new_ids = NewIds(next_row)
        self._log_rows = rows
        self._reset()

    def _reset(self) -> None:
        self._first: int | None = None
        self._count, self._end, self._last_hash = 0, -1, ""
        self._offsets: list[int] = []
        self._obs_entry: list[int] = []
        self._obs_ids: list[str] = []
        self._obs_figure: list[int] = []
        self._corrections: list[tuple[int, int, int]] = []
        self._retractions: list[int] = []
        self._described: list[tuple[str, str]] = []

    def _row(self, observation_id: str, position: int) -> int:
        return self.new_ids.row_of_fix(observation_id, self._log_rows, position)

    def add(self, raw: RawEntry, offset: int = -1, end: int = -1) -> None:
        if not 0 <= raw.position <= MAX_POSITION:  # as the replay index refuses it: its column would overflow
            raise StoredEntryError(raw.position, f"position {raw.position} is not one a log can reach")
        if self._first is None:
            self._first = raw.position
        self._count += 1
        self._end, self._last_hash = end, raw.hash
        self._offsets.append(offset)
        data = raw.event if raw.schema == SCHEMA.get(raw.type) else upcast(raw.type, raw.schema, raw.event)
        if raw.type == "Observation":
            problem = id_problem(data["id"])  # as the index refuses it
            if problem is not None:
                raise StoredEntryError(raw.position, problem)
            self.new_ids.add(data["id"])
            self._obs_entry.append(raw.position)
            self._obs_ids.append(data["id"])
            self._obs_figure.append(figure_code(data))
        elif raw.type == "Correction":
            row = self._row(data["observation_id"], raw.position)
            self._corrections.append((raw.position, row, figure_code(data["replacement"])))
        elif raw.type == "Retraction":
            self._retractions.append(self._row(data["observation_id"], raw.position))
        else:
            self._described.append((raw.type, data["slug"]))

    def add_run(self, run: KnownRun, decode: Decode) -> None:
        """Add the entries of lines ``read_lines`` read, as ``add`` of each line would.

        The observations between two lines left whole are taken in at once;
        each such line is decoded and added in its turn, so that a fix finds
        exactly the observations before it.
        """
        first = 0
        for done, line in enumerate([*run.others, len(run)]):
            last = line - done  # the observations read before this line
            if last > first:
                self._add_read(run, first, last)
            if line < len(run):
                start, end = int(run.starts[line]), int(run.starts[line + 1])
                self.add(decode(run.others[line], start), start, end)
            first = last

    def _add_read(self, run: KnownRun, first: int, last: int) -> None:
        if self._first is None:
            self._first = int(run.positions[first])
        self._count += last - first
        self._end, self._last_hash = int(run.starts[run.lines[last - 1] + 1]), run.hashes[64 * (last - 1) : 64 * last]
        self._offsets += run.starts[run.lines[first:last]].tolist()
        ids = run.ids[first:last]
        self.new_ids.extend(ids)
        self._obs_entry += run.positions[first:last].tolist()
        self._obs_ids += ids
        self._obs_figure += run.figures[first:last].tolist()

    def add_observations(self, run: Any) -> None:
        """Add consecutive observations from their spooled columns (``spool.ObservationRun``), as ``add`` would.

        Their figure keys were hashed once, when they were spooled; the first
        64 bits of each are its code.
        """
        if self._first is None:
            self._first = run.position
        self._count += len(run)
        self._end, self._last_hash = run.end, run.last_hash
        self._offsets += run.starts()
        self.new_ids.extend(run.ids)
        self._obs_entry += range(run.position, run.position + len(run))
        self._obs_ids += run.ids
        self._obs_figure += np.frombuffer(run.figures["key"].tobytes(), dtype="<i8")[0::2].tolist()

    def __len__(self) -> int:
        return self._count

    def block(self) -> KnownBlock:
        fixes = [list(column) for column in zip(*self._corrections, strict=True)] or [[], [], []]
        block = KnownBlock(
            first=self._first if self._first is not None else 0,
            count=self._count,
            end_offset=self._end,
            last_hash=self._last_hash,
            offsets=_bytes(self._offsets),
            obs_entry=_bytes(self._obs_entry),
            obs_ids="\n".join(self._obs_ids),
            obs_figure=_bytes(self._obs_figure),
            correction_entry=_bytes(fixes[0]),
            correction_row=_bytes(fixes[1]),
            correction_figure=_bytes(fixes[2]),
            retraction_row=_bytes(self._retractions),
            described=self._described,
        )
        self._reset()
        return block


class KnownIndex:
    """The ``known`` projection of a log prefix: ids, versions, figures, names and line offsets."""

    origin: Any = None

    def __init__(self, blocks: Iterable[KnownBlock]) -> None:
        blocks = list(blocks)
        self.entries = sum(b.count for b in blocks)
        self.last_hash = blocks[-1].last_hash if blocks else ""
        self.end_offset = blocks[-1].end_offset if blocks else 0
        for name in _ARRAYS:
            setattr(self, name, _array([getattr(b, name) for b in blocks]))
        self.obs_ids = Ids(["\n".join(b.obs_ids for b in blocks if b.obs_ids)], [len(self.obs_entry)])
        self.described = [d for b in blocks for d in b.described]
        self._rows: Mapping[str, int] | None = None

    def rows(self) -> Mapping[str, int]:
        """Observation id -> its row (made once, then kept)."""
        if self._rows is None:
            self._rows = dict(zip(self.obs_ids.tolist(), range(len(self.obs_ids)), strict=True))
        return self._rows

    def mapped(self) -> bool:
        """Whether ``rows`` was made already."""
        return self._rows is not None

    def builder(self) -> KnownBuilder:
        return KnownBuilder(self.rows, len(self.obs_ids))

    def extended(self, blocks: list[KnownBlock], builder: KnownBuilder) -> KnownIndex:
        if not blocks:
            return self
        more = KnownIndex(blocks)
        combined = object.__new__(KnownIndex)
        combined.entries = self.entries + more.entries
        combined.last_hash, combined.end_offset = more.last_hash, more.end_offset
        for name in _ARRAYS:
            setattr(combined, name, np.concatenate([getattr(self, name), getattr(more, name)]))
        combined.obs_ids = self.obs_ids.extended(more.obs_ids)
        combined.described = self.described + more.described
        combined._rows = ChainMap(builder.new_ids.mapping(), self._rows) if self._rows is not None else None
        return combined

    def same(self, other: KnownIndex) -> bool:
        return (
            self.entries == other.entries
            and self.last_hash == other.last_hash
            and all(np.array_equal(getattr(self, name), getattr(other, name)) for name in _ARRAYS)
            and self.obs_ids.tolist() == other.obs_ids.tolist()
            and self.described == other.described
        )

    def names(self) -> Names:
        names = Names()
        for type_name, slug in self.described:
            names.add(type_name, slug)
        return names

    def known_ids(self, read: Callable[[int], bytes]) -> KnownRows:
        """What admission needs, with ``read`` reading the stored line at a position (under the caller's lock)."""
        return KnownRows(self, read)


# ``taken`` scans the log's ids while it has been asked about fewer than one in this many of them.
_FEW = 64


class KnownRows:
    """Admission's view of a log (``admission.KnownIds``), answered from its ``KnownIndex``."""

    def __init__(self, index: KnownIndex, read: Callable[[int], bytes]) -> None:
        self._index = index
        self._read = read
        self.names = index.names()
        self._dropped = set(index.retraction_row.tolist())
        self._asked = 0  # ids asked about by ``taken``

    def status(self, observation_id: str) -> str | None:
        row = self._index.rows().get(observation_id)
        if row is None:
            return None
        return RETRACTED if row in self._dropped else LIVE

    def version(self, observation_id: str) -> tuple[int, str] | None:
        index = self._index
        row = index.rows().get(observation_id)
        if row is None:
            return None
        fixes = index.correction_entry[index.correction_row == row]
        if len(fixes):
            return int(fixes.max()), "Correction"
        return int(index.obs_entry[row]), "Observation"

    def line(self, position: int) -> bytes:
        return self._read(position)

    def taken(self, ids: Sequence[str]) -> set[str]:
        index = self._index
        self._asked += len(ids)
        if index.mapped() or self._asked * _FEW >= len(index.obs_ids):
            rows = index.rows()
            return {i for i in ids if i in rows}
        # A daily import of a few rows into a log of millions: one pass over the log's ids, where
        # mapping them all would take seconds, every time.
        return index.obs_ids.among(set(ids))

    def similar(self, keys: Iterable[str]) -> Iterator[tuple[str, int]]:
        """Effective records whose figure key is one of ``keys``, with the position of that version.

        Whole columns at a time; only the candidates' own lines are read (by
        admission, which decides whether each really is a repeat).
        """
        index = self._index
        if not len(index.obs_figure):
            return  # a log without observations has nothing to repeat
        keys = np.unique(np.fromiter((key_code(key) for key in keys), dtype=np.int64))
        if not len(keys):
            return
        hit = np.isin(index.obs_figure, keys)
        last_fixes = np.zeros(0, dtype=np.int64)
        if len(index.correction_row):
            # The last correction of each corrected row holds its figure; the row's own is replaced.
            fixed, first_from_end = np.unique(index.correction_row[::-1], return_index=True)
            last_fixes = len(index.correction_row) - 1 - first_from_end
            hit[fixed] = False
            standing = ~np.isin(index.correction_row[last_fixes], index.retraction_row)
            last_fixes = last_fixes[np.isin(index.correction_figure[last_fixes], keys) & standing]
        hit[index.retraction_row] = False
        for row in np.flatnonzero(hit).tolist():
            yield index.obs_ids[row], int(index.obs_entry[row])
        for fix in last_fixes.tolist():
            yield index.obs_ids[int(index.correction_row[fix])], int(index.correction_entry[fix])


class _Known:
    """The projection itself: ``KNOWN``."""

    name = "known"
    title = "index of ids and names"

    def load(self, blocks: Iterable[KnownBlock]) -> KnownIndex:
        return KnownIndex(blocks)

    @staticmethod
    def read_lines(lines: Sequence[bytes], start: int) -> KnownRun:
        return read_lines(lines, start)

    def encode(self, block: KnownBlock) -> bytes:
        return _encode(block)

    def decode(self, body: bytes) -> KnownBlock:
        try:
            return _decode(body)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from None


KNOWN = _Known()
