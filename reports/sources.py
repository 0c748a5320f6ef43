"""The stored record of every observation a report shows, read from the log in one sequential pass.

A page lists each figure with its quote and source, and none of that is in
the replay's columns: it is only in the log. Reading 730,000 records one
line at a time (a seek and a JSON document each) took a third of a large
report's build; one pass over the log's lines, decoding only observations
into typed records with the fields a page shows, takes a fraction of it.

The pass reads the lines of the replay's known-at prefix only. The few
records it can not take as stored (one our log corrected, or one stored
in an older schema) are read as before, through the replay, which applies
corrections and upcasts.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import msgspec

from events_log.codec import SCHEMA
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


class Records(NamedTuple):
    """Each incident's effective observations (any order), and the ids of those our log corrected."""

    by_incident: dict[str, list[Record]]
    corrected: set[str]


def records(result: Replay, incidents: Collection[str]) -> Records:
    """The effective observations of ``incidents``: as-of and known-at applied, corrections applied,
    retractions left out."""
    wanted = {i for slug in incidents for i in result.observation_ids(slug)}
    found: dict[str, Record] = {}
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
            found[stored.event.id] = stored.event
    corrected = set()
    for observation_id in again:
        if observation_id in wanted:
            found[observation_id] = msgspec.convert(result.observation_data(observation_id), Record)
            if result.corrected(observation_id):
                corrected.add(observation_id)
    by_incident: dict[str, list[Record]] = {slug: [] for slug in incidents}
    for record in found.values():
        by_incident[record.incident].append(record)
    return Records(by_incident, corrected)


def _store_of(result: Replay) -> Store:
    """The store the replay was read from: a report reads its lines through the public Store interface."""
    return result._store  # noqa: SLF001 (Replay keeps its store private; pages are its one other reader)
