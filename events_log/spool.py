"""A batch too large to hold: its events kept in a temporary file as they are read, and admitted from columns.

An import used to hold every event of its file as an object until the whole
batch was admitted, so its memory grew with the file: 2 GB for a million
rows. A spool writes each event's stored form (the JSON an entry carries) to
an unlinked temporary file as the file is read, and keeps in memory only what
admission asks of every event: a hash of its id, its figure key, the
latest day it names and its place (37 bytes an event). Admission
(``admit_spool``) then reads back only the few events that can fail or
matter to another, and runs the very checks of ``admission`` on them:

- every fix (correction, retraction), and the observations whose id a fix
  names;
- observations whose id hash is not unique in the batch (a repeated id);
- the first observation whose id the log already holds;
- the first figure dated after the day it is recorded;
- for repeats, the observations whose figure key is not unique in the batch
  or is the key of an effective record of the log.

Any other event passes each check alone, so the first refusal is the one
the same batch held in memory meets. The store then writes the entries from
the spooled JSON, without building the events again.

A CSV's rows arrive already in their stored form, a block at a time, with
their ids, names, figure keys and days worked out (``rows.StoredRows``):
they are spooled by the block, never built as events at all.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from array import array
from collections.abc import Iterable, Iterator

import numpy as np
import orjson

from .admission import (
    SLACK,
    BatchNames,
    KnownIds,
    check_in_order,
    check_names,
    check_repeats,
    figure_key,
    similar_records,
    with_descriptions,
)
from .codec import SCHEMA, event_from_stored, unstructure
from .errors import StoreError
from .events import EVENT_TYPES, Correction, Event, Observation, Retraction
from .known import key_code
from .rows import StoredRows

TYPES = tuple(EVENT_TYPES)
_CODE = {name: code for code, name in enumerate(TYPES)}
_OBSERVATION = _CODE["Observation"]
_HEADER = struct.Struct("<IBI")  # label length, type code, stored JSON length
_READ = 1 << 20  # bytes read back at a time
_NO_KEY = bytes(16)


def _id_hash(observation_id: str) -> int:
    # Python's own string hash: a spool lives in one process, and equal hashes are confirmed by the ids.
    return hash(observation_id)


def _latest_day(event: Event) -> int:
    observation = event.replacement if isinstance(event, Correction) else event
    if not isinstance(observation, Observation):
        return 0
    days = (observation.reported_on, observation.period_start, observation.period_end)
    return max(day.toordinal() for day in days if day is not None)


def _cannot_spool(folder: str | None, exc: OSError) -> StoreError:
    where = folder or tempfile.gettempdir()
    return StoreError(
        f"cannot keep the import's events in {where} while it is read: {exc.strerror}; "
        "nothing was appended (set TMPDIR to a folder with room for about the size of the log it makes)"
    )


class Spool:
    """The events of one batch, in order, in a temporary file; what admission asks of each, in columns.

    The file is unlinked from the start: a killed import leaves nothing
    behind. ``close`` frees it at once.
    """

    def __init__(self, folder: str | None = None) -> None:
        # Held open for the spool's life and closed by ``close`` (or at exit, being unlinked).
        self._file = tempfile.TemporaryFile(prefix="timeline-spool-", dir=folder)  # noqa: SIM115
        self._ids = tempfile.TemporaryFile(prefix="timeline-spool-ids-", dir=folder)  # noqa: SIM115
        self.count = 0
        self.names = BatchNames()
        self.fixes: list[int] = []  # rows of corrections and retractions
        self.targets: set[str] = set()  # the observation ids they name
        self._days = array("i")  # per event: the latest day its figure names, as an ordinal (0: none)
        self._types = bytearray()
        self._id_hashes = array("q")  # per event: its observation id's hash, or 0
        self._keys = bytearray()  # per event: 16 bytes of an observation's figure key, or zeros
        self._offsets = array("q")  # per event: where its record starts in the file
        self._admitted = False
        self._end = 0

    @classmethod
    def of(cls, labelled: Iterable[tuple[str, Event] | StoredRows], folder: str | None = None) -> Spool:
        """A spool of ``labelled`` events (or blocks of stored rows), read to the end; the first bad one raises."""
        try:
            spool = cls(folder)
        except OSError as exc:
            raise _cannot_spool(folder, exc) from None
        try:
            for item in labelled:
                if type(item) is StoredRows:
                    spool.add_rows(item)
                else:
                    spool.add(*item)
        except OSError as exc:
            spool.close()
            raise _cannot_spool(folder, exc) from None
        except BaseException:
            spool.close()
            raise
        return spool

    def add(self, label: str, event: Event) -> None:
        name = type(event).__name__
        data = unstructure(event)
        # A label names the file, and a file's name may hold bytes that are not UTF-8 (kept as surrogates).
        stored, named = orjson.dumps(data), label.encode(errors="surrogateescape")
        record = _HEADER.pack(len(named), _CODE[name], len(stored)) + named + stored
        self._file.write(record)
        self._offsets.append(self._end)
        self._end += len(record)
        self._types.append(_CODE[name])
        self.names.add(event, label)
        if isinstance(event, Observation):
            self._id_hashes.append(_id_hash(event.id))
            self._keys += bytes.fromhex(figure_key(data))
            self._ids.write(event.id.encode() + b"\n")
        else:
            self._id_hashes.append(0)
            self._keys += _NO_KEY
            self._ids.write(b"\n")
        if isinstance(event, Correction | Retraction):
            self.fixes.append(self.count)
            self.targets.add(event.observation_id)
        self._days.append(_latest_day(event))
        self.count += 1

    def add_rows(self, rows: StoredRows) -> None:
        """``add`` of consecutive observations already in their stored form, what they are asked worked out."""
        records, end, offsets = [], self._end, self._offsets
        for label, stored in zip(rows.labels, rows.stored, strict=True):
            named = label.encode(errors="surrogateescape")
            records.append(_HEADER.pack(len(named), _OBSERVATION, len(stored)) + named + stored)
            offsets.append(end)
            end += len(records[-1])
        self._file.write(b"".join(records))
        self._end = end
        self._types += bytes([_OBSERVATION]) * len(rows)
        self.names.use_rows(rows.labels, rows.incidents, rows.monitors)
        self._id_hashes.extend(map(_id_hash, rows.ids))
        self._keys += rows.keys
        self._ids.write("".join(i + "\n" for i in rows.ids).encode())
        self._days.extend(rows.days)
        self.count += len(rows)

    def admitted(self) -> None:
        """Let go of what only admission reads (days, id hashes, figure keys): the batch is written next.

        Tens of bytes an event, which at millions of rows would sit beside
        everything the writing holds. Admission cannot run again after it.
        """
        self._days, self._id_hashes, self._keys = array("i"), array("q"), bytearray()
        self._admitted = True

    def close(self) -> None:
        # What is still buffered need not reach the disk (the files are unlinked); a full disk must not
        # stop them closing.
        for file in (self._file, self._ids):
            with contextlib.suppress(OSError):
                file.close()
        # Its columns go too (tens of bytes an event: hundreds of MB for millions), before what a
        # caller does next, such as the replay an import keeps.
        self._days, self._types, self._id_hashes = array("i"), bytearray(), array("q")
        self._keys, self._offsets = bytearray(), array("q")

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __len__(self) -> int:
        return self.count

    # -- reading back ---------------------------------------------------------------

    def stored(self) -> Iterator[tuple[str, bytes]]:
        """(type name, stored JSON) of every event, in order: what an entry carries."""
        for code, stored in self._records():
            yield TYPES[code], stored

    def events(self, rows: Iterable[int]) -> Iterator[tuple[int, str, Event]]:
        """(row, label, event) of the events at ``rows``, in the order given."""
        self._file.flush()
        for row in rows:
            start = self._offsets[row]
            size = (self._offsets[row + 1] if row + 1 < self.count else self._end) - start
            record = os.pread(self._file.fileno(), size, start)
            label_length, code, _ = _HEADER.unpack_from(record)
            label = record[_HEADER.size : _HEADER.size + label_length].decode(errors="surrogateescape")
            data = orjson.loads(record[_HEADER.size + label_length :])
            yield row, label, event_from_stored(TYPES[code], SCHEMA[TYPES[code]], data)

    def _records(self) -> Iterator[tuple[int, bytes]]:
        self._file.flush()
        buffer, at, offset = b"", 0, 0
        while True:
            chunk = os.pread(self._file.fileno(), _READ, offset)
            if not chunk:
                break
            offset += len(chunk)
            buffer = buffer[at:] + chunk
            at = 0
            while len(buffer) - at >= _HEADER.size:
                label_length, code, length = _HEADER.unpack_from(buffer, at)
                end = at + _HEADER.size + label_length + length
                if end > len(buffer):
                    break
                yield code, buffer[at + _HEADER.size + label_length : end]
                at = end

    def id_lines(self) -> Iterator[list[bytes]]:
        """Each event's observation id (empty for other events), a piece at a time, in order."""
        self._ids.flush()
        rest, offset = b"", 0
        while chunk := os.pread(self._ids.fileno(), _READ, offset):
            offset += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield lines

    # -- what admission reads of every event ------------------------------------------

    def repeated_ids(self) -> np.ndarray:
        """Rows of observations whose id hash another observation of the batch shares."""
        return _shared(np.frombuffer(self._id_hashes, dtype=np.int64), self.observations())

    def rows_of(self, observation_ids: Iterable[str]) -> np.ndarray:
        """Rows of observations whose id hash is that of one of ``observation_ids``."""
        wanted = np.array([_id_hash(i) for i in observation_ids], dtype=np.int64)
        hashes = np.frombuffer(self._id_hashes, dtype=np.int64)
        return np.flatnonzero(np.isin(hashes, wanted) & self.observations())

    def figure_codes(self) -> np.ndarray:
        """The first 64 bits of each event's figure key (as ``known.key_code`` reads them)."""
        return np.frombuffer(self._keys, dtype="<i8")[0::2]

    def figure_keys(self) -> Iterator[str]:
        """The batch's distinct figure keys, as ``admission.figure_key`` writes them."""
        keys = np.frombuffer(self._keys, dtype="V16")[self.observations()]
        for key in np.unique(keys):
            yield key.tobytes().hex()

    def repeated_figures(self) -> np.ndarray:
        """Rows of observations whose figure key another observation of the batch shares."""
        return _shared(self.figure_codes(), self.observations())

    def observations(self) -> np.ndarray:
        """Which events are observations."""
        return np.frombuffer(self._types, dtype=np.uint8) == _OBSERVATION

    def first_taken(self, known: KnownIds, piece: int = 10_000) -> int | None:
        """The first row whose observation id the log already holds."""
        row = 0
        for lines in self.id_lines():
            for start in range(0, len(lines), piece):
                ids = [line.decode() for line in lines[start : start + piece]]
                held = known.taken([i for i in ids if i])
                if held:
                    return row + start + next(k for k, i in enumerate(ids) if i in held)
            row += len(lines)
        return None

    def first_late(self, today) -> int | None:
        """The first row with a figure dated after ``today`` and its slack, if any."""
        late = np.flatnonzero(np.frombuffer(self._days, dtype=np.int32) > (today + SLACK).toordinal())
        return int(late[0]) if len(late) else None


def _shared(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Rows (where ``among``) whose value another such row has too.

    The values that repeat are found in a sorted copy, then looked for: a
    batch of millions holds two copies of its values at most, not the four
    arrays of a sort by position (its largest moment of memory).
    """
    chosen = values[among]
    ordered = np.sort(chosen)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(repeated):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(among)[np.isin(chosen, repeated)]


def admit_spool(
    spool: Spool,
    described: list[Event],
    known: KnownIds,
    *,
    start: int,
    today,
    allow_duplicate: bool = False,
) -> None:
    """Raise ``InputError`` naming the first event of ``described`` and then ``spool`` that the log cannot take.

    The same refusals, in the same order, as ``admission.admit`` of the
    whole batch held in memory: names first, then each event in order, then
    repeats. ``described`` are new descriptions put before the spool's events.
    """
    if spool._admitted:
        raise ValueError("a spool is admitted once: it has let go of what admission reads")
    check_names(spool.names, with_descriptions(known.names, described))
    first = len(described)
    rows = {*spool.fixes, *spool.rows_of(spool.targets).tolist(), *spool.repeated_ids().tolist()}
    for row in (spool.first_late(today) if today is not None else None, spool.first_taken(known)):
        if row is not None:
            rows.add(row)
    picked = ((first + row, event, label) for row, label, event in spool.events(sorted(rows)))
    changed = check_in_order(picked, known, start=start, today=today)
    if allow_duplicate or not spool.count:
        spool.admitted()
        return
    records = similar_records(known, spool.figure_keys(), changed)
    held = np.array([key_code(figure_key(unstructure(record))) for record in records], dtype=np.int64)
    codes = spool.figure_codes()
    candidates = set(spool.repeated_figures().tolist())
    candidates.update(np.flatnonzero(np.isin(codes, held) & spool.observations()).tolist())
    new = [(event, label) for _, label, event in spool.events(sorted(candidates))]
    check_repeats(new, records)
    spool.admitted()
