"""The stored record of every observation a report shows, read from the log in one sequential pass.

A page lists each figure with its quote and source, and none of that is in
the replay's columns: it is only in the log. Reading 730,000 records one
line at a time (a seek and a JSON document each) took a third of a large
report's build; one pass over the log's lines, decoding only observations
into typed records with the fields a page shows, takes a fraction of it.

The pass reads the lines of the replay's known-at prefix only. The few
records it can not take as stored (one our log corrected, or one stored
in an older schema) are read as before, through the replay, which applies
corrections and upcasts. Each record is kept only as the row the page's
table shows, its repeated words (days, monitors, kinds) shared: a report
holds every row of every page at once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Collection
from typing import NamedTuple

import msgspec

from events_log.codec import SCHEMA
from events_log.events import describe_figure
from events_log.store import Store
from timeline.replay import Replay


class Figure(msgspec.Struct, frozen=True):
    low: int
    high: int | None
    qualifier: str


class Source(msgspec.Struct, frozen=True):
    title: str
    url: str | None = None
    quote: str | None = None


class Record(msgspec.Struct, frozen=True):
    """An observation as stored (current schema), only the fields a page shows."""

    id: str
    incident: str
    monitor: str
    reported_on: str
    measure: str
    category: str
    kind: str
    figure: Figure
    source: Source
    period_start: str | None = None
    period_end: str | None = None
    location: str | None = None
    note: str | None = None


class Row(NamedTuple):
    """An observation as the page's table shows it. Texts stay raw: the page sets them as text."""

    id: str
    reported_on: str
    period: str
    monitor: str
    what: str  # measure and category
    location: str
    kind: str
    low: int  # the figure's sort key
    figure: str  # in its publisher's words
    qualifier: str
    quote: str
    note: str
    title: str
    url: str


def row_of(record: Record) -> Row:
    figure, source = record.figure, record.source
    return Row(
        record.id,
        sys.intern(record.reported_on),
        _period(record.period_start, record.period_end),
        sys.intern(record.monitor),
        _what(record.measure, record.category),
        sys.intern(record.location or ""),
        sys.intern(record.kind),
        figure.low,
        describe_figure(figure.low, figure.high, figure.qualifier),
        sys.intern(figure.qualifier),
        source.quote or "",
        record.note or "",
        source.title,
        source.url or "",
    )


def _period(start: str | None, end: str | None) -> str:
    start, end = start or end, end or start
    return "" if start is None else start if start == end else f"{start} to {end}"


@functools.lru_cache(maxsize=1 << 10)
def _what(measure: str, category: str) -> str:
    return f"{measure.replace('_', ' ')} · {category.replace('_', ' ')}"


class _Stored(msgspec.Struct):
    """A log line holding an observation: everything but the event's position and schema is skipped."""

    position: int
    type: str
    schema: int
    event: Record


class _Other(msgspec.Struct):
    """Any other log line: where it is and what it holds, the event left undecoded."""

    position: int
    type: str
    event: msgspec.Raw


class _Named(msgspec.Struct):
    id: str | None = None
    observation_id: str | None = None


_stored = msgspec.json.Decoder(_Stored).decode
_other = msgspec.json.Decoder(_Other).decode
_named = msgspec.json.Decoder(_Named).decode
OBSERVATION_SCHEMA = SCHEMA["Observation"]


class Rows(NamedTuple):
    """Each incident's rows (any order), and the ids of the observations our log corrected."""

    by_incident: dict[str, list[Row]]
    corrected: set[str]


def rows(result: Replay, incidents: Collection[str]) -> Rows:
    """The effective observations of ``incidents``: as-of and known-at applied, corrections applied,
    retractions left out."""
    wanted = {i for slug in incidents for i in result.observation_ids(slug)}
    found: dict[str, tuple[str, Row]] = {}  # id -> (incident, row)
    again: list[str] = []  # corrected by our log, or stored in an older schema: read through the replay
    for line in _store_of(result).lines():
        try:
            stored = _stored(line)
        except msgspec.ValidationError:  # not an observation
            other = _other(line)
            if other.position >= result.log.entries:
                break
            if other.type in ("Correction", "Observation"):
                named = _named(other.event)
                again.append(named.observation_id or named.id)
            continue
        if stored.position >= result.log.entries:
            break
        if stored.type != "Observation" or stored.schema != OBSERVATION_SCHEMA:
            again.append(stored.event.id)
        elif stored.event.id in wanted:
            found[stored.event.id] = (stored.event.incident, row_of(stored.event))
    corrected = set()
    for observation_id in again:
        if observation_id in wanted:
            record = msgspec.convert(result.observation_data(observation_id), Record)
            found[observation_id] = (record.incident, row_of(record))
            if result.corrected(observation_id):
                corrected.add(observation_id)
    by_incident: dict[str, list[Row]] = {slug: [] for slug in incidents}
    for incident, row in found.values():
        by_incident[incident].append(row)
    return Rows(by_incident, corrected)


def _store_of(result: Replay) -> Store:
    """The store the replay was read from: a report reads its lines through the public Store interface."""
    return result._store  # noqa: SLF001 (Replay keeps its store private; pages are its one other reader)
