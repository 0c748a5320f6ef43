"""What a replay gives back: series day by day, their runs and flags, and the replay that holds them.

These are values: built once by replay (``scratch`` from nothing, ``warm``
from an earlier replay of the same log), then only read. ``Replay`` reads
the stored text of an observation back from the log when a page asks.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

import attrs
import msgspec
import numpy as np

from events_log.admission import Names
from events_log.codec import SCHEMA, parse_date, structure, upcast
from events_log.envelope import decode_line
from events_log.errors import InputError, LogError, StoreError, shown
from events_log.events import Correction, IncidentDescribed, MonitorDescribed, Observation, Qualifier, Retraction
from events_log.projection import Ids
from events_log.store import LogHead, Store

from .index import QUALIFIERS, Columns, LogIndex
from .rule import BASES, CARRIED, OPEN, Folded, ids_of

SeriesKey = tuple[str, str, str, str, str | None]


class Segment(NamedTuple):
    """A run of days that all say the same: its first day, as ``basis`` says, then days carried to ``end``."""

    start: dt.date
    end: dt.date  # the run's last day (inclusive): the day before the next report, or the series' last
    low: int
    high: int | None  # None: open-ended
    basis: str  # of ``start``; the days after it are carried
    observations: tuple[str, ...]


@attrs.frozen
class DayPoint:
    """A series on one day: the figure, how it was obtained, and what it rests on."""

    date: dt.date
    low: int
    high: int | None
    basis: str
    observations: tuple[str, ...]


@attrs.frozen
class Flag:
    date: dt.date
    kind: str
    detail: str


@attrs.frozen
class Series:
    """One (incident, monitor, measure, category, location), every day from its first report."""

    incident: str
    monitor: str
    measure: str
    category: str
    location: str | None
    folded: Folded = attrs.field(repr=False)

    @property
    def key(self) -> SeriesKey:
        return (self.incident, self.monitor, self.measure, self.category, self.location)

    @property
    def first(self) -> dt.date:
        return dt.date.fromordinal(self.folded.first)

    @property
    def last(self) -> dt.date:
        return dt.date.fromordinal(self.folded.last)

    def __len__(self) -> int:
        return self.folded.last - self.folded.first + 1

    def on(self, date: dt.date | str) -> DayPoint | None:
        """The point of ``date`` (a date or YYYY-MM-DD, as ``as_of`` takes), or None outside the series' span."""
        if type(date) is not dt.date:  # a date, the usual case, is taken as it is without parsing
            date = _day(date)
        ordinal = date.toordinal()
        f = self.folded
        if not f.first <= ordinal <= f.last:
            return None
        i = bisect.bisect_right(f.starts, ordinal) - 1
        basis = f.basis_of(i) if f.starts[i] == ordinal else CARRIED
        return DayPoint(date, f.lows[i], f.high(i), basis, f.observations(i))

    def segments(self) -> Iterator[Segment]:
        """The series run by run, in date order: each report day with the days carried after it.

        What a chart, a CSV file or a table needs without one object per day.
        """
        day = dt.date.fromordinal
        for start, end, low, high, code, ids in self.folded.runs():
            yield Segment(day(start), day(end), low, None if high == OPEN else high, BASES[code], ids_of(ids))

    @property
    def days(self) -> Iterator[DayPoint]:
        """Every day: each report day, then the days carried until the next."""
        for segment in self.segments():
            start, end, low, high, basis, observations = segment
            yield DayPoint(start, low, high, basis, observations)
            for ordinal in range(start.toordinal() + 1, end.toordinal() + 1):
                yield DayPoint(dt.date.fromordinal(ordinal), low, high, CARRIED, observations)

    @property
    def last_report(self) -> DayPoint:
        """The series on the day of its latest report (before any days carried after it)."""
        f = self.folded
        return self.on(dt.date.fromordinal(f.starts[-1]))

    @property
    def latest(self) -> DayPoint:
        return self.on(self.last)

    def until(self, as_of: dt.date) -> Series:
        """The series as a replay as-of ``as_of`` gives it: reports after it gone, carried up to it."""
        f = self.folded
        day = as_of.toordinal()
        keep = bisect.bisect_right(f.starts, day)
        if not keep:  # a replay as-of that date has no such series
            raise ValueError(f"the series begins on {self.first}, after {as_of}")
        if keep == len(f.starts):
            return attrs.evolve(self, folded=f._replace(last=max(day, f.starts[-1])))
        return attrs.evolve(self, folded=f.first_segments(keep, day))

    @property
    def flags(self) -> tuple[Flag, ...]:
        return tuple(Flag(dt.date.fromordinal(f.day), f.kind, f.detail) for f in self.folded.flags)


@attrs.define
class Effective:
    """The observation rows of a log prefix after its corrections and retractions.

    ``columns`` are the index's observation columns with corrections applied
    (series, day, cumulative, low, high, qualifier); ``live`` marks the rows
    that count for this replay (not retracted, reported on or before as-of,
    in the series asked for).
    """

    columns: Columns
    retracted: np.ndarray
    live: np.ndarray
    ids: Ids
    corrected_by: dict[int, list[int]]  # row -> positions of the corrections applied to it
    # How many of the index's corrections, and of its retractions, are applied: a later replay goes on from there.
    corrections: int
    retractions: int
    _rows: dict[str, int] | None = None

    @property
    def qualifier(self) -> np.ndarray:
        return self.columns.qualifier

    @property
    def rows(self) -> dict[str, int]:
        """Observation id -> row, built on first use: CSV and JSON output never need it."""
        if self._rows is None:
            rows = np.flatnonzero(self.live)
            self._rows = dict(zip(self.ids.take(rows), rows.tolist(), strict=True))
        return self._rows


@attrs.define(eq=False)
class Behind:
    """What a replay reads back from beside its series: the index and the effective rows.

    A replay folded from the index has them from the start. One read from a
    full replay kept beside the log (``kept_incidents``) has only its series;
    ``make`` gives these from the index the first time a page asks.
    """

    index: LogIndex | None = None
    effective: Effective | None = None
    make: Callable[[], tuple[LogIndex, Effective]] | None = None
    names: Names | None = None  # the slugs the log described, where known without the index

    def get(self) -> tuple[LogIndex, Effective]:
        if self.index is None:
            self.index, self.effective = self.make()
            self.make = None
        return self.index, self.effective


@attrs.frozen
class Replay:
    """What a log said, as-of a date and known-at a time, and how to name that log."""

    as_of: dt.date | None
    known_at: dt.datetime | None
    log: LogHead
    series: tuple[Series, ...]
    incidents: Mapping[str, IncidentDescribed] = attrs.field(repr=False)
    monitors: Mapping[str, MonitorDescribed] = attrs.field(repr=False)
    last_recorded_at: dt.datetime | None
    _store: Store = attrs.field(repr=False, alias="store")
    _behind: Behind = attrs.field(repr=False, eq=False, alias="behind")
    _structured: dict[str, Observation] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    @property
    def _index(self) -> LogIndex:
        return self._behind.get()[0]

    @property
    def _effective(self) -> Effective:
        return self._behind.get()[1]

    def _names(self) -> Names:
        """The slugs the log described, up to this replay's head."""
        return self._behind.names or self._index.names()

    def qualifier(self, observation_id: str) -> Qualifier:
        return Qualifier(QUALIFIERS[self._effective.qualifier[self._row(observation_id)]])

    def observation(self, observation_id: str) -> Observation:
        """The effective observation (after corrections) behind an id the series name, read from the log."""
        return self._observation(observation_id, None)

    def _observation(self, observation_id: str, line_at: Callable[[int, int], bytes] | None) -> Observation:
        found = self._structured.get(observation_id)
        if found is None:
            data = self._data_of_row(self._row(observation_id), line_at)
            found = self._structured[observation_id] = structure(data, Observation)
        return found

    def observation_data(self, observation_id: str) -> dict:
        """The same as stored event data (current schema): what pages need, without building objects.

        The log's content was validated when it was appended; reports read
        thousands of these and only display them.
        """
        return self._data_of_row(self._row(observation_id))

    def _row(self, observation_id: str) -> int:
        """The row of an effective observation; an id the replay does not hold is the caller's mistake."""
        row = self._effective.rows.get(observation_id)
        if row is None:
            raise InputError(f"no effective observation {shown(observation_id)} in {self._store.location}")
        return row

    def _lines(self) -> Callable[[int, int], bytes]:
        """The store's ``line_at``, once the log is found to still hold this replay's head.

        Lines are read by their offsets in the log this replay was read from.
        A log replaced under a replay a caller still holds (rewritten, restored
        from a copy, cut back) would lend it another log's records, or bytes
        that are not a line: the head says whether it is still that log (its
        hash names every entry before it too).
        """
        entries = self.log.entries
        if entries:
            position = entries - 1
            try:
                last = decode_line(self._store.line_at(position, int(self._index.offsets[position])))
                same = (last.position, last.hash) == (position, self.log.head)
            except (LogError, InputError, OSError):
                same = False
            if not same:
                raise log_replaced(self._store, self.log)
        return self._store.line_at

    def _data_of_row(self, row: int, line_at: Callable[[int, int], bytes] | None = None) -> dict:
        corrections = self._effective.corrected_by.get(row)
        position = corrections[-1] if corrections else int(self._index.obs_entry[row])
        raw = decode_line((line_at or self._lines())(position, int(self._index.offsets[position])))
        data = raw.event if raw.schema == SCHEMA[raw.type] else upcast(raw.type, raw.schema, raw.event)
        return data["replacement"] if corrections else data

    def retracted(self, incident: str | None = None) -> list[tuple[dict, Retraction, str]]:
        """Observations withdrawn within known-at and reported on or before as-of, oldest retraction first.

        Each comes as (the record as last corrected, the retraction, when it
        was recorded), so that pages can say what they leave out and why.
        """
        state, index, line_at = self._effective, self._index, self._lines()
        last_day = self.as_of.toordinal() if self.as_of is not None else None
        found = []
        withdrawn = slice(0, state.retractions)
        for entry, row in zip(index.retraction_entry[withdrawn].tolist(), index.retraction_row[withdrawn].tolist(),
                              strict=True):  # fmt: skip
            if incident is not None and index.series[int(state.columns.series[row])][0] != incident:
                continue
            if last_day is not None and state.columns.day[row] > last_day:
                continue
            raw = decode_line(line_at(entry, int(index.offsets[entry])))
            found.append((self._data_of_row(row, line_at), structure(raw.event, Retraction), raw.recorded_at))
        return found

    def observations(self, incident: str | None = None) -> Iterator[Observation]:
        """Effective observations in log order, reported on or before as-of."""
        line_at = self._lines()  # the log checked once, not once an observation
        for observation_id in self.observation_ids(incident):
            yield self._observation(observation_id, line_at)

    def observation_ids(self, incident: str | None = None) -> list[str]:
        """Ids of the effective observations in log order, reported on or before as-of."""
        return self._effective.ids.take(self._rows_of(incident))

    def _rows_of(self, incident: str | None) -> np.ndarray:
        """The rows of the effective observations of ``incident`` (all without one), in log order."""
        rows = self._effective.live
        if incident is not None:
            rows = rows & np.isin(self._effective.columns.series, chosen_series(self._index.series, incident, None))
        return np.flatnonzero(rows)

    def figures(self, incident: str | None = None) -> tuple[Columns, list[SeriesKey]]:
        """What the replay's index holds of the observations ``records`` gives, in the same order: their
        columns after corrections, and the keys of the series that the ``series`` column numbers.

        A page takes the dates, series and figures of its table from these,
        a whole column at a time, rather than from each record.
        """
        rows = self._rows_of(incident)
        return Columns(*(column[rows] for column in self._effective.columns)), self._index.series

    def tallies(self, kind: str) -> dict[str, tuple[int, dt.date]]:
        """Per incident (``kind="incident"``) or monitor: its effective figures and the latest report day."""
        series, day = self._effective.columns.series, self._effective.columns.day
        rows = np.flatnonzero(self._effective.live)
        counts = np.bincount(series[rows], minlength=len(self._index.series))
        latest = np.zeros(len(self._index.series), dtype=np.int64)
        np.maximum.at(latest, series[rows], day[rows])
        field = 0 if kind == "incident" else 1
        found: dict[str, tuple[int, int]] = {}
        for number in np.flatnonzero(counts).tolist():
            name = self._index.series[number][field]
            count, last = found.get(name, (0, 0))
            found[name] = (count + int(counts[number]), max(last, int(latest[number])))
        return {name: (count, dt.date.fromordinal(last)) for name, (count, last) in found.items()}

    def corrected(self, observation_id: str) -> bool:
        """Whether our record of this observation was corrected (within known-at)."""
        return self._row(observation_id) in self._effective.corrected_by

    def corrections(self, observation_id: str) -> list[Correction]:
        """The corrections of our record of an observation, oldest first."""
        row, line_at = self._row(observation_id), self._lines()
        positions = self._effective.corrected_by.get(row, [])
        return [
            structure(decode_line(line_at(p, int(self._index.offsets[p]))).event, Correction)
            for p in positions
        ]

    def records(
        self, incident: str | None = None, as_type: type = dict
    ) -> Iterator[tuple[str, object, tuple[str, ...]]]:
        """Each effective observation of ``incident`` (all without one) in log order, as pages list it:
        its id, its stored event data decoded as ``as_type`` (a msgspec type: a page's struct of just
        the fields it shows, or ``dict``; a corrected one's latest replacement), and the reasons our log
        gave for correcting it, oldest first.

        Pages list hundreds of thousands of these: each line is decoded once,
        by msgspec, into ``as_type`` straight away. An entry stored in an
        older schema is upcast first.
        """

        def decoder(event: type):
            return msgspec.json.Decoder(msgspec.defstruct("Stored", [("schema", int), ("event", event)])).decode

        fixed = msgspec.defstruct("Fixed", [("replacement", as_type), ("reason", str)])
        observation, correction = ("Observation", as_type, decoder(as_type)), ("Correction", fixed, decoder(fixed))
        state, index = self._effective, self._index

        def read(position: int, offset: int, of: tuple):
            name, event, decode = of
            line = line_at(position, offset)
            try:
                stored = decode(line)
            except msgspec.ValidationError:  # an older schema's shape
                stored = None
            if stored is not None and stored.schema == SCHEMA[name]:
                return stored.event
            raw = decode_line(line)
            return msgspec.convert(upcast(raw.type, raw.schema, raw.event), event)

        rows = self._rows_of(incident)
        entries = index.obs_entry[rows]
        offsets, line_at, corrected_by = index.offsets, self._lines(), state.corrected_by
        for observation_id, row, position, offset in zip(state.ids.take(rows), rows.tolist(), entries.tolist(),
                                                         offsets[entries].tolist(), strict=True):  # fmt: skip
            corrections = corrected_by.get(row)
            if corrections is None:
                yield observation_id, read(position, offset, observation), ()
            else:
                fixes = [read(p, int(offsets[p]), correction) for p in corrections]
                yield observation_id, fixes[-1].replacement, tuple(fix.reason for fix in fixes)


def log_replaced(store: Store, head: LogHead) -> StoreError:
    """The error of a replay read at ``head`` asked for more of a log that no longer ends there."""
    return StoreError(
        f"{store.location} no longer holds the log this replay was read at ({head.entries} entries, "
        f"head {head.head[:12]}): replay it again"
    )


def chosen_series(keys: Sequence[SeriesKey], incident: str | None, monitor: str | None) -> list[int]:
    """The numbers of the series of an incident and a monitor (None: any), among ``keys`` (by number)."""
    return [n for n, key in enumerate(keys)
            if (incident is None or key[0] == incident) and (monitor is None or key[1] == monitor)]  # fmt: skip


def _day(value: object) -> dt.date:
    """A day as ``Series.on`` is given it: a date, or YYYY-MM-DD as the API's ``as_of`` takes."""
    try:
        return parse_date(value)
    except ValueError as exc:
        raise InputError(str(exc), "date") from None
