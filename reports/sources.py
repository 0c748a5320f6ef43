"""The stored record of every observation a report shows, read from the log in one sequential pass.

A page lists each figure with its quote and source, and none of that is in
the replay's columns: it is only in the log. Reading 730,000 records one
line at a time (a seek and a JSON document each) took a third of a large
report's build; one pass over the log's lines, decoding each observation
into a typed record of the fields a page shows, takes about 3 s of CPU.

The pass reads the lines of the replay's known-at prefix only, and takes
a corrected record from its latest correction, as replay does; the rare
record or correction stored in an older schema is read through the
replay, which upcasts it, and so are the records of a report of a few
incidents of a large log, which a pass over every line would not repay.
A report holds every record of every page at once: records are msgspec
structs, made in C and left out of the cycle collector's sight.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import msgspec

from events_log.codec import SCHEMA
from events_log.store import Store
from timeline.replay import Replay


class Figure(msgspec.Struct, frozen=True, gc=False):
    low: int
    high: int | None
    qualifier: str


class Source(msgspec.Struct, frozen=True, gc=False):
    title: str
    url: str | None = None
    quote: str | None = None


class Record(msgspec.Struct, frozen=True, gc=False):
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


class _Stored(msgspec.Struct, gc=False):
    """A log line read as an observation of the current schema; its time and hashes are skipped."""

    position: int
    type: str
    schema: int
    event: Record


class _Other(msgspec.Struct, gc=False):
    """Any other log line: where it is and what it holds, the event left undecoded."""

    position: int
    type: str
    schema: int
    event: msgspec.Raw


class _Correction(msgspec.Struct, gc=False):
    observation_id: str
    replacement: Record
    reason: str


class _Named(msgspec.Struct, gc=False):
    id: str | None = None
    observation_id: str | None = None


_stored = msgspec.json.Decoder(_Stored).decode
_other = msgspec.json.Decoder(_Other).decode
_correction = msgspec.json.Decoder(_Correction).decode
_named = msgspec.json.Decoder(_Named).decode


# Seeking to one line and decoding it costs about as much as reading four lines in a pass: a report of
# fewer records than a quarter of the log's entries (``--incident``) reads them one by one.
ONE_BY_ONE = 4


class Records(NamedTuple):
    """Each incident's effective observations (any order), and why our log corrected some of them
    (observation id -> the reasons, oldest first)."""

    by_incident: dict[str, list[Record]]
    corrections: dict[str, list[str]]


def records(result: Replay, incidents: Collection[str]) -> Records:
    """The effective observations of ``incidents``: as-of and known-at applied, corrections applied,
    retractions left out.

    A corrected record is the replacement its latest correction holds, as replay reads it.
    """
    wanted = {i for slug in incidents for i in result.observation_ids(slug)}
    if len(wanted) * ONE_BY_ONE < result.log.entries:
        found, corrections, through_replay = {}, {}, list(wanted)
    else:
        found, corrections, through_replay = _one_pass(result, wanted)
    for observation_id in through_replay:  # the replay seeks to each one's line and upcasts it
        found[observation_id] = msgspec.convert(result.observation_data(observation_id), Record)
        if result.corrected(observation_id):
            corrections[observation_id] = [c.reason for c in result.corrections(observation_id)]
    by_incident: dict[str, list[Record]] = {slug: [] for slug in incidents}
    for record in found.values():
        by_incident[record.incident].append(record)
    return Records(by_incident, corrections)


def _one_pass(result: Replay, wanted: set[str]) -> tuple[dict[str, Record], dict[str, list[str]], list[str]]:
    """The wanted records and their corrections' reasons, from one pass over the known-at prefix, and
    the wanted ids whose record or correction is stored in an older schema."""
    found: dict[str, Record] = {}
    corrections: dict[str, list[str]] = {}
    older: list[str] = []
    for line in _store_of(result).lines():
        try:
            stored = _stored(line)
        except msgspec.ValidationError:  # not an observation of the current schema
            stored = _other(line)
        if stored.position >= result.log.entries:
            break
        if stored.schema != SCHEMA.get(stored.type):
            if stored.type in ("Correction", "Observation"):
                named = _named(stored.event)
                older.append(named.observation_id or named.id)
        elif stored.type == "Observation":
            if stored.event.id in wanted:
                found[stored.event.id] = stored.event
        elif stored.type == "Correction":
            correction = _correction(stored.event)
            if correction.observation_id in wanted:
                found[correction.observation_id] = correction.replacement
                corrections.setdefault(correction.observation_id, []).append(correction.reason)
    return found, corrections, [i for i in dict.fromkeys(older) if i in wanted]


def _store_of(result: Replay) -> Store:
    """The store the replay was read from: a report reads its lines through the public Store interface."""
    return result._store  # Replay keeps its store private; pages are its one other reader
