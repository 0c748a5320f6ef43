"""Replay: from a log to per-day series, as-of a report date and known-at a log time.

``replay(store, as_of, known_at)`` is the one entry point. It reads the
store's columnar index (``events_log.index``), keeps the entries recorded
at or before known-at (a prefix of the log), applies corrections and
retractions within that prefix, keeps observations reported on or before
as-of, and folds each series with ``rule.fold``. Whole columns move at a
time (numpy); only the fold itself walks observations one by one.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gc
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs
import numpy as np

from events_log.admission import Names, unknown_name
from events_log.codec import SCHEMA, structure, upcast
from events_log.envelope import decode_line
from events_log.errors import InputError
from events_log.events import Correction, IncidentDescribed, MonitorDescribed, Observation, Qualifier, Retraction
from events_log.index import OPEN, QUALIFIERS, LogIndex
from events_log.store import LogHead, Store

from .rule import CARRIED, Folded, Reports, fold, resumable

SeriesKey = tuple[str, str, str, str, str | None]


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

    def on(self, date: dt.date) -> DayPoint | None:
        """The point of ``date``, or None outside the series' span."""
        ordinal = date.toordinal()
        f = self.folded
        if not f.first <= ordinal <= f.last:
            return None
        i = bisect.bisect_right(f.starts, ordinal) - 1
        basis = f.basis_of(i) if f.starts[i] == ordinal else CARRIED
        return DayPoint(date, f.lows[i], f.high(i), basis, f.observations[i])

    @property
    def days(self) -> Iterator[DayPoint]:
        """Every day: each report day, then the days carried until the next."""
        f = self.folded
        for i, start in enumerate(f.starts):
            end = f.starts[i + 1] if i + 1 < len(f.starts) else f.last + 1
            yield DayPoint(dt.date.fromordinal(start), f.lows[i], f.high(i), f.basis_of(i), f.observations[i])
            for ordinal in range(start + 1, end):
                yield DayPoint(dt.date.fromordinal(ordinal), f.lows[i], f.high(i), CARRIED, f.observations[i])

    @property
    def latest(self) -> DayPoint:
        return self.on(self.last)

    def until(self, as_of: dt.date) -> Series:
        """The series as a replay as-of ``as_of`` gives it: reports after it gone, carried up to it."""
        f = self.folded
        day = as_of.toordinal()
        keep = bisect.bisect_right(f.starts, day)
        if keep == len(f.starts):
            return attrs.evolve(self, folded=f._replace(last=max(day, f.starts[-1])))
        folded = Folded(
            day, f.starts[:keep], f.lows[:keep], f.highs[:keep], f.basis_codes[:keep], f.observations[:keep],
            tuple(flag for flag in f.flags if flag.day <= day),
        )  # fmt: skip
        return attrs.evolve(self, folded=folded)

    @property
    def flags(self) -> tuple[Flag, ...]:
        return tuple(Flag(dt.date.fromordinal(f.day), f.kind, f.detail) for f in self.folded.flags)


@attrs.define
class _Effective:
    """The observation rows of a log prefix after its corrections and retractions.

    ``columns`` are the index's observation columns with corrections applied
    (series, day, cumulative, low, high, qualifier); ``live`` marks the rows
    that count for this replay (not retracted, reported on or before as-of,
    in the series asked for).
    """

    columns: tuple[np.ndarray, ...]
    retracted: np.ndarray
    live: np.ndarray
    ids: list[str]
    corrected_by: dict[int, list[int]]  # row -> positions of the corrections applied to it
    fixes: int  # corrections and retractions of the index applied, to go on from there
    drops: int
    _rows: dict[str, int] | None = None

    @property
    def qualifier(self) -> np.ndarray:
        return self.columns[5]

    @property
    def rows(self) -> dict[str, int]:
        """Observation id -> row, built on first use: CSV and JSON output never need it."""
        if self._rows is None:
            ids = self.ids
            self._rows = {ids[i]: i for i in np.flatnonzero(self.live).tolist()}
        return self._rows


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
    _index: LogIndex = attrs.field(repr=False, alias="index")
    _effective: _Effective = attrs.field(repr=False, alias="effective")
    _structured: dict[str, Observation] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def qualifier(self, observation_id: str) -> Qualifier:
        return Qualifier(QUALIFIERS[self._effective.qualifier[self._effective.rows[observation_id]]])

    def observation(self, observation_id: str) -> Observation:
        """The effective observation (after corrections) behind an id the series name, read from the log."""
        found = self._structured.get(observation_id)
        if found is None:
            found = self._structured[observation_id] = structure(self.observation_data(observation_id), Observation)
        return found

    def observation_data(self, observation_id: str) -> dict:
        """The same as stored event data (current schema): what pages need, without building objects.

        The log's content was validated when it was appended; reports read
        thousands of these and only display them.
        """
        return self._data_of_row(self._effective.rows[observation_id])

    def _data_of_row(self, row: int) -> dict:
        corrections = self._effective.corrected_by.get(row)
        position = corrections[-1] if corrections else int(self._index.obs_entry[row])
        raw = decode_line(self._store.line_at(position, int(self._index.offsets[position])))
        data = raw.event if raw.schema == SCHEMA[raw.type] else upcast(raw.type, raw.schema, raw.event)
        return data["replacement"] if corrections else data

    def retracted(self, incident: str | None = None) -> list[tuple[dict, Retraction, str]]:
        """Observations withdrawn within known-at and reported on or before as-of, oldest retraction first.

        Each comes as (the record as last corrected, the retraction, when it
        was recorded), so that pages can say what they leave out and why.
        """
        state, index = self._effective, self._index
        last_day = self.as_of.toordinal() if self.as_of is not None else None
        found = []
        for entry, row in zip(index.drop_entry[: state.drops].tolist(), index.drop_row[: state.drops].tolist(),
                              strict=True):  # fmt: skip
            if incident is not None and index.series[int(state.columns[0][row])][0] != incident:
                continue
            if last_day is not None and state.columns[1][row] > last_day:
                continue
            raw = decode_line(self._store.line_at(entry, int(index.offsets[entry])))
            found.append((self._data_of_row(row), structure(raw.event, Retraction), raw.recorded_at))
        return found

    def observations(self, incident: str | None = None) -> Iterator[Observation]:
        """Effective observations in log order, reported on or before as-of."""
        for observation_id in self.observation_ids(incident):
            yield self.observation(observation_id)

    def observation_ids(self, incident: str | None = None) -> list[str]:
        """Ids of the effective observations in log order, reported on or before as-of."""
        rows = self._effective.live
        if incident is not None:
            rows = rows & np.isin(self._effective.columns[0], _chosen_series(self._index, incident, None))
        ids = self._effective.ids
        return [ids[row] for row in np.flatnonzero(rows).tolist()]

    def tallies(self, kind: str) -> dict[str, tuple[int, dt.date]]:
        """Per incident (``kind="incident"``) or monitor: its effective figures and the latest report day."""
        series, day = self._effective.columns[0], self._effective.columns[1]
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
        return self._effective.rows[observation_id] in self._effective.corrected_by

    def corrections(self, observation_id: str) -> list[Correction]:
        """The corrections of our record of an observation, oldest first."""
        row = self._effective.rows[observation_id]
        positions = self._effective.corrected_by.get(row, [])
        return [
            structure(decode_line(self._store.line_at(p, int(self._index.offsets[p]))).event, Correction)
            for p in positions
        ]


def replay(
    store: Store,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
    *,
    incident: str | None = None,
    monitor: str | None = None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> Replay:
    """Rebuild every series from the log.

    ``known_at`` keeps only entries recorded at or before it (corrections and
    retractions included); ``as_of`` keeps only observations reported on or
    before it and extends each series to that date. ``incident`` and
    ``monitor`` restrict the series returned; ``progress`` wraps the loop over
    series (the command line shows a bar with it).

    The last full replay of each log is kept in memory. Asked again, replay
    reads only what was appended since, and folds on only the series it
    touches; an as-of or filtered replay of a log replayed in full is cut
    from that replay, since a day never depends on later reports.
    """
    with _no_cycle_collection():
        result = _replay_or_reuse(store, as_of, known_at, incident, monitor, progress)
    refuse_undescribed(result._index.names(), incident=incident, monitor=monitor)
    return result


def refuse_undescribed(names: Names, **chosen: str | None) -> None:
    """Raise ``InputError`` for a filter naming an incident or monitor the log has not described.

    A typo in a filter would otherwise answer with nothing, as if nothing
    had been reported.
    """
    for kind, slug in chosen.items():
        if slug is not None and (kind, slug) not in names:
            raise InputError(unknown_name(kind, slug, names.of(kind)), f"--{kind}")


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector while replay builds millions of small objects.

    Replay's objects hold no reference cycles (reference counting frees them),
    but each allocation burst sets off collections that walk every object the
    process holds, warm replays included: half the time of an incremental
    replay. The collector is back on, as it was, when replay returns.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _replay_or_reuse(
    store: Store,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    progress: Callable[[Iterable, int], Iterable] | None,
) -> Replay:
    warm = _WARM.get(store.location) if known_at is None else None
    if warm is not None:
        index = store.index(since=warm._index)
        if index is not warm._index:
            warm = _appended(store, warm, index) if index.extends(warm._index) else None
    if warm is None and known_at is None and as_of is None and incident is None and monitor is None:
        warm = _replay(store, store.index(), None, None, None, None, progress)
    if warm is not None:
        _WARM[store.location] = warm
        while len(_WARM) > _WARM_LOGS:
            del _WARM[next(iter(_WARM))]
        return _narrowed(warm, as_of, incident, monitor)
    return _replay(store, store.index(), as_of, known_at, incident, monitor, progress)


_WARM: dict[str, Replay] = {}
_WARM_LOGS = 4


def _replay(
    store: Store,
    index: LogIndex,
    as_of: dt.date | None,
    known_at: dt.datetime | None,
    incident: str | None,
    monitor: str | None,
    progress: Callable[[Iterable, int], Iterable] | None,
) -> Replay:
    cut = index.entries
    if known_at is not None:
        cut = int(np.searchsorted(index.times, time_code_of(known_at), side="right"))
    rows_in = int(np.searchsorted(index.obs_entry, cut))
    columns = tuple(c[:rows_in].copy() for c in (index.obs_series, index.obs_day, index.obs_cumulative, index.obs_low,
                                                 index.obs_high, index.obs_qualifier))  # fmt: skip
    effective = _Effective(columns, np.zeros(rows_in, dtype=bool), np.ones(rows_in, dtype=bool), index.obs_ids, {},
                           0, 0)  # fmt: skip
    _correct(effective, index, cut)
    live = ~effective.retracted
    if as_of is not None:
        live &= columns[1] <= as_of.toordinal()
    if incident is not None or monitor is not None:
        live &= np.isin(columns[0], _chosen_series(index, incident, monitor))
    effective.live = live
    last_day = as_of.toordinal() if as_of is not None else None
    series = _fold_rows(index, effective, np.flatnonzero(live), last_day, progress)
    series.sort(key=lambda s: _sort_key(s.key))
    incidents, monitors = _described(index, cut)
    return Replay(
        as_of=as_of,
        known_at=known_at,
        log=_head(store, index, cut),
        series=tuple(series),
        incidents=incidents,
        monitors=monitors,
        last_recorded_at=_time_of(int(index.times[cut - 1])) if cut else None,
        store=store,
        index=index,
        effective=effective,
    )


def _correct(effective: _Effective, index: LogIndex, cut: int) -> None:
    """Apply the corrections and retractions of entries before ``cut`` not applied yet, in log order."""
    fixes = int(np.searchsorted(index.fix_entry, cut))
    for k in range(effective.fixes, fixes):
        row = int(index.fix_row[k])
        for column, values in zip(effective.columns, index.fix_values, strict=True):
            column[row] = values[k]
        effective.corrected_by.setdefault(row, []).append(int(index.fix_entry[k]))
    drops = int(np.searchsorted(index.drop_entry, cut))
    effective.retracted[index.drop_row[effective.drops : drops]] = True
    effective.fixes, effective.drops = fixes, drops


def _chosen_series(index: LogIndex, incident: str | None, monitor: str | None) -> list[int]:
    return [n for n, key in enumerate(index.series)
            if (incident is None or key[0] == incident) and (monitor is None or key[1] == monitor)]  # fmt: skip


def _grouped(index: LogIndex, effective: _Effective, rows: np.ndarray) -> Iterator[tuple[int, Reports]]:
    """The given rows as each series' reports, sorted by (day, log position)."""
    series, day, cumulative, low, high, qualifier = effective.columns
    # Rows are in log order, so sorting by (series, day) keeps log position as the last key.
    order = rows[np.lexsort((day[rows], series[rows]))]
    ids = [index.obs_ids[i] for i in order.tolist()]
    highs = [None if h == OPEN else h for h in high[order].tolist()]
    days, lows, cumulatives = day[order].tolist(), low[order].tolist(), cumulative[order].astype(bool).tolist()
    qualifiers = qualifier[order].tolist()
    sorted_series = series[order]
    bounds = [0, *(np.flatnonzero(np.diff(sorted_series)) + 1).tolist(), len(order)]
    for a, b in itertools.pairwise(bounds):
        if a < b:
            yield int(sorted_series[a]), Reports(days[a:b], ids[a:b], cumulatives[a:b], lows[a:b], highs[a:b],
                                                 qualifiers[a:b])


def _fold_rows(
    index: LogIndex,
    effective: _Effective,
    rows: np.ndarray,
    last_day: int | None,
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> list[Series]:
    groups: Iterable = _grouped(index, effective, rows)
    if progress is not None:
        groups = progress(groups, len(np.unique(effective.columns[0][rows])))
    return [Series(*index.series[number], folded=fold(reports, last_day)) for number, reports in groups]


def _appended(store: Store, warm: Replay, index: LogIndex) -> Replay:
    """A full replay brought up to date with entries appended after it, folding on only what they touch."""
    state = warm._effective
    rows_before = len(state.retracted)
    columns = tuple(np.concatenate([mine, c[rows_before:]]) for mine, c in zip(state.columns, (
        index.obs_series, index.obs_day, index.obs_cumulative, index.obs_low, index.obs_high, index.obs_qualifier),
        strict=True))  # fmt: skip
    new_fixes = len(index.fix_entry) > state.fixes
    # Corrections are few: their map is copied only when new ones arrive (the warm replay keeps its own).
    corrected_by = {r: list(p) for r, p in state.corrected_by.items()} if new_fixes else state.corrected_by
    effective = _Effective(columns, np.concatenate([state.retracted, np.zeros(len(columns[0]) - rows_before, bool)]),
                           state.live, index.obs_ids, corrected_by, state.fixes, state.drops)  # fmt: skip
    touched_rows = [*index.fix_row[state.fixes :].tolist(), *index.drop_row[state.drops :].tolist()]
    touched = {int(state.columns[0][r]) for r in touched_rows if r < rows_before}
    _correct(effective, index, index.entries)
    touched |= {int(effective.columns[0][r]) for r in touched_rows}
    effective.live = ~effective.retracted
    new_rows = np.arange(rows_before, len(columns[0]))
    by_key = {s.key: s for s in warm.series}
    updated: dict[tuple, Series] = {}
    resumed = set()
    for number, reports in _grouped(index, effective, new_rows):
        key = index.series[number]
        before = by_key.get(key)
        if number in touched or before is None or not resumable(before.folded, reports.days[0]):
            touched.add(number)
            continue
        updated[key] = Series(*key, folded=fold(reports, None, after=before.folded))
        resumed.add(number)
    refold = touched - resumed
    if refold:
        rows = np.flatnonzero(effective.live & np.isin(effective.columns[0], sorted(refold)))
        for series in _fold_rows(index, effective, rows, None):
            updated[series.key] = series
        for number in refold:
            by_key.pop(index.series[number], None)
    merged = {**by_key, **updated}
    series = sorted(merged.values(), key=lambda s: _sort_key(s.key))
    incidents, monitors = _described(index, index.entries)
    return Replay(
        as_of=None,
        known_at=None,
        log=LogHead(index.entries, index.last_hash) if index.entries else LogHead.of(None),
        series=tuple(series),
        incidents=incidents,
        monitors=monitors,
        last_recorded_at=_time_of(int(index.times[-1])) if index.entries else None,
        store=store,
        index=index,
        effective=effective,
    )


def _narrowed(full: Replay, as_of: dt.date | None, incident: str | None, monitor: str | None) -> Replay:
    """A full replay cut to an as-of date and filtered: equal to replaying with those parameters."""
    if as_of is None and incident is None and monitor is None:
        return full
    series = [s for s in full.series if (incident is None or s.incident == incident)
              and (monitor is None or s.monitor == monitor)]  # fmt: skip
    state = full._effective
    live = ~state.retracted
    if as_of is not None:
        series = [s.until(as_of) for s in series if s.first <= as_of]
        live &= state.columns[1] <= as_of.toordinal()
    if incident is not None or monitor is not None:
        live &= np.isin(state.columns[0], _chosen_series(full._index, incident, monitor))
    effective = attrs.evolve(state, live=live, rows=None)
    return attrs.evolve(full, as_of=as_of, series=tuple(series), effective=effective)


def time_code_of(moment: dt.datetime) -> int:
    # Not through text: strftime writes years before 1000 without their leading zeros.
    return (moment.astimezone(dt.UTC).replace(tzinfo=None) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def _time_of(code: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=code)


def _head(store: Store, index: LogIndex, cut: int) -> LogHead:
    """Length and head hash of the log prefix replayed."""
    if cut == 0:
        return LogHead.of(None)
    if cut == index.entries:
        return LogHead(cut, index.last_hash)
    return LogHead.of(decode_line(store.line_at(cut - 1, int(index.offsets[cut - 1]))))


def _described(index: LogIndex, cut: int) -> tuple[dict, dict]:
    """Incidents and monitors as last described within the prefix."""
    incidents: dict[str, IncidentDescribed] = {}
    monitors: dict[str, MonitorDescribed] = {}
    for position, type_name, data in index.described:
        if position >= cut:
            break
        if type_name == "IncidentDescribed":
            incidents[data["slug"]] = structure(data, IncidentDescribed)
        else:
            monitors[data["slug"]] = structure(data, MonitorDescribed)
    return incidents, monitors


def _sort_key(key: SeriesKey) -> tuple:
    incident, monitor, measure, category, location = key
    # Monitors alphabetically whatever their case; the whole-incident series first, then by location.
    return (incident, monitor.casefold(), monitor, measure, category, location is not None, location or "")
