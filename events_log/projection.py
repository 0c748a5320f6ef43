"""Read models kept beside a log: what a store offers them, and how they are trusted.

A projection folds the log's entries, in order, into state that answers
reads without parsing the log (eventsourcing calls these read models). It is
derived data, so it is kept in *blocks*: each covers consecutive entries and
names the hash of its last one. A stored block is trusted only while the log
still holds that hash at that position; because the log is a hash chain, the
whole prefix is then the one the block was built from. Past the last trusted
block, the log is parsed and new blocks are added.

Stores know nothing of what a projection holds. They offer what one needs:
reading entries from a position (``Store.records``), a place to keep its
blocks (a sidecar file, rows of a table), and a hook that extends every
projection a store keeps with the lines of each append, under the append's
lock and after its lines are durable (``Store.keep``). Projections know
nothing of where their blocks live. ``timeline.index`` is one (the replay
index); ``events_log.known`` is another (what admission asks of the log).
"""

from __future__ import annotations

import io
import itertools
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Protocol, TypeVar

import attrs
import numpy as np

from .envelope import RawEntry
from .errors import StoredEntryError, StoreError, shown

# What reading an index whose ids do not match its rows says (its CRC held: written so by a bug, or by hand).
INCONSISTENT = "an index beside the log is inconsistent; delete it and it will be rebuilt from the log"

# Entries per block when a long stretch of the log is parsed at once.
BLOCK_ENTRIES = 100_000


class Block(Protocol):
    """What a store reads of any projection's block: the stretch of the log it covers."""

    first: int  # position of its first entry
    count: int
    end_offset: int  # byte offset just after its last line (files), or -1
    last_hash: str


class Builder(Protocol):
    """Folds entries, one after another, into the next block of a projection."""

    def add(self, raw: RawEntry, offset: int = -1, end: int = -1) -> None:
        """Add the next entry; ``offset`` and ``end`` are where its line starts and ends in a file, or -1."""

    def __len__(self) -> int:
        """Entries added since the last block."""

    def block(self) -> Block:
        """The entries added since the last block, as one block."""


# How a store turns one of its stored lines (and where it starts, or -1) into an entry, raising its own error.
Decode = Callable[[bytes, int], RawEntry]


class State(Protocol):
    """A projection's state for a prefix of the log, made from whole blocks."""

    entries: int
    last_hash: str
    end_offset: int
    # What the stored blocks began with when this state was read (see ``JsonlStore``), or None.
    origin: Any

    def builder(self) -> Builder:
        """A builder that goes on from this state."""

    def extended(self, blocks: list[Any], builder: Builder) -> State:
        """This state followed by ``blocks``, which ``builder`` (from ``builder()``) made."""

    def same(self, other: State) -> bool:
        """Whether two states hold the same thing, however their blocks were cut."""


class Projection(Protocol):
    """A read model a store can keep: how to fold entries, and how its blocks are stored."""

    name: str  # names where its blocks are kept: ``<log>.<name>``, or its rows of the projections table
    title: str  # what messages call it ("the replay index")

    def load(self, blocks: Iterable[Any]) -> State:
        """The state made of these whole blocks, in order (none: the state of an empty log), taken as they come."""

    def encode(self, block: Any) -> bytes: ...

    def decode(self, body: bytes) -> Any:
        """A block from its stored bytes; raises ``ValueError`` if they are not one."""

    # Optional: ``decode_checked(body)``, ``decode`` that also checks what a reader of part of a block
    # (``Store.partial_blocks``) reads against the rest of it; ``verify`` reads blocks with it. And
    # ``decode_framed(body)``, ``decode`` of bytes a frame's CRC-32 vouched for (``Frames``), which need not
    # check them again.
    # Optional: ``read_lines(lines, start)``, a run of stored lines (``start``: where the first begins, or -1)
    # read into what its builder's ``add_run(run, decode)`` takes, with no state of the log, so that any
    # process can read them. A projection without it has each line decoded and added (``Builder.add``).


class Folding:
    """Entries folded onto a state as they come, into blocks cut every ``BLOCK_ENTRIES``.

    An append feeds it line by line while it writes, so that a million
    imported entries become ten blocks, never one list of a million.
    """

    def __init__(self, state: State) -> None:
        self.builder = state.builder()
        self.blocks: list[Any] = []

    def add(self, raw: RawEntry, offset: int = -1, end: int = -1) -> None:
        self.builder.add(raw, offset, end)
        if len(self.builder) >= BLOCK_ENTRIES:
            self.blocks.append(self.builder.block())

    def add_lines(self, lines: Sequence[bytes], start: int, decode: Decode) -> None:
        """Add consecutive stored lines (``start``: where the first starts, or -1 if they have no offsets)."""
        at = 0
        while at < len(lines):
            piece = lines[at : at + BLOCK_ENTRIES - len(self.builder)]
            where = spans(piece, start)
            for line, (line_start, end) in zip(piece, where, strict=True):
                self.builder.add(decode(line, line_start), line_start, end)
            start = where[-1][1]
            at += len(piece)
            if len(self.builder) >= BLOCK_ENTRIES:
                self.blocks.append(self.builder.block())

    def add_run(self, run: Any, decode: Decode) -> None:
        """Add a run of lines read by the projection's ``read_lines``, cut where a block ends."""
        self._in_blocks(run, lambda part: self.builder.add_run(part, decode))

    def add_observations(self, run: Any, decode: Decode) -> None:
        """Add a run of a spooled batch's observations (``spool.ObservationRun``) from its columns.

        A builder with ``add_observations(run)`` takes them as ``add`` of
        each line would; any other gets each line decoded. The run is cut
        where a block ends, as ``add`` cuts it.
        """
        add_observations = getattr(self.builder, "add_observations", None)

        def add(part: Any) -> None:
            if add_observations is not None:
                add_observations(part)
            else:
                for line, (start, end) in zip(part.lines, part.spans(), strict=True):
                    self.builder.add(decode(line, start), start, end)

        self._in_blocks(run, add)

    def _in_blocks(self, run: Any, add: Callable[[Any], None]) -> None:
        """``add`` the parts of ``run`` (its ``part(start, stop)``) that fill the builder's blocks in turn."""
        at = 0
        while at < len(run):
            left = BLOCK_ENTRIES - len(self.builder)
            add(run if at == 0 and len(run) <= left else run.part(at, at + left))
            at += left
            if len(self.builder) >= BLOCK_ENTRIES:
                self.blocks.append(self.builder.block())

    def done(self) -> list[Any]:
        """The blocks of every entry added."""
        if len(self.builder):
            self.blocks.append(self.builder.block())
        return self.blocks


class NewIds:
    """The rows of the observation ids a builder adds, for the fixes that name them.

    A fix names its observation by id, so a builder must find the row of an
    id it added. An import adds millions and a plain one is never asked for
    any: a map of them all would be most of its memory. The ids are kept
    joined, a few thousand to a string, and mapped only when one is asked
    for. A fix mostly names an observation recorded shortly before it, so the
    newest strings are mapped each on its own, as a lookup going back from
    the newest reaches them (a few small maps are made faster than one large
    one, and nothing older is mapped); only a lookup going back further than
    ``_WINDOW`` strings maps the older ones, once, into one map.
    """

    _JOINED = 4096
    _WINDOW = 64

    def __init__(self, first_row: int = 0) -> None:
        self.first_row = first_row
        self.count = 0
        self._joined: list[str] = []  # ids of rows first_row + k * _JOINED onwards, joined by newlines
        self._pending: list[str] = []  # ids added since the last joined string
        self._pending_map: dict[str, int] = {}  # the first _pending_mapped of them
        self._pending_mapped = 0
        self._recent: dict[int, dict[str, int]] = {}  # joined string k -> its ids' rows, for the newest _WINDOW
        self._older: dict[str, int] = {}  # the ids of the first _older_count joined strings, the last row of each
        self._older_count = 0

    def add(self, observation_id: str) -> int:
        """Add the id of the next observation row; its row."""
        row = self.first_row + self.count
        self._pending.append(observation_id)
        self.count += 1
        if len(self._pending) == self._JOINED:
            self._join_pending()
        return row

    def extend(self, observation_ids: Sequence[str]) -> None:
        """``add`` of each of these ids, in order, a joined string at a time."""
        at = 0
        while at < len(observation_ids):
            taken = observation_ids[at : at + self._JOINED - len(self._pending)]
            self._pending += taken
            self.count += len(taken)
            at += len(taken)
            if len(self._pending) == self._JOINED:
                self._join_pending()

    def _join_pending(self) -> None:
        """Join the pending ids into a string; if fixes were looking them up, their map is that string's."""
        if self._pending_map:
            self._map_pending()
            self._recent[len(self._joined)] = self._pending_map
        self._joined.append("\n".join(self._pending))
        self._pending, self._pending_map, self._pending_mapped = [], {}, 0

    def _map_pending(self) -> None:
        """Map the pending ids added since they were last mapped (a log of many fixes asks after nearly every add)."""
        pending, done = self._pending, self._pending_mapped
        start = self._start(len(self._joined))
        self._pending_map.update(zip(pending[done:], range(start + done, start + len(pending)), strict=True))
        self._pending_mapped = len(pending)

    def get(self, observation_id: str) -> int | None:
        """The row of an id added here (the last, were one added twice), or None."""
        self._map_pending()
        row = self._pending_map.get(observation_id)
        if row is not None:
            return row
        window = max(len(self._joined) - self._WINDOW, 0)
        if len(self._recent) > self._WINDOW:
            for k in [k for k in self._recent if k < window]:  # passed out of the window
                del self._recent[k]
        for k in range(len(self._joined) - 1, window - 1, -1):  # newest first: the last row of an id wins
            mapped = self._recent.get(k)
            if mapped is None:
                mapped = self._recent[k] = self._mapped(k)
            row = mapped.get(observation_id)
            if row is not None:
                return row
        return self._older_up_to(window).get(observation_id)

    def row_of_fix(self, observation_id: str, log_rows: Callable[[], Mapping[str, int]] | None, position: int) -> int:
        """The row of the observation the fix at ``position`` names: one added here, else one of the log's
        (``log_rows``)."""
        row = self.get(observation_id)
        if row is None and log_rows is not None:
            row = log_rows().get(observation_id)
        if row is None:
            raise StoredEntryError(position, f"it fixes observation {shown(observation_id)}, not in the log before it")
        return row

    def mapping(self) -> dict[str, int]:
        """Id -> row of every id added."""
        start = self._start(len(self._joined))
        pending = dict(zip(self._pending, range(start, start + len(self._pending)), strict=True))
        return self._older_up_to(len(self._joined)) | pending

    def _older_up_to(self, count: int) -> dict[str, int]:
        """The map of the first ``count`` joined strings (or more, if it was made further already)."""
        for k in range(self._older_count, count):  # in order: a later row of an id replaces an earlier one
            self._older.update(self._recent[k] if k in self._recent else self._mapped(k))
        self._older_count = max(self._older_count, count)
        return self._older

    def _mapped(self, k: int) -> dict[str, int]:
        start = self._start(k)
        return dict(zip(self._joined[k].split("\n"), range(start, start + self._JOINED), strict=True))

    def _start(self, k: int) -> int:
        """The row of the first id of joined string ``k``."""
        return self.first_row + k * self._JOINED


# Parts an ``Ids`` holds (one per block read, or per append) before they are joined into one.
_PARTS = 64


class Ids:
    """The observation ids of an index, row by row, kept as its blocks joined them.

    As a million Python strings, ids were the largest part of an index in
    memory, and splitting them most of what a fresh process spent reading
    it; yet a replay of one incident needs the ids of its rows only, and a
    full replay each id once. So each block's ids stay one string, and where
    each id starts in it is found (numpy, a few bytes an id) when one is
    first asked for.
    """

    def __init__(self, parts: list[str], counts: list[int]) -> None:
        self._parts = parts  # each the ids of ``counts[k]`` consecutive rows, joined by newlines
        self._counts = counts
        self._firsts = np.cumsum([0, *counts])
        # Per part, where each id starts and, last, where one after the part would: id k is
        # part[bounds[k] : bounds[k + 1] - 1]. Found when an id of the part is first asked for.
        self._bounds: list[np.ndarray | None] = [None] * len(parts)

    @classmethod
    def of(cls, parts: list[str], counts: list[int]) -> Ids:
        """The ids of these parts; joined as one if they are many (a log of many small appends)."""
        if len(parts) > _PARTS:
            return cls(["\n".join(p for p, count in zip(parts, counts, strict=True) if count)], [sum(counts)])
        return cls(parts, counts)

    def __len__(self) -> int:
        return int(self._firsts[-1])

    def __getitem__(self, row: int) -> str:
        if not 0 <= row < len(self):
            raise IndexError(row)
        part = int(np.searchsorted(self._firsts, row, side="right")) - 1
        return self._take(part, np.array([row - int(self._firsts[part])]))[0]

    def take(self, rows: np.ndarray) -> list[str]:
        """The ids of these rows, in their order."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self._parts) == 1:
            return self._take(0, rows)
        which = np.searchsorted(self._firsts, rows, side="right") - 1
        found: list[str] = [""] * len(rows)
        for part in np.unique(which).tolist():
            at = np.flatnonzero(which == part)
            for k, found_id in zip(at.tolist(), self._take(part, rows[at] - self._firsts[part]), strict=True):
                found[k] = found_id
        return found

    def among(self, wanted: set[str]) -> set[str]:
        """Which of ``wanted`` are here: one pass, each part split in turn, and nothing mapped."""
        found: set[str] = set()
        for joined, count in zip(self._parts, self._counts, strict=True):
            if count:
                found |= wanted.intersection(joined.split("\n"))
        return found

    def tolist(self) -> list[str]:
        found: list[str] = []
        for joined, count in zip(self._parts, self._counts, strict=True):
            if count:
                ids = joined.split("\n")
                if len(ids) != count:
                    raise StoreError(INCONSISTENT)
                found += ids
        return found

    def extended(self, more: Ids) -> Ids:
        """These ids followed by ``more``: neither is copied, unless appends made many parts (then joined as one)."""
        if len(self._parts) + len(more._parts) > _PARTS:
            return Ids.of(self._parts + more._parts, self._counts + more._counts)
        combined = Ids(self._parts + more._parts, self._counts + more._counts)
        combined._bounds = self._bounds + more._bounds
        return combined

    def _take(self, part: int, rows: np.ndarray) -> list[str]:
        joined, bounds = self._parts[part], self._bounds_of(part)
        return [joined[a : b - 1] for a, b in zip(bounds[rows].tolist(), bounds[rows + 1].tolist(), strict=True)]

    def _bounds_of(self, part: int) -> np.ndarray:
        bounds = self._bounds[part]
        if bounds is None:
            joined = self._parts[part]
            # Positions in characters: one byte a character if ASCII, else four.
            codes = np.frombuffer(joined.encode("ascii"), np.uint8) if joined.isascii() else \
                np.frombuffer(joined.encode("utf-32-le"), np.uint32)  # fmt: skip
            count = self._counts[part]
            newlines = np.flatnonzero(codes == 10) + 1
            bounds = np.concatenate(([0], newlines, [len(joined) + 1])) if count else np.zeros(1, int)
            if len(bounds) != count + 1:
                raise StoreError(INCONSISTENT)
            bounds = self._bounds[part] = bounds.astype(np.int32 if len(joined) < 2**31 - 1 else np.int64)
        return bounds


def extend(state: State, entries: Iterable[tuple[RawEntry, int, int]]) -> tuple[State, list[Any]]:
    """``state`` followed by ``entries`` (with the offsets of their lines), and the new blocks made."""
    folding = Folding(state)
    for raw, start, end in entries:
        folding.add(raw, start, end)
    blocks = folding.done()
    return state.extended(blocks, folding.builder), blocks


def spans(lines: Sequence[bytes], start: int) -> list[tuple[int, int]]:
    """Where each of these consecutive lines starts and ends (just after its newline); all -1 if ``start`` is."""
    if start < 0:
        return [(-1, -1)] * len(lines)
    return list(itertools.pairwise(itertools.accumulate((len(line) + 1 for line in lines), initial=start)))


def line_starts(lines: Sequence[bytes], start: int) -> np.ndarray:
    """``spans`` as one int64 array: where each line starts, then where the last ends; all -1 if ``start`` is."""
    if start < 0:
        return np.full(len(lines) + 1, -1, dtype=np.int64)
    starts = np.empty(len(lines) + 1, dtype=np.int64)
    starts[0] = start
    np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)) + 1, out=starts[1:])
    starts[1:] += start
    return starts


def extend_lines(state: State, runs: Iterable[tuple[int, Sequence[bytes]]], decode: Decode) -> tuple[State, list[Any]]:
    """``extend`` from runs of stored lines (each with where its first line starts, or -1), read by ``decode``."""
    folding = Folding(state)
    for start, lines in runs:
        folding.add_lines(lines, start, decode)
    blocks = folding.done()
    return state.extended(blocks, folding.builder), blocks


def extend_read(state: State, runs: Iterable[Any], decode: Decode) -> tuple[State, list[Any]]:
    """``extend`` from runs of stored lines read by the projection's ``read_lines``.

    The same state as ``extend`` of the decoded entries: the builder takes
    each line the reader did not read through ``decode``.
    """
    folding = Folding(state)
    for run in runs:
        folding.add_run(run, decode)
    blocks = folding.done()
    return state.extended(blocks, folding.builder), blocks


# Longer than any block a projection writes (``BLOCK_ENTRIES`` entries of at most a few kilobytes each).
_LONGEST_BLOCK = 1 << 40


def frame(body: bytes) -> bytes:
    """A block's bytes as a file keeps them: length, CRC-32, then the bytes, so a torn write is seen."""
    return len(body).to_bytes(8, "little") + zlib.crc32(body).to_bytes(4, "little") + body


@attrs.frozen
class Unread:
    """Bytes of a projection's blocks that could not be read: ``size`` of them from ``offset``, where whole blocks end.

    ``torn``: they could be the start of a block whose write never finished
    (too short for a header, or a length running past the end), the normal
    trace of a writer killed mid-write. Otherwise a block is all there but
    its CRC-32 or its contents do not hold, or its length is one no block
    has: damage.
    """

    offset: int
    size: int
    torn: bool

    def __str__(self) -> str:
        if self.torn:
            return f"ends in {self.size} bytes that are not a whole block (a torn write, or damage)"
        return f"holds a damaged block at byte {self.offset} ({self.size} bytes from there could not be read)"


class Frames:
    """The whole blocks in a source (bytes, or a file read from its start), each with the offset just after it.

    Iterating stops at a torn or damaged block; ``unread`` then says what
    was left, so that no reader takes a projection cut short for a whole
    one. A file is read a block at a time: a large log's index is never in
    memory as bytes and as blocks at once.
    """

    def __init__(self, source: bytes | BinaryIO, projection: Projection, *, checked: bool = False) -> None:
        self._stream = io.BytesIO(source) if isinstance(source, bytes) else source
        self._decode = decoder(projection, checked=checked, framed=True)
        self.unread: Unread | None = None

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        stream = self._stream
        total = stream.seek(0, io.SEEK_END)
        at = stream.seek(0)
        while at < total:
            block = self._next(stream, total - at)
            if block is None:
                return
            at = stream.tell()
            yield at, block

    def _next(self, stream: BinaryIO, left: int) -> Any:
        """The block at the stream's position, or None (with ``unread`` set) if there is no whole one."""
        at = stream.tell()
        head = stream.read(12)
        size = int.from_bytes(head[:8], "little")
        if len(head) < 12 or size > left - 12:  # never read past the end
            # A write cut short says the length of a block; a length no block has is damage (bytes of anything).
            self.unread = Unread(at, left, torn=len(head) < 12 or size <= _LONGEST_BLOCK)
            return None
        body = stream.read(size)
        try:
            if zlib.crc32(body) != int.from_bytes(head[8:12], "little"):
                raise ValueError("its CRC-32 does not hold")
            return self._decode(body)
        except ValueError:
            self.unread = Unread(at, left, torn=False)
            return None


def decoder(projection: Projection, *, checked: bool = False, framed: bool = False) -> Callable[[bytes], Any]:
    """How to read a stored block of ``projection``: ``checked`` as ``verify`` does (``decode_checked``), or
    ``framed`` as bytes a frame's CRC-32 vouched for (``decode_framed``), where it has those; else ``decode``."""
    if checked:
        return getattr(projection, "decode_checked", projection.decode)
    return getattr(projection, "decode_framed", projection.decode) if framed else projection.decode


# What a reader of blocks in part (``Store.partial_blocks``) takes of each.
Part = TypeVar("Part")
# Reads ``size`` bytes of a stored block's body from ``offset``, or raises ``ValueError``.
Read = Callable[[int, int], bytes]


def bodies(stream: BinaryIO) -> Iterator[Read]:
    """The bodies of the blocks framed in a file, each as a function reading ``size`` of its bytes from ``offset``.

    For a projection that keeps a block in parts, each with its own CRC-32
    (the frame's covers the whole body), and reads only some of them.
    Raises ``ValueError`` at bytes that are not a whole frame, and for a
    read past the end of its body.
    """
    fd, total = stream.fileno(), os.fstat(stream.fileno()).st_size
    at = 0
    while at < total:
        head = os.pread(fd, 12, at)
        size = int.from_bytes(head[:8], "little")
        if len(head) < 12 or size > total - at - 12:
            raise ValueError(f"bytes at {at} are not a whole block")
        start = at + 12

        def read(offset: int, length: int, start: int = start, size: int = size) -> bytes:
            if offset < 0 or length < 0 or offset + length > size:
                raise ValueError("a read runs past the end of its block")
            return os.pread(fd, length, start + offset)

        yield read
        at = start + size


def unframe(source: bytes | BinaryIO, projection: Projection, *, checked: bool = False) -> Frames:
    """The whole blocks in ``source`` with the offset just after each (``Frames``: afterwards, what was unread);
    ``checked``: read with the projection's ``decode_checked``, where it has one (``verify``)."""
    return Frames(source, projection, checked=checked)
