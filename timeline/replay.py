"""Replay: from a log to per-day series, as-of a report date and known-at a log time.

``replay(store, as_of, known_at)`` is the one entry point. It reads the
known-at prefix of the log as a stream (stored event data, not objects),
applies corrections and retractions within that prefix, keeps observations
reported on or before as-of, and folds each series with ``rule.fold``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from events_log.codec import SCHEMA, structure, upcast
from events_log.envelope import RawEntry, format_time, parse_time
from events_log.events import IncidentDescribed, MonitorDescribed, Observation, Qualifier
from events_log.store import LogHead, Store

from .rule import Folded, Obs, fold

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
        return dt.date.fromordinal(self.folded.first + len(self.folded.lows) - 1)

    def __len__(self) -> int:
        return len(self.folded.lows)

    def point(self, index: int) -> DayPoint:
        f = self.folded
        return DayPoint(
            dt.date.fromordinal(f.first + index), f.lows[index], f.highs[index], f.basis[index], f.observations[index]
        )

    @property
    def days(self) -> Iterator[DayPoint]:
        return (self.point(i) for i in range(len(self)))

    @property
    def latest(self) -> DayPoint:
        return self.point(len(self) - 1)

    def on(self, date: dt.date) -> DayPoint | None:
        """The point of ``date``, or None outside the series' span."""
        index = date.toordinal() - self.folded.first
        return self.point(index) if 0 <= index < len(self) else None

    @property
    def flags(self) -> tuple[Flag, ...]:
        return tuple(Flag(dt.date.fromordinal(f.day), f.kind, f.detail) for f in self.folded.flags)


@attrs.frozen
class Replay:
    """What a log said, as-of a date and known-at a time, and how to name that log."""

    as_of: dt.date | None
    known_at: dt.datetime | None
    log: LogHead
    series: tuple[Series, ...]
    _observations: Mapping[str, dict[str, Any]] = attrs.field(repr=False, alias="observations")
    incidents: Mapping[str, IncidentDescribed] = attrs.field(repr=False)
    monitors: Mapping[str, MonitorDescribed] = attrs.field(repr=False)
    corrected: Mapping[str, tuple[str, ...]] = attrs.field(repr=False)
    last_recorded_at: dt.datetime | None = attrs.field(default=None)
    _structured: dict[str, Observation] = attrs.field(factory=dict, init=False, repr=False, eq=False)

    def observation(self, observation_id: str) -> Observation:
        """The effective observation (after corrections) behind an id the series name."""
        found = self._structured.get(observation_id)
        if found is None:
            found = self._structured[observation_id] = structure(self._observations[observation_id], Observation)
        return found

    def qualifier(self, observation_id: str) -> Qualifier:
        return Qualifier(self._observations[observation_id]["figure"]["qualifier"])

    def observations(self, incident: str | None = None) -> Iterator[Observation]:
        """Effective observations in log order, reported on or before as-of."""
        for observation_id, data in self._observations.items():
            if incident is None or data["incident"] == incident:
                yield self.observation(observation_id)


def replay(
    store: Store,
    as_of: dt.date | None = None,
    known_at: dt.datetime | None = None,
    *,
    incident: str | None = None,
    monitor: str | None = None,
    progress: Callable[[Iterable[RawEntry]], Iterable[RawEntry]] | None = None,
) -> Replay:
    """Rebuild every series from the log.

    ``known_at`` keeps only entries recorded at or before it (corrections and
    retractions included); ``as_of`` keeps only observations reported on or
    before it and extends each series to that date. ``incident`` and
    ``monitor`` restrict the series returned, not what is read.
    """
    cutoff = format_time(known_at) if known_at is not None else None
    records: Iterable[RawEntry] = store.records()
    if progress is not None:
        records = progress(records)
    state = _LogState()
    last: RawEntry | None = None
    for raw in records:
        if cutoff is not None and raw.recorded_at > cutoff:
            break
        state.apply(raw)
        last = raw
    day_limit = as_of.isoformat() if as_of is not None else None
    groups: dict[SeriesKey, list[Obs]] = {}
    kept: dict[str, dict[str, Any]] = {}
    ordinal = _DayOrdinals()
    for observation_id, (position, data) in state.observations.items():
        if day_limit is not None and data["reported_on"] > day_limit:
            continue
        if incident is not None and data["incident"] != incident:
            continue
        if monitor is not None and data["monitor"] != monitor:
            continue
        kept[observation_id] = data
        figure = data["figure"]
        key = (data["incident"], data["monitor"], data["measure"], data["category"], data["location"])
        groups.setdefault(key, []).append(
            Obs(
                ordinal(data["reported_on"]),
                position,
                observation_id,
                data["kind"] == "cumulative",
                figure["low"],
                figure["high"],
            )
        )
    last_day = as_of.toordinal() if as_of is not None else None
    series = []
    for key in sorted(groups, key=_sort_key):
        observations = sorted(groups[key], key=lambda o: (o.day, o.position))
        series.append(Series(*key, folded=fold(observations, last_day)))
    return Replay(
        as_of=as_of,
        known_at=known_at,
        log=LogHead.of(last),
        series=tuple(series),
        observations=kept,
        incidents={slug: structure(data, IncidentDescribed) for slug, data in state.incidents.items()},
        monitors={slug: structure(data, MonitorDescribed) for slug, data in state.monitors.items()},
        corrected={k: tuple(v) for k, v in state.corrected.items() if k in kept},
        last_recorded_at=parse_time(last.recorded_at) if last is not None else None,
    )


def _sort_key(key: SeriesKey) -> tuple:
    incident, monitor, measure, category, location = key
    # Monitors alphabetically whatever their case; the whole-incident series first, then by location.
    return (incident, monitor.casefold(), monitor, measure, category, location is not None, location or "")


class _DayOrdinals:
    """ISO date text to ordinal, parsed once per distinct day."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        day = self._cache.get(text)
        if day is None:
            day = self._cache[text] = dt.date.fromisoformat(text).toordinal()
        return day


class _LogState:
    """The effective content of a log prefix: corrections applied, retractions removed."""

    def __init__(self) -> None:
        # id -> (position of the original observation, its effective data)
        self.observations: dict[str, tuple[int, dict[str, Any]]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.monitors: dict[str, dict[str, Any]] = {}
        self.corrected: dict[str, list[str]] = {}

    def apply(self, raw: RawEntry) -> None:
        data = raw.event
        if raw.schema != SCHEMA.get(raw.type):
            data = upcast(raw.type, raw.schema, data)
        kind = raw.type
        if kind == "Observation":
            self.observations[data["id"]] = (raw.position, data)
        elif kind == "Correction":
            target = data["observation_id"]
            position, _ = self.observations[target]
            self.observations[target] = (position, data["replacement"])
            self.corrected.setdefault(target, []).append(data["reason"])
        elif kind == "Retraction":
            del self.observations[data["observation_id"]]
        elif kind == "IncidentDescribed":
            self.incidents[data["slug"]] = data
        elif kind == "MonitorDescribed":
            self.monitors[data["slug"]] = data
