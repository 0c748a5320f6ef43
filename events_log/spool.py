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
their ids, names, figure keys and days worked out (``rows.StoredRows``),
and laid out as the spool keeps them by the process that read them
(``SpooledRows``): they are spooled by the block, never built as events.

What the indexes keep of each observation (its figure key, series, day,
kind and figure) waits in a third temporary file, fixed-width rows
(``FIGURES``): a store writing the batch folds its indexes from them, a
run of observations at a time (``ObservationRun``), instead of decoding
every line it writes again and hashing its figure key a second time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import orjson

from .admission import (
    BatchNames,
    KnownIds,
    check_in_order,
    check_names,
    check_repeats,
    counted_names,
    figure_digest,
    figure_fields,
    figure_key,
    latest_day,
    similar_records,
    with_descriptions,
)
from .codec import SCHEMA, event_from_stored, unstructure
from .errors import StoreError
from .events import EVENT_TYPES, Correction, Event, Observation, Qualifier, Retraction, SeriesKey, stated
from .known import key_code
from .rows import StoredRows

TYPES = tuple(EVENT_TYPES)
_CODE = {name: code for code, name in enumerate(TYPES)}
_OBSERVATION = _CODE["Observation"]
_HEADER = struct.Struct("<IBI")  # label length, type code, stored JSON length
_READ = 1 << 20  # bytes read back at a time
_NO_KEY = bytes(16)
# Per event, what the indexes keep of an observation (zeros for any other event): its figure key, its
# series (numbered by the spool, ``Spool.series``), the day reported (an ordinal), its figure (``OPEN``:
# an open-ended high), whether it is cumulative, and its qualifier (a position in ``Qualifier``).
FIGURES = np.dtype([("key", "V16"), ("series", "<i4"), ("day", "<i4"), ("low", "<i8"), ("high", "<i8"),
                    ("cumulative", "i1"), ("qualifier", "i1")])  # fmt: skip
OPEN = -1
_QUALIFIER = {member.value: code for code, member in enumerate(Qualifier)}


def _id_hash(observation_id: str) -> int:
    # Python's own string hash: a spool lives in one process (and the forks that read for it, which share its
    # hash secret), and equal hashes are confirmed by the ids.
    return hash(observation_id)


def _latest_day(event: Event) -> int:
    observation = stated(event)
    if observation is None:
        return 0
    days = (observation.reported_on, observation.period_start, observation.period_end)
    return max(day.toordinal() for day in days if day is not None)


def _cannot_spool(folder: str | None, exc: OSError) -> StoreError:
    where = folder or tempfile.gettempdir()
    return StoreError(
        f"cannot keep the import's events in {where} while it is read: {exc.strerror}; "
        "nothing was appended (set TMPDIR to a folder with room for about the size of the log it makes)"
    )


class SpooledRows:
    """Consecutive observations of a file (``rows.StoredRows``) in the form a spool keeps them: taken in with a
    few writes (``Spool.add_rows``).

    Made where the rows were read: the fork that reads part of a long CSV
    (``importers``) makes these of its rows, so that the process that takes
    them in, and is the one that waits, has little left to do. Their series
    are numbered within the block (``series`` holds their keys); the spool
    numbers them as its own.
    """

    __slots__ = ("count", "days", "figures", "id_hashes", "ids", "keys", "lengths", "names", "pairs", "records",
                 "series")  # fmt: skip

    def __init__(self, rows: StoredRows) -> None:
        self.count = len(rows)
        records = [
            _HEADER.pack(len(named), _OBSERVATION, len(stored)) + named + stored
            for named, stored in zip((label.encode(errors="surrogateescape") for label in rows.labels), rows.stored,
                                     strict=True)
        ]  # fmt: skip
        self.records = b"".join(records)
        self.lengths = array("q", map(len, records)).tobytes()
        self.names = counted_names(rows.labels, rows.incidents, rows.monitors)
        self.pairs = Counter(zip(rows.incidents, rows.monitors, strict=True))  # what the command's tally counts
        self.id_hashes = array("q", map(_id_hash, rows.ids)).tobytes()
        self.keys = rows.keys
        self.ids = "".join(i + "\n" for i in rows.ids).encode()
        local: dict[SeriesKey, int] = {}  # the block's own numbers of its series (``series``), as first met
        numbers = [local.setdefault(fields[:5], len(local)) for fields in rows.fields]
        self.series = list(local)
        self.figures = _figure_rows(rows.keys, rows.fields, rows.days, numbers)
        self.days = array("i", rows.days).tobytes()

    def __len__(self) -> int:
        return self.count

    def event(self, row: int) -> Observation:
        """The observation at ``row``, built the exact way from its stored data (for the few shown to people)."""
        return _record_event(self.records, int(np.frombuffer(self.lengths, dtype=np.int64)[:row].sum()))[1]


def _record_event(records: bytes, at: int = 0) -> tuple[str, Event]:
    """The label and the event of the spool's record at byte ``at`` of ``records``."""
    label_length, code, length = _HEADER.unpack_from(records, at)
    start = at + _HEADER.size + label_length
    label = records[at + _HEADER.size : start].decode(errors="surrogateescape")
    return label, event_from_stored(TYPES[code], SCHEMA[TYPES[code]], orjson.loads(records[start : start + length]))


def _figure_rows(keys: bytes, fields: Sequence[tuple], days: Sequence[int], series: Sequence[int]) -> bytes:
    """``FIGURES`` rows of observations: their figure keys (16 bytes each), what the keys are made of
    (``admission.figure_fields``), the days they were reported on (ordinals) and their series' numbers."""
    rows = np.zeros(len(fields), FIGURES)
    rows["key"] = np.frombuffer(keys, "V16")
    *_, kinds, lows, highs, qualifiers = zip(*fields, strict=True)
    rows["series"] = series
    rows["day"] = days
    rows["low"] = lows
    rows["high"] = [OPEN if high is None else high for high in highs]
    rows["cumulative"] = list(map("cumulative".__eq__, kinds))
    rows["qualifier"] = list(map(_QUALIFIER.__getitem__, qualifiers))
    return rows.tobytes()


class Spool:
    """The events of one batch, in order, in a temporary file; what admission asks of each, in columns.

    The file is unlinked from the start: a killed import leaves nothing
    behind. ``close`` frees it at once.
    """

    def __init__(self, folder: str | None = None) -> None:
        # Held open for the spool's life and closed by ``close`` (or at exit, being unlinked).
        self._file = tempfile.TemporaryFile(prefix="timeline-spool-", dir=folder)  # noqa: SIM115
        self._ids = tempfile.TemporaryFile(prefix="timeline-spool-ids-", dir=folder)  # noqa: SIM115
        self._figures = tempfile.TemporaryFile(prefix="timeline-spool-figures-", dir=folder)  # noqa: SIM115
        self.series: dict[SeriesKey, int] = {}  # the series of the batch's observations, numbered as first met
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
    def of(cls, labelled: Iterable[tuple[str, Event] | SpooledRows], folder: str | None = None) -> Spool:
        """A spool of ``labelled`` events (or blocks of stored rows), read to the end; the first bad one raises."""
        try:
            spool = cls(folder)
        except OSError as exc:
            raise _cannot_spool(folder, exc) from None
        try:
            for item in labelled:
                if type(item) is SpooledRows:
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
            fields = figure_fields(data)
            key = figure_digest(fields)
            self._id_hashes.append(_id_hash(event.id))
            self._keys += key
            self._ids.write(event.id.encode() + b"\n")
            [series] = self._series_numbers([fields[:5]])
            self._figures.write(_figure_rows(key, [fields], [event.reported_on.toordinal()], [series]))
        else:
            self._id_hashes.append(0)
            self._keys += _NO_KEY
            self._ids.write(b"\n")
            self._figures.write(bytes(FIGURES.itemsize))
        if isinstance(event, Correction | Retraction):
            self.fixes.append(self.count)
            self.targets.add(event.observation_id)
        self._days.append(_latest_day(event))
        self.count += 1

    def add_rows(self, rows: SpooledRows) -> None:
        """``add`` of consecutive observations already in the form the spool keeps them: a few writes."""
        lengths = np.frombuffer(rows.lengths, dtype=np.int64)
        self._file.write(rows.records)
        self._offsets.frombytes((self._end + np.cumsum(lengths) - lengths).tobytes())
        self._end += int(lengths.sum())
        self._types += bytes([_OBSERVATION]) * len(rows)
        self.names.use_counted(rows.names)
        self._id_hashes.frombytes(rows.id_hashes)
        self._keys += rows.keys
        self._ids.write(rows.ids)
        figures = np.frombuffer(rows.figures, FIGURES).copy()
        figures["series"] = np.array(self._series_numbers(rows.series), dtype=np.int32)[figures["series"]]
        self._figures.write(figures.tobytes())
        self._days.frombytes(rows.days)
        self.count += len(rows)

    def _series_numbers(self, keys: list[SeriesKey]) -> list[int]:
        """The spool's number of each series, a new one numbered as it is first met."""
        numbers = list(map(self.series.get, keys))  # a few thousand series recur down a file of millions
        if None in numbers:
            numbers = [self.series.setdefault(key, len(self.series)) for key in keys]
        return numbers

    def flush(self) -> None:
        """Write out what the files still buffer: a fork reading them must never write a copy of it too."""
        for file in (self._file, self._ids, self._figures):
            file.flush()

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
        for file in (self._file, self._ids, self._figures):
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

    @property
    def size(self) -> int:
        """The bytes its events take as it keeps them: about what their lines take, less the envelopes."""
        return self._end

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
            yield row, *_record_event(os.pread(self._file.fileno(), size, start))

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

    def figure_rows(self, row: int, count: int) -> np.ndarray:
        """The ``FIGURES`` rows of ``count`` events from ``row`` on."""
        self._figures.flush()
        size = FIGURES.itemsize
        return np.frombuffer(os.pread(self._figures.fileno(), count * size, row * size), FIGURES)

    def is_observation(self, row: int, count: int) -> np.ndarray:
        """Which of ``count`` events from ``row`` on are observations."""
        return np.frombuffer(self._types, dtype=np.uint8, count=count, offset=row) == _OBSERVATION

    def id_lines(self, size: int = _READ) -> Iterator[list[bytes]]:
        """Each event's observation id (empty for other events), ``size`` bytes of them at a time, in order."""
        self._ids.flush()
        rest, offset = b"", 0
        while chunk := os.pread(self._ids.fileno(), size, offset):
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
        late = np.flatnonzero(np.frombuffer(self._days, dtype=np.int32) > latest_day(today).toordinal())
        return int(late[0]) if len(late) else None


class ObservationRun:
    """Consecutive lines of a batch being written, and, if they are the spool's observations, their columns.

    ``ids`` and ``figures`` (``FIGURES`` rows, and ``series``: the spool's
    series in the order it numbered them) are None for other lines (new
    descriptions, fixes): a store decodes those. ``offsets`` says where each
    line starts in the file and, last, where the next one would; None for a
    store of rows.
    """

    __slots__ = ("figures", "ids", "lines", "offsets", "position", "recorded_at", "series")

    def __init__(
        self, position: int, lines: list[bytes], offsets: np.ndarray | None, recorded_at: str,
        ids: list[str] | None = None, figures: np.ndarray | None = None, series: list[SeriesKey] | None = None,
    ) -> None:  # fmt: skip
        self.position, self.lines, self.offsets, self.recorded_at = position, lines, offsets, recorded_at
        self.ids, self.figures, self.series = ids, figures, series

    def __len__(self) -> int:
        return len(self.lines)

    def part(self, start: int, stop: int) -> ObservationRun:
        """Its lines ``start`` to ``stop`` (a run cut where a block of an index ends)."""
        offsets = None if self.offsets is None else self.offsets[start : stop + 1]
        ids = None if self.ids is None else self.ids[start:stop]
        figures = None if self.figures is None else self.figures[start:stop]
        lines = self.lines[start:stop]
        return ObservationRun(self.position + start, lines, offsets, self.recorded_at, ids, figures, self.series)

    def spans(self) -> list[tuple[int, int]]:
        """Where each line starts and ends (just after its newline), or -1."""
        if self.offsets is None:
            return [(-1, -1)] * len(self.lines)
        bounds = self.offsets.tolist()
        return list(itertools.pairwise(bounds))

    def starts(self) -> list[int]:
        return [-1] * len(self.lines) if self.offsets is None else self.offsets[:-1].tolist()

    @property
    def end(self) -> int:
        """Where its last line ends in the file, or -1."""
        return -1 if self.offsets is None else int(self.offsets[-1])

    @property
    def last_hash(self) -> str:
        """The hash of its last line: a line ends in ``,"hash":"<64 hex digits>"}``."""
        return self.lines[-1][-66:-2].decode()


class SpooledLines:
    """The lines of a spooled batch (its new descriptions, then the spool's events) as they are made, with the spool.

    A store writes them as any lines; one that knows them takes them in
    pieces (``pieces``), each cut in runs, so that its indexes fold the
    observations from the spool's columns.
    """

    def __init__(self, lines: Iterable[bytes], spool: Spool, position: int, described: int, recorded_at: str) -> None:
        self._lines, self._spool = lines, spool
        self._position, self._described, self.recorded_at = position, described, recorded_at

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._lines)

    def pieces(self, size: int, offset: int = -1) -> Iterator[tuple[list[bytes], list[ObservationRun]]]:
        """Up to ``size`` lines at a time, as made, with their runs: observations of the spool, or other lines.

        ``offset`` is where the first line starts in the file, or -1 (a store of rows).
        """
        spool, position = self._spool, self._position
        series = list(spool.series)  # numbered as the spool met them
        # Read a little ahead only: the index builders hold a block's ids already, as strings.
        ids = itertools.chain.from_iterable(spool.id_lines(1 << 16))
        lines = iter(self._lines)
        for piece in iter(lambda: list(itertools.islice(lines, size)), []):
            offsets = None
            if offset >= 0:
                offsets = np.cumsum([offset, *map(len, piece)]) + np.arange(len(piece) + 1)
                offset = int(offsets[-1])
            row = position - self._position - self._described  # the spool's row of the piece's first line
            observed = np.zeros(len(piece), dtype=bool)
            if row + len(piece) > 0:
                observed[max(-row, 0) :] = spool.is_observation(max(row, 0), row + len(piece) - max(row, 0))
            cuts = [0, *(np.flatnonzero(observed[1:] != observed[:-1]) + 1).tolist(), len(piece)]
            runs = []
            for start, stop in itertools.pairwise(cuts):
                run = ObservationRun(position + start, piece[start:stop], None if offsets is None else
                                     offsets[start : stop + 1], self.recorded_at)  # fmt: skip
                taken = list(itertools.islice(ids, max(0, stop - max(start, -row))))  # the spool's rows only
                if observed[start]:
                    run.ids = b"\n".join(taken).decode().split("\n")
                    run.figures = spool.figure_rows(row + start, stop - start)
                    run.series = series
                runs.append(run)
            position += len(piece)
            yield piece, runs


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
    check_names(spool.names, with_descriptions(known.names, described), described)
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
